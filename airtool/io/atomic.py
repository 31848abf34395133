"""Atomic file writes: a temporary file in the destination folder, fsync, then ``os.replace``.

A reader (or a resumed run) therefore sees either the old file, no file, or the complete new
file, never a partial one. Temporary names start with ``.`` and contain ``.airtool-tmp-`` and the
writer's pid, so folder walks skip them and a later run removes the leftovers of dead runs.

Two runs at once on one output folder need no lock: each writes its own uniquely named temporary
file and renames it over the output, so the last rename wins with a complete file, and a run
never removes the temporary files of a run that is still alive.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from airtool.errors import OutputError

TMP_MARK = ".airtool-tmp-"
_STEM_BYTES = 100  # of the output's name kept in its temporary name (names are limited to 255 bytes)


@contextlib.contextmanager
def atomic_path(dst: Path, before_rename: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``dst`` (same extension); on success rename it to ``dst``.

    ``before_rename(tmp)`` runs once the temporary file is complete and synced, just before the
    rename (the provenance record of an output is written there)."""
    dst = Path(dst)
    prefix = f"{temp_prefix(dst)}{os.getpid()}-"
    fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=dst.suffix, dir=dst.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; outputs get normal permissions
        _fsync_file(tmp)
        if before_rename is not None:
            before_rename(tmp)
        os.replace(tmp, dst)
        _fsync_dir(dst.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes(dst: Path, data: bytes, before_rename: Callable[[Path], None] | None = None) -> None:
    with atomic_path(dst, before_rename) as tmp:
        tmp.write_bytes(data)


def write_stream(
    dst: Path, write: Callable[[BinaryIO], None], before_rename: Callable[[Path], None] | None = None
) -> None:
    """Atomically write what ``write(fh)`` writes into an open binary file (an encoder that
    streams, so the encoded file never has to be held in memory as one ``bytes``).
    ``before_rename(tmp)`` runs as in ``write_bytes``: after the file is complete, before the rename."""
    with atomic_path(dst, before_rename) as tmp:
        with open(tmp, "wb") as fh:
            write(fh)


def check_writable(folder: Path) -> None:
    """Raise ``OutputError`` unless a file can be created in ``folder`` (or, while it does not
    exist yet, in its nearest existing parent), so a read-only destination stops a run before
    any work instead of failing every file after it was restored."""
    probe_dir = Path(folder)
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    try:
        fd, name = tempfile.mkstemp(prefix=f".probe{TMP_MARK}{os.getpid()}-", dir=probe_dir)
        try:
            os.close(fd)
        finally:
            os.unlink(name)
    except OSError as err:
        raise OutputError(folder, f"cannot write to the output folder ({err.strerror or err})") from None


def temp_prefix(dst: Path) -> str:
    """How the temporary names of ``dst`` start: ``.`` + its stem (cut to whole characters that
    fit in ``_STEM_BYTES`` bytes, so long non-ASCII names stay within the file-name limit) + mark."""
    stem = Path(dst).stem[:_STEM_BYTES]
    while len(os.fsencode(stem)) > _STEM_BYTES:
        stem = stem[:-1]
    return f".{stem}{TMP_MARK}"


def remove_stale_temps(folder: Path, only_for: Path | None = None) -> int:
    """Delete temporary files left by runs that are no longer alive; returns how many.

    Walks ``folder`` recursively, or, with ``only_for``, looks only at the temporary files of
    that one output in its folder. The writing process's pid is part of each temporary name, so
    a concurrent run's files in progress are left alone.
    """
    removed = 0
    if only_for is not None:
        folder, prefix = Path(only_for).parent, temp_prefix(Path(only_for))
        if not folder.is_dir():
            return 0
        candidates = [p for p in folder.iterdir() if p.name.startswith(prefix)]
    elif folder.is_dir():
        candidates = list(folder.rglob(f"*{TMP_MARK}*"))
    else:
        return 0
    for path in candidates:
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
