"""`sddlab ARGS` run in the test's own process through the real entry point: (exit code, stdout, stderr)."""

from __future__ import annotations

import sys

import pytest

from sddlab.app.cli import main


def sddlab_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run `sddlab ARGS` through main() with argv patched; the exit code and what it printed."""
    monkeypatch.setattr(sys, "argv", ["sddlab", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    return info.value.code, out, err
