"""The team store (DuckLake on PostgreSQL): the store behaviour of the file store, many processes
at once, and Parquet files that other engines read.  Needs the team extra and a PostgreSQL server
(tests/postgres.py starts one); ``any_store`` runs a test on a DuckDB file and a team store."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner
from helpers import DATA, ROOT, StoredRuns, table_counts

import perfstats
from perfstats.cli import cli
from perfstats.errors import IngestError, StoreError
from perfstats.store import RUN_TABLES, STORE_SCHEMA_VERSION, open_store
from perfstats.store.team import TeamStore, parse_url

K6 = DATA / "k6"


def _cli(*args: str, db: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--db", db], catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    return result.stdout


def _same(a: object, b: object) -> bool:
    """Equal JSON values, numbers up to rounding (a parallel sum may add in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9)
    return a == b


def test_store_url_names_the_catalog_and_the_data_path() -> None:
    assert parse_url("ducklake:postgres:dbname=p host=db user=ci data_path=/lake/") == (
        "dbname=p host=db user=ci", "/lake/")
    assert parse_url("ducklake:postgres:host=db dbname=p") == ("host=db dbname=p", None)
    with pytest.raises(StoreError, match="no PostgreSQL connection string"):
        parse_url("ducklake:postgres: data_path=/lake/")


def test_a_password_never_reaches_a_message() -> None:
    store = open_store("ducklake:postgres:host=db password=s3cret dbname=p")
    assert isinstance(store, TeamStore)
    assert "s3cret" not in store.path and "password=***" in store.path


def test_without_the_extensions_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # In an install without the team extra the packages are missing; with it, pretend another
    # DuckDB runs: either way one line that names the extra, exit code 2.
    monkeypatch.setattr(duckdb, "__version__", "9.9.9")
    result = CliRunner().invoke(cli, ["runs", "--db", "ducklake:postgres:dbname=x host=h"])
    assert result.exit_code == 2
    message = result.output.strip()
    assert "\n" not in message and "pip install 'perfstats[team]'" in message


def test_ingest_lists_and_refuses_duplicates_the_same(any_store: str) -> None:
    base = perfstats.ingest(K6 / "baseline", db=any_store, labels={"branch": "main"})
    again = perfstats.ingest(K6 / "baseline", db=any_store, labels={"commit": "abc"})
    assert again.existed and again.run_id == base.run_id
    runs = perfstats.runs(db=any_store)
    assert runs.height == 1
    labels = open_store(any_store).run_meta(base.run_id)["labels"]
    assert labels == {"branch": "main", "commit": "abc"}


def test_bad_input_leaves_either_store_as_it_was(any_store: str, tmp_path: Path) -> None:
    perfstats.ingest(K6 / "smoke", db=any_store)
    before = table_counts(open_store(any_store))
    lines = (K6 / "smoke" / "points.json").read_text().splitlines()
    bad = tmp_path / "cut.json"
    bad.write_text("\n".join(lines[:500]) + '\n{"type":"Point","metric":"http_req_dura\n')
    with pytest.raises(IngestError, match="cut.json"):
        perfstats.ingest(bad, db=any_store)
    assert table_counts(open_store(any_store)) == before


def test_every_command_answers_the_same_on_both_stores(team_url: str, tmp_path: Path) -> None:
    file_db = str(tmp_path / "file.duckdb")
    outputs = {}
    for db in (file_db, team_url):
        ids = _cli("ingest", str(K6 / "baseline"), str(K6 / "candidate"), "--label",
                   "branch=main", db=db).split()
        base, cand = ids
        export = tmp_path / f"export-{len(outputs)}"
        _cli("export", "--parquet", str(export), db=db)
        outputs[db] = {
            "summary": json.loads(_cli("summary", cand, "--format", "json", db=db)),
            "compare": json.loads(_cli("compare", base, cand, "--format", "json", db=db)),
            "auto": json.loads(_cli("compare", "--baseline", "auto", "--label", "branch=main",
                                    cand, "--format", "json", db=db)),
            "auto by path": json.loads(_cli("compare", "--baseline", "auto", "--label",
                                            "branch=main", str(K6 / "candidate"), "--format",
                                            "json", db=db)),
            "history": json.loads(_cli("history", "--format", "json", db=db)),
            "points": pl.read_parquet(export / "points" / "**" / "*.parquet",
                                      hive_partitioning=True).sort(pl.all()),
        }
    file_side, team_side = outputs[file_db], outputs[team_url]
    for key in ("summary", "history", "compare", "auto", "auto by path"):
        assert _same(team_side[key], file_side[key]), key
    assert _same(team_side["auto by path"], team_side["auto"])
    assert team_side["compare"]["verdict"] == "NO-GO"
    assert team_side["points"].equals(file_side["points"])


