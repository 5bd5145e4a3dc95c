"""The checks of readers/validate.py, one by one: each unusable value in each table is refused
with its message (the quick screen that runs first lets none through), and the values the
checks accept are accepted (a screen that flags a row for nothing leaves the run valid)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from perfstats.errors import IngestError
from perfstats.readers.validate import validate_run
from perfstats.readers.writer import RunInfo
from perfstats.store import Store

RUN = "r1"
WHEN = datetime(2026, 11, 22, 1, 42, tzinfo=timezone.utc)
_STATS = {"count": 10, "failures": 1, "min": 1.0, "mean": 2.0, "p50": 2.0, "p90": 3.0,
          "p95": 3.5, "p99": 4.0, "max": 5.0}
GOOD = {
    "points": {"metric": "http_req_duration", "ts": WHEN, "value": 12.5},
    "summaries": {"endpoint": "ALL", **_STATS, "rps": 2.0, "percentiles": "exact"},
    "windows": {"endpoint": "ALL", "start": WHEN, "length_s": 1.0, **_STATS},
    "histograms": {"endpoint": "ALL", "bucket_ms": 12.0, "count": 3},
    "errors": {"endpoint": "GET /", "kind": "http_status", "error": "500", "count": 2},
}


def _validate(table: str, row: dict[str, object]) -> None:
    store = Store(":memory:")
    with store.connect(write=True) as con:
        con.execute("INSERT INTO metrics VALUES (?, 'my_time', 'trend', 'time', NULL, NULL)",
                    [RUN])
        for name, good in GOOD.items():
            values = {**good, **row} if name == table else good
            columns = ", ".join(["run_id", *values])
            marks = ", ".join("?" * (len(values) + 1))
            con.execute(f"INSERT INTO {name} ({columns}) VALUES ({marks})",
                        [RUN, *values.values()])
        validate_run(con, RUN, RunInfo(tool="k6", format="k6-ndjson"), "the-file")


NAN, INF = float("nan"), float("inf")
REFUSED = [
    ("points", {"value": NAN}, "metric http_req_duration at"),
    ("points", {"value": INF}, "is not a finite number (NaN or an infinity)"),
    ("points", {"value": -INF}, "is not a finite number"),
    ("points", {"value": -1.0}, "negative duration -1.0 ms"),
    ("points", {"metric": "my_time", "value": -2.0}, "metric my_time at"),
    ("points", {"ts": datetime(1970, 1, 1, tzinfo=timezone.utc)}, "not a plausible time"),
    ("points", {"ts": datetime(9999, 1, 1, tzinfo=timezone.utc)}, "not a plausible time"),
    *[("summaries", {column: value}, f"summaries: endpoint ALL: {column} {shown} is not a "
                                     "finite non-negative number")
      for column in ("min", "mean", "p50", "p90", "p95", "p99", "max", "rps")
      for value, shown in ((NAN, "nan"), (INF, "inf"), (-3.0, "-3.0"))],
    ("summaries", {"count": -5}, "summaries: endpoint ALL: negative count -5"),
    ("summaries", {"failures": -1}, "summaries: endpoint ALL: negative failures -1"),
    *[("windows", {column: value}, f"windows: endpoint ALL: {column}")
      for column in ("min", "mean", "p50", "p90", "p95", "p99", "max")
      for value in (NAN, -INF, -0.5)],
    ("windows", {"count": -5}, "windows: endpoint ALL: negative count -5"),
    ("windows", {"start": datetime(1999, 12, 31, tzinfo=timezone.utc)}, "window start"),
    ("histograms", {"bucket_ms": NAN}, "latency bucket nan ms is not a finite"),
    ("histograms", {"bucket_ms": INF}, "latency bucket inf ms"),
    ("histograms", {"bucket_ms": -1.0}, "latency bucket -1.0 ms"),
    ("histograms", {"count": -2}, "histograms: endpoint ALL: negative count -2"),
    ("errors", {"count": -2}, "errors: GET / 500: negative count -2"),
]


@pytest.mark.parametrize(("table", "row", "message"), REFUSED)
def test_each_unusable_value_is_refused(table: str, row: dict[str, object],
                                        message: str) -> None:
    with pytest.raises(IngestError, match="the-file") as refused:
        _validate(table, row)
    assert message in str(refused.value)


@pytest.mark.parametrize(("table", "row"), [
    ("points", {}),
    ("points", {"metric": "vus", "value": -1.0}),  # a negative gauge: not a duration
    ("points", {"value": None}),
    ("summaries", {"rps": None, "p99": None}),
    ("windows", {"min": 0.0, "max": 1e308}),
])
def test_usable_values_are_accepted(table: str, row: dict[str, object]) -> None:
    _validate(table, row)
