"""What the four admin catalogs share (flavor profiles, flavors, availability-zone profiles
and zones): create, list, show, update and delete of rows without a project or a status,
with upstream's not-found, duplicate-name and in-use rules.

A resource module describes its table with a :class:`Catalog` and calls :func:`add_routes`.
"""
# No ``from __future__ import annotations``: FastAPI reads the body types of the handlers
# below from their annotations, which name variables of ``add_routes``.
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import StringConstraints
from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lbaas import constants
from lbaas.api import faults, listing, provider, resource
from lbaas.api.common import ApiState, context, show_object, state
from lbaas.api.context import RequestContext
from lbaas.api.types import updates
from lbaas.db.models import LoadBalancer

ProviderName = Annotated[str, StringConstraints(max_length=255)]
ProfileData = Annotated[str, StringConstraints(max_length=4096)]

# Upstream answers 404 for the nil UUID on every catalog, whatever the table holds.
NIL_UUID = "00000000-0000-0000-0000-000000000000"

# A check run inside the write transaction before a row is created (``row`` is None) or
# updated: ``values`` are the fields sent; raise a fault to refuse them.
Check = Callable[[Session, ApiState, dict[str, Any], Any], None]


def no_check(session: Session, api: ApiState, values: dict[str, Any], row: Any) -> None:
    return None


@dataclass
class Catalog:
    """One admin collection and the rules of its rows."""

    declared: resource.Resource  # its attributes (the model has a ``name`` column)
    resource: str  # as error texts name it: "Flavor profile"
    # Fields a PUT may not set to null (upstream: InvalidOption for None).
    required: tuple[str, ...] = ()
    # The ``field`` of RecordAlreadyExists when two rows may not share a name.
    unique_name: str | None = None
    # Conditions (given the key) on other tables' rows that use a row of this catalog.
    used_by: tuple[Callable[[str], Any], ...] = ()
    check: Check = no_check

    @property
    def model(self) -> type[Any]:
        return self.declared.model

    @property
    def root(self) -> str:
        return self.declared.root

    def find(self, session: Session, key: str) -> Any:
        row = None if key == NIL_UUID else session.get(self.model, key)
        if row is None:
            raise faults.NotFound(resource=self.resource, id=key)
        return row

    def in_use(self, session: Session, key: str) -> bool:
        return any(session.scalar(select(func.count()).where(using(key)))
                   for using in self.used_by)


def add_routes(router: APIRouter, catalog: Catalog, noun: str) -> None:
    """Create, list, show, update and delete routes for ``catalog`` on ``router``."""
    declared = catalog.declared
    post_root, put_root = declared.post_root, declared.put_root
    shown: dict[str, Any] = {"response_model": declared.response_root,
                             "response_model_exclude_unset": True}

    @router.post("", status_code=201, summary=f"Create {noun}", **shown)
    def create(body: post_root, api: ApiState = Depends(state),  # type: ignore[valid-type]
               ctx: RequestContext = Depends(context)) -> Any:
        values = getattr(body, catalog.root).model_dump()
        with api.db.write() as session:
            catalog.check(session, api, values, None)
            if catalog.unique_name:
                _check_free_name(session, catalog, values.get("name"))
            row = catalog.model(**values)
            session.add(row)
            _flush(session, catalog, values.get("name"))
            return {catalog.root: declared.to_api(row)}

    @router.get("", summary=f"List {noun}s", response_model=declared.list_root,
                response_model_exclude_unset=True)
    def list_all(request: Request, api: ApiState = Depends(state),
                 ctx: RequestContext = Depends(context)) -> Any:
        with api.db.read() as session:
            return listing.respond(session, select(catalog.model), declared.collection,
                                   request.query_params, api.settings,
                                   str(request.url).split("?")[0], declared.to_api)

    @router.get("/{key}", summary=f"Show {noun}", **shown)
    def show(key: str, request: Request, api: ApiState = Depends(state),
             ctx: RequestContext = Depends(context)) -> Any:
        with api.db.read() as session:
            return show_object(request, api, catalog.root,
                               declared.to_api(catalog.find(session, key)))

    @router.put("/{key}", summary=f"Update {noun}", **shown)
    def update(key: str, body: put_root, api: ApiState = Depends(state),  # type: ignore[valid-type]
               ctx: RequestContext = Depends(context)) -> Any:
        changes = updates(getattr(body, catalog.root), {"enabled": True})
        for name in catalog.required:
            if name in changes and changes[name] is None:
                raise faults.InvalidOption(value=None, option=name)
        with api.db.write() as session:
            row = catalog.find(session, key)
            catalog.check(session, api, changes, row)
            if catalog.unique_name and changes.get("name") not in (None, row.name):
                _check_free_name(session, catalog, changes["name"])
            for name, value in changes.items():
                setattr(row, name, value)
            _flush(session, catalog, changes.get("name"))
            return {catalog.root: declared.to_api(row)}

    @router.delete("/{key}", status_code=204, summary=f"Delete {noun}")
    def delete(key: str, api: ApiState = Depends(state),
               ctx: RequestContext = Depends(context)) -> Response:
        with api.db.write() as session:
            row = catalog.find(session, key)
            if catalog.in_use(session, key):
                raise faults.ObjectInUse(object=catalog.resource, id=key)
            session.delete(row)
        return Response(status_code=204)


