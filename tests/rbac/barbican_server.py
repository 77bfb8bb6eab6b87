"""Serve a real Barbican on loopback; run with the Barbican virtualenv's Python.

    HOME=WORKDIR python barbican_server.py PASTE_INI PORT

Barbican's modules each parse the configuration at import from the default places, so
the configuration is ``WORKDIR/.barbican/barbican.conf`` (the first of them). The schema
is created on start (SQLite, ``db_auto_create``); Barbican's own paste pipeline (with
keystonemiddleware's ``authtoken``) is served by a threaded stdlib server, enough for
tests. Prints ``ready`` once listening.
"""
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def main() -> None:
    paste_ini, port = sys.argv[1], int(sys.argv[2])
    del sys.argv[1:]  # oslo.config would read them as Barbican's options
    from paste import deploy
    application = deploy.loadapp(f"config:{paste_ini}", name="main")
    server = make_server("127.0.0.1", port, application, server_class=ThreadingServer,
                         handler_class=QuietHandler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
