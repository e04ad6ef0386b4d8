"""Where the data directory and the raw archive live."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """The working data directory: ``$NIANBAO_DATA`` if set, else ``./data``."""
    return Path(os.environ.get("NIANBAO_DATA") or "data")


def raw_dir(base: Path | None = None) -> Path:
    """The raw archive: WARC files per site and ``manifest.sqlite``, under ``raw/``."""
    return Path(base if base is not None else data_dir()) / "raw"
