"""A channel is named the same way by export, status, history and the client."""

from __future__ import annotations

import pytest

from daq.logger.cli import _export_parser
from daq.names import join_relative_times, stream_name, topic_prefix


def test_the_data_kind_is_optional_everywhere() -> None:
    assert stream_name("fridge1/t4k") == stream_name("data/fridge1/t4k") == "data/fridge1/t4k"
    assert stream_name("wave/tes1/squid_out") == "wave/tes1/squid_out"
    with pytest.raises(ValueError, match="source/channel"):
        stream_name("t4k")
    with pytest.raises(ValueError):
        stream_name("bogus/fridge1/t4k")
    assert topic_prefix("fridge1/") == "data/fridge1/"
    assert topic_prefix("fridge1/t4k") == "data/fridge1/t4k"
    assert topic_prefix("status/fridge1") == "status/fridge1"
    assert topic_prefix("") == ""


def test_a_relative_time_after_from_is_a_value_not_an_option() -> None:
    argv = join_relative_times(["lab.yaml", "fridge1/t4k", "--from", "-2h", "-o", "out.csv"])
    args = _export_parser().parse_args(argv)
    assert args.t0 == "-2h" and args.stream == "fridge1/t4k" and str(args.out) == "out.csv"
    assert join_relative_times(["--to", "now"]) == ["--to", "now"]
