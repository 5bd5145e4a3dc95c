"""Ingest k6, Artillery and Locust results into the store.

A *run* is made of one or more files of one tool: a k6 NDJSON or CSV output (plus, when given,
a summary file of the same run for thresholds and checks), one Artillery report, or a Locust CSV
family and/or JSON file; or the outputs of several load generators of one distributed test
(readers/shards.py).  Paths may be files, directories (every result file in it, not
recursive) or a Locust ``--csv`` prefix.  Formats are detected from content; ``fmt`` forces one.
"""

from __future__ import annotations

import gzip
import importlib
import json
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

import blake3
import duckdb

from perfstats.errors import ArgumentError, IngestError, PerfstatsError, first_line
from perfstats.readers.detect import FORMATS, TOOL_OF, BadValue, detect_format, is_gzip
from perfstats.readers.validate import validate_run
from perfstats.readers.writer import RunInfo, RunWriter, SourceFile
from perfstats.store import PathLike, Store

Reader = Callable[[list[SourceFile], RunWriter], None]

_HASH_CHUNK = 1 << 23
_LOCUST_SUFFIXES = ("_stats_history.csv", "_stats.csv", "_failures.csv", "_exceptions.csv",
                    "_requests.csv", "_distribution.csv")


def _reader(tool: str) -> Reader:
    # Imported lazily: detection, the store and each reader work without loading the others.
    return importlib.import_module(f"perfstats.readers.{tool}").read


def _detect_or_none(path: Path) -> SourceFile | None:
    try:
        return SourceFile(path, detect_format(path))
    except IngestError:
        return None


def locust_prefix_files(prefix: PathLike) -> list[Path]:
    """The files of a Locust ``--csv PREFIX`` family (``PREFIX_stats.csv`` ...), sorted."""
    prefix = Path(prefix)
    if not prefix.name:
        return []
    return sorted(p for p in prefix.parent.glob(f"{prefix.name}_*.csv")
                  if p.name[len(prefix.name):] in _LOCUST_SUFFIXES)


def _locust_siblings(path: Path) -> list[Path]:
    for suffix in _LOCUST_SUFFIXES:
        if path.name.endswith(suffix):
            return locust_prefix_files(path.with_name(path.name[: -len(suffix)]))
    return [path]


def resolve_sources(paths: Iterable[PathLike], *, fmt: str | None = None,
                    one_run: bool = False) -> list[SourceFile]:
    """Expand files, directories and Locust prefixes into detected source files of one run.

    ``one_run`` says that several raw outputs are the shards of one distributed run (else they
    are so only where the files say it: readers/shards.py).

    Raises:
        IngestError: a path is missing, holds no result, or the files mix tools.
    """
    if fmt is not None and fmt not in FORMATS:
        raise ArgumentError(f"unknown input format {fmt!r}; known: {', '.join(FORMATS)}")
    found: dict[Path, SourceFile] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = [f for f in sorted(path.iterdir()) if f.is_file()]
            detected = [s for s in map(_detect_or_none, files) if s is not None]
            if not detected:
                raise IngestError(path, "no k6, Artillery or Locust result file in this directory")
            found.update((s.path, s) for s in detected)
        elif path.is_file():
            source = SourceFile(path, fmt) if fmt else SourceFile(path, detect_format(path))
            found[path] = source
            if source.format.startswith("locust-") and not fmt:
                for sibling in _locust_siblings(path):
                    if sibling in found:
                        continue
                    extra = _detect_or_none(sibling)
                    if extra is not None and extra.format.startswith("locust-"):
                        found.setdefault(sibling, extra)
        else:
            detected = [s for s in map(_detect_or_none, locust_prefix_files(path))
                        if s is not None]
            if not detected:
                raise IngestError(path, "no such file, directory or Locust --csv prefix")
            found.update((s.path, s) for s in detected)
    sources = list(found.values())
    tools = sorted({TOOL_OF[s.format] for s in sources})
    if len(tools) > 1:
        names = ", ".join(str(s.path) for s in sources)
        raise IngestError(names, f"files of different tools ({' and '.join(tools)}) in one run")
    if tools == ["k6"]:
        # Only the files the k6 reader uses are hashed and listed (e.g. NDJSON, not also CSV).
        from perfstats.readers.k6 import used_sources

        sources = used_sources(sources, one_run=one_run)
    elif not one_run and _several_generators(sources):
        # Artillery reports and Locust outputs name no test: they are shards only when told.
        names = ", ".join(str(s.path) for s in sources)
        raise IngestError(names, f"the outputs of several {tools[0].capitalize()} processes; "
                                 "give the files of one run, or --one-run when they are the "
                                 "shards of one distributed run")
    return sources


