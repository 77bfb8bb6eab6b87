"""debug turns on the libraries' chatter, but SQL is logged only as [database]
connection_debug asks (as upstream's oslo.db): at DEBUG SQLAlchemy logs every row."""
from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from lbaas import config, log


@pytest.fixture(autouse=True)
def levels_restored() -> Iterator[None]:
    names = ["", log.SQL_LOGGER, *log.CHATTY]
    saved = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def sql_logs(debug: bool, connection_debug: int) -> tuple[bool, bool]:
    """Whether SQL statements (INFO) and rows (DEBUG) would be logged."""
    log.apply_level(config.load(environ={
        "LBAAS__DEFAULT__debug": str(debug),
        "LBAAS__database__connection_debug": str(connection_debug)}))
    engine = logging.getLogger("sqlalchemy.engine.Engine")
    return engine.isEnabledFor(logging.INFO), engine.isEnabledFor(logging.DEBUG)


def test_debug_alone_logs_no_sql_but_the_other_chatter() -> None:
    assert sql_logs(debug=True, connection_debug=0) == (False, False)
    assert logging.getLogger("httpx").isEnabledFor(logging.DEBUG)


@pytest.mark.parametrize(("connection_debug", "expected"),
                         [(0, (False, False)), (50, (True, False)), (100, (True, True))])
def test_connection_debug_chooses_statements_or_rows(connection_debug: int,
                                                     expected: tuple[bool, bool]) -> None:
    assert sql_logs(debug=False, connection_debug=connection_debug) == expected
