"""Owns the link from an app server to runs on a Ray cluster: connecting (GAN_LIVE_RAY_ADDRESS), one actor per run
placed by what it needs (gan.worker.ray_actor.RunActor), its commands, and its ticks pulled into the run's mirror.
Must not touch a run's state (its mirror, gan.worker.remote.RemoteTrainer, applies what arrives) nor decide which
runs exist (gan.workshop.runs); ray is imported only here, and only once an address is set."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from gan.engine.status import FailureKind
from gan.worker import messages as p
from gan.worker.client import (
    CALL_TIMEOUT_S,
    SPAWN_TIMEOUT_S,
    RunTable,
    WorkerError,
    can_pin,
    deliver_reply,
    pin_enabled,
    pin_threads,
    split_cores,
)
from gan.worker.process import TICK_S
from gan.worker.ray_actor import RoomState, RunActor, machine_id

log = logging.getLogger(__name__)

ADDRESS_ENV = "GAN_LIVE_RAY_ADDRESS"  # "auto" (a cluster started on this machine) or host:port of its head
GPU_ENV = "GAN_LIVE_RAY_GPU"  # the fraction of a GPU each run asks for (0.1: ten small runs share one card)
NAMESPACE = "gan-live"  # the app's actors live here: two app servers over one cluster find the same names
CONNECT_TIMEOUT_S = 20.0  # a head that does not answer by then: say so at start, never hang the page
ROOM_NAME = "gan-live-room"  # the named actor every app server reads the presenter's run from
ACTOR_CONCURRENCY = 4  # a tick pull, a command and a Stop's wait can run at once in one run's actor
QUEUED_CALL_S = 3.0  # a call to an actor the cluster has no slot for yet gives up this soon (the page says why)
REPO_ROOT = str(Path(__file__).resolve().parents[2])  # on every node: the same checkout (README: cluster setup)


class RayProblem(str, Enum):
    """Why the Ray backend could not be used (the start page says which, and what to do)."""

    NOT_INSTALLED = "not_installed"
    BAD_ADDRESS = "bad_address"
    UNREACHABLE = "unreachable"
    BAD_SETTING = "bad_setting"


class RayBackendError(RuntimeError):
    """GAN_LIVE_RAY_ADDRESS is set but the cluster cannot be used; ``kind`` says why (RayProblem)."""

    def __init__(self, kind: RayProblem, message: str):
        super().__init__(message)
        self.kind = kind


def address_from_env() -> str | None:
    """The cluster to run on, or None: no Ray (and ray is never imported)."""
    return os.environ.get(ADDRESS_ENV, "").strip() or None


@dataclass(frozen=True)
class Placement:
    """What one run asks the cluster for. A CPU run holds one CPU (its training thread keeps one core busy); a GPU
    run holds a fraction of a card and no CPU, so ten small runs share one GPU."""

    cpus: float = 1.0  # one core per run: more would idle (one training thread), fewer would oversubscribe
    gpus: float = 0.0  # 0: CPU; 0.1: a tenth of a GPU (ten runs per card)

    def options(self) -> dict:
        return {"num_cpus": self.cpus, "num_gpus": self.gpus}


def placement_from_env() -> Placement:
    raw = os.environ.get(GPU_ENV, "").strip()
    if not raw:
        return Placement()
    try:
        gpus = float(raw)
    except ValueError:
        gpus = -1.0
    if not 0.0 <= gpus <= 1.0:
        raise RayBackendError(RayProblem.BAD_SETTING, f"{GPU_ENV} must be a fraction of one GPU between 0 and 1 "
                                                      f"(0.1: ten runs per card), got {raw!r}")
    return Placement(cpus=0.0, gpus=gpus) if gpus > 0 else Placement()


def _host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in address:
        raise RayBackendError(RayProblem.BAD_ADDRESS, f"{ADDRESS_ENV} must be 'auto' or the head's host:port "
                                                      f"(e.g. 10.0.0.5:6379), got {address!r}")
    return host, int(port)


def actor_env() -> dict[str, str]:
    """What every actor of this server runs with: the checkout on the import path, and this server's GAN_LIVE_*
    settings (the autosave interval, the runs folder, the thread count), so a run behaves as it would here."""
    env = {k: v for k, v in os.environ.items() if k.startswith("GAN_LIVE_") and k != ADDRESS_ENV}
    return {**env, "PYTHONPATH": REPO_ROOT}


def connect(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Join the cluster once per process (ray.init), or raise RayBackendError within ``timeout`` s.

    An address that does not answer is refused after a plain TCP connect: ray.init itself would retry for minutes.
    """
    # A tick thread that outlives ray.shutdown() must fail, not start a private local cluster (Ray's auto-init):
    # read when ray is first imported.
    os.environ.setdefault("RAY_ENABLE_AUTO_CONNECT", "0")
    try:
        import ray
    except ImportError:
        raise RayBackendError(RayProblem.NOT_INSTALLED, f"{ADDRESS_ENV} is set but Ray is not installed here: "
                                                        "pip install -r requirements.txt") from None
    if ray.is_initialized():
        return
    if address != "auto":
        host, port = _host_port(address)
        try:
            socket.create_connection((host, port), timeout=min(timeout, 5.0)).close()
        except OSError as exc:
            raise RayBackendError(RayProblem.UNREACHABLE, f"no Ray cluster answers at {address} ({exc}); start its "
                                                          "head with `ray start --head`, or unset "
                                                          f"{ADDRESS_ENV} to train on this machine") from None
    failure: list[BaseException] = []

    def init() -> None:
        try:
            ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, ignore_reinit_error=True,
                     runtime_env={"env_vars": actor_env()})
        except BaseException as exc:  # noqa: BLE001 — reported below, in the caller's thread
            failure.append(exc)

    joining = threading.Thread(target=init, daemon=True, name="gan-ray-init")
    joining.start()
    joining.join(timeout)
    if joining.is_alive():
        raise RayBackendError(RayProblem.UNREACHABLE, f"the Ray cluster at {address} did not let this server join "
                                                      f"within {timeout:.0f} s")
    if failure:
        raise RayBackendError(RayProblem.UNREACHABLE, f"could not join the Ray cluster at {address}: "
                                                      f"{str(failure[0]).splitlines()[0]}")


