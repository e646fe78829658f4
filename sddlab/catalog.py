"""A catalog of named entries (data sets, models, presets): unique names, one error for unknown ones."""

from __future__ import annotations

from typing import Generic, TypeVar

from sddlab.errors import ConfigError

Entry = TypeVar("Entry")


class Catalog(dict[str, Entry], Generic[Entry]):
    """A dict of entries by name that refuses a second entry of a name and names the choices on a miss."""

    def __init__(self, field: str):
        super().__init__()
        self.field = field  # how the user names the choice, e.g. 'data.name'

    def add(self, name: str, entry: Entry) -> Entry:
        if name in self:
            raise ValueError(f"{self.field} {name!r} registered twice")
        self[name] = entry
        return entry

    def allowed(self) -> str:
        return f"one of {', '.join(sorted(self))}"

    def lookup(self, name: str) -> Entry:
        """The entry of `name`, or a ConfigError naming the field, the value and the known names."""
        if not isinstance(name, str) or name not in self:
            raise ConfigError(self.field, name, self.allowed())
        return self[name]
