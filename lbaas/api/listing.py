"""List semantics shared by every collection: filters, tags, sorting, pagination, fields.

Follows ``octavia/api/common/pagination.py``: ``limit``/``marker``/``page_reverse`` with
``<collection>_links``, ``sort`` or ``sort_key``/``sort_dir``, filtering by any attribute
(API names), tag filters and ``fields``.
"""
from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlencode

from sqlalchemy import Boolean, Float, Integer, Select, and_, distinct, func, inspect, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from starlette.datastructures import QueryParams

from lbaas.api import faults
from lbaas.config import Settings
from lbaas.db.models import Tag

CONTROL_PARAMS = {"limit", "marker", "page_reverse", "sort", "sort_key", "sort_dir", "fields"}
TAG_PARAMS = ("tags", "tags-any", "not-tags", "not-tags-any")
DEFAULT_SORT = ("created_at", "id")


@dataclass
class Collection:
    """How one API collection maps onto its table."""

    model: type[Any]  # a model class: its columns are looked up by API name
    plural: str
    # API attribute name -> model column; these are the sortable and filterable ones.
    columns: dict[str, InstrumentedAttribute[Any]]
    tagged: bool = True
    links_key: str = ""
    # The API attribute that identifies a row: the pagination marker and last sort key.
    key: str = "id"
    # Upstream's order when a request names none: created_at then id, as far as the
    # collection has them (flavors and profiles: by id); else by the key.
    default_sort: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.links_key = self.links_key or f"{self.plural}_links"
        self.default_sort = tuple(key for key in DEFAULT_SORT if key in self.columns) or (self.key,)


def columns(model: type, names: tuple[str, ...],
            renames: dict[str, str] | None = None) -> dict[str, InstrumentedAttribute[Any]]:
    """API attribute -> column of ``model`` for ``names``; ``renames`` maps the API names
    that differ from the column's (``admin_state_up`` -> ``enabled``)."""
    renames = renames or {}
    return {name: getattr(model, renames.get(name, name)) for name in names}


@dataclass
class ListRequest:
    limit: int | None
    marker: str | None
    page_reverse: bool
    sort: list[tuple[str, str]]
    filters: dict[str, Any]
    tags: dict[str, list[str]]
    fields: list[str] = field(default_factory=list)


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "yes", "on")


def _comma_values(params: QueryParams, name: str) -> list[str]:
    return [item.strip() for raw in params.getlist(name) for item in raw.split(",") if item.strip()]


def _convert(column: InstrumentedAttribute[Any], value: str) -> Any:
    column_type = column.property.columns[0].type
    try:
        if isinstance(column_type, Boolean):
            if value.strip().lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError(value)
            return _truthy(value)
        if isinstance(column_type, Integer):
            number = int(value)
            if not -2**63 <= number < 2**63:  # beyond any database's integers
                raise ValueError(value)
            return number
        if isinstance(column_type, Float):
            return float(value)
    except ValueError as exc:
        raise faults.InvalidFilterArgument() from exc
    return value


def parse(params: QueryParams, collection: Collection, settings: Settings) -> ListRequest:
    """Read the list parameters, answering 400 for anything upstream would reject."""
    api = settings.api_settings
    limit = _limit(params, api.pagination_max_limit)
    sort = _sort(params, collection)
    filters, tags = _filters(params, collection)
    if not api.allow_filtering:
        filters, tags = {}, {}
    fields = parse_fields(params, settings)
    if not api.allow_sorting:
        sort = [(key, "asc") for key in collection.default_sort]
    return ListRequest(
        limit=limit if api.allow_pagination else None,
        marker=params.get("marker") if api.allow_pagination else None,
        page_reverse=_truthy(params.get("page_reverse", "false")),
        sort=sort, filters=filters, tags=tags, fields=fields,
    )


def _limit(params: QueryParams, pagination_max_limit: str) -> int | None:
    """``limit``, capped at ``pagination_max_limit`` (None: no limit)."""
    max_limit = None if pagination_max_limit.lower() == "infinite" else int(pagination_max_limit)
    raw = params.get("limit")
    if raw is None or raw.lower() == "infinite":
        return max_limit
    try:
        requested = int(raw)
    except ValueError as exc:
        raise faults.InvalidLimit(key=raw) from exc
    if requested < 1:
        return max_limit
    return requested if max_limit is None else min(requested, max_limit)


