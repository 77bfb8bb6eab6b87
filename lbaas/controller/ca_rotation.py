"""``lbaas certs rotate-ca server|client``: a generated CA replaced with no failover.

Server CA: the new CA is trusted beside the old one and signs from then on
(lbaas.certs.rotation), every amphora (spares included) gets a new certificate from it
through its agent (``PUT /1.0/certificate``, as the housekeeping's certificate rotation
does), then the old CA is dropped. Client CA: every amphora is told to accept both CAs
(``PUT /1.0/client_ca``), the controller's certificate is reissued by the new one, then
every amphora is told to accept only the new one and the old one is dropped.

Controller processes notice the changed files on their next connection to an amphora
(lbaas.drivers.amphora.rest), so the services keep running. An amphora that does not
answer stops the rotation before the old CA is dropped (it would lock the controller
out): the command says which, and running it again resumes where it stopped. Amphorae on
other hosts' compute agents are reached as usual; the compute agents' own certificates
(``lbaas certs issue-host``) are not rotated by this.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select, update

from lbaas import constants
from lbaas.certs import rotation
from lbaas.controller.flow import FlowContext
from lbaas.controller.housekeeping import cert_rotation
from lbaas.db.engine import Database
from lbaas.db.models import Amphora, Host
from lbaas.network import hosts

LOG = logging.getLogger(__name__)


class RotationStopped(Exception):
    """An amphora did not answer: the old CA stays trusted; running the command again
    resumes the rotation."""


def compute_hosts(db: Database) -> list[str]:
    """The registered compute hosts: their agents' certificates are not rotated here."""
    with db.read() as session:
        return list(session.scalars(select(Host.name).where(Host.kind == hosts.COMPUTE)
                                    .order_by(Host.name)))


def _amphorae(ctx: FlowContext) -> list[Amphora]:
    """Every amphora with an agent to tell: not deleted, with a management address."""
    with ctx.db.read() as session:
        return list(session.scalars(select(Amphora).where(
            Amphora.status != constants.DELETED, Amphora.lb_network_ip.is_not(None))
            .order_by(Amphora.created_at)))


def _each(ctx: FlowContext, action: Callable[[Amphora], bool], what: str,
          progress: Callable[[str], None], done: set[str] | None = None) -> set[str]:
    """``action`` on every amphora not in ``done``, and on those made meanwhile;
    RotationStopped naming those it failed on. Returns the amphorae done."""
    done = set() if done is None else done
    failed: list[str] = []
    while True:
        todo = [a for a in _amphorae(ctx) if a.id not in done and a.id not in failed]
        if not todo:
            break
        for amphora in todo:
            (done.add if action(amphora) else failed.append)(amphora.id)
    progress(f"{what}: {len(done)} amphora(e)")
    if failed:
        raise RotationStopped(
            f"{len(failed)} amphora(e) did not answer ({', '.join(failed[:5])}"
            f"{', ...' if len(failed) > 5 else ''}); the old CA stays trusted until they do: "
            "run the command again (or fail them over)")
    return done


def _push_client_ca(ctx: FlowContext, pem: bytes) -> Callable[[Amphora], bool]:
    def push(amphora: Amphora) -> bool:
        try:
            ctx.drivers.amphora.upload_client_ca(amphora, pem)
            return True
        except Exception as exc:
            LOG.warning("amphora %s did not take the client CA bundle: %s", amphora.id, exc)
            return False
    return push


def _reissue(ctx: FlowContext, amphora: Amphora) -> bool:
    try:
        expires = cert_rotation.renew(ctx, amphora)
    except Exception as exc:
        LOG.warning("amphora %s did not take its new certificate: %s", amphora.id, exc)
        return False
    with ctx.db.write() as session:
        session.execute(update(Amphora).where(Amphora.id == amphora.id)
                        .values(cert_expiration=expires)
                        .execution_options(synchronize_session=False))
    return True


def rotate_server(ctx: FlowContext, progress: Callable[[str], None]) -> None:
    rotation.begin(ctx.settings, "server")
    progress("a new server CA signs; both CAs are trusted")
    _each(ctx, lambda amphora: _reissue(ctx, amphora),
          "certificates reissued by the new server CA", progress)
    rotation.finish(ctx.settings, "server")
    progress("the old server CA is no longer trusted")


def rotate_client(ctx: FlowContext, progress: Callable[[str], None]) -> None:
    both = rotation.begin(ctx.settings, "client")
    _each(ctx, _push_client_ca(ctx, both), "amphorae accept both client CAs", progress)
    rotation.switch_client(ctx.settings)
    progress("the controller's certificate comes from the new client CA")
    alone = _push_client_ca(ctx, rotation.finishing_bundle(ctx.settings, "client"))
    done = _each(ctx, alone, "amphorae accept only the new client CA", progress)
    rotation.finish(ctx.settings, "client")
    # Amphorae built meanwhile got the file of both CAs: they too accept only the new one.
    _each(ctx, alone, "amphorae built meanwhile accept only the new client CA", progress, done)
    progress("the old client CA is no longer trusted")
