"""Field types shared by the resource schemas, with upstream's limits."""
from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable
from typing import Annotated, Any, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError, core_schema

from lbaas import validate


def _uuid(value: str) -> str:
    try:
        uuid.UUID(value)
    except ValueError as exc:
        raise ValueError("Value should be UUID format") from exc
    return value


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise ValueError("Value should be IPv4 or IPv6 format") from exc


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError as exc:
        raise ValueError("Value should be IPv4 or IPv6 CIDR format") from exc


Uuid = Annotated[str, AfterValidator(_uuid)]
IPAddress = Annotated[str, AfterValidator(_ip)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Name = Annotated[str, StringConstraints(max_length=255)]
Description = Annotated[str, StringConstraints(max_length=255)]
ProjectId = Annotated[str, StringConstraints(max_length=36)]
Tags = list[Annotated[str, StringConstraints(max_length=255)]]
Port = Annotated[int, Field(ge=1, le=65535)]
# The largest value an INTEGER column holds on every database we run on: a bigger one is
# a 400, not a database error.
MAX_DB_INTEGER = 2**31 - 1


def _one_line(value: str) -> str:
    validate.no_control_characters(value, "value")
    return value


no_control_characters = AfterValidator(_one_line)
"""A string without control characters (so it stays on its line wherever it is written)."""


class OneOf:
    """``Annotated[str, OneOf(values)]``: a value from a fixed set (WSME's ``Enum``).

    The error is in WSME's words and the OpenAPI document lists the values as an enum.
    """

    def __init__(self, values: Iterable[Any]) -> None:
        self.values = tuple(values)

    def check(self, value: Any) -> Any:
        if value not in self.values:
            raise ValueError(f"Value should be one of: {', '.join(map(str, self.values))}")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> Any:
        result = handler(schema)
        result["enum"] = list(self.values)
        return result


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _lone_surrogate(value: Any, path: str) -> tuple[str, str] | None:
    """(where, text) of the first string in ``value`` that is not valid Unicode text.

    JSON can carry a lone surrogate (``"\\ud800"``); no database or response can store it.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return _printable(path), _printable(value)
        return None
    items: Iterable[tuple[Any, Any]] = (
        value.items() if isinstance(value, dict)
        else enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        where = path if isinstance(key, int) else str(key)
        found = _lone_surrogate(key, where) or _lone_surrogate(item, where)
        if found:
            return found
    return None


def _numeric(annotation: Any) -> bool:
    """Whether a field holds a number (``int``, ``float``, optional or not)."""
    if get_origin(annotation) is Annotated:
        return _numeric(get_args(annotation)[0])
    return annotation in (int, float) or any(
        _numeric(member) for member in get_args(annotation) if member is not type(None))


class Schema(BaseModel):
    """Base of every request body: unknown attributes are errors, as with WSME; text must
    be valid Unicode; a number is never a boolean (``true`` is not 1: pydantic's lax mode
    would take it, and so did WSME). A numeric string still counts, as with WSME (the
    ``openstack`` command sends ``"500"`` for ``--connection-limit 500``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @model_validator(mode="before")
    @classmethod
    def _checked_input(cls, data: Any) -> Any:
        found = _lone_surrogate(data, "body")
        if found:
            field, text = found
            raise PydanticCustomError(
                "invalid_text", "Value should be valid Unicode text (no lone surrogates)",
                {"field": field, "text": text})
        if isinstance(data, dict):
            for name, field_info in cls.model_fields.items():
                value = data.get(field_info.alias or name)
                if isinstance(value, bool) and _numeric(field_info.annotation):
                    raise PydanticCustomError(
                        "bool_for_number", "Input should be a number, not a boolean",
                        {"field": name, "text": str(value).lower()})
        return data


def updates(body: BaseModel, defaults: dict[str, Any]) -> dict[str, Any]:
    """The fields a PUT body sent; ``null`` resets a field to its default (as upstream)."""
    sent = body.model_dump(exclude_unset=True)
    return {key: (defaults.get(key) if value is None else value) for key, value in sent.items()}
