"""Storage by location: a local path, or an fsspec URL (``s3://bucket/prefix``) as a path.

A local location is a ``pathlib.Path`` and stays one: nothing here is imported or
installed for it. A URL becomes a ``RemotePath``, which offers the part of the pathlib
interface the dataset store uses (``/``, ``name``, ``exists``, ``iterdir``, ``glob``,
``read_text``, ``write_bytes``, ``open`` …) on the fsspec filesystem of its scheme, so the
store's code reads the same for both. fsspec and its S3 driver (s3fs) come with the
``cluster`` extra and are imported only for a URL; the endpoint and credentials are the
standard AWS environment variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``), read by botocore. Requests to
storage that stops answering give up in bounded time (``S3FS_RETRIES`` and the options
beside it), so a run fails with a message rather than hanging.

What object storage cannot do, the helpers below do differently there: ``replacing``
writes a file whole (a temporary file renamed on disk; on object storage a PUT, which
readers see whole or not at all), ``copy_file`` hard-links on disk and copies on the
server elsewhere, ``remove_tree`` removes a folder or a prefix.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

# A request to object storage that does not answer fails in bounded time, and so does the
# run that made it: botocore's standard retry mode with 3 attempts (the AWS SDKs'
# default), 5 s to connect and 15 s to answer each, and s3fs's own retry of a failed
# request or read once more. Storage that refuses connections fails a request in about
# 2 s, storage that swallows them in about 95 s (botocore's defaults with s3fs's 5
# retries took 9 s and 7 minutes).
S3FS_RETRIES = 2
_S3_OPTIONS = {
    "config_kwargs": {
        "retries": {"mode": "standard", "total_max_attempts": 3},
        "connect_timeout": 5,
        "read_timeout": 15,
    }
}
_OPTIONS: dict[str, dict[str, Any]] = {"s3": _S3_OPTIONS, "s3a": _S3_OPTIONS}


def is_url(value: str | os.PathLike) -> bool:
    """True for ``scheme://…`` other than ``file://``."""
    text = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    scheme, separator, _ = text.partition("://")
    return bool(separator) and scheme.isidentifier() and scheme != "file"


def location(value: str | os.PathLike | RemotePath) -> Path | RemotePath:
    """A local ``Path`` for a path (or ``file://`` URL), a ``RemotePath`` for a URL."""
    if isinstance(value, RemotePath | Path):
        return value
    text = os.fspath(value)
    if is_url(text):
        return RemotePath.from_url(text)
    return Path(text.removeprefix("file://"))


