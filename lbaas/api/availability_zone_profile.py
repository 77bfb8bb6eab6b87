"""``/v2/lbaas/availabilityzoneprofiles`` (admin): a provider's settings behind zones."""
from __future__ import annotations

from fastapi import APIRouter

from lbaas.api import catalog, resource
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



def _used(profile_id: str) -> object:
    return AvailabilityZone.availability_zone_profile_id == profile_id


CATALOG = catalog.Catalog(
    resource.Resource("availability_zone_profile", AvailabilityZoneProfile,
                      AvailabilityZoneProfilePOST, outputs=(resource.ID,),
                      title="AvailabilityZoneProfile", tagged=False,
                      links_key="availability_zone_profile_links"),
    resource=RESOURCE, required=("name", "provider_name", "availability_zone_data"), used_by=(_used,),
    check=catalog.provider_data_check("availability_zone", "availability_zone_data", _used,
                                      RESOURCE))
catalog.add_routes(router, CATALOG, "an availability zone profile")
