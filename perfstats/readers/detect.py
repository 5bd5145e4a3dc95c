"""Detect a result file's format from its content (file names are not reliable)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
from pathlib import Path
from typing import Any

from perfstats.errors import IngestError

K6_NDJSON = "k6-ndjson"
K6_CSV = "k6-csv"
K6_SUMMARY = "k6-summary"  # handleSummary data (metrics with type/contains/values)
K6_SUMMARY_EXPORT = "k6-summary-export"  # legacy --summary-export (flat metrics)
K6_MACHINE_SUMMARY = "k6-machine-summary"  # v1.5+ new machine-readable summary
ARTILLERY_V1 = "artillery-v1"
ARTILLERY_V2 = "artillery-v2"
LOCUST_STATS = "locust-stats"
LOCUST_HISTORY = "locust-history"
LOCUST_FAILURES = "locust-failures"
LOCUST_EXCEPTIONS = "locust-exceptions"
LOCUST_REQUESTS_V0 = "locust-requests-v0"
LOCUST_DISTRIBUTION_V0 = "locust-distribution-v0"
LOCUST_JSON = "locust-json"

FORMATS = [
    K6_NDJSON, K6_CSV, K6_SUMMARY, K6_SUMMARY_EXPORT, K6_MACHINE_SUMMARY, ARTILLERY_V1,
    ARTILLERY_V2, LOCUST_STATS, LOCUST_HISTORY, LOCUST_FAILURES, LOCUST_EXCEPTIONS,
    LOCUST_REQUESTS_V0, LOCUST_DISTRIBUTION_V0, LOCUST_JSON,
]

TOOL_OF = {f: f.split("-")[0] for f in FORMATS}

_HEAD_BYTES = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic number."""
    with open(path, "rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def open_text(path: Path) -> io.TextIOBase:
    """Open a plain or gzip text file as UTF-8 (BOM stripped, undecodable bytes replaced)."""
    raw = gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")


def read_head(path: Path, size: int = _HEAD_BYTES) -> str:
    """The first ``size`` characters of a plain or gzip text file."""
    try:
        with open_text(path) as fh:
            return fh.read(size)
    except (OSError, EOFError) as exc:
        raise IngestError(path, f"cannot read file ({exc})") from exc


def csv_header(head: str) -> list[str]:
    """The column names of the first non-blank line of a CSV text, stripped."""
    for line in head.splitlines():
        if line.strip():
            return [c.strip() for c in next(csv.reader([line]))]
    return []


def _detect_csv(header: list[str]) -> str | None:
    """The CSV format of a header: k6 by its first three columns (k6 always writes them first),
    Locust by the set of its column names, in any order (docs/ingest.md)."""
    if header[:3] == ["metric_name", "timestamp", "metric_value"]:
        return K6_CSV
    names = set(header)
    if {"Timestamp", "User Count"} <= names or {"Type", "Name", "Timestamp"} <= names:
        return LOCUST_HISTORY
    if {"Type", "Name"} <= names and names & {"Request Count", "# requests"}:
        return LOCUST_STATS
    if {"Method", "Name", "Error", "Occurrences"} <= names:
        return LOCUST_FAILURES
    if {"Count", "Message", "Traceback", "Nodes"} <= names:
        return LOCUST_EXCEPTIONS
    if {"Method", "Name", "# requests"} <= names:
        return LOCUST_REQUESTS_V0
    if {"Name", "# requests", "50%"} <= names:
        return LOCUST_DISTRIBUTION_V0
    return None


def _detect_json_object(doc: dict) -> str | None:
    aggregate = doc.get("aggregate")
    if isinstance(aggregate, dict) and "intermediate" in doc:
        if "scenariosCreated" in aggregate:
            return ARTILLERY_V1
        if isinstance(aggregate.get("counters"), dict):
            return ARTILLERY_V2
    if "version" in doc and "results" in doc and "metadata" in doc and "config" in doc:
        return K6_MACHINE_SUMMARY
    metrics = doc.get("metrics")
    if isinstance(metrics, dict) and "root_group" in doc:
        typed = [m for m in metrics.values() if isinstance(m, dict) and "values" in m]
        if typed and all("type" in m for m in typed):
            return K6_SUMMARY
        return K6_SUMMARY_EXPORT
    stats = doc.get("stats")
    if isinstance(stats, list) and stats and all(
        isinstance(e, dict) and "num_requests" in e and "response_times" in e for e in stats
    ):
        return LOCUST_JSON  # Locust 0.x worker report payload: {"stats": [...], "errors": ...}
    return None


_NDJSON_LINE = re.compile(r'"type"\s*:\s*"(Metric|Point)"')


def detect_format(path: str | Path) -> str:
    """Return the format name of a result file, judged from its content.

    Raises:
        IngestError: the file is empty, unreadable or of no format perfstats knows.
    """
    path = Path(path)
    if not path.is_file():
        raise IngestError(path, "no such file")
    if path.stat().st_size == 0:
        raise IngestError(path, "empty file")
    head = read_head(path)
    stripped = head.lstrip()
    if not stripped:
        raise IngestError(path, "empty file (only white space)")
    if stripped[0] == "{":
        first_line = stripped.split("\n", 1)[0]
        if _NDJSON_LINE.search(first_line) and first_line.rstrip().endswith("}"):
            return K6_NDJSON
        doc = load_json(path)
        if isinstance(doc, dict):
            found = _detect_json_object(doc)
            if found:
                return found
        raise IngestError(path, "JSON that is not a k6, Artillery or Locust result")
    if stripped[0] == "[":
        doc = load_json(path)
        if isinstance(doc, list) and all(isinstance(e, dict) for e in doc):
            if doc and all("num_requests" in e and "response_times" in e for e in doc):
                return LOCUST_JSON
            if not doc:
                raise IngestError(path, "empty JSON array (a Locust --json with no requests?)")
        raise IngestError(path, "JSON array that is not a Locust --json result")
    found = _detect_csv(csv_header(head))
    if found:
        return found
    raise IngestError(path, "not a k6, Artillery or Locust result (unrecognised content)")


def load_json(path: Path) -> object:
    """Parse a whole (plain or gzip) JSON document; errors become :class:`IngestError`."""
    try:
        with open_text(path) as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise IngestError(path, f"invalid or truncated JSON (line {exc.lineno}: {exc.msg})") \
            from exc
    except RecursionError as exc:
        raise IngestError(path, "JSON nested too deeply to be a load-test result") from exc
    except (OSError, EOFError) as exc:
        raise IngestError(path, f"cannot read file ({exc})") from exc



class BadValue(ValueError):
    """A value in a result file that is not what belongs there (a text or a boolean where a
    number belongs, NaN or an infinity); the ingest turns it into an :class:`IngestError`."""


def json_number(value: Any, key: str | None = None) -> float | None:
    """A JSON number as float; None for null and for objects and arrays (a nested table where a
    tool writes one).

    Raises:
        BadValue: a text, a boolean, NaN or an infinity where a number belongs (never a silent
            null that would disable a check later); ``key`` names where, for the message.
    """
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        where = f"{key}: " if key else ""
        raise BadValue(f"{where}{value!r} is not a number")
    value = float(value)
    if not math.isfinite(value):
        where = f"{key}: " if key else ""
        raise BadValue(f"{where}{value} is not a finite number")
    return value
