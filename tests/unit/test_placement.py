"""Anti-affinity placement of amphorae on compute hosts."""
from __future__ import annotations

import pytest

from lbaas.drivers.compute.placement import NoValidHost, choose_host


def test_least_loaded_host_is_taken_ties_in_listed_order():
    assert choose_host(["a", "b", "c"], avoid=set(), load={"a": 2, "b": 1, "c": 1}) == "b"
    assert choose_host(["a", "b"], avoid=set(), load={}) == "a"


def test_the_pairs_other_host_is_avoided_even_when_less_loaded():
    assert choose_host(["a", "b"], avoid={"a"}, load={"a": 0, "b": 5}) == "b"


def test_no_host_left_is_a_clear_error_saying_how_to_fix_it():
    with pytest.raises(NoValidHost, match=r"runs on a.*lists only a.*\[compute\] hosts"
                                          r".*enable_anti_affinity = False"):
        choose_host(["a"], avoid={"a"}, load={})


def test_without_anti_affinity_the_pair_shares_a_host_only_when_it_must():
    assert choose_host(["a", "b"], avoid={"a"}, load={"b": 5}, strict=False) == "b"
    assert choose_host(["a"], avoid={"a"}, load={}, strict=False) == "a"


def test_no_host_listed_at_all_is_a_clear_error():
    with pytest.raises(NoValidHost, match=r"\[compute\] hosts is empty"):
        choose_host([], avoid=set(), load={}, strict=False)
