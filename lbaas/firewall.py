"""The controller host's firewall against its amphorae (iptables, on by default).

From the management bridge the host accepts only heartbeats (UDP to the health manager's
port), the amphorae's logs (to the ports of ``[amphora_agent]`` log targets), replies to
connections the controller opened (to the agents), and ping; every other
packet from an amphora to the host is dropped, and nothing is forwarded out of the
management bridge. The rules live in chains of their own, so applying them is idempotent
and removing them touches nothing else. ``rules()`` is a pure function; ``apply()`` and
``remove()`` run iptables.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass

LOG_PREFIX = "lbaas-fw-drop: "


@dataclass(frozen=True)
class FirewallSpec:
    management_bridge: str
    heartbeat_port: int
    log_drops: bool = False
    chain_prefix: str = "LBAAS"
    log_ports: tuple[tuple[str, int], ...] = ()  # (udp|tcp, port) of syslog receivers

    @property
    def input_chain(self) -> str:
        return f"{self.chain_prefix}-INPUT"

    @property
    def forward_chain(self) -> str:
        return f"{self.chain_prefix}-FORWARD"


def rules(spec: FirewallSpec) -> dict[str, list[list[str]]]:
    """The rules of each of our chains, as iptables arguments after ``-A CHAIN``."""
    drop = [["-j", "LOG", "--log-prefix", LOG_PREFIX]] if spec.log_drops else []
    return {
        spec.input_chain: [
            ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
            ["-p", "udp", "--dport", str(spec.heartbeat_port), "-j", "ACCEPT"],
            *(["-p", protocol, "--dport", str(port), "-j", "ACCEPT"]
              for protocol, port in spec.log_ports),
            ["-p", "icmp", "--icmp-type", "echo-request", "-j", "ACCEPT"],
            *drop,
            ["-j", "DROP"],
        ],
        spec.forward_chain: [*drop, ["-j", "DROP"]],
    }


def jumps(spec: FirewallSpec) -> dict[str, list[str]]:
    """Where the built-in chains send the management bridge's traffic to ours."""
    return {
        "INPUT": ["-i", spec.management_bridge, "-j", spec.input_chain],
        "FORWARD": ["-i", spec.management_bridge, "-j", spec.forward_chain],
    }


def render(spec: FirewallSpec) -> str:
    """The rules as ``iptables-save`` would list them (for review and golden tests)."""
    lines = [f"-N {chain}" for chain in rules(spec)]
    lines += [f"-I {chain} 1 {' '.join(args)}" for chain, args in jumps(spec).items()]
    lines += [f"-A {chain} {' '.join(args)}" for chain, chain_rules in rules(spec).items()
              for args in chain_rules]
    return "\n".join(lines) + "\n"


def _iptables(*args: str, check: bool = True) -> bool:
    result = subprocess.run(["iptables", "-w", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"iptables {' '.join(args)}: {result.stderr.strip()}")
    return result.returncode == 0


def apply(spec: FirewallSpec) -> None:
    """Install (or refresh) the rules; running it twice leaves one copy."""
    for chain, chain_rules in rules(spec).items():
        if not _iptables("-n", "-L", chain, check=False):
            _iptables("-N", chain)
        _iptables("-F", chain)
        for args in chain_rules:
            _iptables("-A", chain, *args)
    for chain, args in jumps(spec).items():
        if not _iptables("-C", chain, *args, check=False):
            _iptables("-I", chain, "1", *args)


def remove(spec: FirewallSpec) -> None:
    """Remove the jumps and our chains; removing absent rules is not an error."""
    for chain, args in jumps(spec).items():
        while _iptables("-D", chain, *args, check=False):
            pass
    for chain in rules(spec):
        _iptables("-F", chain, check=False)
        _iptables("-X", chain, check=False)


def installed(spec: FirewallSpec) -> bool:
    return all(_iptables("-C", chain, *args, check=False) for chain, args in jumps(spec).items())