class RayBackend:
    """This app server's side of a cluster: joins it, makes one RayClient per run, says whether a node died.

    ``on_lost(names)`` is called (from a tick thread) when runs' node left the cluster: the registry brings them
    back from their autosaves on another node (gan.workshop.runs.RunRegistry.recover)."""

    def __init__(self, address: str, placement: Placement | None = None, torch_threads: int = 1,
                 preload: str | None = "mnist5k", connect_timeout: float = CONNECT_TIMEOUT_S):
        connect(address, connect_timeout)
        import ray

        self.address = address
        self.placement = placement or placement_from_env()
        self.torch_threads, self.preload = torch_threads, preload
        # This server's name as a tick reader: each server pulls its own ticks of the same run.
        self.reader = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.on_lost = None
        self.actor_class = ray.remote(RunActor)
        self.room = self._room()
        # A cluster on this server's own machine (a laptop, a GPU box that also runs the app servers): as in process
        # mode (gan.worker.client.WorkerClient._pin), the presenter's actor gets the last core and this server's
        # threads the others, or its viewers' refreshes land on the training core (bench part ray: 0.80-0.90x
        # unpinned). Not when the actor is on another machine, off Linux, or with GAN_LIVE_PIN=0.
        self.pin = pin_enabled() and can_pin()
        self._cores = sorted(os.sched_getaffinity(0)) if self.pin else []
        self._pin_lock = threading.Lock()
        self._pinned_for: RayClient | None = None

    def client(self, pin: bool = False) -> RayClient:
        """``pin``: the presenter's run (pinned beside this server when its actor shares this machine)."""
        client = RayClient(self)
        client.pin = pin
        return client

    def pin_beside(self, client: RayClient, pid: int, machine: str | None) -> bool:
        """Pin ``client``'s actor (process ``pid`` on ``machine``) to the last core and this server to the others,
        when it trains on this machine. True when pinned."""
        split = split_cores(self._cores, self.torch_threads)  # the same split as beside the worker process
        if not self.pin or machine is None or machine != machine_id() or split is None:
            return False
        serve, train = split
        with self._pin_lock:
            try:
                pin_threads(set(train), pid)
                pin_threads(set(serve))
            except OSError as exc:  # not allowed (a container's cpuset), or the actor just ended: unpinned
                log.info("could not pin beside the run's actor: %s", exc)
                return False
            self._pinned_for = client
        return True

    def unpin(self, client: RayClient) -> None:
        """Every core back to this server, if it was pinned beside ``client``'s actor (a newer run's pin stays)."""
        with self._pin_lock:
            if self._pinned_for is not client:
                return
            self._pinned_for = None
            try:
                pin_threads(set(self._cores))
            except OSError:
                pass

    def spawn(self, name: str):
        """A new run actor: spread over the nodes, never restarted by Ray (the registry continues a lost run from
        its autosave, which keeps the charts; a blank restart would not). Named and detached, so another app server
        finds it (attach) and it outlives the server that started it."""
        return self.actor_class.options(**self.placement.options(), scheduling_strategy="SPREAD",
                                        max_concurrency=ACTOR_CONCURRENCY, max_restarts=0,
                                        name=name, namespace=NAMESPACE, lifetime="detached",
                                        runtime_env={"env_vars": actor_env()}).remote(
            self.torch_threads, self.preload)

    def attach(self, actor_name: str, pin: bool = False) -> RayClient:
        """A client of a run actor another app server started (ValueError: it is gone); ``pin`` as in client()."""
        import ray

        client = self.client(pin)
        client.attach(ray.get_actor(actor_name, namespace=NAMESPACE), actor_name)
        return client

    @staticmethod
    def _room():
        """The presenter's run, cluster-wide: made by the first server, found by the others. On the head node
        (its "node:__internal_head__" resource), so it shares the fate of the cluster, never of a worker node
        that may be lost; no CPU (it never takes a run's slot); detached: it outlives the server that made it."""
        import ray

        return ray.remote(RoomState).options(name=ROOM_NAME, namespace=NAMESPACE, get_if_exists=True,
                                             lifetime="detached", num_cpus=0, max_concurrency=1,
                                             resources={"node:__internal_head__": 0.001}).remote()

    def room_call(self, method: str, *args, timeout: float = 5.0):
        """One call to the room actor (claim, publish, view); a room that died (its head restarted) is made
        again and asked once more (RoomState.claim carries the epochs on)."""
        import ray
        from ray.exceptions import RayActorError

        try:
            return ray.get(getattr(self.room, method).remote(*args), timeout=timeout)
        except RayActorError:
            self.room = self._room()
            return ray.get(getattr(self.room, method).remote(*args), timeout=timeout)

    def slots(self) -> int:
        """How many runs the cluster trains at once now (its CPUs, or GPU shares, over what one run asks for)."""
        import ray

        total = ray.cluster_resources()
        if self.placement.gpus > 0:
            return max(1, int(total.get("GPU", 0.0) / self.placement.gpus + 1e-9))
        return max(1, int(total.get("CPU", 0.0) / self.placement.cpus + 1e-9))

    @staticmethod
    def node_alive(node_id: str | None) -> bool:
        """Whether the cluster still counts that node alive (unknown node: True, nothing to recover)."""
        if not node_id:
            return True
        import ray

        for node in ray.nodes():
            if node.get("NodeID") == node_id:
                return bool(node.get("Alive"))
        return True

    @staticmethod
    def nodes() -> list[dict]:
        """The cluster's live nodes: id and CPUs/GPUs (the page and the bench)."""
        import ray

        return [{"node_id": n["NodeID"], "cpus": n["Resources"].get("CPU", 0.0), "gpus": n["Resources"].get("GPU", 0.0)}
                for n in ray.nodes() if n.get("Alive")]


