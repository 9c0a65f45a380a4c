"""Looking at processes through /proc (Linux): children of the server, its training worker, their CPU.
Must not start or kill processes; it only reads /proc.

The one home for what the bench and the tests need to find and measure the app's processes. Reads
only; a process that ends while we look is simply not listed. No streamlit. The app itself never needs it:
on macOS and Windows (no /proc) every function raises ProcUnavailable, a clear error instead of an empty answer
(an empty list of children, or "not alive", would read as a result).
"""

from __future__ import annotations

import os

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PROC = "/proc"  # Linux's process table as files


class ProcUnavailable(OSError):
    """This system has no /proc (macOS, Windows): the process measurements of the bench and tests are Linux-only."""


def _proc(*parts) -> str:
    if not os.path.isdir(PROC):
        raise ProcUnavailable(f"{PROC} does not exist on this system: finding and measuring the app's processes "
                              "(the bench's viewers/server/soak parts, the worker process tests) needs Linux")
    return os.path.join(PROC, *(str(part) for part in parts))


def _stat_fields(pid: int | str) -> list[str]:
    with open(_proc(pid, "stat")) as f:
        return f.read().rsplit(")", 1)[1].split()  # the command name may hold spaces: split after it


def parents() -> dict[int, list[int]]:
    """ppid -> the pids of its live children."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir(_proc()):
        if not entry.isdigit():
            continue
        try:
            ppid = int(_stat_fields(entry)[1])
        except ProcUnavailable:
            raise
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
        children.setdefault(ppid, []).append(int(entry))
    return children


def children(pid: int) -> list[int]:
    return sorted(parents().get(pid, []))


def descendants(pid: int) -> list[int]:
    """Live descendant processes of pid (the training worker and its helpers, when the app uses one)."""
    tree, out, todo = parents(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def cmdline(pid: int) -> str:
    path = _proc(pid, "cmdline")
    try:
        with open(path, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """True for a running process; a zombie (ended, not yet reaped) counts as gone."""
    _proc()  # no /proc: say so, never "not alive"
    try:
        return _stat_fields(pid)[0] != "Z"
    except (OSError, IndexError):
        return False


def training_worker_pid(server_pid: int) -> int | None:
    """The server's training worker: a direct child started by multiprocessing's spawn (its command line
    runs spawn_main; the resource tracker, also a child, does not). After a respawn the newest one."""
    found = [pid for pid in children(server_pid) if "spawn_main" in cmdline(pid)]
    return max(found) if found else None


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads, children excluded)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)
