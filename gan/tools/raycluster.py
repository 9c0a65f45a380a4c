"""A real multi-node Ray cluster on this machine for the tests and the bench (`python -m gan bench --parts ray`):
a head (no CPUs: runs never land on it) and worker nodes, each `ray start --block` in a process group of its own, so
a test kills one node's processes (its raylet, object store and actors) as a node loss would. Must not touch the
app's runs; loopback addresses only; every wait is bounded. Processes are found through gan.tools.procs (/proc)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gan.tools import procs

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    def __init__(self, workers: int = 2, cpus_per_worker: int = 2, object_store_mb: int = 80):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temp = tempfile.mkdtemp(prefix="gr", dir="/tmp")  # short: Ray's socket paths have a length limit
        # RAY_AUTH_MODE: loopback only, no token (with it unset, a ~/.ray/auth_token left by any local ray.init
        # turns token auth on in the head but not in the nodes, and no node joins).
        self.env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_DISABLE_DOCKER_CPU_WARNING="1",
                        RAY_AUTH_MODE="disabled",
                        # a lost node is noticed in ~3 s instead of Ray's default ~30 s (5 missed checks of 3 s)
                        RAY_health_check_period_ms="1000", RAY_health_check_failure_threshold="3",
                        RAY_health_check_initial_delay_ms="1000")
        self.env.pop("GAN_LIVE_RAY_ADDRESS", None)
        self.store = str(object_store_mb * 1024 * 1024)
        self.nodes: list[subprocess.Popen] = []
        self._started = 0
        self._logs: dict[int, Path] = {}
        self.head = self._start(["--head", f"--port={self.port}", "--num-cpus=0", "--include-dashboard=false",
                                 f"--temp-dir={self.temp}"])
        try:
            self._wait_port()
            for _ in range(workers):
                self.add_node(cpus_per_worker)
        except BaseException:
            self.shutdown()  # nothing of a cluster that did not start is left running
            raise

    def _start(self, args: list[str]) -> subprocess.Popen:
        # The dashboard agent's port, chosen free: Ray's fixed default (52365) collides with any other Ray on this
        # machine (a user's, a bench's), and that node never joins. (Choosing the agent's other ports too kept the
        # second worker node from joining: Ray's defaults for those are picked per node already.)
        ports = [f"--dashboard-agent-listen-port={free_port()}"]
        self._started += 1
        path = Path(self.temp) / f"start-{self._started}.log"
        with open(path, "wb") as out:  # why a node ended: start_log
            proc = subprocess.Popen([RAY, "start", "--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats",
                                     f"--object-store-memory={self.store}", *ports, *args],
                                    env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self._logs[proc.pid] = path
        return proc

    def start_log(self, node: subprocess.Popen) -> str:
        """What that node's `ray start` printed (the reason it exited, when it did)."""
        try:
            return self._logs[node.pid].read_text(errors="replace")[-3000:]
        except (KeyError, OSError):
            return ""

    def _wait_port(self, timeout: float = 90.0) -> None:
        """Until the head's `ray start` says it is up (its GCS answers on the port by then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.head.poll() is not None:
                raise RuntimeError(f"the Ray head exited at start: {self.start_log(self.head)[-800:]}")
            if "Ray runtime started." in self.start_log(self.head):
                return
            time.sleep(0.2)
        raise TimeoutError("the Ray head did not start")

    def alive_nodes(self) -> int:
        """How many nodes (the head included) the cluster's GCS counts as alive; no ray.init needed."""
        from ray._raylet import GcsClient

        info = GcsClient(address=self.address).get_all_node_info(timeout=5)
        return sum(1 for n in info.values() if n.state == 0)  # GcsNodeInfo.ALIVE

    def add_node(self, cpus: int = 2, timeout: float = 90.0, attempts: int = 3) -> subprocess.Popen:
        """Start one worker node and wait until `ray start` says it is up ("Ray runtime started."). One at a time:
        two nodes starting together on one machine sometimes left the second unjoined for good. On a loaded
        machine `ray start` can give up on its own node after it joined (its 30 s wait for the GCS), and exits:
        that node is started again, up to ``attempts`` times."""
        for _attempt in range(attempts):
            node = self._start([f"--address={self.address}", f"--num-cpus={cpus}"])
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and node.poll() is None:
                if "Ray runtime started." in self._logs[node.pid].read_text(errors="replace"):
                    self.nodes.append(node)
                    return node
                time.sleep(0.2)
            self._kill(node)
        raise TimeoutError(f"a Ray worker node did not start ({attempts} tries): {self.start_log(node)[-800:]}")

    def wait_for_nodes(self, timeout: float = 60.0) -> None:
        """Poll until every node started here counts as alive (after a kill: until the cluster has noticed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.alive_nodes() == 1 + sum(1 for n in self.nodes if n.poll() is None):
                return
            time.sleep(0.2)
        raise TimeoutError("the Ray cluster's node count did not settle")

    def node_of(self, pid: int) -> subprocess.Popen:
        """The worker node whose processes include ``pid`` (an actor's process descends from its node's raylet)."""
        for node in self.nodes:
            if pid in procs.descendants(node.pid):
                return node
        raise LookupError(f"no worker node of this cluster runs pid {pid}")

    def pids(self) -> list[int]:
        """Every process of the cluster: the head's, each node's, and the actors they run."""
        return [pid for proc in [self.head, *self.nodes] if proc.poll() is None
                for pid in [proc.pid, *procs.descendants(proc.pid)]]

    def kill_node(self, node: subprocess.Popen) -> None:
        """SIGKILL every process of that node (its group and its descendants): as if the machine had gone."""
        self._kill(node)

    @staticmethod
    def _kill(node: subprocess.Popen) -> None:
        below = procs.descendants(node.pid)  # before the kill: orphans are re-parented and lost from view
        try:
            os.killpg(node.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in below:  # any that left the group (Ray's workers may start sessions of their own)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        node.wait(10)

    def shutdown(self) -> None:
        for proc in [*self.nodes, self.head]:
            try:
                self._kill(proc)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.temp, ignore_errors=True)
