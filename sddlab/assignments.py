"""`section.field=value` as typed after `--set` and `--grid`: the value read as JSON, else as plain text."""

from __future__ import annotations

import json
import re
from typing import Any

from sddlab.errors import ConfigError

SET_FORM = "section.field=value, e.g. noise.rate=0.2"


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse one `--set section.field=value`; the value is read as JSON, else as a plain string, and a
    non-JSON value with commas as a list of such parts (hidden=128,128 or milestones=80ep,120ep)."""
    if "=" not in text:
        raise ConfigError("--set", text, SET_FORM)
    key, raw = (part.strip() for part in text.split("=", 1))
    if not re.fullmatch(r"[a-z_]+(\.[a-z_]+)?", key):
        raise ConfigError("--set", text, SET_FORM)
    value, is_json = _read(key, raw)
    if not is_json and "," in raw:
        return key, [_read(key, part)[0] for part in raw.split(",") if part]
    return key, value


def _read(key: str, text: str) -> tuple[Any, bool]:
    """(the JSON value, True), or (the text itself, False) when it is not JSON; a number Python refuses to
    read (an integer of over 4,300 digits) is a one-line error rather than a traceback."""
    try:
        return json.loads(text), True
    except json.JSONDecodeError:
        return text, False
    except ValueError:
        raise ConfigError(key, text, "a number of at most 4,300 digits") from None
