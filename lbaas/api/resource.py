"""One declaration per API resource: its attributes, their API names and their columns.

A resource's writable attributes are declared once, in its request model (the pydantic
class a create validates against), each with its type, its default and, where it is not
the plain case, an :class:`Api` note: the column it is stored in, whether a PUT may
change it, how a response shows it. What only responses carry (ids, statuses,
timestamps, children) is declared beside it as :class:`Out` attributes. From the two,
:class:`Resource` derives the rest, so that none of it can disagree with the declaration:

- the PUT model (every attribute a PUT may change, ``null`` allowed: it resets);
- the response model, which FastAPI uses as the route's ``response_model``, so the
  OpenAPI document describes exactly what is sent;
- ``to_api``, the response body of one row;
- the columns lists filter and sort by (the scalar attributes).

Upstream's ``BaseType.from_db_obj`` with its rename map is the same idea.
"""
from __future__ import annotations

import datetime as dt
import functools
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, create_model
from sqlalchemy.orm import InstrumentedAttribute

from lbaas.api import listing
from lbaas.api.types import ProjectId, Schema

Reader = Callable[[Any], Any]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Api:
    """How a request attribute maps to its row and shows in responses
    (``Annotated[T, Api(...)]``); the plain case needs none."""

    column: str | None = None  # the row's attribute, when it has another name
    update: bool = True  # a PUT may change it
    shown: bool = True  # responses carry it (a parent's id is shown as a list of refs)
    out: Reader | None = None  # shapes the stored value for a response
    filter: bool | None = None  # None: lists filter by it if it is a scalar
    put: Any = None  # the PUT's type (as it is: ``| None`` is up to it), when it differs
    shown_as: Any = None  # the response's type, when it is not the request's (unchecked)


@dataclass(frozen=True)
class Out:
    """An attribute only responses carry, read from the row by ``read``; ``column``
    makes it filterable and sortable."""

    name: str
    type: Any
    read: Reader
    column: str | None = None

    @classmethod
    def of(cls, name: str, kind: Any, stored: str | None = None,
           shape: Reader | None = None) -> Out:
        """Column ``stored`` (by default ``name``) shown as ``name``; filterable."""
        stored = stored or name
        return cls(name, kind, column(stored, shape), stored)


@dataclass(frozen=True)
class Attribute:
    """One API attribute of a resource, as the derived models and ``to_api`` see it."""

    name: str
    shown_type: Any
    read: Reader
    column: str | None  # None: not filterable


# --- Readers -------------------------------------------------------------------------------

def column(name: str, shape: Reader | None = None) -> Reader:
    """Reads column ``name`` of the row, shaped by ``shape``."""
    if shape is None:
        return lambda row: getattr(row, name)
    return lambda row: shape(getattr(row, name))


def text(value: str | None) -> str:
    """Names and descriptions: upstream shows an unset one as ``""``."""
    return value or ""


def as_list(value: Any) -> list[Any]:
    return list(value or [])


def as_dict(value: Any) -> dict[str, Any]:
    return dict(value or {})


def timestamp(value: dt.datetime | None) -> str | None:
    """Seconds, no zone, as upstream shows them (``isoformat`` is 5 times ``strftime``'s
    speed; the cut drops a zone a driver may add)."""
    return value.isoformat(timespec="seconds")[:19] if value else None


def ids(objects: Any) -> list[dict[str, str]]:
    """Related objects as responses show them: ``[{"id": ...}]``."""
    return [{"id": obj.id} for obj in objects]


def refs(name: str) -> Reader:
    """The related objects of relationship ``name``, shown by id."""
    return column(name, ids)


def ref(name: str) -> Reader:
    """One parent, by its id column ``name``, shown as ``[{"id": ...}]`` as upstream does."""
    return lambda row: [{"id": getattr(row, name)}]


Ref = dict[str, str]

# What responses of every object with a life cycle carry.
ID = Out.of("id", str)
STATUSES = (Out.of("provisioning_status", str), Out.of("operating_status", str))
PROJECT = (Out.of("project_id", str | None), Out("tenant_id", str | None, column("project_id")))
TIMESTAMPS = (Out.of("created_at", str | None, shape=timestamp),
              Out.of("updated_at", str | None, shape=timestamp))
LIFECYCLE = (ID, *STATUSES, *PROJECT, *TIMESTAMPS)

# ``project_id`` in a create's body: upstream deprecates and ignores it for a child, which
# belongs to its load balancer's project (an admin's load balancer create uses it). It is
# shown with PROJECT.
SentProjectId = Annotated[ProjectId | None, Api(update=False, shown=False, filter=False)]


# --- Types ---------------------------------------------------------------------------------

def _note(info: Any) -> Api:
    return next((item for item in info.metadata if isinstance(item, Api)), Api())