class RemotePath:
    """A file or folder on an fsspec filesystem, with the pathlib methods the store uses."""

    __slots__ = ("fs", "path")

    def __init__(self, fs: Any, path: str) -> None:
        self.fs = fs
        self.path = path.rstrip("/")

    @classmethod
    def from_url(cls, url: str) -> RemotePath:
        """The object or prefix a URL names (its scheme's driver must be installed)."""
        try:
            import fsspec
        except ImportError as error:
            raise RuntimeError(
                f"{url} is a URL: storage by URL needs the cluster extra "
                '(pip install -e ".[cluster]")'
            ) from error
        scheme = url.partition("://")[0]
        fs, path = fsspec.core.url_to_fs(url, **_OPTIONS.get(scheme, {}))
        if scheme in _OPTIONS:
            fs.retries = S3FS_RETRIES  # a class attribute of s3fs, no argument
        return cls(fs, path)

    # -- names ------------------------------------------------------------------------

    def __truediv__(self, part: str | os.PathLike) -> RemotePath:
        return RemotePath(self.fs, posixpath.join(self.path, os.fspath(part)))

    def __str__(self) -> str:
        return self.fs.unstrip_protocol(self.path)

    def __repr__(self) -> str:
        return f"RemotePath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __lt__(self, other: RemotePath) -> bool:
        return str(self) < str(other)

    def __reduce__(self):
        # Rebuilt from the URL in a worker process: the filesystem's credentials come
        # from that process's environment, never from a pickle.
        return (RemotePath.from_url, (str(self),))

    @property
    def name(self) -> str:
        """The last part of the path."""
        return posixpath.basename(self.path)

    @property
    def suffix(self) -> str:
        """The extension of the last part, with its dot."""
        return PurePosixPath(self.path).suffix

    @property
    def parent(self) -> RemotePath:
        """The folder (prefix) that holds this one."""
        return RemotePath(self.fs, posixpath.dirname(self.path))

    def with_name(self, name: str) -> RemotePath:
        """A sibling."""
        return self.parent / name

    def with_suffix(self, suffix: str) -> RemotePath:
        """The same name with another extension."""
        return self.with_name(str(PurePosixPath(self.name).with_suffix(suffix)))

    def relative_to(self, other: RemotePath) -> PurePosixPath:
        """This path below ``other``."""
        return PurePosixPath(self.path).relative_to(other.path)

    def resolve(self) -> RemotePath:
        """Itself: object storage has no links to resolve."""
        return self

    # -- questions --------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether an object or a prefix with objects is there."""
        # Listings are cached per filesystem; another process may have written since.
        self.fs.invalidate_cache(self.path)
        return self.fs.exists(self.path)

    def is_dir(self) -> bool:
        """Whether objects lie under this prefix."""
        self.fs.invalidate_cache(self.path)
        return self.fs.isdir(self.path)

    def is_file(self) -> bool:
        """Whether an object is there."""
        self.fs.invalidate_cache(self.path)
        return self.fs.isfile(self.path)

    def is_symlink(self) -> bool:
        """Never: object storage has no symlinks."""
        return False

    def iterdir(self) -> Iterator[RemotePath]:
        """The objects and prefixes directly under this one."""
        self.fs.invalidate_cache(self.path)
        if not self.fs.isdir(self.path):
            return
        for entry in self.fs.ls(self.path, detail=False):
            if entry.rstrip("/") != self.path:
                yield RemotePath(self.fs, entry)

    def glob(self, pattern: str) -> Iterator[RemotePath]:
        """Objects and prefixes matching a relative pattern (``*``, ``?``, no ``**``)."""
        self.fs.invalidate_cache(self.path)
        for found in sorted(self.fs.glob(posixpath.join(self.path, pattern))):
            yield RemotePath(self.fs, found)

    def rglob(self, pattern: str) -> Iterator[RemotePath]:
        """Objects at any depth whose name matches ``pattern``."""
        self.fs.invalidate_cache(self.path)
        if not self.fs.isdir(self.path):
            return
        for found in sorted(self.fs.find(self.path)):
            if fnmatch.fnmatch(posixpath.basename(found), pattern):
                yield RemotePath(self.fs, found)

    def stat_size(self) -> int:
        """The object's size in bytes."""
        return int(self.fs.size(self.path))

    # -- reading and writing ----------------------------------------------------------

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: a prefix exists once an object is written under it."""

    def open(self, mode: str = "rb", encoding: str | None = None):
        """A file object of the fsspec filesystem."""
        if "b" in mode:
            return self.fs.open(self.path, mode)
        return self.fs.open(self.path, mode, encoding=encoding or "utf-8")

    def read_bytes(self) -> bytes:
        """The object's bytes."""
        return self.fs.cat_file(self.path)

    def read_range(self, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive) of the object, in one ranged GET."""
        return self.fs.cat_file(self.path, start=start, end=end)

    def read_text(self, encoding: str = "utf-8") -> str:
        """The object's text."""
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data: bytes) -> int:
        """Write the object in one PUT: readers see it whole or not at all."""
        self.fs.pipe_file(self.path, data)
        return len(data)

    def upload(self, source: Path) -> None:
        """Write the object from a local file (a multipart upload for a large one), whole."""
        self.fs.put_file(str(source), self.path)

    def download(self, target: Path) -> None:
        """Copy the object to a local file."""
        self.fs.get_file(self.path, str(target))

    def write_text(self, text: str, encoding: str = "utf-8") -> int:
        """Write the object's text in one PUT."""
        return self.write_bytes(text.encode(encoding))

    def unlink(self, missing_ok: bool = False) -> None:
        """Delete the object."""
        try:
            self.fs.rm_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def replace(self, target: RemotePath) -> RemotePath:
        """Move to ``target`` (a copy and a delete: not atomic, see ``replacing``)."""
        self.fs.mv(self.path, target.path)
        return target


def unreachable_errors() -> tuple[type[Exception], ...]:
    """What object storage raises, beside ``OSError``, when it cannot be reached.

    s3fs turns the server's error answers into ``OSError`` but passes botocore's own
    errors on as they are: an endpoint that refuses or times out, missing credentials.
    Empty when the cluster extra is not installed (then no location is a URL).
    """
    try:
        from botocore.exceptions import BotoCoreError
    except ImportError:
        return ()
    return (BotoCoreError,)


def arrow_path(path: Path | RemotePath) -> tuple[str, Any]:
    """The path and the pyarrow filesystem (None on disk) to hand to pyarrow readers."""
    if isinstance(path, RemotePath):
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        return path.path, PyFileSystem(FSSpecHandler(path.fs))
    return str(path), None


@contextmanager
def replacing(target: Path | RemotePath) -> Iterator[Path | RemotePath]:
    """Where to write ``target`` so that readers see the old file or the new, whole.

    On disk: a temporary sibling, renamed over ``target`` once the block ends without an
    error. On object storage: ``target`` itself, since an object appears only when its
    upload completes.
    """
    if isinstance(target, RemotePath):
        yield target
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        yield temporary
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)


def size_of(path: Path | RemotePath) -> int:
    """The size in bytes of a file on disk or an object on storage."""
    return path.stat_size() if isinstance(path, RemotePath) else path.stat().st_size


def copy_file(source: Path | RemotePath, target: Path | RemotePath) -> None:
    """Reuse an unchanged file: a hard link on disk (a copy across devices), else a
    server-side copy."""
    if isinstance(source, RemotePath) and isinstance(target, RemotePath):
        source.fs.copy(source.path, target.path)
        return
    assert isinstance(source, Path) and isinstance(target, Path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def remove_tree(path: Path | RemotePath) -> None:
    """Remove a folder (or every object under a prefix); nothing if it is not there."""
    if isinstance(path, RemotePath):
        path.fs.invalidate_cache(path.path)
        if path.fs.exists(path.path):
            path.fs.rm(path.path, recursive=True)
    elif path.exists():
        shutil.rmtree(path)
