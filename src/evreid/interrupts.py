"""Ctrl-C that always stops a command, and a second Ctrl-C that always ends the process.

Python turns SIGINT into ``KeyboardInterrupt`` at the next bytecode of the main
thread, wherever that is. When it lands in code whose exceptions are dropped
("Exception ignored in ...": ``__del__`` methods, weakref callbacks, the
at-fork hooks that run while a DataLoader starts its workers), the interrupt is
lost and the command carries on -- seen: ``evreid train`` finishing all its
epochs after Ctrl-C. And once the command has stopped, the interpreter may
still wait at exit for child processes or threads.

``stop_on_ctrl_c`` therefore

* raises ``KeyboardInterrupt`` again every second until the command has
  actually stopped (a lost interrupt is repeated, not forgotten);
* treats any exception raised after Ctrl-C as the interrupt (e.g. a DataLoader
  worker that died of the same Ctrl-C before it could ignore it);
* ends the process at once (exit status 130) on a Ctrl-C that arrives after the
  command has stopped, so a second Ctrl-C never waits on anything.

Clean-ups that must not be cut short hold SIGINT off themselves (see
``evreid.parallel``); the repeat is skipped while they do.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

REPEAT_SECONDS = 0.5
EXIT_STATUS = 130


@dataclass
class InterruptState:
    interrupted: bool = False   # Ctrl-C was pressed
    stopped: bool = False       # the command has given control back


@contextlib.contextmanager
def stop_on_ctrl_c() -> Iterator[InterruptState]:
    """Run the body so that Ctrl-C stops it for sure (see the module docstring)."""
    state = InterruptState()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def repeat() -> None:
        while True:
            time.sleep(REPEAT_SECONDS)
            if state.stopped:
                return
            # does nothing while a clean-up holds SIGINT off (SIG_IGN)
            _thread.interrupt_main(signal.SIGINT)

    def handler(signum: int, frame: object) -> None:
        if state.stopped:         # the command has stopped; only the exit is left
            os._exit(EXIT_STATUS)
        if not state.interrupted:
            state.interrupted = True
            threading.Thread(target=repeat, name="evreid-ctrl-c", daemon=True).start()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield state
    except BaseException:
        state.stopped = True
        if state.interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        state.stopped = True
        if not state.interrupted:
            signal.signal(signal.SIGINT, previous)
        # after an interrupt the handler stays: a further Ctrl-C exits at once
