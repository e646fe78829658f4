"""Ctrl-C anywhere in the command line, while it loads or while a command runs: one line on stderr and
exit code 130, never a traceback. Imports nothing heavy, so it guards the command line's own imports."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import NoReturn

EXIT_CODE = 130  # 128 + SIGINT, as shells report a Ctrl-C


class Interrupted(Exception):
    """A command's own line for a Ctrl-C (e.g. how to resume); the entry point prints it and exits 130."""


def interrupted(message: str = "interrupted") -> NoReturn:
    """Print `sddlab: MESSAGE` as one line on stderr (on a line of its own after a terminal's ^C) and exit 130."""
    start = "\n" if sys.stderr.isatty() else ""
    sys.stderr.write(f"{start}sddlab: {message}\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_CODE)


@contextlib.contextmanager
def exit_on_interrupt() -> Iterator[None]:
    """Turn a KeyboardInterrupt raised inside the block into `interrupted()`."""
    try:
        yield
    except KeyboardInterrupt:
        interrupted()


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold a Ctrl-C until the block ends, then `interrupted()`: for the command line's imports, since one
    landing inside torch's C++ start-up (`torch.distributed`'s init calls back into Python) aborts the
    process instead of raising. Where SIGINT has another owner (a kernel, a thread), as `exit_on_interrupt`."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        with exit_on_interrupt():
            yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        interrupted()


def deaf_from_now() -> None:
    """Ignore Ctrl-C from here on: for a command whose work is done and written, so that one landing in the
    interpreter's teardown (thread joins, library clean-up) cannot turn its exit status into a kill."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
