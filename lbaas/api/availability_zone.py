"""``/v2/lbaas/availabilityzones``: zones, keyed by name, that load balancers may ask for."""
from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from lbaas.api import catalog
from lbaas.api.types import Description, Name, Schema, Uuid
from lbaas.db.models import AvailabilityZone, AvailabilityZoneProfile, LoadBalancer

router = APIRouter(prefix="/lbaas/availabilityzones", tags=["availability zones"])


class AvailabilityZonePOST(Schema):
    name: Name
    description: Description | None = None
    enabled: bool = True
    availability_zone_profile_id: Uuid


class AvailabilityZonePUT(Schema):
    description: Description | None = None
    enabled: bool | None = None


class AvailabilityZoneRootPOST(Schema):
    availability_zone: AvailabilityZonePOST


class AvailabilityZoneRootPUT(Schema):
    availability_zone: AvailabilityZonePUT


CATALOG = catalog.Catalog(
    model=AvailabilityZone, resource="Availability Zone", root="availability_zone",
    plural="availability_zones", key="name",
    fields=("name", "description", "enabled", "availability_zone_profile_id"),
    unique_name="availability zone",
    used_by=(catalog.load_balancers_using(LoadBalancer.availability_zone),),
    check=catalog.profile_exists(AvailabilityZoneProfile, "availability_zone_profile_id",
                                 "Availability Zone Profile"))
catalog.add_routes(router, CATALOG, AvailabilityZoneRootPOST, AvailabilityZoneRootPUT,
                   "an availability zone")


def apply_availability_zone(session: Session, lb: LoadBalancer, name: str | None) -> None:
    """Place a new load balancer in a zone (400 if it is unknown or disabled)."""
    if name:
        catalog.usable(session, AvailabilityZone, name, "availability_zone")
        lb.availability_zone = name
