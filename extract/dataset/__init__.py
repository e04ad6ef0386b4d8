"""The Parquet dataset, rebuilt from the raw archive: versioned, incremental, isolated per document.

- ``plan``: pure decisions (what to extract again and why, which rows to rewrite);
- ``reuse``: the reuse key (code, libraries, converters);
- ``rows``: one archived document → the rows of every table;
- ``pool``: worker processes with a time limit and memory cap per document;
- ``state``: which document each row came from, kept inside each version;
- ``store``: the versioned Parquet store (publish, keep, roll back, prune);
- ``changes``: what a run changed;
- ``build``: the run that ties them together.
"""

from extract.dataset.build import (
    SYNTHETIC_MARK,
    ExtractSummary,
    build_dataset,
    print_progress,
)
from extract.dataset.pool import Limits
from extract.dataset.rows import arrow_schema, extractor_version
from extract.dataset.store import DEFAULT_KEEP, DatasetStore, DatasetStoreError

__all__ = [
    "DEFAULT_KEEP",
    "SYNTHETIC_MARK",
    "DatasetStore",
    "DatasetStoreError",
    "ExtractSummary",
    "Limits",
    "arrow_schema",
    "build_dataset",
    "extractor_version",
    "print_progress",
]