def plain(annotation: Any) -> Any:
    """``annotation`` without its constraints and validators: what a response holds (the
    values were checked on their way in; a response is not checked again against them)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return plain(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return functools.reduce(lambda a, b: a | b, (plain(arg) for arg in get_args(annotation)))
    if origin in (list, dict):
        return origin[tuple(plain(arg) for arg in get_args(annotation))]
    return annotation


def _scalar(annotation: Any) -> bool:
    members = [arg for arg in get_args(annotation) if arg is not type(None)] \
        if get_origin(annotation) in (Union, types.UnionType) else [annotation]
    return all(member in (str, int, float, bool) for member in members)


def _optional(annotation: Any) -> Any:
    return annotation | None


# --- The resource --------------------------------------------------------------------------

class Resource:
    """A resource's derived models and readers, from its request model and outputs.

    ``fields`` is the model a create validates (its attributes in declaration order;
    none for a resource the API only shows);
    ``outputs`` are the response-only attributes, in the order responses list them
    before the writable ones that follow (``after`` come last). ``listing_options`` go
    to the collection (lbaas.api.listing.Collection: ``tagged``, ``links_key``, ``key``).
    """

    def __init__(self, root: str, model: type[Any], fields: type[Schema] = Schema,
                 outputs: Sequence[Out] = (), after: Sequence[Out] = (),
                 plural: str | None = None, title: str | None = None,
                 **listing_options: Any) -> None:
        self.root, self.model, self.fields = root, model, fields
        self.plural = plural or f"{root}s"
        self.title = title or root.title()  # names the derived models
        hints = typing.get_type_hints(fields, include_extras=True)
        self.renames: dict[str, str] = {}
        self._put: dict[str, Any] = {}
        writable: list[Attribute] = []
        for name, info in fields.model_fields.items():
            note = _note(info)
            stored = note.column or name
            if note.column:
                self.renames[name] = note.column
            if note.update:
                self._put[name] = (note.put or _optional(hints[name]), None)
            shown = note.shown_as or plain(info.annotation)
            filterable = _scalar(shown) if note.filter is None else note.filter
            if note.shown:
                writable.append(Attribute(name, shown, column(stored, note.out),
                                          stored if filterable else None))
            elif filterable:  # a parent's id: filtered by, shown otherwise
                writable.append(Attribute(name, None, column(stored), stored))
        self.attributes = [*(self._attribute(out) for out in outputs), *writable,
                           *(self._attribute(out) for out in after)]
        self.collection = listing.Collection(
            model=model, plural=self.plural, columns=self._columns(), **listing_options)

    @staticmethod
    def _attribute(out: Out) -> Attribute:
        return Attribute(out.name, out.type, out.read, out.column)

    def _columns(self) -> dict[str, InstrumentedAttribute[Any]]:
        return {attribute.name: getattr(self.model, attribute.column)
                for attribute in self.attributes if attribute.column}

    @functools.cached_property
    def shown(self) -> list[Attribute]:
        return [attribute for attribute in self.attributes if attribute.shown_type is not None]

    def to_api(self, row: Any, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The response body of one row; ``given`` holds values already read for some
        attributes (a list reads a page's children at once)."""
        if given:
            return {attribute.name: given[attribute.name] if attribute.name in given
                    else attribute.read(row) for attribute in self.shown}
        return {attribute.name: attribute.read(row) for attribute in self.shown}

    @functools.cached_property
    def put_model(self) -> type[Schema]:
        """What a PUT may send: the updatable attributes, each optional."""
        return _model(f"{self.title}PUT", self._put, Schema)

    @functools.cached_property
    def post_root(self) -> type[Schema]:
        return _model(f"{self.title}RootPOST", {self.root: (self.fields, ...)}, Schema)

    @functools.cached_property
    def put_root(self) -> type[Schema]:
        return _model(f"{self.title}RootPUT", {self.root: (self.put_model, ...)}, Schema)

    @functools.cached_property
    def response_model(self) -> type[BaseModel]:
        """One object as responses show it. Every attribute may be missing: ``fields``
        asks for only some."""
        return _model(f"{self.title}Response", {
            attribute.name: (_optional(attribute.shown_type), None) for attribute in self.shown}, BaseModel)

    def variant(self, name: str, drop: Sequence[str] = (), **extra: Any) -> type[BaseModel]:
        """The response model without the ``drop`` attributes and with ``extra`` ones
        (name=type), as a fully-populated load balancer shows its children."""
        fields = {attribute.name: (_optional(attribute.shown_type), None)
                  for attribute in self.shown if attribute.name not in drop}
        fields.update({key: (_optional(kind), None) for key, kind in extra.items()})
        return _model(name, fields, BaseModel)

    @functools.cached_property
    def response_root(self) -> type[BaseModel]:
        """``{"<root>": {...}}``."""
        return self.rooted(f"{self.title}RootResponse", self.response_model)

    def rooted(self, name: str, model: type[BaseModel]) -> type[BaseModel]:
        """``{"<root>": model}``."""
        return _model(name, {self.root: (model, ...)}, BaseModel)

    @functools.cached_property
    def list_root(self) -> type[BaseModel]:
        """``{"<plural>": [...], "<plural>_links": [...]}``."""
        return _model(f"{self.title}sRootResponse", {
            self.plural: (list_of(self.response_model), ...),
            self.collection.links_key: (list[Ref], [])}, BaseModel)


def list_of(model: type[BaseModel]) -> Any:
    """``list[model]`` for a model made at run time (which mypy cannot take as a type)."""
    return list[model]  # type: ignore[valid-type]


def _model(name: str, fields: dict[str, Any], base: type[M]) -> type[M]:
    model: type[M] = create_model(name, __base__=base, **fields)
    return model
