"""The disk as writers meet it: lock files held while writing, storage errors in one line.

Shared by the archive writer (a lock per site) and the nightly job (a lock per data
directory), whose messages thereby read alike.
"""

from __future__ import annotations

import errno
import fcntl
import sqlite3
from pathlib import Path
from typing import TextIO

from nianbao_common.storage import RemotePath

KEPT = "what was committed is kept"


def try_lock(path: Path) -> TextIO | None:
    """Open ``path`` (created if missing) holding its exclusive lock; None if another
    process holds it.

    The lock is ``flock``: the kernel frees it when the holder dies, so a killed run never
    leaves a stale lock. The file is opened for reading and appending, and kept as it is:
    a holder may write into it who it is.
    """
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def unlock(handle: TextIO) -> None:
    """Release a lock of ``try_lock`` and close its file.

    Unlocked explicitly, not only closed: a child process forked meanwhile shares the
    open file, and would otherwise hold the lock for as long as it lives.
    """
    try:
        fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


def storage_problem(
    error: OSError | sqlite3.Error,
    where: Path | RemotePath | str,
    kept: str = KEPT,
    *,
    size_limit_as_full: bool = False,
) -> str:
    """One line for an OS or SQLite error met writing ``where``: what happened, what to do.

    ``where`` is the file or folder written, as shown; ``kept`` says what the failure
    leaves whole (the caller knows what it was writing);
    ``size_limit_as_full`` words a file size limit (EFBIG) as a full disk.

    >>> storage_problem(OSError(errno.ENOSPC, "No space left on device"), Path("raw"))
    'the disk is full (raw): free space, then run again; what was committed is kept'
    """
    if isinstance(error, OSError):
        where = Path(error.filename) if error.filename else where
        limit = error.errno == errno.EFBIG
        if error.errno in (errno.ENOSPC, errno.EDQUOT) or (
            limit and size_limit_as_full
        ):
            return f"the disk is full ({where}): free space, then run again; {kept}"
        if limit:
            return (
                f"file size limit reached ({where}): free space or raise the limit "
                f"(ulimit -f), then run again; {kept}"
            )
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return _no_permission(where)
        return f"{error.strerror or error} ({where}); {kept}"
    code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
    if code == sqlite3.SQLITE_FULL:
        return f"the disk is full ({where}): free space, then run again; {kept}"
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return f"the manifest {where} is locked by another process: wait for it to end, then run again"
    if code in (
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_AUTH,
    ):
        return _no_permission(where)
    if code == sqlite3.SQLITE_IOERR:
        return (
            f"I/O error writing {where} ({error}): the disk may be full or failing; "
            f"check it, then run again; {kept}"
        )
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return f"the manifest {where} is damaged ({error}): restore it from a backup"
    return f"manifest error ({where}): {error}"


def _no_permission(where: Path | RemotePath | str) -> str:
    return (
        f"no permission to write {where}: fix the permissions or choose another data "
        "directory (--data-dir, NIANBAO_DATA), then run again"
    )
