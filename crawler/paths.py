"""Where the raw archive lives: ``raw/`` under the data directory, or under the data location."""

from __future__ import annotations

import os
from pathlib import Path

from nianbao_common.paths import data_dir, data_location
from nianbao_common.storage import RemotePath


def raw_dir(base: Path | None = None) -> Path:
    """The local archive a spider writes: WARC files per site and ``manifest.sqlite``."""
    return Path(base if base is not None else data_dir()) / "raw"


def archive_dir(
    where: str | os.PathLike | RemotePath | None = None,
) -> Path | RemotePath:
    """The archive readers read: ``raw/`` under the data location ``where`` (default
    ``$NIANBAO_DATA``), on disk or on object storage (``s3://bucket/prefix/raw``)."""
    return data_location(where) / "raw"
