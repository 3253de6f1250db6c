"""Small helpers shared across modules: atomic writes and seeding."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temp file beside ``path``; rename it over ``path`` only on success.

    Readers never see a half-written file, and a crash leaves the old file (or none).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp makes the file private (0600); the result should get the usual mode
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete temp files that ``atomic_open(path)`` left behind when its process was
    killed (SIGKILL skips the clean-up). Call it only where no other process is
    writing ``path`` at the same time."""
    path = Path(path)
    removed = []
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
                removed.append(stale)
    return removed


def check_writable(folder: str | os.PathLike, what: str) -> Path:
    """Make ``folder`` (and its parents) and prove a file can be written in it, so a
    command fails in its first second, not after its work. ``what`` names the
    option in the message (e.g. ``--out``)."""
    from evreid.errors import EvreidError

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise EvreidError(f"{what} {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".evreid-write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise EvreidError(f"{what} {folder} is not writable ({reason})") from None
    return folder


def torch_device(name: str, what: str = "device",
                 choices: str = "cpu, cuda, cuda:N or auto") -> Any:
    """``torch.device(name)``, or one EvreidError naming ``what`` and the choices; a CUDA
    device must exist. ``auto`` is CUDA when available, else the CPU."""
    import torch

    from evreid.errors import EvreidError

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise EvreidError(f"unknown {what} {name!r}; choose {choices}") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise EvreidError(f"unknown {what} {name!r}; choose {choices}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise EvreidError(f"{what} {name!r}: no CUDA device is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise EvreidError(f"{what} {name!r}: only {torch.cuda.device_count()} CUDA "
                              f"device(s) are visible")
    return device


def npz_problem(exc: BaseException) -> str:
    """NumPy's reason, except where it would suggest unpickling: these files must hold
    plain arrays, and a file that is not a zip archive at all is read by NumPy as a
    pickle ("... when allow_pickle=False"), which it is not."""
    text = str(exc)
    if "allow_pickle" in text:
        if text.startswith("Object arrays"):
            return "it holds Python objects, not plain arrays (refused: unpickling runs code)"
        return "not an .npz archive of arrays (truncated, or another kind of file)"
    return text


def exporting() -> bool:
    """Whether torch.export is tracing the caller (``torch.compiler.is_exporting``; torch
    releases before 2.4 have no such query and no custom-op export problem to avoid)."""
    import torch

    query = getattr(torch.compiler, "is_exporting", None)
    return bool(query is not None and query())


def npy_bytes(arr: np.ndarray) -> bytes:
    """An array as the bytes of a ``.npy`` file (a member of an ``.npz`` archive)."""
    import io

    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=False)
    return buf.getvalue()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) from one integer."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def tune_allocator(threshold_bytes: int = 1 << 30) -> bool:
    """Keep large freed blocks in the heap instead of returning them to the OS.

    glibc serves large allocations (clip tensors, distance-matrix chunks) with a
    fresh mmap each time, so every batch pays page faults again; on some
    machines that dominates data loading (measured 8x slower batches). Fixing
    the mmap and trim thresholds lets freed blocks be reused. Linux / glibc
    only; returns False (and changes nothing) elsewhere. Forked data-loader
    workers inherit the setting.

    It also stops NumPy from advising transparent huge pages for its large
    arrays: the first touch of a huge page can stall while the kernel compacts
    memory, and in fresh processes (pool workers) that made runs erratic -- two
    simulator processes had one worker ~40 % slower in half of the runs, steady
    without the advice, and no slower on average.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:             # NumPy < 2: the same switch under its old name
        try:
            from numpy.core.multiarray import _set_madvise_hugepage
        except ImportError:
            _set_madvise_hugepage = None
    if _set_madvise_hugepage is not None:
        _set_madvise_hugepage(False)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, threshold_bytes)
                    and libc.mallopt(m_trim_threshold, threshold_bytes))
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