def _check_free_name(session: Session, catalog: Catalog, name: str | None) -> None:
    if session.scalar(select(func.count()).where(catalog.model.name == name)):
        raise faults.RecordAlreadyExists(field=catalog.unique_name, name=name)


def _flush(session: Session, catalog: Catalog, name: str | None) -> None:
    """Flush; a name taken by a concurrent writer is a 409, not a 500."""
    try:
        session.flush()
    except IntegrityError as exc:
        raise faults.RecordAlreadyExists(field=catalog.unique_name, name=name) from exc


def usable(session: Session, model: type, key: str, option: str) -> Any:
    """A row a load balancer names (``flavor_id``, ``availability_zone``): 400 if it does
    not exist or is disabled, in upstream's words."""
    row = session.get(model, key)
    if row is None:
        raise faults.InvalidOption(value=key, option=option)
    if not row.enabled:
        raise faults.DisabledOption(value=key, option=option)
    return row


def profile_exists(model: type, field_name: str, resource: str) -> Check:
    """The check of a flavor or zone: the profile ``field_name`` names exists (400)."""
    def check(session: Session, api: ApiState, values: dict[str, Any], row: Any) -> None:
        if field_name in values and session.get(model, values[field_name]) is None:
            raise faults.InvalidSubresource(resource=resource, id=values[field_name])
    return check


def load_balancers_using(column: Any) -> Callable[[str], Any]:
    """The ``used_by`` condition of rows a load balancer (not deleted) names in ``column``."""
    def using(key: str) -> Any:
        return and_(column == key, LoadBalancer.provisioning_status != constants.DELETED)
    return using


def provider_data_check(kind: str, data_field: str, used_by: Callable[[str], Any],
                        resource: str) -> Check:
    """The check of a profile: ``data_field`` is a JSON object the provider accepts.

    As upstream: the data must parse (400 InvalidOption), the provider must be enabled
    (400) and accept the data (501), and neither may change while a flavor or zone uses
    the profile (409). A new provider alone is checked against the stored data too.
    """
    def check(session: Session, api: ApiState, values: dict[str, Any], row: Any) -> None:
        if row is not None and ("provider_name" in values or data_field in values):
            if session.scalar(select(func.count()).where(used_by(row.id))):
                raise faults.ObjectInUse(object=resource, id=row.id)
        if data_field not in values and "provider_name" not in values:
            return
        text = values[data_field] if data_field in values else getattr(row, data_field)
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise faults.InvalidOption(value=text, option=data_field) from exc
        name = values["provider_name"] if "provider_name" in values else row.provider_name
        provider.validate_data(name, kind, data, api)
    return check
