"""The gate on every real pair of data/: NO-GO on the injected changes only, GO on A/A pairs.

Ground truth: data/README.md and the shared manifest. The k6, Artillery and Locust pairs inject
POST /api/quote latency +30 % and POST /api/bookings errors 1 % -> 4 %; the harness pairs quote
+25 % and bookings 1 % -> 3 %; k6/aa-rerun is an A/A pair (the server's seed alone differs).
"""

from __future__ import annotations

import polars as pl
import pytest
from helpers import DATA

from perfstats.comparison.gate import Comparison, compare
from perfstats.config import compare_config

LATENCY = ("p50", "p95", "p99", "mean")
QUOTE = ("POST /api/quote", "/api/quote", "quote_duration", "login_duration", "checkout_duration")
BOOKINGS = ("POST /api/bookings", "/api/bookings")
INJECTED_PAIRS = ("k6", "artillery", "locust", "k6-harness", "artillery-harness",
                  "locust-distributed")
AA = DATA / "k6/aa-rerun"


def _regressions(result: Comparison) -> set[tuple[str, str]]:
    rows = result.checks.filter(pl.col("status") == "regression")
    return set(zip(rows["endpoint"], rows["metric"], strict=True))


def _allowed(name: str, metric: str) -> bool:
    """A regression the ground truth explains: quote latency (and the custom Trends that time
    the quote, e.g. the checkout flow), bookings errors, and the whole run that contains them."""
    if metric == "error_rate":
        return name in BOOKINGS or name == "ALL"
    return name in QUOTE or name == "ALL" or name.startswith("http_req_duration")


@pytest.mark.slow
@pytest.mark.parametrize("pair", INJECTED_PAIRS)
def test_injected_pairs_regress_on_the_injected_changes_only(pair):
    result = compare(DATA / pair / "baseline", DATA / pair / "candidate", config=compare_config())
    flagged = _regressions(result)
    assert all(_allowed(e, m) for e, m in flagged), flagged
    # Whatever regresses, no check whose interval lies wholly beyond its tolerance reads ok.
    beyond = result.checks.filter((pl.col("status") == "ok") & pl.col("ci_low").is_not_null()
                                  & (pl.col("ci_unit") == "%") & (pl.col("tolerance") > 0)
                                  & (pl.col("ci_low") > pl.col("tolerance")))
    assert beyond.is_empty(), beyond


@pytest.mark.parametrize("files", [None, "handle-summary.json", "summary-export.json"])
def test_an_a_a_pair_is_go_at_every_grain(files):
    first, second = AA / "first", AA / "second"
    if files:
        first, second = first / files, second / files
    result = compare(first, second, config=compare_config())
    assert result.verdict == "GO", result.failing
    assert not _regressions(result)


@pytest.mark.parametrize(("pair", "files"), [
    ("k6", "summary.json"), ("k6", "summary-export.json"),
    ("k6-harness", "handle-summary.json"), ("k6-harness", "summary-export.json")])
def test_summary_only_inputs_give_no_false_no_go(pair, files):
    result = compare(DATA / pair / "baseline" / files, DATA / pair / "candidate" / files,
                     config=compare_config())
    assert "summary" in set(result.checks["method"])
    assert all(_allowed(e, m) for e, m in _regressions(result)), _regressions(result)
