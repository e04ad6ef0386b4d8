"""Where the data is: ``$NIANBAO_DATA`` (a path or a URL such as ``s3://bucket/prefix``), else ``./data``.

The raw archive and the dataset live at that location, on disk or on object storage.
What must stay on the machine that runs the command lives in the local data directory:
the data location itself when it is a path; when it is a URL, ``$NIANBAO_LOCAL`` (else
``./data``): the run lock, the run records, the coverage report, and the staging folders
where crawl shards write before they upload.
"""

from __future__ import annotations

import os
from pathlib import Path

from nianbao_common.storage import RemotePath, location


def data_location(
    value: str | os.PathLike | RemotePath | None = None,
) -> Path | RemotePath:
    """The data location ``value`` names, else ``$NIANBAO_DATA``, else ``./data``."""
    if value is None or value == "":
        value = os.environ.get("NIANBAO_DATA") or "data"
    return location(value)


def local_dir(where: Path | RemotePath) -> Path:
    """The local data directory of a data location (itself when it is on disk)."""
    if isinstance(where, Path):
        return where
    return Path(os.environ.get("NIANBAO_LOCAL") or "data")


def data_dir() -> Path:
    """The local data directory of ``$NIANBAO_DATA`` (locks, runs, a spider's archive)."""
    return local_dir(data_location())
