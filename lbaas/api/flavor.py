"""``/v2/lbaas/flavors``: the named offers users pick with a load balancer's ``flavor_id``."""
from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter
from sqlalchemy.orm import Session

from lbaas.api import catalog, faults, resource
from lbaas.api.resource import Api, text
from lbaas.api.types import Description, Name, Schema, Uuid
from lbaas.db.models import Flavor, FlavorProfile, LoadBalancer

router = APIRouter(prefix="/lbaas/flavors", tags=["flavors"])


class FlavorPOST(Schema):
    name: Name
    description: Annotated[Description | None, Api(out=text)] = None
    enabled: bool = True
    flavor_profile_id: Annotated[Uuid, Api(update=False)]


CATALOG = catalog.Catalog(
    resource.Resource("flavor", Flavor, FlavorPOST, outputs=(resource.ID,), tagged=False),
    resource="Flavor", required=("name",), unique_name="flavor",
    used_by=(catalog.load_balancers_using(LoadBalancer.flavor_id),),
    check=catalog.profile_exists(FlavorProfile, "flavor_profile_id", "Flavor profile"))
catalog.add_routes(router, CATALOG, "a flavor")


def apply_flavor(session: Session, lb: LoadBalancer, flavor_id: str | None,
                 requested_provider: str | None) -> None:
    """Give a new load balancer its flavor's provider and topology (400 as upstream if
    the flavor is unknown, disabled or of another provider than the one requested)."""
    if not flavor_id:
        return
    flavor = catalog.usable(session, Flavor, flavor_id, "flavor")
    profile = flavor.flavor_profile
    if requested_provider and requested_provider != profile.provider_name:
        raise faults.ProviderFlavorMismatchError(flav=flavor_id, prov=requested_provider)
    lb.flavor_id = flavor_id
    lb.provider = profile.provider_name
    lb.topology = json.loads(profile.flavor_data).get("loadbalancer_topology", lb.topology)
