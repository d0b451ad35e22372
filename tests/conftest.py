"""Project-wide pytest set-up: Qt runs offscreen, hardware tests are opt-in."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device-address",
        action="store",
        default=None,
        help="VISA resource of a real instrument; enables tests marked 'hardware'",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--device-address"):
        return
    skip = pytest.mark.skip(reason="needs --device-address (real hardware)")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def device_address(request: pytest.FixtureRequest) -> str:
    """The VISA resource given with --device-address (hardware tests only)."""
    address = request.config.getoption("--device-address")
    assert address, "hardware tests run only with --device-address"
    return str(address)
