"""The Jinja2 templates of the amphora's configurations (``lbaas/amphora/templates``)."""
from __future__ import annotations

import functools

import jinja2


@functools.cache
def template(name: str) -> jinja2.Template:
    """A template with the settings every renderer here needs: an undefined name is an
    error, block tags leave no blank lines, nothing is HTML-escaped."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader(__package__, "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    return environment.get_template(name)
