"""One file of a run directory checked by its kind, its structure and its checksum, never following a link.

A link, a FIFO or a folder where a file should be is named as such and never opened; JSON is size-capped
and must hold only finite numbers; a safetensors header is read only when the length it claims fits the
file and the cap, and its offsets and shapes must add up to the file's size.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from sddlab.config import Config
from sddlab.io import file_kind, read_header, read_json, sha256_file

MANIFEST = "manifest.json"
CONFIG = "config.json"
RECORD_LIMIT = 1 << 20  # a level record, config or meta is a few kB; anything past 1 MiB is not one
RECORD = re.compile(r"levels/level_(\d{2,})\.json")
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def lexical_kind(run_dir: Path, name: str) -> str | None:
    """The kind of `name` in the run directory, 'link' when it or a folder on the way is one, None if absent."""
    path = run_dir
    for part in Path(name).parts:
        path = path / part
        try:
            kind = file_kind(os.lstat(path).st_mode)
        except OSError:
            return None
        if kind == "link":
            return "link"
    return kind


def unsafe_name(name: str) -> bool:
    """A name that leads out of the run directory (absolute, or through '..')."""
    return Path(name).is_absolute() or ".." in Path(name).parts


def kind_problem(run_dir: Path, name: str, kind: str) -> str:
    """What is wrong with a link, folder or FIFO where a file should be (links: whether they lead out)."""
    if kind != "link":
        return f"a {kind} where a file should be"
    try:
        target = os.path.normpath(os.path.join(run_dir / Path(name).parent, os.readlink(run_dir / name)))
        escapes = os.path.commonpath([target, os.path.normpath(run_dir.absolute())]) != os.path.normpath(
            run_dir.absolute())
    except (OSError, ValueError):  # a folder on the way is the link
        escapes = True
    if escapes:
        return "a link that leads out of the run directory (unsafe): not followed"
    return "a symbolic link, which sddlab never writes: not followed"


def safetensors_problem(path: Path) -> str | None:
    """Why a safetensors file is structurally broken (header, sizes, offsets), or None; reads the header only."""
    try:
        header, start, size = read_header(path)
    except ValueError as error:
        return str(error)
    except OSError as error:
        return str(error).split(": ", 1)[-1]
    try:
        end = 0
        entries = [entry for key, entry in header.items() if key != "__metadata__"]
        for entry in sorted(entries, key=lambda e: int(e["data_offsets"][0])):
            begin, stop = (int(x) for x in entry["data_offsets"])
            if begin != end or stop - begin != math.prod(int(n) for n in entry["shape"]) * DTYPE_BYTES[entry["dtype"]]:
                return "unreadable header (tensor offsets and shapes disagree)"
            end = stop
    except (TypeError, KeyError, IndexError, AttributeError, ValueError):
        return "unreadable header"
    if size != start + end:
        return f"truncated or padded ({size} bytes, {start + end} expected)"
    return None


def structure(path: Path, name: str) -> tuple[str | None, Any]:
    """(what is wrong with the file's structure by its kind, or None; what it holds, parsed)."""
    if name.endswith(".safetensors"):
        return safetensors_problem(path), None
    if not name.endswith(".json"):
        return None, None
    try:
        data = read_json(path, RECORD_LIMIT)
    except OSError as error:
        return str(error).split(": ", 1)[-1], None
    except (ValueError, UnicodeDecodeError) as error:
        reason = str(error) if "non-finite" in str(error) else "truncated or altered"
        return f"not valid JSON ({reason})", None
    if not isinstance(data, dict):
        return "not a JSON object", None
    if name == CONFIG:
        try:
            return None, Config(**data)
        except (ValueError, TypeError) as error:
            return f"not a valid config ({str(error).splitlines()[0]})", None
    match = RECORD.fullmatch(name)
    if match and data.get("level") != int(match.group(1)):
        return f"its 'level' is {data.get('level')!r}, not {int(match.group(1))}", None
    return None, data


def check_file(run_dir: Path, name: str, kind: str | None, digests: dict[str, list[str]],
               checksum: bool) -> tuple[str | None, Any]:
    """(the problem of one file, or None; its parsed content): its kind, its structure (size-capped, so
    cheap), then its checksum."""
    if unsafe_name(name):
        return "a name that leads out of the run directory (unsafe)", None
    if kind is None:
        return None, None
    if kind != "file":
        return kind_problem(run_dir, name, kind), None
    path = run_dir / name
    problem, data = structure(path, name)
    if problem is None and checksum and name in digests:
        try:
            if sha256_file(path) not in digests[name]:  # a config is still parsed: its hash tells more
                return "checksum mismatch (truncated or altered)", data if name == CONFIG else None
        except OSError as error:
            return str(error).split(": ", 1)[-1], None
    return problem, data
