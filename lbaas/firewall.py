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
    """Our chains as ``iptables-restore --noflush`` reads them (what ``apply`` feeds it),
    and, as comments, the jumps it inserts into the built-in chains."""
    lines = [f"# -I {chain} 1 {' '.join(args)}" for chain, args in jumps(spec).items()]
    lines += ["*filter", *(f":{chain} - [0:0]" for chain in rules(spec))]
    lines += [f"-A {chain} {' '.join(_quoted(arg) for arg in args)}"
              for chain, chain_rules in rules(spec).items() for args in chain_rules]
    return "\n".join([*lines, "COMMIT"]) + "\n"


def _quoted(arg: str) -> str:
    """iptables-restore splits on blanks and reads double quotes (not single ones)."""
    return f'"{arg}"' if " " in arg else arg


def _iptables(*args: str, check: bool = True) -> bool:
    result = subprocess.run(["iptables", "-w", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"iptables {' '.join(args)}: {result.stderr.strip()}")
    return result.returncode == 0


def apply(spec: FirewallSpec) -> None:
    """Install (or refresh) the rules; running it twice leaves one copy.

    The chains are written in one ``iptables-restore`` commit (declaring a chain creates
    it or empties it): a packet meets the old rules or the new ones, never a chain half
    rewritten, and two processes writing at once cannot interleave their rules (a DROP
    ahead of the ACCEPT of replies cut every agent call off). The jumps are checked, then
    inserted: callers on one host take turns (lbaas.host holds its lock around this).
    """
    restored = subprocess.run(["iptables-restore", "-w", "--noflush"], input=render(spec),
                              capture_output=True, text=True)
    if restored.returncode != 0:
        raise RuntimeError(f"iptables-restore: {restored.stderr.strip()}")
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
