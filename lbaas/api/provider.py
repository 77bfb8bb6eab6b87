"""``/v2/lbaas/providers``: the enabled provider drivers and what their flavors and zones accept."""
from __future__ import annotations

from typing import Any

import jsonschema
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from lbaas import compute_flavors as flavors
from lbaas import constants
from lbaas.amphora import capabilities
from lbaas.api import faults, listing
from lbaas.api.common import ApiState, state
from lbaas.images.store import ImageError, ImageStore, check_tag

router = APIRouter(prefix="/lbaas/providers", tags=["providers"])

# JSON-schema properties of the amphora provider's flavor profiles and availability-zone
# profiles (upstream's amphora_driver/flavor_schema.py and availability_zone_schema.py).
AMPHORA_FLAVOR_SCHEMA: dict[str, dict[str, Any]] = {
    "loadbalancer_topology": {
        "type": "string", "enum": list(constants.TOPOLOGIES),
        "description": "The load balancer topology. One of: SINGLE - One amphora per load "
                       "balancer. ACTIVE_STANDBY - Two amphora per load balancer."},
    "compute_flavor": {"type": "string", "description": "The compute driver flavor ID."},
    "amp_image_tag": {"type": "string", "description": "The amphora image tag."},
    "sriov_vip": {
        "type": "boolean",
        "description": "When true, the VIP port will be created using an SR-IOV VF port."},
    "allow_member_sriov": {
        "type": "boolean",
        "description": "When true, users can request a member port be SR-IOV enabled at "
                       "member creation time."},
}
AMPHORA_AVAILABILITY_ZONE_SCHEMA: dict[str, dict[str, Any]] = {
    "compute_zone": {"type": "string", "description": "The compute availability zone."},
    "volume_zone": {"type": "string", "description": "The volume availability zone."},
    "management_network": {
        "type": "string", "description": "The management network ID for the amphora."},
    "valid_vip_networks": {
        "type": "array", "items": {"type": "string"},
        "description": "List of network IDs that are allowed for VIP use. This "
                       "overrides/replaces the list of allowed networks configured in "
                       "`octavia.conf`."},
}
# The provider drivers this service implements; "octavia" is the amphora driver's alias.
DRIVER_SCHEMAS: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    name: {"flavor": AMPHORA_FLAVOR_SCHEMA, "availability_zone": AMPHORA_AVAILABILITY_ZONE_SCHEMA}
    for name in (constants.AMPHORA_PROVIDER, constants.OCTAVIA_PROVIDER_ALIAS)
}


class Capability(BaseModel):
    """A provider or one of its options (either field may be left out by ``fields``)."""

    name: str | None = None
    description: str | None = None


class ProvidersResponse(BaseModel):
    providers: list[Capability]


class FlavorCapabilitiesResponse(BaseModel):
    flavor_capabilities: list[Capability]


class AvailabilityZoneCapabilitiesResponse(BaseModel):
    availability_zone_capabilities: list[Capability]


def driver_schemas(provider: str, api: ApiState) -> dict[str, dict[str, dict[str, Any]]]:
    """The schemas of an enabled provider: 400 if it is not enabled, 501 if we lack it."""
    if provider not in api.settings.api_settings.enabled_provider_drivers:
        raise faults.ProviderNotEnabled(prov=provider)
    if provider not in DRIVER_SCHEMAS:
        raise faults.ProviderNotFound(prov=provider)
    return DRIVER_SCHEMAS[provider]


def validate_data(provider: str, kind: str, data: Any, api: ApiState) -> None:
    """Check a profile's data (``kind`` "flavor" or "availability_zone") against the
    provider's schema: 400 if the provider is not enabled, 501 with jsonschema's words
    (prefixed by the offending key, as upstream) if it does not accept the data."""
    schema = {"type": "object", "additionalProperties": False,
              "properties": driver_schemas(provider, api)[kind]}
    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as exc:
        where = f"{exc.relative_path[0]} " if exc.relative_path else ""
        raise faults.ProviderUnsupportedOption(prov=provider, user_msg=f"{where}{exc.message}") from exc
    if kind == "flavor":
        _check_amphora_flavor(provider, data, api)


def _check_amphora_flavor(provider: str, data: dict[str, Any], api: ApiState) -> None:
    """What a flavor names must exist, as upstream's amphora driver checks with Nova and
    Glance: its compute flavor ([compute] flavors) and an image with its tag (this host's
    store, where the workers of an all-in-one deployment look too)."""
    compute_flavor = data.get("compute_flavor")
    if compute_flavor is not None:
        try:
            flavors.resources(api.settings, compute_flavor)
        except flavors.FlavorNotFound as exc:
            raise faults.ProviderUnsupportedOption(prov=provider, user_msg=str(exc)) from exc
    tag = data.get("amp_image_tag")
    if tag is not None:
        try:
            ImageStore.from_settings(api.settings).newest(check_tag(tag))
        except ImageError as exc:
            raise faults.ProviderUnsupportedOption(
                prov=provider, user_msg=f"Failed to find an image with tag {tag} due to: {exc}"
            ) from exc


def _capabilities(schema: dict[str, dict[str, Any]], request: Request,
                  api: ApiState) -> list[dict[str, Any]]:
    """``{name, description}`` per option, filtered by ``name``/``description`` and ``fields``."""
    params = request.query_params
    items = [{"name": name, "description": option["description"]} for name, option in schema.items()]
    items = [item for item in items
             if all(not params.get(key) or item[key] == params[key] for key in ("name", "description"))]
    fields = listing.parse_fields(params, api.settings)
    return [listing.select_fields(item, fields) for item in items]


@router.get("", response_model=ProvidersResponse, response_model_exclude_unset=True,
            summary="List the enabled provider drivers")
def list_all(request: Request, api: ApiState = Depends(state)) -> Any:
    fields = listing.parse_fields(request.query_params, api.settings)
    return {"providers": [
        listing.select_fields({"name": name, "description": _description(name, description)},
                              fields)
        for name, description in api.settings.api_settings.enabled_provider_drivers.items()]}


def _description(provider: str, description: str) -> str:
    """The configured description, plus what this host's amphorae cannot serve (SCTP
    where the kernel has none), so that clients see it before a create is refused."""
    unserved = capabilities.unserved_protocols()
    if provider not in DRIVER_SCHEMAS or not unserved:
        return description
    return f"{description} ({'; '.join(unserved.values())}.)"


@router.get("/{provider}/flavor_capabilities", response_model=FlavorCapabilitiesResponse,
            response_model_exclude_unset=True, summary="List a provider's flavor options")
def flavor_capabilities(provider: str, request: Request, api: ApiState = Depends(state)) -> Any:
    schema = driver_schemas(provider, api)["flavor"]
    return {"flavor_capabilities": _capabilities(schema, request, api)}


@router.get("/{provider}/availability_zone_capabilities",
            response_model=AvailabilityZoneCapabilitiesResponse,
            response_model_exclude_unset=True,
            summary="List a provider's availability-zone options")
def availability_zone_capabilities(provider: str, request: Request,
                                   api: ApiState = Depends(state)) -> Any:
    schema = driver_schemas(provider, api)["availability_zone"]
    return {"availability_zone_capabilities": _capabilities(schema, request, api)}
