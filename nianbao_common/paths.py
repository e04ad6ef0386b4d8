"""Where the data is: ``$NIANBAO_DATA`` (a path or a URL such as ``s3://bucket/prefix``), else ``./data``.

The dataset lives at that location, on disk or on object storage. What must stay on the
machine that runs the command lives in the local data directory: the data location
itself when it is a path; when it is a URL, ``$NIANBAO_LOCAL`` (else ``./data``). Until
the raw archive moves to object storage too, that is where it is crawled to and read
from, beside the run lock and the run records.
"""

from __future__ import annotations

import os
from pathlib import Path

from nianbao_common.storage import RemotePath, location


def data_location(value: str | os.PathLike | None = None) -> Path | RemotePath:
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
    """The local data directory of ``$NIANBAO_DATA`` (the raw archive, locks, runs)."""
    return local_dir(data_location())
