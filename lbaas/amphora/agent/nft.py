"""nftables from the amphora agent: libnftables through ctypes, else the ``nft`` command.

The agent imports only the standard library and runs from the service's virtualenv, where
Debian's ``python3-nftables`` (a ctypes wrapper itself) is not importable; so it binds
``libnftables.so.1`` (package ``libnftables1``) the same way: commands go in as nft's
text syntax (readable, and what the golden files show), listings come back as
libnftables' JSON. Without the library it runs ``nft`` (package ``nftables``) with the
same input and flags.
"""
from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
import threading
from typing import Any

LIBRARY = "libnftables.so.1"
OUTPUT_JSON = 1 << 4
"""``NFT_CTX_OUTPUT_JSON`` of ``<nftables/libnftables.h>``."""


class NftError(RuntimeError):
    """nftables refused the commands; the message is its error output."""


class Nft:
    """Runs nft commands in the caller's network namespace (the amphora's)."""

    def __init__(self, command: str = "nft") -> None:
        self._lock = threading.Lock()
        self._library = _load()
        self._command = command

    @property
    def backend(self) -> str:
        return "libnftables" if self._library is not None else "nft"

    def run(self, commands: str) -> None:
        """Apply ``commands`` (nft text syntax) as one transaction: all or nothing."""
        self._call(commands, json_output=False)

    def list(self, what: str) -> list[dict[str, Any]]:
        """``list <what>`` as libnftables JSON objects (the ``nftables`` array less its
        metainfo), e.g. ``list counters table inet t``."""
        output = self._call(f"list {what}", json_output=True)
        items = json.loads(output or '{"nftables": []}').get("nftables", [])
        return [item for item in items if "metainfo" not in item]

    def _call(self, commands: str, json_output: bool) -> str:
        with self._lock:
            if self._library is not None:
                return _run_library(self._library, commands, json_output)
        return self._run_command(commands, json_output)

    def _run_command(self, commands: str, json_output: bool) -> str:
        if shutil.which(self._command) is None:
            raise NftError(f"neither {LIBRARY} nor the {self._command} command is installed "
                           "(Debian packages libnftables1 or nftables)")
        args = [self._command, *(["-j"] if json_output else []), "-f", "-"]
        result = subprocess.run(args, input=commands, capture_output=True, text=True)
        if result.returncode != 0:
            raise NftError(result.stderr.strip())
        return result.stdout


def _load() -> ctypes.CDLL | None:
    try:
        library = ctypes.CDLL(LIBRARY)
    except OSError:
        return None
    library.nft_ctx_new.restype = ctypes.c_void_p
    library.nft_ctx_new.argtypes = [ctypes.c_uint32]
    library.nft_ctx_free.argtypes = [ctypes.c_void_p]
    library.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
    library.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
    library.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
    library.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
    library.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
    library.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
    library.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
    library.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    return library


def _run_library(library: ctypes.CDLL, commands: str, json_output: bool) -> str:
    """One context per call: cheap next to the netlink work, and nothing shared."""
    context = library.nft_ctx_new(0)
    try:
        library.nft_ctx_output_set_flags(context, OUTPUT_JSON if json_output else 0)
        library.nft_ctx_buffer_output(context)
        library.nft_ctx_buffer_error(context)
        failed = library.nft_run_cmd_from_buffer(context, commands.encode())
        if failed:
            error = library.nft_ctx_get_error_buffer(context) or b""
            raise NftError(error.decode(errors="replace").strip() or "nftables failed")
        output = library.nft_ctx_get_output_buffer(context) or b""
        return output.decode()
    finally:
        library.nft_ctx_free(context)
