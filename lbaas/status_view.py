"""``lbaas status``: the overview (lbaas.db.overview) as one screen, or as JSON."""
from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from lbaas.db.overview import Overview

# Amphorae listed one by one, the least recently heard first; the others are counted.
AMPHORAE_SHOWN = 20
JOBS_SHOWN = 10


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", expand=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _services(view: Overview) -> Table:
    table = _table("Services", "kind", "host", "pid", "started", "last seen", "last activity")
    for s in view.services:
        seen = Text(_age(view.age(s.last_seen)), style="" if s.alive else "red")
        table.add_row(s.kind, s.host, str(s.pid), f"{s.started_at:%Y-%m-%d %H:%M:%S}", seen,
                      s.activity or "")
    if not view.services:
        table.add_row("-", "none running", "", "", "", "")
    return table


def _hosts(view: Overview) -> Table:
    table = _table("Hosts", "name", "kind", "status", "last seen", "amphorae")
    for h in view.hosts:
        capacity = f"{h.amphorae}/{h.capacity}" if h.capacity else str(h.amphorae)
        table.add_row(h.name, h.kind, Text(h.status, style="green" if h.status == "UP" else "red"),
                      _age(view.age(h.last_seen)), capacity)
    return table


def _amphorae(view: Overview) -> Table:
    counts = Counter(a.status for a in view.amphorae)
    summary = ", ".join(f"{status} {n}" for status, n in sorted(counts.items())) or "none"
    table = _table(f"Amphorae ({summary}; spares {view.spares}/{view.spare_pool_size})",
                   "id", "status", "role", "load balancer", "host", "last heartbeat")
    silent = {a.id for a in view.silent_amphorae()}
    ordered = sorted(view.amphorae, key=lambda a: a.last_heard or dt.datetime.min)
    for a in ordered[:AMPHORAE_SHOWN]:
        heard = Text(_age(view.age(a.last_heard)), style="red" if a.id in silent else "")
        table.add_row(a.id, a.status, a.role or "", a.load_balancer_id or "", a.host or "", heard)
    if len(ordered) > AMPHORAE_SHOWN:
        table.add_row(f"... and {len(ordered) - AMPHORAE_SHOWN} more", "", "", "", "", "")
    return table


def _objects(view: Overview) -> Table:
    table = _table("Objects by status", "kind", "provisioning / operating status: count")
    for kind, counts in view.objects.items():
        table.add_row(kind, ", ".join(f"{prov}/{oper} {n}" for (prov, oper), n
                                      in sorted(counts.items())) or "none")
    return table


def _last_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else ""


def _jobs(view: Overview) -> Table:
    table = _table(f"Jobs ({len(view.jobs)} on the board)", "id", "action", "queued",
                   "attempts", "worker", "last error")
    for job in view.jobs[:JOBS_SHOWN]:
        table.add_row(str(job.id), job.action, _age(view.age(job.created_at)), str(job.attempts),
                      job.owner or "waiting", _last_line(job.last_error))
    return table


def render(view: Overview) -> RenderableType:
    expiry = view.soonest_cert_expiry
    parts: list[RenderableType] = [
        Text(f"lbaas status at {view.now:%Y-%m-%d %H:%M:%S} UTC", style="bold"),
        _services(view)]
    if view.hosts:
        parts.append(_hosts(view))
    parts += [_amphorae(view), _objects(view)]
    if view.jobs:
        parts.append(_jobs(view))
    parts.append(Text("Soonest amphora certificate expiry: "
                      + (f"{expiry:%Y-%m-%d %H:%M} UTC" if expiry else "none")))
    if view.ca_expiry:
        parts.append(Text("CA expiry: " + ", ".join(
            f"{name} {end:%Y-%m-%d}" for name, end in view.ca_expiry.items())))
    if view.attention:
        parts.append(Text("Needs attention:", style="bold yellow"))
        parts += [Text(f"  - {note}", style="yellow") for note in view.attention]
    else:
        parts.append(Text("Nothing needs attention.", style="green"))
    return Group(*parts)


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat() + "Z"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Counter):
        return [{"provisioning_status": prov, "operating_status": oper, "count": n}
                for (prov, oper), n in sorted(value.items())]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def as_json(view: Overview) -> dict[str, Any]:
    """The overview as JSON-ready data, with the derived figures the screen shows."""
    data: dict[str, Any] = _plain(view)
    data["stuck"] = [{"id": lb_id, "provisioning_status": status, "since": _plain(since)}
                     for lb_id, status, since in view.stuck]
    data["spares"] = view.spares
    data["soonest_cert_expiry"] = _plain(view.soonest_cert_expiry)
    for amphora, shown in zip(view.amphorae, data["amphorae"], strict=True):
        shown["heartbeat_age_seconds"] = view.age(amphora.last_heard)
    for service, shown in zip(view.services, data["services"], strict=True):
        shown["last_seen_age_seconds"] = view.age(service.last_seen)
    return data
