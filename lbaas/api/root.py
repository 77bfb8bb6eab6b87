"""``GET /``: the version document clients read to find the API."""
from __future__ import annotations

from fastapi import APIRouter, Request

router = APIRouter()

# Upstream's minor versions and their timestamps (octavia/api/root_controller.py); each
# minor is tied to a feature. 2.27-2.30 carry the month of the upstream release only.
MINOR_VERSIONS = (
    "2016-12-11T00:00:00Z", "2018-04-20T00:00:00Z", "2018-07-31T00:00:00Z",
    "2018-12-18T00:00:00Z", "2018-12-19T00:00:00Z", "2019-01-21T00:00:00Z",
    "2019-01-25T00:00:00Z", "2018-01-25T12:00:00Z", "2019-02-12T00:00:00Z",
    "2019-03-04T00:00:00Z", "2019-03-05T00:00:00Z", "2019-06-24T00:00:00Z",
    "2019-09-11T00:00:00Z", "2019-09-13T00:00:00Z", "2019-11-10T00:00:00Z",
    "2020-03-10T00:00:00Z", "2020-03-15T00:00:00Z", "2020-04-29T00:00:00Z",
    "2020-04-29T01:00:00Z", "2020-05-12T00:00:00Z", "2020-08-02T00:00:00Z",
    "2020-09-03T00:00:00Z", "2020-09-04T00:00:00Z", "2020-09-07T00:00:00Z",
    "2020-10-15T00:00:00Z", "2021-10-02T00:00:00Z", "2022-08-29T00:00:00Z",
    "2023-10-01T00:00:00Z", "2024-03-01T00:00:00Z", "2024-10-01T00:00:00Z",
    "2025-03-01T00:00:00Z",
)


def versions(base_url: str) -> dict[str, list[dict[str, object]]]:
    last = len(MINOR_VERSIONS) - 1
    return {"versions": [
        {
            "id": f"v2.{minor}",
            "status": "CURRENT" if minor == last else "SUPPORTED",
            "updated": updated,
            "links": [{"href": f"{base_url}/v2", "rel": "self"}],
        }
        for minor, updated in enumerate(MINOR_VERSIONS)
    ]}


def _base_url(request: Request) -> str:
    return (request.app.state.api.settings.api_settings.api_base_uri or str(request.base_url)).rstrip("/")


@router.get("/", summary="List API versions")
def list_versions(request: Request) -> dict[str, list[dict[str, object]]]:
    return versions(_base_url(request))


@router.get("/v2", summary="Show the current API version")
@router.get("/v2.0", include_in_schema=False)
def show_version(request: Request) -> dict[str, dict[str, object]]:
    """The current version, linking to itself.

    Upstream answers the bare string "v2.0" here; openstacksdk's keystoneauth discovery
    reads this URL when ``load_balancer_endpoint_override`` ends in ``/v2.0`` and needs a
    ``{"version": {...}}`` document instead.
    """
    base = _base_url(request)
    current = versions(base)["versions"][-1]
    return {"version": {**current, "links": [{"href": f"{base}{request.url.path}", "rel": "self"}]}}
