"""The load model of each k6 scenario: closed (VU executors) or open (arrival-rate executors).

k6 writes the executor into no output file but the summary's ``options.scenarios`` when a
script's ``handleSummary`` passes them on.  Without it the model is inferred from the
iteration points: a VU executor starts a VU's next iteration the moment its previous one ends,
so nearly every iteration starts within :data:`CHAINED_US` of another iteration of the same
scenario ending; an arrival-rate executor starts iterations on its own schedule, so only a few
do, by chance.  The first iteration of each VU has no predecessor: the starts that can be
chained are the iterations minus the scenario's peak number of iterations in flight.  A CSV has
whole-second timestamps, too coarse for this: its scenarios stay unknown.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from perfstats.readers.writer import RunWriter

CHAINED_US = 2000
"""An iteration that starts at most this long after another ended is chained to it."""

CLOSED_SHARE = 0.5
"""At or above this share of chained starts a scenario is closed, below it open."""

CLOSED_EXECUTORS = ("shared-iterations", "per-vu-iterations", "constant-vus", "ramping-vus",
                    "externally-controlled")
OPEN_EXECUTORS = ("constant-arrival-rate", "ramping-arrival-rate")

_SCHEMA = {"scenario": pl.Utf8, "executor": pl.Utf8, "load_model": pl.Utf8, "basis": pl.Utf8,
           "iterations": pl.Int64, "requests": pl.Int64}


def scenario_models(writer: RunWriter, declared: dict[str, Any] | None) -> pl.DataFrame:
    """One row per scenario of the run's points: scenario, executor, load_model, basis,
    iterations, requests.  ``declared`` is the summary's ``options.scenarios`` (or None)."""
    result = writer.con.sql(
        """
        WITH it AS (
            SELECT t.scenario, epoch_us(p.ts) AS e,
                   epoch_us(p.ts) - CAST(p.value * 1000 AS BIGINT) AS s
            FROM points p JOIN tag_sets t USING (run_id, tag_set)
            WHERE p.run_id = $run AND p.metric = 'iteration_duration' AND t.scenario IS NOT NULL
        ), events AS (
            -- Starts and ends in time order (an end before a start at the same instant): the
            -- running sum is the iterations in flight, the running max of the ends the last
            -- end before each start (a window: an ASOF join cost 0.6 CPU-s per 200 MB here).
            SELECT scenario, step, t_us,
                   t_us - max(CASE WHEN step = -1 THEN t_us END) OVER w AS gap,
                   sum(step) OVER w AS running
            FROM (SELECT scenario, s AS t_us, 1 AS step FROM it
                  UNION ALL SELECT scenario, e AS t_us, -1 AS step FROM it)
            WINDOW w AS (PARTITION BY scenario ORDER BY t_us, step ROWS UNBOUNDED PRECEDING)
        ), chained AS (
            -- The ends (step -1) are the iterations' end times: whole seconds in a CSV.
            SELECT scenario, count(*) FILTER (WHERE step = 1) AS iterations,
                   count(*) FILTER (WHERE step = 1 AND gap <= $gap) AS chained,
                   max(running) AS peak,
                   bool_and(t_us % 1000000 = 0) FILTER (WHERE step = -1) AS whole_seconds
            FROM events GROUP BY scenario
        ), requests AS (
            SELECT t.scenario, count(*) AS requests
            FROM points p JOIN tag_sets t USING (run_id, tag_set)
            WHERE p.run_id = $run AND p.metric = 'http_reqs' GROUP BY ALL
        )
        SELECT scenario, iterations, chained, whole_seconds, peak,
               coalesce(requests, 0) AS requests
        FROM chained LEFT JOIN requests USING (scenario)
        ORDER BY scenario
        """,
        params={"run": writer.run_id, "gap": CHAINED_US},
    )
    # A few rows: as tuples (a polars frame of them cost more than the query's last step).
    declared = declared or {}
    out = []
    for row in (dict(zip(result.columns, values, strict=True))
                for values in result.fetchall()):
        executor = (declared.get(row["scenario"]) or {}).get("executor")
        if executor in CLOSED_EXECUTORS + OPEN_EXECUTORS:
            model = "closed" if executor in CLOSED_EXECUTORS else "open"
            basis = "summary options"
        else:
            executor = None
            model, basis = _inferred(row)
        out.append({"scenario": row["scenario"], "executor": executor, "load_model": model,
                    "basis": basis, "iterations": row["iterations"],
                    "requests": row["requests"]})
    return pl.DataFrame(out, schema=_SCHEMA)


def _inferred(row: dict[str, Any]) -> tuple[str | None, str]:
    if row["whole_seconds"]:
        return None, "unknown: whole-second timestamps (k6 CSV) cannot show how iterations chain"
    possible = row["iterations"] - row["peak"]
    if possible < 5:
        return None, (f"unknown: {row['iterations']} iterations with up to {row['peak']} in "
                      "flight are too few to tell")
    share = min(row["chained"] / possible, 1.0)
    model = "closed" if share >= CLOSED_SHARE else "open"
    return model, (f"inferred: {share:.0%} of the iterations that could follow another started "
                   "as one ended")


def run_model(scenarios: pl.DataFrame) -> str | None:
    """The run's load model from its scenarios': one model, ``mixed``, or None (unknown)."""
    models = set(scenarios["load_model"].drop_nulls())
    if not models:
        return None
    if scenarios["load_model"].null_count():
        return None
    return models.pop() if len(models) == 1 else "mixed"
