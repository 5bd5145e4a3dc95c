"""Shared fixtures: a fresh in-memory store, the project's sample data (and its runs ingested once
per session: read-only in one in-memory store, or as a test's own copy of a store file),
../shared, and stores of either kind (a DuckDB file or a team store on a throw-away PostgreSQL
server).

The library comes in through the fixtures, not at the top: the xdist controller loads this file
too, before it starts the workers, and needs none of it (``helpers`` costs it 0.6 s of CPU).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from helpers import SampleRuns, StoredRuns

    import perfstats


@pytest.fixture
def store() -> perfstats.Store:
    """A fresh in-memory store."""
    import perfstats

    return perfstats.open_store(":memory:")


@pytest.fixture
def data_dir() -> Path:
    """The project's bundled sample runs (data/)."""
    from helpers import DATA

    return DATA


@pytest.fixture
def shared_dir() -> Path:
    """The ../shared folder beside the project; skips when it is absent."""
    from helpers import SHARED

    if not SHARED.is_dir():
        pytest.skip(f"../shared is not beside the project (looked for {SHARED.name}/ next to the "
                    "repository); corpus and reference tests need it")
    return SHARED


@pytest.fixture(scope="session")
def html_reports(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every notebook template rendered to HTML through the CLI once per session
    (template -> (click Result, output path)); see tests/report_cases.py."""
    from report_cases import render_html

    return render_html(tmp_path_factory.mktemp("reports"))


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """The connection string of a PostgreSQL server for team stores (tests/postgres.py)."""
    from postgres import server

    with server() as conninfo:
        if conninfo is None:
            pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql; "
                        ".ci/run installs it); the team-store tests need a server")
        yield conninfo


@pytest.fixture
def team_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty team store: its own database plus a Parquet directory."""
    from perfstats.errors import StoreError
    from perfstats.store.team import extension_directory

    try:
        extension_directory()
        import psycopg
    except (StoreError, ImportError) as exc:
        pytest.skip(f"the team extra is not installed in this environment ({exc}); "
                    ".ci/run runs these tests in a second venv with perfstats[team]")
    postgres = request.getfixturevalue("postgres")
    name = f"perfstats_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres, autocommit=True) as pg:
        pg.execute(f"CREATE DATABASE {name}")
    conninfo = " ".join(p for p in postgres.split() if not p.startswith("dbname="))
    yield f"ducklake:postgres:{conninfo} dbname={name} data_path={tmp_path / 'lake'}"
    with psycopg.connect(postgres, autocommit=True) as pg:
        pg.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=["file", "team"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The location of a fresh store of either kind: a DuckDB file, then a team store."""
    if request.param == "file":
        return str(tmp_path / "perfstats.duckdb")
    return request.getfixturevalue("team_url")


@pytest.fixture(scope="session")
def stored_runs(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> StoredRuns:
    """Template store files of data/'s runs, each run ingested once, in a folder the xdist
    workers share: pytest's cache, where they are kept for the next session while
    :func:`helpers.templates_key` (perfstats' code, data/, the libraries) is the same, or,
    without the cache (``-p no:cacheprovider``), a folder of this session."""
    import shutil

    from helpers import StoredRuns, templates_key

    cache = getattr(request.config, "cache", None)
    if cache is None:
        base = tmp_path_factory.getbasetemp()
        folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "stored-runs"
        folder.mkdir(exist_ok=True)
        return StoredRuns(folder)
    kept = cache.mkdir("stored-runs")
    folder = kept / templates_key()
    folder.mkdir(exist_ok=True)
    os.utime(folder)
    # Kept: this session's templates and the newest other set (another venv's: .ci/run runs
    # two). One process tidies up, so that no worker looks at a folder another one removes.
    if os.environ.get("PYTEST_XDIST_WORKER", "gw0") == "gw0":
        for stale in sorted(kept.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)[2:]:
            shutil.rmtree(stale, ignore_errors=True)
    return StoredRuns(folder)


@pytest.fixture(scope="session")
def sample_runs(stored_runs: StoredRuns) -> SampleRuns:
    """data/'s runs in one in-memory store kept for the session, for reading only:
    ``sample_runs["k6/baseline"]``."""
    from helpers import SampleRuns

    return SampleRuns(stored_runs)


@pytest.fixture
def stored(stored_runs: StoredRuns, tmp_path: Path) -> Callable[..., tuple[str, list[str]]]:
    """``stored("k6/baseline", "k6/candidate")``: a new store file of this test holding those
    runs of data/ (copied from a template, not ingested again), as ``(db path, run ids)``;
    ``labels={"k6/baseline": {"branch": "main"}}`` labels them as ``ingest --label`` would."""
    count = 0

    def copy(*names: str, labels: dict[str, dict[str, str]] | None = None
             ) -> tuple[str, list[str]]:
        nonlocal count
        count += 1
        db = tmp_path / f"stored-{count}.duckdb"
        return str(db), stored_runs.copy(db, *names, labels=labels)

    return copy


@pytest.fixture(scope="session")
def harness(sample_runs: SampleRuns) -> dict[str, perfstats.Run]:
    """Both k6-harness runs (data/k6-harness: points and handleSummary)."""
    return {side: sample_runs[f"k6-harness/{side}"] for side in ("baseline", "candidate")}
