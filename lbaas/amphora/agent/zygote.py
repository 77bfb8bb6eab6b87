"""One preloaded parent per host that forks the amphora agents (``[haproxy_amphora]
agent_launcher = zygote``).

A Python agent started on its own keeps about 15 MB of private memory (its interpreter's
heap of imported modules); forked from a parent that imported them already, and froze
them out of the garbage collector's reach (``gc.freeze``, so that no collection writes to
their pages), it shares those pages and keeps about 3 MB of its own (bench/ and
docs/benchmarks.md: "Agent memory"). Nothing else changes: each agent is still its own
process, in its amphora's network namespace, with its own certificate and
configuration, serving the same API.

The parent listens on a Unix socket (0600, root); a request is one JSON line naming the
amphora's network namespace, configuration file, directory and console log. It forks
twice (the agent is reparented to init, so it outlives the parent and is never its
zombie); the middle process enters the namespace (``setns``), starts a session, moves
into the directory (``/proc/<pid>/cwd`` is how the compute driver finds an amphora's
processes) and forks the agent, whose pid comes back as the answer. The parent stays
single-threaded (forking a threaded process is unsafe) and answers ``hello`` with the
hash of the agent's source it preloaded, so that a compute driver of newer code replaces
it rather than start agents of old code.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from lbaas.amphora.agent import __main__ as agent_main
from lbaas.amphora.agent.host_process import enter_namespace, listen, source_hash


def _agent(request: dict[str, Any], listener: socket.socket, answer: int) -> None:
    """In the middle process: enter the amphora, fork the agent, report its pid."""
    listener.close()
    os.setsid()
    enter_namespace(request["netns"])
    os.chdir(request["directory"])
    pid = os.fork()
    if pid:
        os.write(answer, f"{pid}\n".encode())
        os._exit(0)
    os.close(answer)
    console = os.open(request["console"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(console, 1)
    os.dup2(console, 2)
    os.close(null)
    os.close(console)
    # The preloaded objects stay frozen: a collection walking them would write to every
    # one of their pages and so copy them all. The agent's own objects are collected.
    try:
        agent_main.main(["--config-file", request["config"]])
    finally:
        os._exit(1)


def _serve_one(listener: socket.socket, connection: socket.socket, hashed: str) -> None:
    with connection, connection.makefile("rwb") as stream:
        line = stream.readline()
        request = json.loads(line or b"{}")
        if request.get("hello"):
            stream.write(json.dumps({"source_hash": hashed}).encode() + b"\n")
            return
        reader, writer = os.pipe()
        middle = os.fork()
        if middle == 0:
            os.close(reader)
            try:
                _agent(request, listener, writer)
            except BaseException as exc:  # noqa: BLE001 - reported to the caller, then gone
                os.write(writer, f"error {exc}\n".encode())
            os._exit(1)
        os.close(writer)
        with os.fdopen(reader, "rb") as answer:
            reported = answer.readline().decode().strip()
        os.waitpid(middle, 0)
        if reported.isdigit():
            stream.write(json.dumps({"pid": int(reported)}).encode() + b"\n")
        else:
            stream.write(json.dumps({"error": reported or "the agent did not start"})
                         .encode() + b"\n")


def serve(path: Path) -> None:
    hashed = source_hash()
    listener = listen(path)
    gc.collect()
    gc.freeze()  # the preloaded modules' pages stay shared with every agent
    while True:
        connection, _ = listener.accept()
        try:
            _serve_one(listener, connection, hashed)
        except (OSError, ValueError) as exc:
            print(f"agent zygote: request failed: {exc}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lbaas.amphora.agent.zygote")
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--pid-file", type=Path, required=True)
    args = parser.parse_args(argv)
    args.pid_file.write_text(f"{os.getpid()}\n")
    serve(args.socket)


if __name__ == "__main__":
    main()
