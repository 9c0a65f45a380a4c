"""A real app server for the bench and tests: free_port, start/stop_app_server, wait_http, its processes' CPU, RSS.
Must not drive the app (no clicks, viewers, Playwright) or hold a part's figures; of the bench imports only common."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from gan.tools.bench.common import REPO
from gan.tools.procs import cpu_seconds


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float) -> bool:
    """Poll url until it answers 200 (True) or timeout seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass  # not up yet; poll again
        time.sleep(0.2)
    return False


def start_app_server(port: int, env: dict, log_path: Path, script: str = "app.py",
                     extra: tuple = ()) -> subprocess.Popen:
    """`streamlit run app.py` in its own process group (so its worker children stop with it). The bench
    and the tests that need a real server start it here."""
    cmd = [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none",
           "--browser.gatherUsageStats", "false", *extra]
    with open(log_path, "wb") as log_file:  # a file, not a pipe: a chatty server can never block on it
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop_app_server(server: subprocess.Popen) -> None:
    """SIGTERM the server's process group, SIGKILL if it lingers; a no-op once the group is gone."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.pid, sig)  # the group started above: server, worker, anything they spawned
        except ProcessLookupError:
            return
        try:
            server.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_group_gone(pgid: int, timeout: float) -> bool:
    """Wait (bounded) until no process of the group is left; SIGKILL what remains at the end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)  # signal 0: is anyone left in the group?
        except ProcessLookupError:
            return True
        time.sleep(0.2)  # polling interval of a bounded wait
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    return False


def tree_cpu_seconds(pids: list[int]) -> float:
    """CPU seconds used so far by these processes together (the server's children)."""
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:
            pass  # ended in between: its time is lost to us, not to the figure's meaning
    return total


def vm_rss_mb(pid: int) -> float | None:
    """Resident memory of one process (VmRSS), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass  # ended while we read
    return None


def health_ms(url: str) -> float | None:
    """One /_stcore/health round trip in ms from a thread of its own (the viewers' event loop may lag)."""
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            r.read()
            return (time.perf_counter() - t0) * 1000 if r.status == 200 else None
    except OSError:
        return None
