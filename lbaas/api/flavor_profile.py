"""``/v2/lbaas/flavorprofiles`` (admin): a provider's settings that flavors offer."""
from __future__ import annotations

from fastapi import APIRouter

from lbaas.api import catalog
from lbaas.api.catalog import ProfileData, ProviderName
from lbaas.api.types import Name, Schema
from lbaas.db.models import Flavor, FlavorProfile

router = APIRouter(prefix="/lbaas/flavorprofiles", tags=["flavor profiles"])
RESOURCE = "Flavor profile"


class FlavorProfilePOST(Schema):
    name: Name
    provider_name: ProviderName
    flavor_data: ProfileData


class FlavorProfilePUT(Schema):
    name: Name | None = None
    provider_name: ProviderName | None = None
    flavor_data: ProfileData | None = None


class FlavorProfileRootPOST(Schema):
    flavorprofile: FlavorProfilePOST


class FlavorProfileRootPUT(Schema):
    flavorprofile: FlavorProfilePUT


def _used(profile_id: str) -> object:
    return Flavor.flavor_profile_id == profile_id


CATALOG = catalog.Catalog(
    model=FlavorProfile, resource=RESOURCE, root="flavorprofile", plural="flavorprofiles",
    links_key="flavorprofile_links", fields=("id", "name", "provider_name", "flavor_data"),
    required=("name", "provider_name", "flavor_data"), used_by=(_used,),
    check=catalog.provider_data_check("flavor", "flavor_data", _used, RESOURCE))
catalog.add_routes(router, CATALOG, FlavorProfileRootPOST, FlavorProfileRootPUT, "a flavor profile")
