"""The HTTP server's own refusals (a request line or headers it cannot parse, such as a
100 KB URL) answered with Octavia's fault body, like every other error of the API.

uvicorn answers those before the application sees the request, with a plain-text 400;
``http_protocol()`` is the protocol class to give it (``uvicorn.run(..., http=...)``),
the usual one with that answer replaced.
"""
from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.h11_impl import H11Protocol

from lbaas.api import faults


def fault_response(message: str) -> bytes:
    """A complete HTTP/1.1 400 with the fault body; the connection is closed after it."""
    error = faults.APIError(f"Invalid HTTP request received: {message}")
    error.code = 400
    body = json.dumps(error.body()).encode()
    head = (b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n")
    return head + body


class _FaultBodyMixin:
    transport: asyncio.Transport

    def send_400_response(self, msg: str) -> None:
        self.transport.write(fault_response(msg))
        self.transport.close()


class FaultH11Protocol(_FaultBodyMixin, H11Protocol):
    pass


def http_protocol() -> type:
    """uvicorn's fastest available HTTP protocol, refusing with the fault body."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools is optional in uvicorn
        return FaultH11Protocol

    class FaultHttpToolsProtocol(_FaultBodyMixin, HttpToolsProtocol):
        pass

    return FaultHttpToolsProtocol
