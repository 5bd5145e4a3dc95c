"""A run is its decompressed content: renamed or re-gzipped copies are the stored run; gzip
integrity (CRC-32 and length) is checked; runs can be deleted atomically, with a dry run."""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import table_counts

import perfstats
from perfstats.cli import cli
from perfstats.errors import IngestError, RunNotFoundError
from perfstats.readers import content_hash, quick_id


@pytest.fixture
def copies(tmp_path: Path, data_dir: Path) -> dict[str, Path]:
    """The smoke run's points as plain, renamed, gzip -1, gzip -9 and in another folder."""
    plain = data_dir / "k6/smoke/points.json"
    data = plain.read_bytes()
    out = {"plain": tmp_path / "points.json", "renamed": tmp_path / "other-name.ndjson",
           "fast": tmp_path / "points.json.gz", "best": tmp_path / "x.gz"}
    shutil.copy(plain, out["plain"])
    shutil.copy(plain, out["renamed"])
    out["fast"].write_bytes(gzip.compress(data, compresslevel=1))
    out["best"].write_bytes(gzip.compress(data, compresslevel=9))
    return out


def test_the_content_hash_ignores_names_and_compression(copies: dict[str, Path]) -> None:
    hashes = {name: content_hash([path]) for name, path in copies.items()}
    assert len(set(hashes.values())) == 1
    assert quick_id([copies["plain"]]) == hashes["plain"]
    assert quick_id([copies["fast"]]) != quick_id([copies["best"]])  # named by compressed bytes


def test_renamed_and_regzipped_copies_are_the_stored_run(tmp_path: Path,
                                                         copies: dict[str, Path]) -> None:
    db = tmp_path / "s.duckdb"
    first = perfstats.ingest(copies["fast"], db=db)
    before = table_counts(perfstats.open_store(db))
    for name in ("best", "plain", "renamed", "fast"):
        again = perfstats.ingest(copies[name], db=db, labels={"copy": name})
        assert again.existed and again.run_id == first.run_id, name
    assert table_counts(perfstats.open_store(db)) == before
    assert perfstats.runs(db=db)["labels"].to_list() == [{"copy": "fast"}]
    # and the other way round: a plain first, then its gzip
    other = tmp_path / "t.duckdb"
    plain = perfstats.ingest(copies["plain"], db=other)
    assert perfstats.ingest(copies["best"], db=other).run_id == plain.run_id


def _stored_gzip(data: bytes) -> bytes:
    """gzip without compression (stored blocks): the data bytes appear as they are."""
    return gzip.compress(data, compresslevel=0)


def test_a_gzip_with_a_bad_crc_is_refused(tmp_path: Path, data_dir: Path, stored) -> None:
    data = (data_dir / "k6/smoke/points.json").read_bytes()
    packed = bytearray(_stored_gzip(data))
    at = packed.index(b'"value":67.298527')
    packed[at + 8] = ord("9")  # 67.29... -> 97.29...: valid JSON, wrong checksum
    damaged = tmp_path / "points.json.gz"
    damaged.write_bytes(bytes(packed))
    wrong_length = tmp_path / "length.json.gz"
    good = _stored_gzip(data)
    wrong_length.write_bytes(good[:-4] + struct.pack("<I", len(data) + 1))
    db, _ = stored("artillery/baseline/report.json")
    before = table_counts(perfstats.open_store(db))
    for path, reason in ((damaged, "CRC check failed"), (wrong_length, "length")):
        result = CliRunner().invoke(cli, ["ingest", str(path), "--db", db])
        assert result.exit_code == 2, result.output
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and str(path) in lines[0] and reason in lines[0], lines
        assert "Traceback" not in result.output
        assert table_counts(perfstats.open_store(db)) == before
    with pytest.raises(IngestError, match="checksum"):
        perfstats.ingest(damaged, db=":memory:")


def test_delete_removes_runs_atomically_with_a_dry_run(data_dir: Path, stored) -> None:
    db, (keep, *gone) = stored("artillery/baseline/report.json", "k6/smoke", "locust/baseline")
    store = perfstats.open_store(db)
    before = table_counts(store)
    listing = perfstats.delete(gone, db=db, dry_run=True)
    assert sorted(listing["run_id"]) == sorted(gone) and min(listing["rows"]) > 0
    assert table_counts(store) == before
    runner = CliRunner()
    refused = runner.invoke(cli, ["delete", gone[0], "nope", "--db", db])
    assert refused.exit_code == 2 and len(refused.stderr.splitlines()) == 1
    assert "'nope'" in refused.stderr and table_counts(store) == before
    with pytest.raises(RunNotFoundError, match="ambiguous"):
        perfstats.delete([gone[0], ""], db=db)  # "" is a prefix of every run: nothing goes
    assert table_counts(store) == before
    dry = runner.invoke(cli, ["delete", *gone, "--dry-run", "--db", db])
    assert dry.exit_code == 0 and all(r in dry.stdout for r in gone)
    assert table_counts(store) == before
    done = runner.invoke(cli, ["delete", *gone, "--db", db])
    assert done.exit_code == 0, done.output
    assert perfstats.runs(db=db)["run_id"].to_list() == [keep]
    for table in table_counts(store):
        rows = store.query(f"SELECT count(*) AS n FROM {table} WHERE run_id <> ?", [keep])
        assert rows["n"][0] == 0, table
    # the same content can be ingested again after its deletion
    assert not perfstats.ingest(data_dir / "k6/smoke", db=db).existed
