"""Where the data directory is: ``$NIANBAO_DATA`` if set, else ``./data``."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """The working data directory: ``$NIANBAO_DATA`` if set, else ``./data``."""
    return Path(os.environ.get("NIANBAO_DATA") or "data")