class RayClient(RunTable):
    """One run's actor and the link to it: the same surface as gan.worker.client.WorkerClient, so RemoteTrainer
    mirrors a run on a cluster exactly as one in the local worker process. Thread-safe; one command at a time.

    A command is an actor call with a timeout (a pending actor, waiting for a free CPU, reads as not answering yet:
    the run shows it is waiting). A thread pulls the run's ticks every TICK_S. An actor that dies fails its run with
    the cause; when its node left the cluster the backend's on_lost is told, so the run comes back elsewhere."""

    def __init__(self, backend: RayBackend):
        self.backend = backend
        self.call_timeout = CALL_TIMEOUT_S
        self.spawns = 0
        self.node_id: str | None = None  # where the actor was placed (known after its first answer)
        self.actor_name: str | None = None  # its name in the cluster (another app server attaches by it)
        self.attached = False  # another app server started this run: this one follows it and never ends it
        self.pid: int | None = None
        self.pin = False  # the presenter's run: pinned beside this server when on its machine (RayBackend.client)
        self.pinned = False
        self._lock = threading.Lock()
        super().__init__()
        self._actor = None
        self._dead = False
        self._closed = False  # released by the registry: a finished run's actor gives its CPU back for good
        self._answered = False
        self._next_id = 0
        self._wake = threading.Event()

    # --- the actor ----------------------------------------------------------------------------------
    def ensure_started(self) -> None:
        with self._lock:
            self._ensure_started_locked()

    def _ensure_started_locked(self) -> None:
        if self._closed:
            raise WorkerError(FailureKind.WORKER_DIED, "this run's Ray actor was released (a newer run took its place)")
        if self._actor is not None and not self._dead:
            return
        self.actor_name = f"gan-run-{uuid.uuid4().hex[:12]}"
        self._actor, self._dead, self._answered = self.backend.spawn(self.actor_name), False, False
        self.spawns += 1
        threading.Thread(target=self._pull_ticks, args=(self._actor,), daemon=True,
                         name=f"gan-ray-ticks-{self.spawns}").start()

    def attach(self, actor, actor_name: str) -> None:
        """Follow an actor another app server started: its ticks (this server's own reader), its commands."""
        with self._lock:
            self._actor, self._dead, self._answered, self.actor_name = actor, False, True, actor_name
            self.spawns += 1
            self.attached = True
        threading.Thread(target=self._pull_ticks, args=(actor,), daemon=True, name="gan-ray-ticks-attached").start()

    def alive(self) -> bool:
        return self._actor is not None and not self._dead and not self._closed

    def waiting_for(self) -> str | None:
        """While its actor has not started: why, when the cluster has no free slot for it (said on the run's page;
        the run waits in Ray's queue and starts as soon as a run elsewhere ends). None otherwise."""
        if self._actor is None or self._answered or self.node_id is not None:
            return None
        import ray

        need, free, total = self.backend.placement, ray.available_resources(), ray.cluster_resources()
        if need.gpus > 0 and free.get("GPU", 0.0) < need.gpus:
            return (f"waiting for a share of a GPU on the cluster (every share of its {total.get('GPU', 0):g} GPUs "
                    "is training a run): it starts as soon as one ends")
        if need.cpus > 0 and free.get("CPU", 0.0) < need.cpus:
            return (f"waiting for a free CPU on the cluster (all {total.get('CPU', 0):g} are training runs): it "
                    "starts as soon as one ends")
        return None

    def detach(self) -> None:
        """Stop following the actor (this server closes, or a newer run replaced it here); it trains on."""
        with self._lock:
            self._actor, self._closed = None, True
        self._wake.set()
        self.backend.unpin(self)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the run with a last autosave and end its actor (server shutdown, a released run)."""
        import ray

        with self._lock:
            actor, self._actor, self._closed = self._actor, None, True
        self._wake.set()
        self.backend.unpin(self)
        if actor is None:
            return
        try:
            ray.get(actor.stop_all.remote(), timeout=timeout)
        except Exception:  # noqa: BLE001 — dead or stuck: killed below either way
            pass
        try:
            ray.kill(actor)
        except Exception:  # noqa: BLE001
            pass

    # --- commands -------------------------------------------------------------------------------------
    def call(self, cmd: p.Command, timeout: float | None = None):
        """As WorkerClient.call: the reply's value, the worker's refusal raised, or WorkerError."""
        import ray
        from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError

        timeout = self.call_timeout if timeout is None else timeout
        died = None
        with self._lock:
            self._ensure_started_locked()
            actor = self._actor
            self._next_id += 1
            rid = self._next_id
            waited = max(timeout, SPAWN_TIMEOUT_S) if not self._answered else timeout
            if not self._answered and self.node_id is None and self.waiting_for() is not None:
                waited = QUEUED_CALL_S  # no slot for it yet: answer soon, so the page says so (and asks again)
            try:
                reply = ray.get(actor.call.remote(rid, cmd), timeout=waited)
                self._answered = True
            except GetTimeoutError:
                raise WorkerError(FailureKind.WORKER_UNRESPONSIVE,
                                  f"the run's Ray actor did not answer {type(cmd).__name__} within {waited:.0f} s "
                                  "(the cluster may have no free CPU for it yet)") from None
            except ActorUnavailableError:  # its node stopped answering: Ray says dead or back within seconds
                raise WorkerError(FailureKind.WORKER_UNRESPONSIVE, "the run's Ray actor is unreachable for now "
                                                                   "(its node is not answering)") from None
            except RayActorError as exc:
                died = exc
        if died is not None:  # outside the lock: _died takes it
            kind, cause = self._died(actor, died)
            raise WorkerError(kind, cause)
        if isinstance(cmd, p.Forget):
            with self._runs_lock:
                empty = not self._runs
            if empty:
                self.shutdown()  # its only run is gone: give the CPU back
        return deliver_reply(cmd, reply, self._run(cmd.name) if reply.status is not None else None)

    # --- ticks ------------------------------------------------------------------------------------------
    def _pull_ticks(self, actor) -> None:
        """The one reader of this actor's ticks: where it was placed, then what each run gained, every TICK_S."""
        import ray
        from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError

        while self._actor is actor and self.node_id is None and ray.is_initialized():
            try:  # waits while the actor is pending (no free CPU yet)
                where = ray.get(actor.where.remote(), timeout=SPAWN_TIMEOUT_S)
                self.node_id, self.pid = where["node_id"], where["pid"]
                if self.pin:
                    self.pinned = self.backend.pin_beside(self, self.pid, where.get("machine"))
            except (GetTimeoutError, ActorUnavailableError):
                self._wake.wait(TICK_S)
                continue
            except RayActorError as exc:
                self._died(actor, exc)
                return
        while self._actor is actor and ray.is_initialized():  # after ray.shutdown() (tests): nothing to pull
            try:
                ticks = ray.get(actor.ticks.remote(self.backend.reader), timeout=max(self.call_timeout, 1.0))
            except (GetTimeoutError, ActorUnavailableError):  # a swamped or unreachable node: Ray decides which
                self._wake.wait(TICK_S)  # meanwhile the run's banner says it is silent (gan.worker.remote.SILENT_S)
                continue
            except RayActorError as exc:
                self._died(actor, exc)
                return
            except Exception:  # noqa: BLE001 — a tick we cannot read must not end the mirror
                log.exception("unreadable ticks from a run's Ray actor")
                ticks = []
            for tick in ticks:
                self._deliver_tick(tick)
            self._wake.wait(TICK_S)

    def _died(self, actor, exc: BaseException) -> tuple[FailureKind, str]:
        """The actor is gone: fail its runs once with the cause; a lost node also tells the backend."""
        node_lost = not self.backend.node_alive(self.node_id)
        kind = FailureKind.NODE_LOST if node_lost else FailureKind.WORKER_DIED
        if node_lost:
            cause = "the cluster node this run trained on left the cluster"
        else:  # killed on a living node: by hand, by Ray's memory monitor, a crash; Ray's first line says which
            cause = f"the run's Ray actor died ({str(exc).strip().splitlines()[0][:300]})"
        with self._lock:
            if self._actor is not actor or self._dead:
                return kind, cause
            self._dead = True
        self.backend.unpin(self)  # its core is free again (a run brought back elsewhere pins anew)
        with self._runs_lock:
            runs = list(self._runs.values())
        for run in runs:
            run.on_worker_death(cause, kind)
        if node_lost and self.backend.on_lost is not None:
            self.backend.on_lost([run.name for run in runs])
        return kind, cause
