"""Everything one amphora's agent runs: its HTTPS API, heartbeat sender, log forwarder,
UDP services and (opt-in) sshd.

They start in the calling thread's network namespace: each socket is made in the
namespace of the thread that creates it, and each thread and command inherits its
creator's. An agent process of its own starts them on its main thread
(``lbaas.amphora.agent.__main__``); the host agent (``lbaas.amphora.agent.host``) starts
one set per amphora, each from a thread that entered that amphora's namespace, and stops
a set when its amphora goes.
"""
from __future__ import annotations

import logging

from lbaas.amphora.agent import ssh
from lbaas.amphora.agent.config import AgentConfig
from lbaas.amphora.agent.heartbeat import HeartbeatSender
from lbaas.amphora.agent.logs import LogForwarder
from lbaas.amphora.agent.server import AgentServer, server_context
from lbaas.amphora.agent.udp import UdpServices

LOG = logging.getLogger(__name__)


class AgentServices:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.udp = UdpServices(config.base_path)
        # Bound first: an amphora whose management address is not there yet fails here,
        # before anything else started.
        self.server = AgentServer(config, server_context(config), self.udp)
        self.heartbeat = HeartbeatSender(config, udp_services=self.udp)
        self.logs: LogForwarder | None = None

    def start(self) -> None:
        """Serve what was installed before (UDP rules), send heartbeats, read haproxy's
        logs, start sshd if asked for; the API is served by ``serve_forever``."""
        self.udp.restore()
        self.heartbeat.start()
        self.logs = LogForwarder(self.config.base_path, self.config.log_offload,
                                 self.config.log_max_bytes, self.config.log_backup_count)
        self.logs.start()
        ssh.start(self.config.base_path, self.config.bind_host)

    def serve_forever(self) -> None:
        LOG.info("amphora agent %s listening on %s:%s", self.config.amphora_id,
                 self.config.bind_host, self.config.bind_port)
        self.server.serve_until_stopped()

    def stop(self) -> None:
        """Stop every thread and close every socket (haproxy, keepalived and sshd run on:
        they are processes in the namespace, stopped with it)."""
        self.server.stop()
        self.server.close_connections()
        self.heartbeat.stop()
        if self.logs is not None:
            self.logs.stop()
        self.udp.stop()
