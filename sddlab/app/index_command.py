"""`sddlab index`: one tidy table over many run directories, printed as CSV or written to a file."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import typer
from typer import echo

from sddlab import paths
from sddlab.collect import DamagedRunWarning, index
from sddlab.errors import ConfigError, SddError
from sddlab.io import atomic_write_text, write_parquet
from sddlab.paths import check_writable

RESULTS_HELP = "folder of run directories [default: $SDDLAB_RESULTS, else ./results]"


def _check_output(output: Path) -> None:
    """--output, refused in one line before the runs are read: a .csv or .parquet file name, not a folder, that
    this system can write (a name it takes, in a folder this user can create and write)."""
    folder = os.path.isdir(output)  # False, not an OSError, for a name too long: refused below
    if output.suffix not in (".csv", ".parquet") or folder:
        raise SddError(f"--output={str(output)!r} is not allowed: a file name ending in .csv or .parquet"
                       + (" (that is a folder)" if folder else ""))
    check_writable(output.parent, "--output", str(output))
    try:
        os.lstat(output)
    except FileNotFoundError:
        pass
    except OSError as error:  # e.g. a file name past the file system's limit
        raise ConfigError("--output", str(output), f"a file name this system can write ({error.strerror})") from None


def index_command(
    results: Path | None = typer.Argument(None, help=RESULTS_HELP),
    output: Path | None = typer.Option(None, help="write the tidy table to this .csv or .parquet file"),
) -> None:
    """One tidy table over many runs: a row per run x level, config fields as columns."""
    if output is not None:
        output = output.expanduser()  # '~/x.csv' as a shell would read it
        _check_output(output)
    with warnings.catch_warnings(record=True) as caught:  # each run verify would not pass: one line
        warnings.simplefilter("always", DamagedRunWarning)
        table = index(results)
    for warning in caught:
        echo(f"sddlab: warning: {warning.message}", err=True)
    if table.empty and not caught:  # (runs skipped as damaged were each named above)
        echo(f"sddlab: warning: no run directories in {paths.results_dir(results)}", err=True)
    if output is None:
        echo(table.to_csv(index=False), nl=False)
        return
    if output.suffix == ".parquet":
        write_parquet(output, table)
    else:
        atomic_write_text(output, table.to_csv(index=False))
    runs = table["run"].nunique() if "run" in table else 0
    echo(f"{len(table)} rows ({runs} runs) written to {output}")
