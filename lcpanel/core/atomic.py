"""Crash-safe file writes: write beside the target, fsync, then ``os.replace``.

Readers never see half a file, and a process killed mid-write leaves at most a
``.tmp-*`` file that nothing reads (``clean_stale_temps`` removes old ones).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

TEMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "", durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target``.

    The caller writes (or lets a library write) the temporary file. If the block raises,
    the temporary file is removed and ``target`` is untouched. The rename alone protects
    against a process dying mid-write; ``durable`` also fsyncs the file and its directory
    so the new version survives a power cut (a few ms on slow disks).
    """
    target = Path(target)
    fd, tmp = _temp_beside(target, suffix)
    os.close(fd)
    try:
        yield tmp
        if durable:
            _fsync_file(tmp)
        _replace(tmp, target, durable)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(target: str | Path, data: bytes, durable: bool = True, mode: int | None = None) -> None:
    """``data`` as the new content of ``target`` (see :func:`atomic_path`), with permission
    bits ``mode`` (default: those ``open`` gives a new file). Written through the temporary
    file's own descriptor: creating a file is the dear part of a small write, and opening
    it a second time was as much again."""
    target = Path(target)
    fd, tmp = _temp_beside(target)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        _replace(tmp, target, durable)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _temp_beside(target: Path, suffix: str = "") -> tuple[int, Path]:
    """A new temporary file in ``target``'s directory (made if missing), with the mode a
    plain ``open`` would give it (mkstemp makes it owner-only): its descriptor and path."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX + target.name + ".", suffix=suffix, dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    return fd, Path(tmp)


def _replace(tmp: Path, target: Path, durable: bool) -> None:
    os.replace(tmp, target)
    if durable:
        _fsync_dir(target.parent)


def write_text(target: str | Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_pickle(target: str | Path, obj, durable: bool = True) -> None:
    with atomic_path(target, durable=durable) as tmp, open(tmp, "wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; on success it is renamed to ``target``.

    ``target`` must not exist. On failure the temporary directory is removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX + target.name + ".", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        os.rename(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def clean_stale_temps(directory: str | Path, older_than_s: float = 3600.0) -> int:
    """Remove temporary files and directories left by killed writers. Returns the count."""
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    removed = 0
    for entry in directory.glob(TEMP_PREFIX + "*"):
        try:
            if entry.lstat().st_mtime > cutoff:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
        except FileNotFoundError:
            continue
    return removed


def _umask() -> int:
    """The process umask (mkstemp/mkdtemp create owner-only files; we want the usual modes)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
