"""One driver at a time for a data location on object storage: a lease object on the storage itself.

An fcntl lock lives on one machine's disk, so two drivers on two machines sharing an
``s3://`` data location would both take theirs. The lease is an object beside the data
(``<location>/run.lock``), created with ``PutObject`` and ``If-None-Match: *``: the server
lets exactly one writer create it. Its body says who holds it (host, pid, run id, since
when) and when it last beat. While the run lasts a thread rewrites it every
``HEARTBEAT_SECONDS``, each write conditional on the ETag of the last (``If-Match``), so a
holder whose lease was taken over learns it at its next beat rather than overwriting the
new holder; a driver beats once more just before it publishes (``renew``).

A driver that dies (SIGKILL, a lost machine) leaves its lease behind, and the nightly job
must not be blocked by it forever: a lease whose heartbeat is older than
``STALE_AFTER_SECONDS`` is taken over, with a write conditional on the stale object's
ETag, so that of two drivers taking it over at once exactly one wins. The holder releases
it with a delete conditional on its own ETag.

The heartbeat times are the holders' clocks (UTC): the drivers' clocks must agree to well
under the stale timeout (NTP does). The server must honour conditional writes, as AWS
S3, MinIO and moto do.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from nianbao_common.storage import RemotePath

# A heartbeat every 30 s; ten minutes without one (twenty missed beats, far longer than
# object storage's passing errors last) means the holder is gone.
HEARTBEAT_SECONDS = 30.0
STALE_AFTER_SECONDS = 600.0
# The object's errors a conditional request can meet when another driver got there first:
# a failed precondition (412), or a conflicting conditional write in flight (409).
_LOST_RACE = ("PreconditionFailed", "ConditionalRequestConflict")


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a lease, from when, and their last heartbeat (UNIX times)."""

    host: str
    pid: int
    run: str
    since: float
    heartbeat: float

    def to_bytes(self) -> bytes:
        """The lease object's body: JSON, times in UTC ISO 8601 for a person to read."""
        record = asdict(self)
        for name in ("since", "heartbeat"):
            record[name] = _iso(record[name])
        return json.dumps(record, indent=1).encode()

    @classmethod
    def from_bytes(cls, body: bytes) -> LeaseHolder | None:
        """The holder a lease object names; None for a body that is not one."""
        try:
            record = json.loads(body)
            return cls(
                host=str(record["host"]),
                pid=int(record["pid"]),
                run=str(record["run"]),
                since=datetime.fromisoformat(record["since"]).timestamp(),
                heartbeat=datetime.fromisoformat(record["heartbeat"]).timestamp(),
            )
        except (ValueError, KeyError, TypeError):
            return None


class LeaseHeldError(RuntimeError):
    """Another driver holds the lease and its heartbeat is fresh."""

    def __init__(self, where: RemotePath, holder: LeaseHolder) -> None:
        super().__init__(f"{where} is held by pid {holder.pid} on {holder.host}")
        self.where = where
        self.holder = holder


class LeaseLostError(RuntimeError):
    """Another driver took the lease over while this one held it."""


