"""A real multi-node Ray cluster on this machine for the tests and the bench: a head (no CPUs: runs never land on
it) and worker nodes, each `ray start --block` in a process group of its own, so a test kills one node's processes
(its raylet, object store and actors) as a node loss would. Loopback addresses only; every wait is bounded."""

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
        self.env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_DISABLE_DOCKER_CPU_WARNING="1",
                        # a lost node is noticed in ~3 s instead of Ray's default ~30 s (5 missed checks of 3 s)
                        RAY_health_check_period_ms="1000", RAY_health_check_failure_threshold="3",
                        RAY_health_check_initial_delay_ms="1000")
        self.env.pop("GAN_LIVE_RAY_ADDRESS", None)
        self.store = str(object_store_mb * 1024 * 1024)
        self.nodes: list[subprocess.Popen] = []
        self.head = self._start(["--head", f"--port={self.port}", "--num-cpus=0", "--include-dashboard=false",
                                 f"--temp-dir={self.temp}"])
        self._wait_port()
        for _ in range(workers):
            self.add_node(cpus_per_worker)

    def _start(self, args: list[str]) -> subprocess.Popen:
        # The dashboard agent's port, chosen free: Ray's fixed default (52365) collides with any other Ray on this
        # machine (a user's, a bench's), and that node never joins. (Choosing the agent's other ports too kept the
        # second worker node from joining: Ray's defaults for those are picked per node already.)
        ports = [f"--dashboard-agent-listen-port={free_port()}"]
        return subprocess.Popen([RAY, "start", "--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats",
                                 f"--object-store-memory={self.store}", *ports, *args],
                                env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)

    def _wait_port(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1.0).close()
                return
            except OSError:
                if self.head.poll() is not None:
                    raise RuntimeError("the Ray head exited at start")
                time.sleep(0.2)
        raise TimeoutError("the Ray head did not open its port")

    def alive_nodes(self) -> int:
        """How many nodes (the head included) the cluster's GCS counts as alive; no ray.init needed."""
        from ray._raylet import GcsClient

        info = GcsClient(address=self.address).get_all_node_info(timeout=5)
        return sum(1 for n in info.values() if n.state == 0)  # GcsNodeInfo.ALIVE

    def add_node(self, cpus: int = 2, timeout: float = 60.0) -> subprocess.Popen:
        """Start one worker node and wait until it has joined. One at a time: two nodes starting together on
        one machine sometimes left the second unjoined for good; a node that does not join is started again once."""
        for attempt in range(2):
            before = self.alive_nodes()
            node = self._start([f"--address={self.address}", f"--num-cpus={cpus}"])
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and node.poll() is None:
                if self.alive_nodes() > before:
                    self.nodes.append(node)
                    return node
                time.sleep(0.2)
            self._kill(node)
        raise TimeoutError("a Ray worker node did not join the cluster (twice)")

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
        import psutil

        for node in self.nodes:
            try:
                if pid in {p.pid for p in psutil.Process(node.pid).children(recursive=True)}:
                    return node
            except psutil.NoSuchProcess:
                continue
        raise LookupError(f"no worker node of this cluster runs pid {pid}")

    def kill_node(self, node: subprocess.Popen) -> None:
        """SIGKILL every process of that node (its group and its descendants): as if the machine had gone."""
        self._kill(node)

    @staticmethod
    def _kill(node: subprocess.Popen) -> None:
        import psutil

        try:
            procs = psutil.Process(node.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            procs = []
        try:
            os.killpg(node.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for proc in procs:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        node.wait(10)

    def shutdown(self) -> None:
        for proc in [*self.nodes, self.head]:
            try:
                self._kill(proc)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.temp, ignore_errors=True)
