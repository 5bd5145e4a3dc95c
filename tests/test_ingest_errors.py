"""Bad input of every kind: one line naming the file and the reason, exit 2, store unchanged."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import table_counts

import perfstats
from perfstats.cli import cli
from perfstats.errors import IngestError
from perfstats.store import Store


def _truncated_gzip(src: Path, dest: Path) -> Path:
    data = src.read_bytes()
    dest.write_bytes(data[: len(data) // 2])
    return dest


def _bad_inputs(tmp: Path, data: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, expected reason fragment)."""
    (tmp / "empty.json").write_bytes(b"")
    (tmp / "blank.csv").write_text("\n\n  \n")
    (tmp / "garbage.bin").write_bytes(bytes(range(256)) * 10)
    (tmp / "notes.txt").write_text("this is not a load test result\n")
    (tmp / "other.json").write_text(json.dumps({"name": "package.json", "version": "1.0.0"}))
    report = json.loads((data / "artillery/baseline/report.json").read_text())
    (tmp / "truncated.json").write_text(json.dumps(report)[:5000])
    header_only = (data / "locust/baseline/locust_stats.csv").read_text().splitlines()[0]
    (tmp / "header_only_stats.csv").write_text(header_only + "\n")
    machine = {"version": "9.9.9", "metadata": {"k6Version": "9.0.0"}, "config": {}, "results": {}}
    (tmp / "machine.json").write_text(json.dumps(machine))
    _truncated_gzip(data / "k6/smoke/points.csv.gz", tmp / "points.csv.gz")
    with gzip.open(tmp / "truncated_points.json.gz", "wt") as fh:
        fh.write((data / "k6/smoke/points.json").read_text()[:20000] + "\n{\"metric\":\"http_re")
        fh.write("qs\",\"type\":\"Point\",\"data\":{\"time\":\"2026-11-22T01:42:0\n" + "x" * 50)
    return {
        "empty": (tmp / "empty.json", "empty file"),
        "blank": (tmp / "blank.csv", "empty file"),
        "garbage": (tmp / "garbage.bin", "not a k6, Artillery or Locust result"),
        "wrong tool": (tmp / "notes.txt", "not a k6, Artillery or Locust result"),
        "other json": (tmp / "other.json", "not a k6, Artillery or Locust result"),
        "truncated json": (tmp / "truncated.json", "truncated"),
        "header only": (tmp / "header_only_stats.csv", ""),
        "unknown version": (tmp / "machine.json", "version"),
        "truncated gzip": (tmp / "points.csv.gz", ""),
        "truncated ndjson": (tmp / "truncated_points.json.gz", ""),
        "missing": (tmp / "nope.json", "no such file"),
    }


@pytest.fixture
def seeded_store(tmp_path: Path, data_dir: Path) -> Store:
    """A file store that already holds one good run."""
    store = Store(tmp_path / "s.duckdb")
    perfstats.ingest(data_dir / "artillery/baseline/report.json", db=store)
    return store


CASES = ["empty", "blank", "garbage", "wrong tool", "other json", "truncated json", "header only",
         "unknown version", "truncated gzip", "truncated ndjson", "missing"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_leaves_the_store_unchanged(
    case: str, tmp_path: Path, data_dir: Path, seeded_store: Store
) -> None:
    path, reason = _bad_inputs(tmp_path, data_dir)[case]
    before = table_counts(seeded_store)
    with pytest.raises(IngestError) as info:
        perfstats.ingest(path, db=seeded_store)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path)) and reason in message
    assert table_counts(seeded_store) == before


@pytest.mark.parametrize("case", ["garbage", "truncated json", "truncated gzip"])
def test_cli_bad_input_exit_2_one_line_no_traceback(
    case: str, tmp_path: Path, data_dir: Path, seeded_store: Store
) -> None:
    path, _ = _bad_inputs(tmp_path, data_dir)[case]
    before = table_counts(seeded_store)
    result = CliRunner().invoke(cli, ["ingest", str(path), "--db", seeded_store.path])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("perfstats: error: ") and str(path) in lines[0]
    assert "Traceback" not in result.output
    assert table_counts(seeded_store) == before


def test_cli_debug_shows_the_traceback(tmp_path: Path, data_dir: Path) -> None:
    path, _ = _bad_inputs(tmp_path, data_dir)["garbage"]
    result = CliRunner().invoke(cli, ["ingest", str(path), "--db", ":memory:", "--debug"])
    assert result.exit_code == 2
    assert "Traceback" in result.stderr


def test_a_directory_without_results_is_refused(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(IngestError, match="no k6, Artillery or Locust result file"):
        perfstats.ingest(tmp_path, db=":memory:")


def test_mixing_tools_in_one_run_is_refused(data_dir: Path, tmp_path: Path) -> None:
    shutil.copy(data_dir / "artillery/baseline/report.json", tmp_path / "a.json")
    shutil.copy(data_dir / "locust/baseline/locust_stats.csv", tmp_path / "locust_stats.csv")
    with pytest.raises(IngestError, match="files of different tools"):
        perfstats.ingest(tmp_path, db=":memory:")
