"""A sweep's report folder, `<results>/sweeps/<name>/`: inside the results folder, one writer at a time.

The name was checked to be a plain folder name (`sddlab.limits.check_sweep_name`); here the folders on
the way must be real folders, not links that lead elsewhere. A second sweep of the same name says the
report is busy and waits, as a second run of one config does, and a report of a different sweep that
the same name held before is replaced with one line saying so.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sddlab.errors import ConfigError
from sddlab.io import json_safe, read_json
from sddlab.store import folder_lock

if TYPE_CHECKING:
    from sddlab.sweeps import SweepSpec

SWEEPS = "sweeps"
REPORT = "sweep.json"
IDENTITY = ("base", "grid", "seeds")  # what makes two sweeps of one name the same sweep


def report_folder(results: Path, name: str) -> Path:
    """`<results>/sweeps/<name>`, created; a link or a file on the way is a one-line `ConfigError`."""
    results.mkdir(parents=True, exist_ok=True)
    folder = results
    for part in (SWEEPS, name):
        folder = folder / part
        if os.path.islink(folder) or (os.path.lexists(folder) and not folder.is_dir()):
            raise ConfigError("name", name, f"a sweep whose report folder {folder} is a folder inside the results "
                              "folder (it is a link or a file): remove it or choose another name")
        folder.mkdir(exist_ok=True)
    return folder


def _held_another(folder: Path, spec: SweepSpec) -> bool:
    """True when the folder's report is of a different sweep (base, grid or seeds) under the same name."""
    with contextlib.suppress(ValueError, OSError, TypeError, AttributeError):
        old = read_json(folder / REPORT)
        new = json.loads(json.dumps(json_safe(spec.to_dict())))
        return any(old.get(key) != new[key] for key in IDENTITY)
    return False


@contextlib.contextmanager
def report_lock(results: Path, spec: SweepSpec) -> Iterator[Path]:
    """Hold the sweep's report folder while the sweep runs and writes it; yields the folder."""
    folder = report_folder(Path(results), spec.name)
    with folder_lock(folder, "another sweep of this name is running"):
        if _held_another(folder, spec):
            print(f"sddlab: {folder} held the report of a different sweep named {spec.name!r} (another base, grid "
                  "or seeds): it is replaced", file=sys.stderr, flush=True)
        yield folder
