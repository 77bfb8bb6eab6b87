"""Bootstrap Keystone and serve it on loopback; run with the Keystone virtualenv's Python.

    python keystone_server.py KEYSTONE_CONF PORT ADMIN_PASSWORD

Runs ``keystone-manage db_sync``, ``fernet_setup`` and ``bootstrap`` (Keystone's own
command code, in this process: importing Keystone once costs seconds) and then serves
Keystone's WSGI app with a threaded stdlib server, enough for tests. Prints ``ready``
once listening.
"""
import os
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import keystone.conf
from keystone.cmd import cli
from keystone.common import provider_api
from keystone.server import wsgi


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


def fresh_start() -> None:
    """Forget the parsed configuration and the loaded backends (as Keystone's own tests
    do between applications) so that the next command starts as in a new process."""
    keystone.conf.CONF.reset()
    provider_api.ProviderAPIs._clear_registry_instances()


def manage(config: str, *args: str) -> None:
    """What ``keystone-manage --config-file CONFIG ARGS`` does."""
    fresh_start()
    cli.main(argv=["keystone-manage", "--config-file", config, *args])


def main() -> None:
    config, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    url = f"http://127.0.0.1:{port}/v3"
    manage(config, "db_sync")
    manage(config, "fernet_setup", "--keystone-user", "root", "--keystone-group", "root")
    manage(config, "bootstrap", "--bootstrap-password", password, "--bootstrap-region-id",
           "RegionOne", "--bootstrap-public-url", url, "--bootstrap-internal-url", url,
           "--bootstrap-admin-url", url)
    fresh_start()
    keystone.conf.CONF.unregister_opt(cli.command_opt)  # the server takes no command
    os.environ["OS_KEYSTONE_CONFIG_FILES"] = config
    del sys.argv[1:]  # the app parses the command line as Keystone options
    application = wsgi.initialize_public_application()
    server = make_server("127.0.0.1", port, application, server_class=ThreadingServer,
                         handler_class=QuietHandler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
