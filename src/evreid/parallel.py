"""A small process pool that stops cleanly on Ctrl-C.

Why not ``ProcessPoolExecutor`` or ``multiprocessing.Pool``: both feed tasks
through a shared queue from a helper thread. When Ctrl-C reaches the workers as
well as the parent, a worker can die holding the queue's lock or leave the
feeder blocked on a full pipe, and the parent then waits for it forever in
``atexit`` (seen: a second Ctrl-C hung ``evreid simulate`` for ten minutes).

Here every worker has its own pipe and receives its next task only when it has
returned the last one, so no pipe ever fills and no lock is shared. Workers
ignore SIGINT (the parent alone decides); on Ctrl-C or an error the parent
sends SIGTERM, which a worker turns into ``SystemExit`` so its ``finally`` /
``atomic_open`` clean-ups remove half-written files, waits a short grace
period, then SIGKILLs what is left. A second Ctrl-C during that clean-up is
ignored, so it cannot leave workers behind, and the clean-up is bounded.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import wait
from typing import Any

from evreid.errors import EvreidError

# how long a worker may take to notice SIGTERM (it is noticed between Python bytecodes,
# so a long compiled call delays it) before SIGKILL
GRACE_SECONDS = 2.0


def _raise_exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def die_with_parent(signum: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``signum`` to this process when its parent exits (prctl
    PR_SET_PDEATHSIG), so workers never outlive a command that was stopped or
    killed; elsewhere nothing changes. Returns whether it was set."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        return libc.prctl(pr_set_pdeathsig, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when it survives pickling, else a RuntimeError with its text."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return RuntimeError(text)


def _worker(conn: Any, fn: Callable, initializer: Callable | None, initargs: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_exit)
    die_with_parent(signal.SIGTERM)     # a killed parent: stop, removing temp files
    if initializer is not None:
        initializer(*initargs)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        index, item = message
        try:
            reply = (index, True, fn(item))
        except Exception as exc:
            reply = (index, False, _portable(exc))
        conn.send(reply)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Hold off Ctrl-C while workers are being stopped (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop(procs: list, conns: list, clean: bool,
          abandoned: Callable[[], None] | None = None) -> None:
    with _sigint_ignored():
        if clean:      # all work done: ask politely
            for conn in conns:
                with contextlib.suppress(OSError):
                    conn.send(None)
        else:
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
        deadline = time.monotonic() + GRACE_SECONDS
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
        killed = False
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
                killed = True
        for conn in conns:
            conn.close()
        if killed and abandoned is not None:
            abandoned()      # SIGKILL skips a worker's clean-up: the caller does it


def imap_unordered(fn: Callable[[Any], Any], items: Iterable[Any], workers: int,
                   initializer: Callable | None = None, initargs: tuple = (),
                   context: str | None = "spawn",
                   on_abandon: Callable[[Any], None] | None = None) -> Iterator[Any]:
    """``fn(item)`` for every item, in ``workers`` processes; results as they finish.

    With one worker (or one item) everything runs here, in order. A task's
    exception is re-raised here as itself (EvreidError stays one clear line);
    a worker that dies is an EvreidError naming its exit code. ``fn`` and
    ``initializer`` must be importable module-level functions (spawn).
    ``on_abandon(item)`` runs here for every item whose worker had to be killed
    (SIGKILL after the grace period), e.g. to remove its temp files.
    """
    items = list(items)
    if workers < 1:
        raise EvreidError(f"workers must be >= 1; got {workers}")
    if workers == 1 or len(items) <= 1:
        for item in items:
            yield fn(item)
        return
    ctx = multiprocessing.get_context(context)
    procs: list = []
    conns: list = []
    clean = False
    busy: dict = {}      # connection -> (process, task index)
    try:
        for _ in range(min(workers, len(items))):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, fn, initializer, initargs),
                               daemon=True)
            proc.start()
            child.close()
            procs.append(proc)
            conns.append(parent)
        todo = iter(enumerate(items))

        def feed(conn: Any, proc: Any) -> None:
            task = next(todo, None)
            if task is not None:
                conn.send(task)
                busy[conn] = (proc, task[0])

        for conn, proc in zip(conns, procs, strict=True):
            feed(conn, proc)
        while busy:
            by_sentinel = {proc.sentinel: (conn, proc) for conn, (proc, _) in busy.items()}
            for ready in wait(list(busy) + list(by_sentinel)):
                if ready in busy:
                    proc, index = busy.pop(ready)
                    try:
                        _, ok, payload = ready.recv()
                    except EOFError:
                        raise EvreidError(f"worker process {proc.pid} died (exit code "
                                          f"{proc.exitcode}) on task {index}") from None
                    if not ok:
                        raise payload
                    feed(ready, proc)
                    yield payload
                elif ready in by_sentinel:
                    conn, proc = by_sentinel[ready]
                    if conn in busy and not conn.poll():
                        proc.join(0.1)
                        raise EvreidError(f"worker process {proc.pid} died (exit code "
                                          f"{proc.exitcode}) on task {busy[conn][1]}")
        clean = True
    finally:
        def abandoned() -> None:
            if on_abandon is not None:
                for _, index in list(busy.values()):
                    on_abandon(items[index])

        _stop(procs, conns, clean, abandoned)


def _ignore_sigint_then(init: Callable | None, parent: int, worker_id: int) -> None:
    import os

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # PyTorch's own check for a dead parent runs every 5 s; a stopped command should not
    # leave readers behind that long (they only read, so SIGKILL is safe)
    die_with_parent(signal.SIGKILL)
    if os.getppid() != parent:          # it died before the line above: follow it now
        os._exit(1)
    if init is not None:
        init(worker_id)


def shield_loader_workers(loader: Any) -> Any:
    """Make a DataLoader's workers ignore Ctrl-C (SIGINT reaches the whole process group).

    Otherwise a worker dies of it first and the main process reports "DataLoader
    worker exited unexpectedly" instead of stopping as interrupted. The workers
    end with the main process (prctl PDEATHSIG). Returns ``loader``.
    """
    import functools
    import os

    if not isinstance(loader.worker_init_fn, functools.partial) or \
            loader.worker_init_fn.func is not _ignore_sigint_then:
        loader.worker_init_fn = functools.partial(_ignore_sigint_then, loader.worker_init_fn,
                                                  os.getpid())
    return loader


def worker_error_line(exc: BaseException) -> str | None:
    """The one line a DataLoader worker's exception deserves, or None when ``exc`` is
    not a re-raised worker exception.

    PyTorch re-raises a worker's exception in the main process as
    ``Caught X in DataLoader worker process N. Original Traceback ...`` -- 15 lines
    ending in the real message. An EvreidError gives back its own message; any other
    exception its type and message.
    """
    text = str(exc)
    if not text.startswith("Caught ") or "Original Traceback" not in text:
        return None
    lines = [line for line in text.splitlines() if line.strip()]
    for i in range(len(lines) - 1, 0, -1):
        line = lines[i]
        if line[0].isspace():
            continue
        name, sep, message = line.partition(": ")
        if sep and name.replace(".", "").replace("_", "").isalnum():
            # a multi-line message: the exception line is its first line
            message = " ".join([message, *(l.strip() for l in lines[i + 1:])]).strip()
            if name.rsplit(".", 1)[-1] == "EvreidError":
                return message
            return f"data loading failed ({name.rsplit('.', 1)[-1]}): {message}"
    return None


def iterate_loader(loader: Any) -> Iterator[Any]:
    """Iterate a DataLoader with Ctrl-C-proof workers, a worker's exception re-raised as
    one EvreidError line (see worker_error_line)."""
    shield_loader_workers(loader)
    iterator = iter(loader)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except Exception as exc:
            line = worker_error_line(exc)
            if line is None:
                raise
            raise EvreidError(line) from None
        yield batch
