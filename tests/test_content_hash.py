"""The content hash of a gzip file is BLAKE3 over its decompressed bytes, whichever inflater
computes it, and a damaged file is refused with the error Python's gzip module gives for it
(the hash inflates with ISA-L and reads a file it refuses again with Python's gzip)."""

from __future__ import annotations

import gzip
from pathlib import Path

import blake3
import pytest

from perfstats.errors import IngestError, first_line
from perfstats.readers import content_hash

SMOKE = Path(__file__).resolve().parent.parent / "data" / "k6" / "smoke" / "points.json"


def _expected(data: bytes) -> str:
    return blake3.blake3(blake3.blake3(data).digest()).hexdigest()


@pytest.mark.parametrize("members", [1, 2])
def test_the_hash_of_a_gzip_file_is_that_of_its_bytes(tmp_path: Path, members: int) -> None:
    data = SMOKE.read_bytes()
    packed = tmp_path / "points.json.gz"
    packed.write_bytes(gzip.compress(data) * members)
    assert content_hash([packed]) == _expected(data * members) == content_hash(
        [_plain(tmp_path, data * members)])


def _plain(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "points.json"
    path.write_bytes(data)
    return path


def _damaged(good: bytes) -> dict[str, bytes]:
    return {
        "cut": good[: len(good) // 2],
        "crc": good[:-8] + b"\0\0\0\0" + good[-4:],
        "length": good[:-4] + b"\1\0\0\0",
        "trailing garbage": good + b"xyz",
        "corrupt block": good[:200] + b"\xff" * 64 + good[264:],
    }


@pytest.mark.parametrize("kind", list(_damaged(b"")))
def test_a_damaged_gzip_is_refused_with_pythons_own_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "points.json.gz"
    path.write_bytes(_damaged(gzip.compress(SMOKE.read_bytes()))[kind])
    with pytest.raises((OSError, EOFError)) as python:
        with gzip.open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass
    with pytest.raises(IngestError) as refused:
        content_hash([path])
    assert f"({first_line(python.value)})" in str(refused.value)
