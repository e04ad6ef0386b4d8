"""External tools (LibreOffice, Tesseract) run with a time limit, killed whole past it.

``run_tool`` starts the tool in a process group of its own, which is killed, and waited
for until none of it is left alive, however the call ends. ``office`` converts with it and
``ocr`` reads with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

__all__ = ["run_tool"]


def run_tool(
    command: list[str],
    timeout: float,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run an external tool with a time limit; ``subprocess.TimeoutExpired`` past it.

    The tool runs in a session of its own, and however this call ends (done, timed out,
    or interrupted), every process left in that group is killed and gone before it
    returns: LibreOffice's launcher starts soffice.bin as a child, which killing the
    launcher alone (what ``subprocess.run`` does) leaves running, with its files open.
    """
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(stdin, timeout=timeout)
        finally:
            _kill_group(process)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def _kill_group(process: subprocess.Popen) -> None:
    """Kill every process of the tool's group and wait until none is left alive."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    # Children of the tool are not ours to wait for: they are gone once /proc shows
    # none of the group still running (a zombie is dead; its parent, or init, reaps it).
    deadline = time.monotonic() + 5
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _group_alive(group: int) -> bool:
    """Whether any process of the group is alive (not a zombie), as /proc shows."""
    processes = Path("/proc")
    if not processes.is_dir():  # not Linux: nothing to wait for
        return False
    for entry in processes.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        # pid (comm) state ppid pgrp …: comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == group and fields[0] not in ("Z", "X"):
            return True
    return False
