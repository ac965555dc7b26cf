"""The pin of upstream torchvision (``vendor/torchvision.toml``)."""
from __future__ import annotations

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]
from dataclasses import dataclass, field
from typing import Any

from . import paths


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    tag: str
    repository: str
    tree: str
    sources: list[dict[str, Any]] = field(default_factory=list)


def load() -> Pin:
    """Read the pin file."""
    data = tomllib.loads(paths.PIN_FILE.read_text())
    up = data["upstream"]
    return Pin(up["name"], up["version"], up["tag"], up["repository"], up["tree"], data.get("source", []))
