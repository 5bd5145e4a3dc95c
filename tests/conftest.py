"""Shared fixtures: a fresh in-memory store, the project's sample data, and ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import DATA, SHARED

import perfstats


@pytest.fixture
def store() -> perfstats.Store:
    """A fresh in-memory store."""
    return perfstats.connect(":memory:")


@pytest.fixture
def data_dir() -> Path:
    """The project's bundled sample runs (data/)."""
    return DATA


@pytest.fixture
def shared_dir() -> Path:
    """The ../shared folder beside the project; skips when it is absent."""
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
