"""Atomic file writes: a temporary file in the destination folder, fsync, then ``os.replace``.

A reader (or a resumed run) therefore sees either the old file, no file, or the complete new
file, never a partial one. Temporary names start with ``.`` and contain ``.airtool-tmp-`` so
folder walks skip them and a later run can remove leftovers.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

TMP_MARK = ".airtool-tmp-"


@contextlib.contextmanager
def atomic_path(dst: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dst`` (same extension); on success rename it to ``dst``."""
    dst = Path(dst)
    prefix = f".{dst.stem[:80]}{TMP_MARK}{os.getpid()}-"
    fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=dst.suffix, dir=dst.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; outputs get normal permissions
        _fsync_file(tmp)
        os.replace(tmp, dst)
        _fsync_dir(dst.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes(dst: Path, data: bytes) -> None:
    with atomic_path(dst) as tmp:
        tmp.write_bytes(data)


def remove_stale_temps(folder: Path) -> int:
    """Delete temporary files left by runs that are no longer alive; returns how many.

    The writing process's pid is part of each temporary name, so a concurrent run's files in
    progress are left alone.
    """
    removed = 0
    if not folder.is_dir():
        return 0
    for path in folder.rglob(f"*{TMP_MARK}*"):
        if _owner_alive(path.name):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed


def _owner_alive(name: str) -> bool:
    try:
        pid = int(name.split(TMP_MARK, 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask is process-wide, so never toggle it while threads write


def _umask() -> int:
    return _UMASK


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