def _several_generators(sources: list[SourceFile]) -> bool:
    """True when ``sources`` hold two files of one format (two reports, two histories...)."""
    formats = [s.format for s in sources]
    return len(set(formats)) < len(formats)


def content_hash(files: Iterable[Path]) -> str:
    """The identity of a run's content: BLAKE3 over the decompressed bytes of each file,
    independent of the files' names, of their order and of gzip compression (a renamed or
    re-gzipped copy has the same hash).  Streamed, never loaded whole.

    A gzip file's CRC-32 and length are checked on the way (Python's gzip reader does that at
    the end of every member), so a damaged file is refused even where a reader's own scan does
    not check it.

    BLAKE3 rather than SHA-256: as collision-resistant, three times faster here (0.2 s per GB
    against 0.6 s), and it releases the GIL while it hashes.  gzip is inflated by ISA-L (the
    ``isal`` package): half the CPU of zlib.

    Raises:
        IngestError: a gzip file fails its CRC or length check, or is cut short.
    """
    return _combine(_file_digest(path, decompress=True) for path in files)


def quick_id(files: Iterable[Path]) -> str:
    """A hash to name a run by before :func:`content_hash` is known: the same as it for plain
    files, the compressed bytes for gzip files (quick to read, as the run id must be known when
    a reader's first insert begins; duplicates are still found by :func:`content_hash`)."""
    return _combine(_file_digest(path, decompress=False) for path in files)


def _combine(digests: Iterable[bytes]) -> str:
    combined = blake3.blake3()
    for digest in sorted(digests):
        combined.update(digest)
    return combined.hexdigest()


def _file_digest(path: Path, *, decompress: bool) -> bytes:
    gzipped = is_gzip(path)
    if gzipped and decompress:
        # ISA-L inflates gzip in half the CPU time of zlib (20 against 36 ms for a 19 MB k6
        # output) and checks the same CRC and length; a file it refuses is read again by
        # Python's gzip, whose error is the one reported.
        from isal import igzip, isal_zlib

        try:
            return _read_digest(path, igzip.open, b"")
        except (OSError, EOFError, isal_zlib.error):
            pass
    try:
        return _read_digest(path, gzip.open if gzipped and decompress else _raw,
                            b"gzip\0" if gzipped and not decompress else b"")
    except gzip.BadGzipFile as exc:
        raise IngestError(path, f"damaged gzip file ({first_line(exc)}): the data does not "
                                "match its checksum") from exc
    except (EOFError, zlib.error) as exc:
        raise IngestError(path, f"damaged or cut gzip file ({first_line(exc)})") from exc


def _raw(path: Path, mode: str) -> BinaryIO:
    return open(path, mode, buffering=0)


def _read_digest(path: Path, opener: Callable[[Path, str], BinaryIO], prefix: bytes) -> bytes:
    """BLAKE3 of ``prefix`` and the bytes read from ``opener(path, "rb")``."""
    digest = blake3.blake3(prefix)
    buffer = bytearray(_HASH_CHUNK)
    view = memoryview(buffer)
    with opener(path, "rb") as fh:
        while size := fh.readinto(buffer):
            digest.update(view[:size])
    return digest.digest()


