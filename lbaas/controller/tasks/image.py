"""What a new amphora is made from: its image and its compute flavor.

The image: the newest image of the local store with the load balancer's flavor's
``amp_image_tag``, else ``[controller_worker] amp_image_tag``, as upstream picks the
newest Glance image with the tag. With neither (the default) there is none: the amphora
runs the host's haproxy and keepalived. A tag that names no image fails the build with a
reason saying so, never falls back to another image.

The compute flavor: the load balancer's flavor's ``compute_flavor``, else
``[controller_worker] amp_flavor_id``; its memory and CPUs limit an amphora that runs
from an image (lbaas.drivers.compute.flavors).

Both are recorded in the amphora's row (``image_id``, ``compute_flavor``); a spare is
taken only by a load balancer that would build the same.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from lbaas.config import Settings
from lbaas.db.engine import Database
from lbaas.db.models import ROW_ONLY, Amphora, Flavor, LoadBalancer
from lbaas.images.store import ImageStore


@dataclass(frozen=True)
class Build:
    image_id: str | None
    compute_flavor: str

    def same(self) -> tuple[ColumnElement[bool], ...]:
        """Amphorae (spares) made of the same."""
        return (Amphora.image_id.is_not_distinct_from(self.image_id),
                Amphora.compute_flavor.is_not_distinct_from(self.compute_flavor))


def build_for(settings: Settings, db: Database, lb_id: str | None) -> Build:
    """What a new amphora of ``lb_id`` (None: a spare, which has no flavor) is made of.
    Raises NoImageForTag when the tag in force names no image."""
    tag = settings.controller_worker.amp_image_tag
    compute_flavor = settings.controller_worker.amp_flavor_id
    if lb_id is not None:
        with db.read() as session:
            profile = flavor_profile(session, lb_id)
        tag = _text(profile.get("amp_image_tag")) or tag
        compute_flavor = _text(profile.get("compute_flavor")) or compute_flavor
    image_id = ImageStore.from_settings(settings).newest(tag).id if tag else None
    return Build(image_id, compute_flavor)


def flavor_profile(session: Session, lb_id: str) -> dict[str, Any]:
    """The flavor profile data of the load balancer's flavor ({} if it has no flavor)."""
    lb = session.get(LoadBalancer, lb_id, options=ROW_ONLY)
    flavor = session.get(Flavor, lb.flavor_id) if lb is not None and lb.flavor_id else None
    if flavor is None:
        return {}
    data = json.loads(flavor.flavor_profile.flavor_data)
    return data if isinstance(data, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