class StorageLease:
    """The lease ``target`` (an object on storage by URL), held by this process.

    ``acquire`` takes it or raises ``LeaseHeldError``; a heartbeat thread keeps it until
    ``release``; ``renew`` beats at once. ``lost`` turns true when another driver took it
    over meanwhile.
    """

    def __init__(
        self,
        target: RemotePath,
        run: str,
        *,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        stale_after_seconds: float = STALE_AFTER_SECONDS,
    ) -> None:
        self.target = target
        self.run = run
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_after_seconds = stale_after_seconds
        self.lost = False
        self._bucket, self._key, _ = target.fs.split_path(target.path)
        self._etag: str | None = None
        self._since = 0.0
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._beating: threading.Thread | None = None

    def acquire(self) -> LeaseHolder | None:
        """Take the lease: create it, or take over a stale one (its holder is returned).

        Raises ``LeaseHeldError`` when its holder's heartbeat is fresh.
        """
        self._since = time.time()
        holder = None
        # A round is lost only to a driver that changed the object meanwhile; three
        # rounds end with the lease or with a holder seen beating.
        for _ in range(3):
            etag = self._put_if(IfNoneMatch="*")
            taken_over = None
            if etag is None:
                found = self._read()
                if found is None:
                    continue  # released meanwhile: create it again
                body, stale = found
                holder = LeaseHolder.from_bytes(body)
                if holder is not None and not self.is_stale(holder):
                    raise LeaseHeldError(self.target, holder)
                # A body that names no holder has no heartbeat to trust: stale too.
                etag = self._put_if(IfMatch=stale)
                if etag is None:
                    continue
                taken_over = holder
            self._etag = etag
            self._beating = threading.Thread(
                target=self._beat, name="lease heartbeat", daemon=True
            )
            self._beating.start()
            return taken_over
        if holder is None:
            raise OSError(f"the lease {self.target} changed too often to be taken")
        raise LeaseHeldError(self.target, holder)

    def is_stale(self, holder: LeaseHolder) -> bool:
        """Whether a holder's last heartbeat is older than the stale timeout."""
        return time.time() - holder.heartbeat > self.stale_after_seconds

    def _this_holder(self) -> LeaseHolder:
        """This process as the lease's holder, beating now."""
        return LeaseHolder(
            host=socket.gethostname(),
            pid=os.getpid(),
            run=self.run,
            since=self._since,
            heartbeat=time.time(),
        )

    def renew(self) -> None:
        """Beat now, by a write conditional on the last; raises ``LeaseLostError`` if
        another driver has taken the lease over (and storage errors as they come)."""
        with self._guard:
            if not self.lost:
                etag = self._put_if(IfMatch=self._etag)
                self.lost = etag is None
                self._etag = etag or self._etag
        if self.lost:
            raise LeaseLostError(f"another driver took over {self.target}")

    def release(self) -> None:
        """Stop the heartbeat and delete the lease, unless another driver holds it now."""
        self._stop.set()
        if self._beating is not None:
            self._beating.join()
        with self._guard:
            if self.lost or self._etag is None:
                return
            try:
                self._call("delete_object", IfMatch=self._etag)
            except OSError as error:
                if not _lost_race(error):
                    raise
            self._etag = None

    # -- the object -------------------------------------------------------------------

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                self.renew()
            except LeaseLostError:
                return
            except Exception:  # noqa: BLE001 - storage that did not answer (OSError or
                # botocore's own): the next beat tries again
                continue

    def _put_if(self, **condition: str | None) -> str | None:
        """Write the lease as held by this process if ``condition`` holds: its new ETag,
        or None when another driver's write made the condition fail."""
        try:
            response = self._call(
                "put_object", Body=self._this_holder().to_bytes(), **condition
            )
        except OSError as error:
            if _lost_race(error):
                return None
            raise
        return response["ETag"]

    def _read(self) -> tuple[bytes, str] | None:
        """The lease object's body and ETag, read in one GET; None if there is none."""
        from fsspec.asyn import sync

        fs = self.target.fs

        async def get() -> tuple[bytes, str]:
            response = await fs._call_s3(
                "get_object", Bucket=self._bucket, Key=self._key
            )
            try:
                return await response["Body"].read(), response["ETag"]
            finally:
                response["Body"].close()

        try:
            return sync(fs.loop, get)
        except FileNotFoundError:
            return None

    def _call(self, method: str, **arguments: Any) -> dict:
        return self.target.fs.call_s3(
            method, Bucket=self._bucket, Key=self._key, **arguments
        )


def _lost_race(error: OSError) -> bool:
    """Whether s3fs's error is a conditional request refused for another writer's change:
    the object is there (for a create), gone or changed (for a rewrite or delete)."""
    if isinstance(error, FileExistsError | FileNotFoundError):
        return True
    response = getattr(error.__cause__, "response", None) or {}
    return response.get("Error", {}).get("Code") in _LOST_RACE


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")
