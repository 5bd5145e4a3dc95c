"""Every class of bad input perfstats is meant to refuse, tried against a store holding one run.

Each class is a copy of a bundled sample run (data/) changed by hand as a new user might, or a
file of the wrong kind.  A class is *held* when ``perfstats`` exits with the expected code (2 for
bad input), prints exactly one line on stderr naming the file and the reason, shows no traceback,
and leaves every table of the store exactly as it was (row counts and a hash of every row).  A
few classes must be *accepted* instead (a Locust CSV with its columns in another order, a
re-gzipped copy of a stored run): held means exit 0 and, for the copy, the store unchanged.

Prints one line per class and the figure ``bad-input classes tried and held: N of M``.
tests/test_bad_inputs.py runs the same classes.

Usage::

    python benchmarks/bad_inputs.py
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
import struct
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from click.testing import CliRunner  # noqa: E402

from perfstats.cli import cli  # noqa: E402
from perfstats.store import RUN_TABLES, Store  # noqa: E402

DATA = HERE.parent / "data"
K6_POINTS = DATA / "k6/smoke/points.json"
ARTILLERY = DATA / "artillery/baseline/report.json"
LOCUST = DATA / "locust/baseline"
FIRST_DURATION = '"value":67.298527'
FIRST_TIME = '"time":"2026-11-22T01:42:00.448002208Z"'


@dataclass(frozen=True)
class Case:
    """One class of input: how to make it, the exit code expected and a fragment of the reason."""

    name: str
    make: Callable[[Path], list[str]]
    """Writes the input into a folder; returns the command's arguments after ``perfstats``."""
    exit_code: int = 2
    reason: str = ""


def _k6_point(old: str, new: str) -> Callable[[Path], list[str]]:
    """The smoke run's NDJSON with its first http_req_duration Point changed."""
    def make(folder: Path) -> list[str]:
        lines = K6_POINTS.read_text().splitlines()
        at = next(i for i, line in enumerate(lines)
                  if '"Point"' in line and "http_req_duration" in line and old in line)
        lines[at] = lines[at].replace(old, new, 1)
        path = folder / "points.json"
        path.write_text("\n".join(lines) + "\n")
        return ["ingest", str(path)]
    return make


def _k6_csv(column: str, value: str) -> Callable[[Path], list[str]]:
    """The smoke run's k6 CSV with one http_req_duration row's ``column`` set to ``value``."""
    def make(folder: Path) -> list[str]:
        rows = list(csv.reader(io.StringIO(gzip.decompress(
            (DATA / "k6/smoke/points.csv.gz").read_bytes()).decode())))
        index = rows[0].index(column)
        at = next(i for i, row in enumerate(rows) if row[0] == "http_req_duration")
        rows[at][index] = value
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        path = folder / "points.csv"
        path.write_text(out.getvalue())
        return ["ingest", str(path)]
    return make


def _artillery(change: Callable[[dict], None], *, raw: bool = False) -> Callable[[Path], list[str]]:
    def make(folder: Path) -> list[str]:
        doc = json.loads(ARTILLERY.read_text())
        change(doc)
        path = folder / "report.json"
        path.write_text(json.dumps(doc, allow_nan=raw))
        return ["ingest", str(path)]
    return make


def _response_time(key: str, value: object) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        doc["aggregate"]["summaries"]["http.response_time"][key] = value
    return change


def _locust_stats(change: Callable[[list[list[str]]], list[list[str]]]
                  ) -> Callable[[Path], list[str]]:
    """The Locust baseline's _stats.csv alone, changed."""
    def make(folder: Path) -> list[str]:
        rows = list(csv.reader(io.StringIO((LOCUST / "locust_stats.csv").read_text())))
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(change(rows))
        path = folder / "run_stats.csv"
        path.write_text(out.getvalue())
        return ["ingest", str(path)]
    return make


def _drop_column(name: str) -> Callable[[list[list[str]]], list[list[str]]]:
    def change(rows: list[list[str]]) -> list[list[str]]:
        index = rows[0].index(name)
        return [row[:index] + row[index + 1:] for row in rows]
    return change


def _set_cell(column: str, value: str) -> Callable[[list[list[str]]], list[list[str]]]:
    def change(rows: list[list[str]]) -> list[list[str]]:
        rows[1][rows[0].index(column)] = value
        return rows
    return change


def _reversed_columns(rows: list[list[str]]) -> list[list[str]]:
    return [row[::-1] for row in rows]


