"""``/v2/lbaas/availabilityzones``: zones, keyed by name, that load balancers may ask for."""
from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter
from sqlalchemy.orm import Session

from lbaas.api import catalog, faults, resource
from lbaas.api.resource import Api, text
from lbaas.api.types import Description, Name, Schema, Uuid
from lbaas.db.models import AvailabilityZone, AvailabilityZoneProfile, LoadBalancer, Subnet

router = APIRouter(prefix="/lbaas/availabilityzones", tags=["availability zones"])


class AvailabilityZonePOST(Schema):
    name: Annotated[Name, Api(update=False)]
    description: Annotated[Description | None, Api(out=text)] = None
    enabled: bool = True
    availability_zone_profile_id: Annotated[Uuid, Api(update=False)]


CATALOG = catalog.Catalog(
    resource.Resource("availability_zone", AvailabilityZone, AvailabilityZonePOST,
                      title="AvailabilityZone", tagged=False, key="name"),
    resource="Availability Zone", unique_name="availability zone",
    used_by=(catalog.load_balancers_using(LoadBalancer.availability_zone),),
    check=catalog.profile_exists(AvailabilityZoneProfile, "availability_zone_profile_id",
                                 "Availability Zone Profile"))
catalog.add_routes(router, CATALOG, "an availability zone")


def apply_availability_zone(session: Session, lb: LoadBalancer, name: str | None) -> None:
    """Place a new load balancer in a zone (400 if it is unknown or disabled, or if the
    zone's ``valid_vip_networks``, which replaces ``[networking] valid_vip_networks`` for
    it, does not hold the VIP's network)."""
    if not name:
        return
    zone = catalog.usable(session, AvailabilityZone, name, "availability_zone")
    lb.availability_zone = name
    valid = json.loads(zone.availability_zone_profile.availability_zone_data).get(
        "valid_vip_networks")
    if not valid:
        return
    network_id = lb.vip_network_id
    if network_id is None and lb.vip_subnet_id:
        subnet = session.get(Subnet, lb.vip_subnet_id)
        network_id = subnet.network_id if subnet is not None else None
    if network_id not in valid:
        raise faults.ValidationException(
            detail="Supplied VIP network_id is not allowed by the configuration of this "
                   "deployment.")
