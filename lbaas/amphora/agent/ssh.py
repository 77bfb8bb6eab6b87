"""sshd in the amphora, opt-in (``[controller_worker] amp_ssh_key_name``, as upstream's
``octavia_ssh_enabled``): when the controller put an ``authorized_keys`` file in the
amphora's directory, the agent starts sshd on the management address only, for root with
that key only (no passwords, no forwarding). The host key is made at the first start,
never shipped in the image, so each amphora has its own. Without the file nothing listens
on port 22."""
from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

LOG = logging.getLogger(__name__)
AUTHORIZED_KEYS = "authorized_keys"
SSHD = "/usr/sbin/sshd"
PRIVSEP = Path("/run/sshd")  # sshd's privilege separation directory


def config(directory: Path, address: str, keys: Path) -> str:
    return "\n".join([
        f"ListenAddress {address}", "Port 22",
        f"HostKey {directory / 'ssh_host_ed25519_key'}",
        f"PidFile {directory / 'sshd.pid'}",
        f"AuthorizedKeysFile {keys}",
        "PermitRootLogin prohibit-password", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "UsePAM no", "X11Forwarding no",
        "AllowTcpForwarding no", "AllowAgentForwarding no", "PermitTunnel no",
        "Subsystem sftp internal-sftp", ""])


def _running(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().split()[0])
        return b"sshd" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return False


def start(base_path: Path, address: str) -> bool:
    """Start sshd if the amphora has authorized keys (and it does not run yet); whether
    one runs. A failure is logged: the amphora serves without ssh."""
    keys = base_path / AUTHORIZED_KEYS
    if not keys.is_file():
        return False
    directory = base_path / "ssh"
    if _running(directory / "sshd.pid"):
        return True
    if not os.path.exists(SSHD):
        LOG.error("ssh access was asked for, but %s is not in this amphora (an image from "
                  "lbaas image build has it; amphorae without an image need the host's "
                  "openssh-server)", SSHD)
        return False
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        host_key = directory / "ssh_host_ed25519_key"
        if not host_key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "amphora",
                            "-f", str(host_key)], check=True, capture_output=True)
        (directory / "sshd_config").write_text(config(directory, address, keys))
        PRIVSEP.mkdir(mode=0o755, exist_ok=True)
        subprocess.run([SSHD, "-f", str(directory / "sshd_config")], check=True,
                       capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        LOG.error("sshd did not start: %s", getattr(exc, "stderr", None) or exc)
        return False
    LOG.info("sshd listening on %s:22 for the keys in %s", address, keys)
    return True
