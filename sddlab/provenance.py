"""Where a run was made: the source commit and the machine, recorded in the run's meta.json so that a
results page built later from its run directories can say what made the numbers."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from sddlab.runtime import given_threads

PACKAGE_DIR = Path(__file__).resolve().parent


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def source_commit() -> str | None:
    """`git describe --always --dirty` of the checkout sddlab is imported from; None for an installed wheel."""
    if not (PACKAGE_DIR.parent / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(PACKAGE_DIR.parent), "describe", "--always", "--dirty", "--abbrev=12"],
                              capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def machine(device: str, threads: int | None = None) -> dict[str, Any]:
    """The CPU model, its cores, the intra-op threads (`threads` when fixed; else "auto" with the most the
    process was given, since the count follows the load) and the device (with the GPU's name on CUDA)."""
    info: dict[str, Any] = {"cpu": cpu_model(), "cores": os.cpu_count(),
                            "threads": threads if threads is not None else f"auto, at most {given_threads()}",
                            "device": device}
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        info["device_name"] = torch.cuda.get_device_name(torch.device(device))
    return info
