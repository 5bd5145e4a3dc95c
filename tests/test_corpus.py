"""Every file people committed in ../shared/corpus ingests, or fails with a one-line IngestError."""

from __future__ import annotations

from pathlib import Path

import pytest

import perfstats
from perfstats.errors import IngestError

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "SOURCES.md") \
    if CORPUS.is_dir() else []


@pytest.mark.skipif(not FILES, reason="../shared/corpus is absent: no third-party files to walk")
@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/"
                                                      f"{p.name[:60]}")
def test_corpus_file_ingests_or_fails_cleanly(path: Path) -> None:
    store = perfstats.connect(":memory:")
    try:
        run = perfstats.ingest(path, db=store)
    except IngestError as exc:
        message = str(exc)
        assert "\n" not in message and str(path) in message
        assert store.runs().height == 0
        for table in ("samples", "summaries", "windows", "errors"):
            assert store.query(f"SELECT count(*) AS n FROM {table}")["n"][0] == 0
        return
    summary = run.summary()
    assert run.meta["tool"] in path.parts[-3]
    assert summary.height >= 0
    if summary.height:
        assert (summary["count"].drop_nulls() >= 0).all()