def _sort(params: QueryParams, collection: Collection) -> list[tuple[str, str]]:
    """(key, direction) pairs from ``sort`` or ``sort_key``/``sort_dir``, ending with the
    collection's key so that the order (and the marker) is total."""
    sort: list[tuple[str, str]] = []
    if "sort" in params:
        for item in _comma_values(params, "sort"):
            key, _, direction = item.partition(":")
            sort.append((key.strip(), (direction or "asc").strip()))
    elif "sort_key" in params:
        keys = _comma_values(params, "sort_key")
        dirs = _comma_values(params, "sort_dir")
        sort = [(key, dirs[i] if i < len(dirs) else "asc") for i, key in enumerate(keys)]
    # A key sorted by twice sorts nothing more (and would multiply the marker's clauses).
    first: dict[str, str] = {}
    for key, direction in sort:
        first.setdefault(key, direction.lower())  # upstream lowercases the direction
    sort = list(first.items())
    for key, direction in sort:
        if key not in collection.columns:
            raise faults.InvalidSortKey(key=key)
        if direction not in ("asc", "desc"):
            raise faults.InvalidSortDirection(key=direction)
    if not sort:
        sort = [(key, "asc") for key in collection.default_sort]
    if collection.key not in (key for key, _ in sort):
        sort.append((collection.key, sort[-1][1]))
    return sort


def _filters(params: QueryParams,
             collection: Collection) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Column filters and tag filters; any other parameter is a 400."""
    filters: dict[str, Any] = {}
    tags: dict[str, list[str]] = {}
    for name in params.keys():
        if name in CONTROL_PARAMS:
            continue
        if name in TAG_PARAMS and collection.tagged:
            tags[name] = list(dict.fromkeys(_comma_values(params, name)))
            if len(tags[name]) > MAX_TAG_VALUES:
                raise faults.InvalidFilterArgument()
            continue
        column = filter_column(collection, name)
        if column is None or len(params.getlist(name)) > 1:
            raise faults.InvalidFilterArgument()
        filters[name] = _convert(column, params[name])
    return filters, tags


MAX_TAG_VALUES = 10_000
"""More values in one tag filter are a 400 (the query stays within every database's limits)."""


def _tagged_with_all(tags: list[str]) -> Select[Any]:
    """Ids of the objects carrying every one of ``tags``: one flat query whatever their
    number (a clause per tag nested 1,000 deep, beyond SQLite's expression depth)."""
    return (select(Tag.resource_id).where(Tag.tag.in_(tags)).group_by(Tag.resource_id)
            .having(func.count(distinct(Tag.tag)) == len(tags)))


def _tagged_with_any(tags: list[str]) -> Select[Any]:
    return select(Tag.resource_id).where(Tag.tag.in_(tags))


def filter_column(collection: Collection, name: str) -> InstrumentedAttribute[Any] | None:
    """The column a filter parameter names: an API attribute, or (as upstream, which also
    accepts data-model names) a column of the model, such as the ``load_balancer_id``
    openstacksdk filters listeners by."""
    if name in collection.columns:
        return collection.columns[name]
    if name in inspect(collection.model).column_attrs:
        column: InstrumentedAttribute[Any] = getattr(collection.model, name)
        return column
    return None


def apply_filters(stmt: Select[Any], collection: Collection, request: ListRequest) -> Select[Any]:
    model = collection.model
    for name, value in request.filters.items():
        stmt = stmt.where(filter_column(collection, name) == value)
    if not any(request.tags.values()):
        return stmt
    key = model.id  # tagged collections are keyed by id
    if request.tags.get("tags"):
        stmt = stmt.where(key.in_(_tagged_with_all(request.tags["tags"])))
    if request.tags.get("tags-any"):
        stmt = stmt.where(key.in_(_tagged_with_any(request.tags["tags-any"])))
    if request.tags.get("not-tags"):
        stmt = stmt.where(key.not_in(_tagged_with_all(request.tags["not-tags"])))
    if request.tags.get("not-tags-any"):
        stmt = stmt.where(key.not_in(_tagged_with_any(request.tags["not-tags-any"])))
    return stmt


def _keyset_after(columns: list[tuple[Any, bool]], marker_values: list[Any]) -> Any:
    """Rows strictly after the marker in the (column, ascending) order."""
    clauses = []
    for i, (column, ascending) in enumerate(columns):
        equal = [columns[j][0] == marker_values[j] for j in range(i)]
        beyond = column > marker_values[i] if ascending else column < marker_values[i]
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)


