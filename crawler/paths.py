"""Where the raw archive lives: ``raw/`` under the data directory."""

from __future__ import annotations

from pathlib import Path

from nianbao_common.paths import data_dir


def raw_dir(base: Path | None = None) -> Path:
    """The raw archive: WARC files per site and ``manifest.sqlite``, under ``raw/``."""
    return Path(base if base is not None else data_dir()) / "raw"
