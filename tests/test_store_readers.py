"""Readers open the store read-only: they never create or change it, several read at once, a
read-only file can be read, and the wait for a writer is reported."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from helpers import StoredRuns

import perfstats

_HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "read")
print("holding", flush=True)
time.sleep(float(sys.argv[3]))
con.close()
"""


@pytest.fixture
def store_file(tmp_path: Path, stored_runs: StoredRuns) -> Path:
    """A store file of the test's own holding one run."""
    path = tmp_path / "s.duckdb"
    stored_runs.copy(path, "artillery/baseline/report.json")
    return path


def _hold(path: Path, mode: str, seconds: float) -> subprocess.Popen[str]:
    """Another process that keeps ``path`` open (``read`` or ``write``) for ``seconds``."""
    child = subprocess.Popen([sys.executable, "-c", _HOLD, str(path), mode, str(seconds)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "holding"
    return child


def _perfstats(*args: str, timeout: str = "30") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PERFSTATS_LOCK_TIMEOUT": timeout}
    return subprocess.run([sys.executable, "-m", "perfstats", *args], capture_output=True,
                          text=True, env=env, timeout=60)


def test_reading_an_empty_database_file_leaves_it_as_it_was(tmp_path: Path) -> None:
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    zero = tmp_path / "zero.duckdb"
    zero.write_bytes(b"")
    for path in (empty, zero):
        before = path.read_bytes()
        assert perfstats.runs(db=path).height == 0
        assert path.read_bytes() == before
    assert perfstats.runs(db=tmp_path / "missing.duckdb").height == 0
    assert not (tmp_path / "missing.duckdb").exists()


def test_a_read_only_store_file_can_be_read(store_file: Path) -> None:
    before = store_file.read_bytes()
    store_file.chmod(stat.S_IRUSR | stat.S_IRGRP)
    try:
        result = _perfstats("runs", "--db", str(store_file), "--format", "json")
        assert result.returncode == 0, result.stderr
        assert '"tool": "artillery"' in result.stdout
        run = perfstats.runs(db=store_file)["run_id"][0]
        assert perfstats.load(run, db=store_file).summary().height > 0
    finally:
        store_file.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert store_file.read_bytes() == before


def test_several_readers_at_once(store_file: Path) -> None:
    holder = _hold(store_file, "read", 60)
    try:
        result = _perfstats("runs", "--db", str(store_file), "--format", "json", timeout="1")
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        assert holder.poll() is None  # the first reader still had it open all along
    finally:
        holder.kill()
        holder.wait()


def test_the_wait_for_a_writer_is_reported(store_file: Path) -> None:
    holder = _hold(store_file, "write", 60)
    env = {**os.environ, "PERFSTATS_LOCK_TIMEOUT": "30"}
    reader = subprocess.Popen([sys.executable, "-m", "perfstats", "runs", "--db", str(store_file),
                               "--format", "json"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    try:
        waiting = reader.stderr.readline()  # the reader says it waits before the writer is done
    finally:
        holder.kill()
        holder.wait()
    out, rest = reader.communicate(timeout=60)
    assert reader.returncode == 0, rest
    assert "waiting for another process" in waiting and str(store_file) in waiting
    assert rest == "" and '"tool": "artillery"' in out


def test_a_reader_gives_up_after_the_lock_timeout_with_one_line(store_file: Path) -> None:
    holder = _hold(store_file, "write", 8)
    try:
        result = _perfstats("runs", "--db", str(store_file), timeout="0.5")
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and "waiting" in lines[0] and "in use by another process" in lines[1]
    assert "Traceback" not in result.stderr