@functools.lru_cache(maxsize=64)
def _named_row(keys: tuple[str, ...]) -> Callable[[Iterable[Any]], Any]:
    """What makes a named tuple of a row with these column names."""
    row: Any = collections.namedtuple("Row", keys)  # type: ignore[misc]  # run-time fields
    return cast(Callable[[Iterable[Any]], Any], row._make)


def fetch(session: Session, stmt: Select[Any], collection: Collection, request: ListRequest) -> list[Any]:
    """Run ``stmt`` with filters, sorting and one page of keyset pagination: the objects
    of a statement of one entity, the rows of one of columns."""
    stmt = apply_filters(stmt, collection, request)
    order = [(collection.columns[key], (direction == "asc") != request.page_reverse)
             for key, direction in request.sort]
    if request.marker:
        marker = session.get(collection.model, request.marker)
        if marker is None:
            raise faults.InvalidMarker(key=request.marker)
        values = [getattr(marker, column.key) for column, _ in order]
        stmt = stmt.where(_keyset_after(order, values))
    stmt = stmt.order_by(*(column.asc() if asc else column.desc() for column, asc in order))
    if request.limit is not None:
        stmt = stmt.limit(request.limit)
    # One entity: its objects (a joined eager load repeats them); else plain rows, read
    # as Core (the ORM's loading of rows took as long as the query) into named tuples:
    # reading a column of a SQLAlchemy row by name takes 320 ns, of a named tuple 40 (a
    # list of 1,000 load balancers reads 30,000).
    rows: list[Any]
    if len(stmt.column_descriptions) == 1:
        rows = list(session.execute(stmt).scalars().unique())
    else:
        result = session.connection().execute(stmt)
        make = _named_row(tuple(result.keys()))
        rows = [make(row) for row in result]
    if request.page_reverse:
        rows.reverse()
    return rows


def links(url: str, params: QueryParams, request: ListRequest, markers: Sequence[str]) -> list[dict[str, str]]:
    """``next``/``previous`` links as upstream builds them, from the page's row markers."""
    kept = [(k, v) for k, v in params.multi_items() if k not in ("marker", "page_reverse", "limit")]
    result: list[dict[str, str]] = []
    if not markers or request.limit is None:
        return result
    def href(marker: str, reverse: bool) -> str:
        query = [*kept, ("limit", str(request.limit)), ("marker", marker)]
        if reverse:
            query.append(("page_reverse", "True"))
        return f"{url}?{urlencode(query)}"
    if request.marker or request.page_reverse:
        result.append({"rel": "previous", "href": href(markers[0], True)})
    if len(markers) >= request.limit:
        result.append({"rel": "next", "href": href(markers[-1], False)})
    return result


def parse_fields(params: QueryParams, settings: Settings) -> list[str]:
    """``fields=a&fields=b`` or ``fields=a,b``; empty means all fields."""
    return _comma_values(params, "fields") if settings.api_settings.allow_field_selection else []


def select_fields(item: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    if not fields:
        return item
    return {key: value for key, value in item.items() if key in fields}


PageToApi = Callable[[Session, list[Any]], list[dict[str, Any]]]


def respond(session: Session, stmt: Select[Any], collection: Collection, params: QueryParams,
            settings: Settings, url: str, to_api: Callable[[Any], dict[str, Any]],
            page_to_api: PageToApi | None = None) -> dict[str, Any]:
    """The whole list response: ``{plural: [...], plural_links: [...]}``. The page's rows
    are shown by ``to_api`` one by one, or by ``page_to_api`` all at once (it may read
    what they show for the whole page in a query)."""
    request = parse(params, collection, settings)
    rows = fetch(session, stmt, collection, request)
    items = page_to_api(session, rows) if page_to_api else [to_api(row) for row in rows]
    return {
        collection.plural: [select_fields(item, request.fields) for item in items],
        collection.links_key: links(url, params, request,
                                    [getattr(row, collection.columns[collection.key].key) for row in rows]),
    }