def ingest_sources(
    store: Store, sources: list[SourceFile], *, labels: dict[str, str] | None = None,
    progress: Callable[[float], None] | None = None,
) -> tuple[str, bool]:
    """Write one run made of ``sources`` into ``store`` atomically.

    ``progress``, when given, is called now and then with the share (0 to 1) of the reader's
    long scans that is done (k6 raw outputs; other readers are quick).

    Returns:
        ``(run_id, existed)``: ``existed`` is True when the same content was already stored (its
        labels are then merged in and nothing else changes).
    """
    tool = TOOL_OF[sources[0].format]
    reader = _reader(tool)
    labels = {str(k): str(v) for k, v in (labels or {}).items()}
    where = ", ".join(str(s.path) for s in sources)
    # The hash runs in a thread while the reader works, up to its first insert (which needs
    # the run id); for a plain k6 NDJSON file that is the points scan itself, so there it goes
    # first.
    # A gzip run is named by its compressed bytes (quick), so that decompressing it for its
    # content hash runs beside the scan instead of before it.
    paths = [s.path for s in sources]
    with ThreadPoolExecutor(1) as pool, store.connect(write=True) as con:
        digest = pool.submit(content_hash, paths)

        def new_run_id() -> str:
            gzipped = any(is_gzip(p) for p in paths)
            run_id = quick_id(paths)[:12] if gzipped else digest.result()[:12]
            rows = con.execute(
                "SELECT run_id, labels FROM runs WHERE run_id = ? OR content_hash = ?",
                [run_id, None if gzipped else digest.result()]).fetchall()
            if rows:
                raise _AlreadyStored(str(rows[0][0]), dict(rows[0][1] or {}))
            return run_id

        writer = RunWriter(con, new_run_id, RunInfo(tool=tool, format=sources[0].format),
                           progress)
        con.execute("BEGIN TRANSACTION")
        try:
            reader(sources, writer)
            validate_run(con, writer.run_id, writer.info, where)
            # Several processes may write one team store: the duplicate check is repeated
            # under the store's lock on this content, against the newest commit.
            with store.lock(digest.result()):
                stored = store.stored_run(con, digest.result())
                if stored is not None:
                    raise _AlreadyStored(stored[0], dict(stored[1] or {}))
                _insert_run_row(writer, sources, digest.result(), labels)
                con.execute("COMMIT")
        except _AlreadyStored as stored:
            con.execute("ROLLBACK")
            if labels:
                with store.lock(digest.result()):
                    now = store.stored_run(con, digest.result())
                    merged = {**dict((now or stored.as_tuple())[1] or {}), **labels}
                    con.execute("UPDATE runs SET labels = MAP(?, ?) WHERE run_id = ?",
                                [list(merged), list(merged.values()), stored.run_id])
            return stored.run_id, True
        except BaseException as exc:
            con.execute("ROLLBACK")
            if isinstance(exc, PerfstatsError | KeyboardInterrupt):
                raise
            if isinstance(exc, BadValue):
                raise IngestError(where, str(exc)) from exc
            if isinstance(exc, RecursionError):
                raise IngestError(where, "nested too deeply to be a load-test result") from exc
            if _is_input_error(exc):
                raise IngestError(where, f"cannot parse ({type(exc).__name__}: "
                                         f"{first_line(exc)})") from exc
            raise  # a bug in a reader: the CLI reports it as an internal error (exit 3)
    return writer.run_id, False


def _is_input_error(exc: BaseException) -> bool:
    """True for the errors a file's content causes while a reader reads it: DuckDB refusing a
    value or a shape (not DuckDB's own internal errors), undecodable bytes, a damaged
    compressed stream, a read error.  A reader's own ValueError/KeyError/TypeError is a bug."""
    if isinstance(exc, duckdb.InternalException | duckdb.FatalException):
        return False
    return isinstance(exc, duckdb.Error | json.JSONDecodeError | UnicodeError | OSError
                      | EOFError | zlib.error)


class _AlreadyStored(Exception):
    """Raised inside an ingest when its content hash names a stored run (nothing is written)."""

    def __init__(self, run_id: str, labels: dict[str, str]):
        super().__init__(run_id)
        self.run_id = run_id
        self.labels = labels

    def as_tuple(self) -> tuple[str, dict[str, str]]:
        return self.run_id, self.labels


def _insert_run_row(writer: RunWriter, sources: list[SourceFile], digest: str,
                    labels: dict[str, str]) -> None:
    info = writer.info
    if info.duration_s is None and info.started_at and info.ended_at:
        info.duration_s = (info.ended_at - info.started_at).total_seconds()
    if info.duration_s:
        # One duration per run (the tool's own where it reports one) and so one throughput:
        # every summary row's rps is its requests over that duration.
        writer.con.execute("UPDATE summaries SET rps = count / ? WHERE run_id = ?",
                           [info.duration_s, writer.run_id])
    writer.con.execute(
        "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, MAP(?, ?), ?, ?)",
        [
            writer.run_id, info.tool, info.format, info.tool_version, info.grain,
            [s.path.name for s in sources], digest, info.started_at, info.ended_at,
            info.duration_s, info.load_model, info.max_users, list(labels),
            list(labels.values()), info.notes, datetime.now(timezone.utc),
        ],
    )
