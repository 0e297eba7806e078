"""Which replica gets the next request: the fewest outstanding requests, ties spread at random."""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable

from .endpoints import Endpoint


def pick(
    endpoints: Iterable[Endpoint],
    exclude: Collection[str] = (),
    rng: random.Random | None = None,
) -> Endpoint | None:
    """The least-loaded endpoint not in `exclude` (by URL), or None when none is left."""
    fewest: list[Endpoint] = []
    for endpoint in endpoints:
        if endpoint.url in exclude:
            continue
        if not fewest or endpoint.outstanding < fewest[0].outstanding:
            fewest = [endpoint]
        elif endpoint.outstanding == fewest[0].outstanding:
            fewest.append(endpoint)
    if not fewest:
        return None
    if len(fewest) == 1:
        return fewest[0]
    return (rng or random).choice(fewest)
