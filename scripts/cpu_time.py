"""Wall and CPU seconds of a command and of every process it starts, orphans included.

    python3 scripts/cpu_time.py .venv-llm/bin/python -m pytest tests/attributes

`/usr/bin/time` counts only the children that their parents wait for; the vLLM server's worker
and Ray's daemons are orphaned when the tests stop them, and their CPU time would be lost. This
wrapper makes itself the subreaper of everything the command starts (Linux prctl
PR_SET_CHILD_SUBREAPER), waits for all of it, and prints one line on stderr:
``cpu_time: <wall> s wall, <user> s user, <sys> s sys``. Its exit status is the command's.
"""

from __future__ import annotations

import ctypes
import os
import resource
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
ORPHAN_WAIT_S = 120  # Ray's daemons and vLLM's workers end within seconds of being stopped


def main(command: list[str]) -> int:
    if not command:
        print("usage: python3 scripts/cpu_time.py COMMAND [ARGS...]", file=sys.stderr)
        return 2
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("error: cannot become a subreaper (prctl PR_SET_CHILD_SUBREAPER); Linux only", file=sys.stderr)
        return 2
    started = time.monotonic()
    status = subprocess.call(command)
    left = _reap_orphans(deadline=time.monotonic() + ORPHAN_WAIT_S)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"cpu_time: {time.monotonic() - started:.1f} s wall, {usage.ru_utime:.1f} s user, "
          f"{usage.ru_stime:.1f} s sys" + (f" (not counted: {left} process(es) still running)" if left else ""),
          file=sys.stderr)
    return status


def _reap_orphans(deadline: float) -> int:
    """Wait for the orphans the command left behind until none is left or ``deadline``
    (time.monotonic()); the number still running then (left alone, not counted)."""
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 0
        if pid == 0:
            time.sleep(0.2)
    return len([p for p in os.listdir("/proc") if p.isdigit() and _parent(p) == os.getpid()])


def _parent(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
