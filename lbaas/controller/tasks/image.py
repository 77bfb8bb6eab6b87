"""Which image a new amphora runs: the newest image of the local store with the load
balancer's flavor's ``amp_image_tag``, else ``[controller_worker] amp_image_tag``, as
upstream picks the newest Glance image with the tag. With neither (the default) there is
none: the amphora runs the host's haproxy and keepalived. A tag that names no image fails
the build with a reason saying so, never falls back to another image.

The choice is recorded as the amphora's ``image_id``; running an amphora from its image
comes with the container runtime (issue 18), the compute drivers do not read it yet.
"""
from __future__ import annotations

import json

from sqlalchemy.orm import Session

from lbaas.controller.flow import FlowContext
from lbaas.db.models import ROW_ONLY, Flavor, LoadBalancer
from lbaas.images.store import ImageStore


def image_for(ctx: FlowContext, lb_id: str | None) -> str | None:
    """The image id for a new amphora of ``lb_id`` (None: a spare, which has no flavor).
    Raises NoImageForTag when the tag in force names no image."""
    tag = ctx.settings.controller_worker.amp_image_tag
    if lb_id is not None:
        with ctx.db.read() as session:
            tag = flavor_tag(session, lb_id) or tag
    if not tag:
        return None
    return ImageStore.from_settings(ctx.settings).newest(tag).id


def flavor_tag(session: Session, lb_id: str) -> str | None:
    """The ``amp_image_tag`` of the load balancer's flavor profile, if it sets one."""
    lb = session.get(LoadBalancer, lb_id, options=ROW_ONLY)
    flavor = session.get(Flavor, lb.flavor_id) if lb is not None and lb.flavor_id else None
    if flavor is None:
        return None
    tag = json.loads(flavor.flavor_profile.flavor_data).get("amp_image_tag")
    return tag if isinstance(tag, str) and tag else None
