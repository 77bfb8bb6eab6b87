"""``/v2/lbaas/availabilityzoneprofiles`` (admin): a provider's settings behind zones."""
from __future__ import annotations

from fastapi import APIRouter

from lbaas.api import catalog
from lbaas.api.catalog import ProfileData, ProviderName
from lbaas.api.types import Name, Schema
from lbaas.db.models import AvailabilityZone, AvailabilityZoneProfile

router = APIRouter(prefix="/lbaas/availabilityzoneprofiles",
                   tags=["availability zone profiles"])
RESOURCE = "Availability Zone Profile"


class AvailabilityZoneProfilePOST(Schema):
    name: Name
    provider_name: ProviderName
    availability_zone_data: ProfileData


class AvailabilityZoneProfilePUT(Schema):
    name: Name | None = None
    provider_name: ProviderName | None = None
    availability_zone_data: ProfileData | None = None


class AvailabilityZoneProfileRootPOST(Schema):
    availability_zone_profile: AvailabilityZoneProfilePOST


class AvailabilityZoneProfileRootPUT(Schema):
    availability_zone_profile: AvailabilityZoneProfilePUT


def _used(profile_id: str) -> object:
    return AvailabilityZone.availability_zone_profile_id == profile_id


CATALOG = catalog.Catalog(
    model=AvailabilityZoneProfile, resource=RESOURCE, root="availability_zone_profile",
    plural="availability_zone_profiles", links_key="availability_zone_profile_links",
    fields=("id", "name", "provider_name", "availability_zone_data"),
    required=("name", "provider_name", "availability_zone_data"), used_by=(_used,),
    check=catalog.provider_data_check("availability_zone", "availability_zone_data", _used,
                                      RESOURCE))
catalog.add_routes(router, CATALOG, AvailabilityZoneProfileRootPOST,
                   AvailabilityZoneProfileRootPUT, "an availability zone profile")
