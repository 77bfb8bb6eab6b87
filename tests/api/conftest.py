"""API tests run as if the host's kernel had SCTP, so that upstream's SCTP rules are tested
whatever kernel runs them; ``no_sctp`` gives a test this host's refusal instead."""
from __future__ import annotations

import pytest

from lbaas.amphora import capabilities


@pytest.fixture(autouse=True)
def sctp_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capabilities, "unserved_protocols", dict)


@pytest.fixture
def no_sctp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capabilities, "unserved_protocols",
                        lambda: {"SCTP": capabilities.SCTP_UNAVAILABLE})
