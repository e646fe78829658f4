"""Argument checks shared by the benchmark scripts (`type=` for argparse).

Each refuses a bad value with argparse's own one-line error (exit 2) naming the argument, the value and
what is allowed, before any work starts.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any


def int_between(low: int, high: int | None = None, what: str = "") -> Callable[[str], int]:
    """A `type=` reading a whole number in [low, high] (no upper bound when `high` is None)."""
    allowed = f"a whole number >= {low}" if high is None else f"a whole number from {low} to {high}"
    allowed += f" {what}" if what else ""

    def read(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not allowed: {allowed}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is not allowed: {allowed}")
        return value

    read.__name__ = f"int_from_{low}"
    return read


positive_int = int_between(1)
non_negative_int = int_between(0)


def device(text: str) -> str:
    """cpu, cuda or cuda:N, and a CUDA device only where this machine has it."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: cpu, cuda or cuda:N")
    if text.startswith("cuda"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(text.partition(":")[2] or 0)
        if index >= count:
            have = f"cuda:0 to cuda:{count - 1}" if count else "no CUDA GPU here"
            raise argparse.ArgumentTypeError(f"{text!r} is not allowed: cpu or a CUDA device this machine has "
                                             f"({have})")
    return text


def preset(text: str) -> str:
    """The name of a sddlab preset."""
    import sddlab
    from sddlab.errors import SddError

    try:
        sddlab.get_preset(text)
    except SddError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def output_file(text: str) -> Path:
    """A file to write at the end of a run: its folder must exist and be writable now, not after the run."""
    path = Path(text).expanduser()
    folder = path.parent
    if path.is_dir():
        problem = "it is a folder"
    elif not folder.is_dir():
        problem = f"the folder {str(folder)!r} does not exist"
    elif not os.access(folder, os.W_OK | os.X_OK):
        problem = f"the folder {str(folder)!r} is not writable"
    else:
        return path
    raise argparse.ArgumentTypeError(f"{text!r} is not allowed: a file in an existing, writable folder ({problem})")


def checked_config(parser: argparse.ArgumentParser, make: Callable[[], Any], device: str = "cpu") -> Any:
    """The benchmark's config from `make()`, checked as a run checks it before any work (its fields, the
    rules that need the model, its data on disk): a bad one ends in argparse's one-line error, exit 2."""
    from sddlab.errors import SddError
    from sddlab.preparation import prepare
    from sddlab.runtime import Runtime

    try:
        config = make()
        prepare(config, runtime=Runtime(device))
    except SddError as error:
        parser.error(str(error))
    return config


def run_main(main: Callable[[], None]) -> None:
    """Run a benchmark's `main`: Ctrl-C ends it with one line and exit 130, SIGTERM with exit 143, both after
    its `with` blocks have removed their temporary folders (a kill by signal would leave them behind)."""
    import signal
    import sys

    name = Path(sys.argv[0]).name
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        main()
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        sys.exit(130)
