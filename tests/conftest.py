"""Project-wide pytest set-up: Qt runs offscreen, hardware tests are opt-in."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device-address",
        action="store",
        default=None,
        help="VISA resource of a real instrument; enables tests marked 'hardware'",
    )


SOAK_TEST = "test_soak_at_ten_times_the_poll_rates_with_a_logger_outage"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The soak runs beside the suite from its first test (see the `soak` fixture).
    soaking = any(item.name == SOAK_TEST for item in items)
    for item in items[:1] if soaking else []:
        item.fixturenames.append("soak")
    if config.getoption("--device-address"):
        return
    skip = pytest.mark.skip(reason="needs --device-address (real hardware)")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def soak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The soak of ``tests/test_soak.py``, started once, with the session's first test."""
    from tests.test_soak import Soak

    runner = Soak(tmp_path_factory.mktemp("soak"))
    runner.start()
    yield runner
    runner.halt.set()  # a session cut short still stops the soak's processes
    runner.join(120)


@pytest.fixture
def device_address(request: pytest.FixtureRequest) -> str:
    """The VISA resource given with --device-address (hardware tests only)."""
    address = request.config.getoption("--device-address")
    assert address, "hardware tests run only with --device-address"
    return str(address)
