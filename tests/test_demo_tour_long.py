"""The guided demo's long scenarios (tests/support/tour.py): slippage, rejections and the
intent backlog, whose alerts ride 15-minute windows and long `for`s, walked on a demo stack of
their own while tests/test_demo_tour.py walks the ten others."""

from __future__ import annotations

import pytest

from tests.support.tour import LONG, demo_stack, walk

pytestmark = pytest.mark.e2e  # the whole native stack on loopback


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from demo_stack(tmp_path_factory.mktemp("tour"))


def test_the_guided_demo_shows_the_long_scenarios_alerts(stack):
    walk(stack, LONG)