def _write(name: str, data: bytes | str) -> Callable[[Path], list[str]]:
    def make(folder: Path) -> list[str]:
        path = folder / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        return ["ingest", str(path)]
    return make


def _gzip_damaged(kind: str) -> Callable[[Path], list[str]]:
    """The smoke NDJSON gzipped without compression, then a digit or the length changed."""
    def make(folder: Path) -> list[str]:
        data = K6_POINTS.read_bytes()
        packed = bytearray(gzip.compress(data, compresslevel=0))
        if kind == "crc":
            at = packed.index(FIRST_DURATION.encode())
            packed[at + 8] = ord("9")
        elif kind == "length":
            packed[-4:] = struct.pack("<I", len(data) + 1)
        else:  # cut
            packed = packed[: len(packed) * 2 // 3]
        path = folder / "points.json.gz"
        path.write_bytes(bytes(packed))
        return ["ingest", str(path)]
    return make


def _regzipped(folder: Path) -> list[str]:
    path = folder / "renamed-copy.ndjson.gz"
    path.write_bytes(gzip.compress(K6_POINTS.read_bytes(), compresslevel=9))
    return ["ingest", str(path)]


def _deep(folder: Path) -> list[str]:
    doc = '{"aggregate": {"counters": {}, "x": ' + "[" * 100_000 + "]" * 100_000 + \
        '}, "intermediate": []}'
    path = folder / "deep.json"
    path.write_text(doc)
    return ["ingest", str(path)]


def _truncated_json(folder: Path) -> list[str]:
    path = folder / "report.json"
    path.write_text(ARTILLERY.read_text()[:5000])
    return ["ingest", str(path)]


SEEDED: dict[str, str] = {}
"""Run ids of the seeded store: ``k6`` (the smoke run) and ``artillery`` (its baseline)."""


def _nothing_in_common(folder: Path) -> list[str]:
    # Artillery names endpoints without their method: no endpoint in common with k6's
    return ["compare", SEEDED["artillery"], SEEDED["k6"]]


def _all_filtered_out(folder: Path) -> list[str]:
    return ["compare", SEEDED["k6"], SEEDED["k6"], "--endpoint", "NOPE *"]


CASES = [
    # files of the wrong kind
    Case("empty file", _write("empty.json", b""), reason="empty file"),
    Case("blank lines", _write("blank.csv", "\n\n  \n"), reason="empty file"),
    Case("binary", _write("garbage.bin", bytes(range(256)) * 10), reason="not a k6"),
    Case("text of another kind", _write("notes.txt", "not a load test result\n"),
         reason="not a k6"),
    Case("JSON of another tool", _write("package.json", '{"name": "x", "version": "1"}'),
         reason="not a k6"),
    Case("truncated JSON", _truncated_json, reason="truncated"),
    Case("deep JSON nesting", _deep, reason="nested too deeply"),
    Case("no such file", lambda folder: ["ingest", str(folder / "nope.json")],
         reason="no such file"),
    # gzip integrity
    Case("gzip with a bad CRC", _gzip_damaged("crc"), reason="CRC"),
    Case("gzip with a wrong length", _gzip_damaged("length"), reason="length"),
    Case("cut gzip", _gzip_damaged("cut"), reason="gzip"),
    # k6 values
    Case("k6 NaN value", _k6_point(FIRST_DURATION, '"value":NaN'), reason="not a number"),
    Case("k6 Infinity value", _k6_point(FIRST_DURATION, '"value":Infinity'),
         reason="not a number"),
    Case("k6 1e400 value", _k6_point(FIRST_DURATION, '"value":1e400'),
         reason="not a finite number"),
    Case("k6 negative duration", _k6_point(FIRST_DURATION, '"value":-500'),
         reason="negative duration"),
    Case("k6 text value", _k6_point(FIRST_DURATION, '"value":"67"'), reason="not a number"),
    Case("k6 boolean value", _k6_point(FIRST_DURATION, '"value":true'), reason="not a number"),
    Case("k6 year 9999", _k6_point(FIRST_TIME, '"time":"9999-11-22T01:42:00Z"'),
         reason="not a plausible time"),
    Case("k6 year 1970", _k6_point(FIRST_TIME, '"time":"1970-01-01T00:00:00Z"'),
         reason="not a plausible time"),
    Case("k6 slash-formatted time", _k6_point(FIRST_TIME, '"time":"2026/11/22 01:42:00"'),
         reason="RFC 3339"),
    Case("k6 CSV negative duration", _k6_csv("metric_value", "-5"), reason="negative duration"),
    Case("k6 CSV NaN value", _k6_csv("metric_value", "nan"), reason="not a finite number"),
    Case("k6 CSV year 1970", _k6_csv("timestamp", "1"), reason="not a plausible time"),
    # Artillery values
    Case("Artillery p95 as text", _artillery(_response_time("p95", "fast")),
         reason="not a number"),
    Case("Artillery NaN p99", _artillery(_response_time("p99", float("nan")), raw=True),
         reason="not a finite number"),
    Case("Artillery negative min", _artillery(_response_time("min", -3)),
         reason="not a finite non-negative number"),
    Case("Artillery boolean count", _artillery(_response_time("count", True)),
         reason="not a number"),
    # Locust values and columns
    Case("Locust without Failure Count", _locust_stats(_drop_column("Failure Count")),
         reason="Failure Count"),
    Case("Locust negative count", _locust_stats(_set_cell("Request Count", "-5")),
         reason="negative count"),
    Case("Locust negative failures", _locust_stats(_set_cell("Failure Count", "-1")),
         reason="negative failures"),
    Case("Locust negative latency", _locust_stats(_set_cell("Min Response Time", "-7")),
         reason="non-negative"),
    Case("Locust text count", _locust_stats(_set_cell("Request Count", "many")),
         reason=""),
    # nothing to compare
    Case("compare without a common endpoint", _nothing_in_common, reason="share no endpoint"),
    Case("compare with every endpoint filtered out", _all_filtered_out,
         reason="no endpoint left"),
    # accepted, as documented
    Case("Locust columns in another order", _locust_stats(_reversed_columns), exit_code=0),
    Case("re-gzipped renamed copy of a stored run", _regzipped, exit_code=0),
]
"""Every class, in the order printed."""


def store_state(store: Store) -> dict[str, tuple[int, int]]:
    """Every table's row count and the sum of a hash of each row: equal = unchanged."""
    state = {}
    with store.connect() as con:  # one connection: a file store opens the file per query
        for table in ["perfstats_meta", "runs", *RUN_TABLES]:
            rows = con.execute(f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM {table} t")
            n, h = rows.fetchall()[0]
            state[table] = (int(n), int(h))
    return state


def seed(folder: Path) -> Path:
    """A file store holding the k6 smoke run (so that a copy of it is a duplicate) and the
    Artillery baseline; their ids go into :data:`SEEDED`."""
    path = folder / "seed.duckdb"
    for name, source in (("k6", K6_POINTS), ("artillery", ARTILLERY)):
        result = CliRunner().invoke(cli, ["ingest", str(source), "--db", str(path)])
        assert result.exit_code == 0, result.output
        SEEDED[name] = result.stdout.strip()
    return path


def try_case(case: Case, seeded: Path, folder: Path) -> tuple[bool, str]:
    """Run one class against a copy of the seeded store: (held, what happened)."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "store.duckdb"
    shutil.copy(seeded, db)
    store = Store(db)
    before = store_state(store)
    args = case.make(folder)
    result = CliRunner().invoke(cli, [*args, "--db", str(db)])
    lines = result.stderr.splitlines()
    after = store_state(store)
    problems = []
    if result.exit_code != case.exit_code:
        problems.append(f"exit {result.exit_code}, expected {case.exit_code}")
    if "Traceback" in result.output or "Traceback" in result.stderr:
        problems.append("traceback")
    if case.exit_code == 2:
        if len(lines) != 1:
            problems.append(f"{len(lines)} stderr lines")
        elif case.reason not in lines[0]:
            problems.append(f"reason without {case.reason!r}")
        if args[0] == "ingest" and args[1] not in (lines[0] if lines else ""):
            problems.append("the file is not named")
    if before != after and not (case.exit_code == 0 and "order" in case.name):
        problems.append("store changed")
    shown = lines[0] if lines else result.stdout.strip().splitlines()[-1:]
    return not problems, "; ".join(problems) or str(shown)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="perfstats-bad-") as tmp:
        root = Path(tmp)
        seeded = seed(root)
        held = 0
        for number, case in enumerate(CASES):
            ok, what = try_case(case, seeded, root / f"case{number}")
            held += ok
            print(f"{'held  ' if ok else 'FAILED'} {case.name}: {what}")
    print(f"bad-input classes tried and held: {held} of {len(CASES)}")
    return 0 if held == len(CASES) else 1


if __name__ == "__main__":
    sys.exit(main())
