"""Balancing: the replica with the fewest outstanding requests gets the next one."""

from __future__ import annotations

import random
from collections import Counter

from tierwise_operator.gateway.balancing import pick
from tierwise_operator.gateway.endpoints import Endpoint


def endpoints(*outstanding: int) -> list[Endpoint]:
    return [Endpoint(f"http://10.0.0.{i}:8000", n) for i, n in enumerate(outstanding)]


def test_the_least_loaded_replica_wins() -> None:
    chosen = pick(endpoints(3, 1, 2))
    assert chosen is not None and chosen.url == "http://10.0.0.1:8000"


def test_ties_are_spread_over_the_tied_replicas() -> None:
    pool = endpoints(0, 0, 5)
    rng = random.Random(1)
    picks = Counter(e.url for e in (pick(pool, rng=rng) for _ in range(400)) if e)
    assert set(picks) == {"http://10.0.0.0:8000", "http://10.0.0.1:8000"}
    assert min(picks.values()) > 120


def test_excluded_replicas_are_never_picked_and_none_is_left_when_all_are() -> None:
    pool = endpoints(0, 9)
    chosen = pick(pool, exclude={"http://10.0.0.0:8000"})
    assert chosen is not None and chosen.url == "http://10.0.0.1:8000"
    assert pick(pool, exclude={e.url for e in pool}) is None
    assert pick([]) is None


def test_outstanding_counts_even_out_a_burst() -> None:
    pool = endpoints(0, 0, 0)
    for _ in range(9):
        chosen = pick(pool)
        assert chosen is not None
        chosen.outstanding += 1
    assert [e.outstanding for e in pool] == [3, 3, 3]
