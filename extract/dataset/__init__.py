"""The Parquet dataset, rebuilt from the raw archive: versioned, incremental, isolated per document.

- ``plan``: pure decisions (what to extract again and why, which rows to rewrite);
- ``reuse``: the reuse key (code, libraries, converters);
- ``rows``: one archived document → the rows of every table;
- ``pool``: worker processes with a time limit and memory cap per document;
- ``settings``: those limits and the versions kept, cheap to import;
- ``state``: which document each row came from, kept inside each version;
- ``store``: the versioned Parquet store (publish, keep, roll back, prune);
- ``changes``, ``crossyear``, ``package``: what a run changed, the checks across
  years, and datapackage.json;
- ``build``: the run that ties them together (``build_dataset``).

The package imports nothing itself, so ``settings`` loads without pyarrow.
"""
