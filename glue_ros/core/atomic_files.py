"""Files written whole or not at all: a reader never sees half a model or engine."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: str | os.PathLike[str], write: Callable[[str], object]) -> Path:
    """Write `path` with ``write(tmp_path)`` under a temporary name, then move it into place.

    A concurrent reader never sees half a file; with two writers the last one wins.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + '.', suffix='.tmp', dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_bytes_atomically(path: str | os.PathLike[str], data: bytes) -> Path:
    """:func:`write_atomically` of a byte string."""
    return write_atomically(path, lambda tmp: Path(tmp).write_bytes(data))


__all__ = ['write_atomically', 'write_bytes_atomically']