def test_other_engines_read_the_points_from_the_parquet_files(team_url: str) -> None:
    run = perfstats.ingest(K6 / "baseline", db=team_url)
    perfstats.ingest(K6 / "smoke", db=team_url)
    data_path = parse_url(team_url)[1]
    # polars alone, no perfstats and no DuckDB: the Parquet files under the data path.
    points = pl.read_parquet(Path(data_path) / "main" / "points" / "*.parquet").filter(
        pl.col("run_id") == run.run_id)
    expected = run.store.query("SELECT metric, ts, value, tag_set, vu, iter FROM points "
                               "WHERE run_id = ?", [run.run_id])
    expected = expected.with_columns(pl.col("ts").dt.convert_time_zone("UTC"))
    assert points.height == expected.height > 10_000
    order = ["metric", "ts", "value", "tag_set", "vu", "iter"]
    assert points.select(expected.columns).sort(order).equals(expected.sort(order))


WORKER = """
import sys, perfstats
from perfstats.errors import PerfstatsError
db, role, *paths = sys.argv[1:]
if role == "ingest":
    for path in paths:
        print(perfstats.ingest(path, db=db).run_id, flush=True)
else:
    # Read while the others write: history and compares of whatever is stored so far.
    done = 0
    while done < 6:
        runs = perfstats.runs(db=db)
        if runs.height >= 2:
            perfstats.history(db=db)
            ids = list(runs["run_id"])
            perfstats.compare(ids[0], ids[-1], db=db)
            done += 1
    print("read", done, flush=True)
"""


