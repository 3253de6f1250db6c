from __future__ import annotations

import os
import sys

import pytest

from evreid.utils import atomic_open, atomic_write_text, tune_allocator


def test_atomic_write_replaces_whole_file_and_respects_umask(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_open_leaves_old_file_on_error(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_open(path) as handle:
        handle.write("half")
        raise RuntimeError("crash")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc / Linux only")
def test_tune_allocator_turns_off_numpy_huge_page_advice():
    from numpy._core.multiarray import _set_madvise_hugepage

    previous = _set_madvise_hugepage(True)
    try:
        tune_allocator()
        assert _set_madvise_hugepage(False) is False       # returns the setting it found
    finally:
        _set_madvise_hugepage(previous)
