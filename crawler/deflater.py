"""Gzip members of WARC records, deflated by a helper process on the machine's other core.

Deflating a record is the largest part of what archiving a page costs, and a Scrapy crawl
runs on one thread. A thread cannot take the work over: it needs the GIL back after every
member, and those handoffs cost the reactor thread more than the deflate they save
(measured). A helper process costs the reactor thread two pipe syscalls per record.

The parent side (``Deflater``) only writes payloads to the helper's stdin and reads members
from its stdout: the order of append, flush and manifest commit stays in the writer. The
helper reads jobs on its main thread and writes members on a second one, so it always drains
its stdin and the parent's blocking writes cannot deadlock with unread members. Should the
helper fail to start or die, the records it still owes are deflated in-process, as is every
record after them.

Run as a script, this file is the helper: ``python -I deflater.py LEVEL``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import select
import signal
import struct
import subprocess
import sys
import threading
import zlib
from collections import deque
from collections.abc import Iterator

_FRAME = struct.Struct("<Q")
_PIPE_BYTES = 1024 * 1024
logger = logging.getLogger(__name__)


def gzip_member(parts: tuple[bytes, ...], level: int) -> bytes:
    """The concatenated parts as one gzip member."""
    return zlib.compress(b"".join(parts), level, zlib.MAX_WBITS + 16)


class Deflater:
    """Turns records (tuples of byte strings) into gzip members, returned in order."""

    def __init__(self, level: int) -> None:
        self.level = level
        # Records submitted whose member has not been returned yet, oldest first.
        self._owed: deque[tuple[bytes, ...]] = deque()
        self._inbox = bytearray()
        try:
            self._helper: subprocess.Popen | None = subprocess.Popen(
                [sys.executable, "-I", __file__, str(level)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        except OSError as exc:
            logger.warning("deflating in-process: no helper process (%s)", exc)
            self._helper = None
            return
        self._jobs = self._helper.stdin.fileno()
        self._members = self._helper.stdout.fileno()
        for fd in (self._jobs, self._members):
            # Fewer blocking writes; the default 64 KiB pipe holds one report page.
            with contextlib.suppress(AttributeError, OSError):
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        os.set_blocking(self._members, False)

    def submit(self, parts: tuple[bytes, ...]) -> None:
        """Queue one record; its member comes out of ``members`` after those before it."""
        self._owed.append(parts)
        if self._helper is None:
            return
        frame = [_FRAME.pack(sum(map(len, parts))), *parts]
        try:
            written = os.writev(self._jobs, frame)
            total = sum(map(len, frame))
            if written < total:
                rest = memoryview(b"".join(frame))[written:]
                while rest:
                    rest = rest[os.write(self._jobs, rest) :]
        except OSError as exc:
            self._lose_helper(exc)

    def members(self, wait: bool) -> Iterator[bytes]:
        """Members of the submitted records, oldest first: those ready, or all (``wait``)."""
        while self._owed:
            member = self._next_member(wait)
            if member is None:
                return
            self._owed.popleft()
            yield member

    def close(self) -> None:
        """Stop the helper once it has answered (call after ``members(wait=True)``)."""
        if self._helper is not None:
            self._helper.stdin.close()
            self._helper.wait()
            self._helper.stdout.close()
            self._helper = None

    def _next_member(self, wait: bool) -> bytes | None:
        while self._helper is not None:
            if len(self._inbox) >= _FRAME.size:
                (size,) = _FRAME.unpack_from(self._inbox)
                end = _FRAME.size + size
                if len(self._inbox) >= end:
                    member = bytes(self._inbox[_FRAME.size : end])
                    del self._inbox[:end]
                    return member
            try:
                chunk = os.read(self._members, _PIPE_BYTES)
            except BlockingIOError:
                if not wait:
                    return None
                select.select([self._members], [], [])
                continue
            except OSError as exc:
                self._lose_helper(exc)
                break
            if not chunk:
                self._lose_helper(EOFError("the helper closed its output"))
                break
            self._inbox += chunk
        return gzip_member(self._owed[0], self.level)

    def _lose_helper(self, reason: BaseException) -> None:
        logger.warning("deflating in-process: the helper process failed (%s)", reason)
        assert self._helper is not None
        self._helper.kill()
        self._helper.wait()
        for stream in (self._helper.stdin, self._helper.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        self._helper = None
        self._inbox.clear()


def _serve(level: int) -> None:
    """The helper: frames of payload from stdin, frames of gzip member to stdout."""
    # Ctrl-C goes to the whole process group: the crawl shuts down and closes our stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    members: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    sender = threading.Thread(target=_send, args=(members,))
    sender.start()
    with os.fdopen(0, "rb") as jobs:
        while header := jobs.read(_FRAME.size):
            (size,) = _FRAME.unpack(header)
            members.put(zlib.compress(jobs.read(size), level, zlib.MAX_WBITS + 16))
    members.put(None)
    sender.join()


def _send(members: queue.SimpleQueue) -> None:
    # A parent that was killed leaves nobody to read: end quietly.
    with contextlib.suppress(BrokenPipeError), os.fdopen(1, "wb") as out:
        while (member := members.get()) is not None:
            out.write(_FRAME.pack(len(member)))
            out.write(member)
            out.flush()


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
