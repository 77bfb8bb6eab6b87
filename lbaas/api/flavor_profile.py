"""``/v2/lbaas/flavorprofiles`` (admin): a provider's settings that flavors offer."""
from __future__ import annotations

from fastapi import APIRouter

from lbaas.api import catalog, resource
from lbaas.api.catalog import ProfileData, ProviderName
from lbaas.api.types import Name, Schema
from lbaas.db.models import Flavor, FlavorProfile

router = APIRouter(prefix="/lbaas/flavorprofiles", tags=["flavor profiles"])
RESOURCE = "Flavor profile"


class FlavorProfilePOST(Schema):
    name: Name
    provider_name: ProviderName
    flavor_data: ProfileData



def _used(profile_id: str) -> object:
    return Flavor.flavor_profile_id == profile_id


CATALOG = catalog.Catalog(
    resource.Resource("flavorprofile", FlavorProfile, FlavorProfilePOST, outputs=(resource.ID,),
                      title="FlavorProfile", tagged=False, links_key="flavorprofile_links"),
    resource=RESOURCE, required=("name", "provider_name", "flavor_data"), used_by=(_used,),
    check=catalog.provider_data_check("flavor", "flavor_data", _used, RESOURCE))
catalog.add_routes(router, CATALOG, "a flavor profile")
