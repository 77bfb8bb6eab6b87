"""Certificates driver: the identity each amphora's agent gets when it is built."""
from __future__ import annotations

import abc
import datetime as dt
from dataclasses import dataclass, field

# The files of an amphora's identity: its certificate + key, the CA of its clients, and
# the key it signs its heartbeats with (its own, derived from the controller's secret).
SERVER_PEM = "server.pem"
CLIENT_CA_PEM = "client_ca.pem"
HEARTBEAT_KEY = "heartbeat.key"


@dataclass
class AmphoraIdentity:
    """Files for the amphora's "config drive" and when its certificate expires."""

    files: dict[str, bytes] = field(default_factory=dict)
    expires_at: dt.datetime | None = None


class CertificateDriver(abc.ABC):
    @abc.abstractmethod
    def amphora_identity(self, amphora_id: str) -> AmphoraIdentity:
        """A server certificate (CN = amphora id), the client CA the agent trusts and the
        amphora's heartbeat key."""
