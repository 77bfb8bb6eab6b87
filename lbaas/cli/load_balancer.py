"""``lbaas loadbalancer upgrade``: move load balancers onto the image their tag selects now
(lbaas.controller.upgrade), the operator's image rotation in one command."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from lbaas.cli import common
from lbaas.cli.common import ConfigFile
from lbaas.controller import upgrade as fleet
from lbaas.images.store import ImageError

app = typer.Typer(help="Load balancers (the operator's side).", no_args_is_help=True)


@app.command("upgrade")
def upgrade(
        lb_ids: Annotated[Optional[list[str]], typer.Argument(  # noqa: UP045 (typer)
            help="Load balancers to upgrade (their ids).", show_default=False)] = None,
        every: Annotated[bool, typer.Option(
            "--all", help="Every load balancer with an amphora off its tag's newest image.")] = False,
        batch: Annotated[int, typer.Option(
            "--batch", min=1, help="Load balancers failed over at once.")] = 1,
        timeout: Annotated[float, typer.Option(
            "--timeout", min=1, help="Seconds a batch may take.")] = 600,
        dry_run: Annotated[bool, typer.Option(
            "--dry-run", help="Only list what would be failed over.")] = False,
        config_file: ConfigFile = None) -> None:
    """Fail over, batch after batch, the load balancers whose amphorae do not all run the
    newest image of their tag (the flavor's amp_image_tag, else \\[controller_worker]
    amp_image_tag); ACTIVE_STANDBY pairs keep serving. Stops at the first failure."""
    if bool(lb_ids) == every:
        common.fail("name the load balancers to upgrade, or give --all (not both)")
    services = common.open_services(config_file, upgrade=False)
    with common.reporting(fleet.UpgradeStopped, ImageError):
        targets = fleet.outdated(services.settings, services.db,
                                 [lb_id.lower() for lb_id in lb_ids or ()])
        if not targets:
            typer.echo("no load balancer is off its tag's newest image; nothing to do")
            return
        for target in targets:
            images = ", ".join(sorted({image or "host" for image in target.images}))
            stops = "" if target.status == "ACTIVE" else \
                f" ({target.status}: the rollout stops here)"
            typer.echo(f"{target.lb_id} {target.name}: {images} -> {target.wanted or 'host'}"
                       f"{stops}")
        if dry_run:
            return
        try:
            fleet.upgrade(services.settings, services.db, targets, batch,
                          notify=services.wakeup.notify, progress=typer.echo, timeout=timeout)
        except KeyboardInterrupt:
            common.fail("interrupted: the failovers already started go on (their load "
                        "balancers are PENDING_UPDATE until done); run the same command again "
                        "to carry on", 130)
    typer.echo(f"upgraded {len(targets)} load balancer(s)")
