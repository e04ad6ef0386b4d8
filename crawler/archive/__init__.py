"""The raw archive: every fetched response as WARC records, indexed by a SQLite manifest.

Layout under ``$NIANBAO_DATA/raw/``::

    manifest.sqlite                      index of every record (see docs/crawler.md)
    <site>/<site>-<UTC time>-<nnnn>.warc.gz

Modules: ``record`` (the manifest's rows as dataclasses), ``manifest`` (its tables and
connection), ``warc`` (WARC serialisation), ``writer`` (appending, crash-safe),
``reader`` (the latest reports, verification) and ``remote`` (the archive on object
storage). Names are imported from the module that defines them: this package imports
none of them, so that what needs only the records' shapes (the crawl summary, every
command's ``--help``) does not load warcio and, through it, fsspec and asyncio.
"""
