"""Turns pydantic's validation errors into upstream's 400 fault texts."""
from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError

from lbaas.api import faults


def _describe(error: dict[str, Any]) -> faults.APIError:
    # List positions are skipped: a bad list item is reported under the list's name.
    location = [str(part) for part in error.get("loc", ())
                if part != "body" and not isinstance(part, int)]
    field = location[-1] if location else "body"
    kind = error.get("type", "")
    value = error.get("input")
    if kind == "json_invalid":
        return faults.InvalidInput(field="body", value="", reason="Invalid JSON.")
    if kind in ("invalid_text", "bool_for_number"):  # raised for a field by Schema
        context = error.get("ctx", {})
        return faults.InvalidInput(field=context.get("field", field), value=context.get("text"),
                                   reason=str(error.get("msg")) + ".")
    if kind == "missing":
        return faults.InvalidInput(field=field, value=None, reason="Mandatory field missing.")
    if kind == "extra_forbidden":
        parent = location[-2] if len(location) > 1 else "body"
        return faults.InvalidInput(field=parent, value=value,
                                   reason=f"Unknown attribute for argument {parent}: {field}")
    reason = str(error.get("msg", "Invalid value")).removeprefix("Value error, ")
    if not reason.endswith("."):
        reason += "."
    return faults.InvalidInput(field=field, value=value, reason=reason)


def fault_from_validation_error(error: RequestValidationError) -> faults.APIError:
    """The first problem, in WSME's words: field, value and the rule it broke."""
    errors = error.errors()
    return _describe(errors[0]) if errors else faults.InvalidInput(field="body", value="", reason="")
