"""Crash-safe writes (lcpanel.core.atomic): the new content or the old, never half; the
usual file mode; no temporary file left behind."""

from __future__ import annotations

import os

import pytest

from lcpanel.core.atomic import TEMP_PREFIX, atomic_path, write_bytes, write_text


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("durable", [True, False])
def test_write_bytes_replaces_the_file_with_the_usual_mode(tmp_path, durable):
    target = tmp_path / "sub" / "dir" / "file.bin"
    write_bytes(target, b"first", durable=durable)
    write_bytes(target, b"second" * 10_000, durable=durable)
    assert target.read_bytes() == b"second" * 10_000
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "file.txt"
    write_text(target, "old")

    class Unwritable:  # not bytes: the write fails after the temporary file exists
        pass

    with pytest.raises(TypeError):
        write_bytes(target, Unwritable())
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("the writer died")
    assert target.read_text() == "old"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_atomic_path_gives_a_library_a_path_to_write(tmp_path):
    target = tmp_path / "table.csv"
    with atomic_path(target, suffix=".csv") as tmp:
        assert tmp.suffix == ".csv" and tmp.parent == tmp_path and tmp.exists()
        tmp.write_text("a,b\n1,2\n")
    assert target.read_text() == "a,b\n1,2\n"
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_write_bytes_can_keep_a_files_own_mode(tmp_path):
    target = tmp_path / "checkplot.pkl"
    write_bytes(target, b"old")
    target.chmod(0o600)
    write_bytes(target, b"new", mode=0o600)
    assert target.read_bytes() == b"new" and target.stat().st_mode & 0o777 == 0o600