@pytest.mark.slow
def test_four_writers_and_two_readers_at_once_lose_nothing(team_url: str,
                                                           tmp_path: Path) -> None:
    files = [K6 / "baseline", K6 / "candidate", K6 / "ramp", K6 / "smoke"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Each writer ingests all four runs in its own order: every run is ingested four times at once.
    orders = [files, files[::-1], files[1:] + files[:1], files[2:] + files[:2]]
    writers = [subprocess.Popen([sys.executable, "-c", WORKER, team_url, "ingest",
                                 *map(str, order)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for order in orders]
    readers = [subprocess.Popen([sys.executable, "-c", WORKER, team_url, "read"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    answers = []
    for proc in writers + readers:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        answers.append(out.split())
    ids = [dict(zip(map(str, order), answer, strict=True))
           for order, answer in zip(orders, answers[:4], strict=True)]
    assert all(mapping == ids[0] for mapping in ids)
    assert answers[4] == answers[5] == ["read", "6"]
    # The same rows as one process ingesting the four runs into a file store.
    file_db = tmp_path / "one.duckdb"
    for path in files:
        perfstats.ingest(path, db=file_db)
    assert table_counts(open_store(team_url)) == table_counts(open_store(file_db))
    assert sorted(perfstats.runs(db=team_url)["run_id"]) == sorted(ids[0].values())


def test_gzip_points_reach_the_lake_whole(team_url: str) -> None:
    # A .gz NDJSON output: the number of Point lines is the number of stored points.
    with gzip.open(K6 / "candidate" / "points.json.gz", "rt") as fh:
        lines = sum('"type":"Point"' in line for line in fh)
    run = perfstats.ingest(K6 / "candidate" / "points.json.gz", db=team_url)
    stored = run.store.query("SELECT count(*) AS n FROM points WHERE run_id = ?", [run.run_id])
    assert stored["n"][0] == lines


@pytest.mark.slow
def test_a_report_reads_its_runs_from_the_team_store(team_url: str, tmp_path: Path) -> None:
    base = perfstats.ingest(K6 / "baseline", db=team_url)
    cand = perfstats.ingest(K6 / "candidate", db=team_url)
    output = tmp_path / "compare.md"
    _cli("report", "compare", "--run", cand.run_id, "--baseline", base.run_id, "-o", str(output),
         db=team_url)
    text = output.read_text()
    assert cand.run_id in text and "NO-GO" in text


def test_delete_removes_a_run_whole_on_either_store(any_store: str, tmp_path: Path,
                                                    stored_runs: StoredRuns) -> None:
    keep = perfstats.ingest(K6 / "smoke", db=any_store)
    gone = perfstats.ingest(K6 / "baseline", db=any_store)
    removed = perfstats.delete([gone.run_id], db=any_store)
    assert list(removed["run_id"]) == [gone.run_id]
    only = tmp_path / "only.duckdb"
    stored_runs.copy(only, "k6/smoke")  # a file store of that run alone (copied)
    assert table_counts(open_store(any_store)) == table_counts(open_store(only))
    assert list(perfstats.runs(db=any_store)["run_id"]) == [keep.run_id]
    # Its content may come back: not taken for a duplicate of the deleted run.
    again = perfstats.ingest(K6 / "baseline", db=any_store)
    assert not again.existed and again.run_id == gone.run_id


def test_a_version_1_team_store_is_migrated_and_keeps_its_runs(team_url: str) -> None:
    """A team store of schema 1 (no scenarios table, run tables partitioned by run_id) is
    migrated by the next process that opens it: its runs stay, new runs gain scenarios."""
    old = perfstats.ingest(K6 / "smoke", db=team_url)
    with open_store(team_url).connect(write=True) as con:
        con.execute("BEGIN")
        for table in RUN_TABLES:  # schema 1 partitioned its run tables, then wrote their files
            con.execute(f"ALTER TABLE {table} SET PARTITIONED BY (run_id)")
        con.execute("COMMIT")
    partitioned = perfstats.ingest(K6 / "baseline", db=team_url)
    with open_store(team_url).connect(write=True) as con:
        con.execute("BEGIN")
        con.execute("DROP TABLE scenarios")
        con.execute("UPDATE perfstats_meta SET value = '1' WHERE key = 'schema_version'")
        con.execute("COMMIT")
    store = open_store(team_url)
    before = {t: int(store.query(f"SELECT count(*) AS n FROM {t}")["n"][0])
              for t in ["runs", *RUN_TABLES] if t != "scenarios"}
    lake = Path(parse_url(team_url)[1])
    assert list(lake.glob(f"main/points/run_id={partitioned.run_id}/*.parquet"))

    # A new process (the attach migrates) lists the old runs and ingests a new one.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    migrate = subprocess.run([sys.executable, "-m", "perfstats", "ingest", str(K6 / "candidate"),
                              "--db", team_url], env=env, capture_output=True, text=True)
    assert migrate.returncode == 0, migrate.stderr
    new = migrate.stdout.strip()
    listed = subprocess.run([sys.executable, "-m", "perfstats", "runs", "--format", "json",
                             "--db", team_url], env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert {r["run_id"] for r in json.loads(listed.stdout)} == {old.run_id, partitioned.run_id,
                                                                 new}
    assert store.query("SELECT value FROM perfstats_meta WHERE key = 'schema_version'")[
        "value"].to_list() == [str(STORE_SCHEMA_VERSION)]
    # Every row of the old runs is still there, and nothing else but the new run's rows.
    kept = {t: int(store.query(f"SELECT count(*) AS n FROM {t} WHERE run_id <> ?", [new])["n"][0])
            for t in before}
    assert kept == before
    assert perfstats.load(old.run_id, db=team_url).scenarios().is_empty()
    assert not perfstats.load(new, db=team_url).scenarios().is_empty()
    # The old runs read as before; the new run's files are not partitioned (as in a new store).
    assert perfstats.load(partitioned.run_id, db=team_url).summary().height > 0
    assert not list(lake.glob(f"main/points/run_id={new}"))
    assert list(lake.glob("main/points/*.parquet"))
    # A store written by a newer perfstats is refused, and left as it is.
    with store.connect(write=True) as con:
        con.execute("UPDATE perfstats_meta SET value = ? WHERE key = 'schema_version'",
                    [str(STORE_SCHEMA_VERSION + 1)])
    refused = subprocess.run([sys.executable, "-m", "perfstats", "runs", "--db", team_url],
                             env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "newer perfstats" in refused.stderr
