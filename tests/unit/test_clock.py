"""clock.iso builds the ISO string from cached pieces; it must be exactly what datetime gives."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from chatkeep import clock


def datetime_iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


EDGES = [0, 0.0, 0.0005, 0.0000005, 0.0000015, 0.9999995, 0.9995, 59.9999996, 86399.9999995, -0.5, -1.0000004,
         -86400.25, 951782400, 1763780000, 1763780000.9999995, 4102444799.9996]


@pytest.mark.parametrize("epoch", EDGES)
def test_given_edge_epochs_when_formatted_then_iso_equals_datetime(epoch: float) -> None:
    assert clock.iso(epoch) == datetime_iso(epoch)


def test_given_random_epochs_when_formatted_then_iso_equals_datetime() -> None:
    rng = random.Random(20261122)
    for _ in range(100_000):
        # whole seconds (expiries), now-like stamps with awkward fractions, and anything from 1938 to 2103
        for epoch in (rng.randint(0, 4_200_000_000),
                      rng.randint(1_700_000_000, 1_800_000_000) + rng.choice([0.0005, 0.9995, 0.4999995, 0.123456]),
                      rng.uniform(-1e9, 4.2e9)):
            assert clock.iso(epoch) == datetime_iso(epoch), epoch
