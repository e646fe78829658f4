"""A training length such as `150ep` (epochs) or `1000it` (iterations), parsed once where it enters."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

_PATTERN = re.compile(r"^(\d+)(ep|it)$")
HINT = "a duration like '150ep' (epochs) or '1000it' (iterations)"


@dataclass(frozen=True)
class Duration:
    """`count` epochs or iterations; written and hashed as its text form, e.g. '150ep'."""

    count: int
    unit: Literal["ep", "it"]

    @classmethod
    def parse(cls, text: str | Duration) -> Duration:
        """'150ep' -> Duration(150, 'ep'); a ValueError naming the expected form otherwise."""
        if isinstance(text, Duration):
            return text
        match = _PATTERN.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(HINT)
        return cls(int(match.group(1)), match.group(2))  # type: ignore[arg-type]

    @classmethod
    def epochs(cls, count: int) -> Duration:
        return cls(int(count), "ep")

    def iterations(self, per_epoch: int) -> int:
        """The length in iterations, given the iterations in one epoch."""
        return self.count * (per_epoch if self.unit == "ep" else 1)

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


def _validate(value: Any) -> Duration:
    return Duration.parse(value)


# The pydantic field type: accepts '150ep' or a Duration, serialises back to '150ep' (so config hashes
# and config.json files stay plain strings).
DurationField = Annotated[
    Duration,
    PlainValidator(_validate),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": _PATTERN.pattern}),
]
