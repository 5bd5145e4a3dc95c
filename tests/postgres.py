"""A throw-away PostgreSQL server for the team-store tests.

``$PERFSTATS_TEST_POSTGRES`` (a libpq connection string to a server whose user may create
databases, as ``.ci/run`` sets it) is used when given; otherwise a server is started from the
installed PostgreSQL binaries in a temporary directory on 127.0.0.1 and stopped afterwards.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server() -> Iterator[str | None]:
    """Yield the connection string of a PostgreSQL server (None when none can be had)."""
    given = os.environ.get("PERFSTATS_TEST_POSTGRES")
    if given:
        yield given
        return
    bin_dir = _binaries()
    if bin_dir is None:
        yield None
        return
    root = Path(tempfile.mkdtemp(prefix="perfstats-pg-"))
    # PostgreSQL refuses to run as root: there it runs as the postgres user Debian creates.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(root, "postgres")
    port = _free_port()
    data = root / "data"
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True,  # noqa: E731
                                      capture_output=True, text=True)
    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
        f"-h 127.0.0.1 -p {port} -k {root} -c max_connections=200", "start")
    try:
        yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
