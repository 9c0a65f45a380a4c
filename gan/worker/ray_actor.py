"""Owns a run hosted as a Ray actor: gan.worker.process's Worker behind actor methods instead of its two pipes.
Must not touch the server or import streamlit; ray itself is imported only by gan.worker.ray_client, which wraps
this class with ray.remote (so this file imports without Ray installed, and a test can call it in-process)."""

from __future__ import annotations

import os
import threading
import time

from gan.worker import heap
from gan.worker.process import Worker

BOOT_ID = "/proc/sys/kernel/random/boot_id"  # Linux: one per machine and boot (two nodes on one box share it)


def machine_id() -> str | None:
    """This machine, this boot (None where unknown: not Linux): an app server pins its threads beside a run actor
    only when they share a machine (gan.worker.ray_client.RayBackend.pin_beside)."""
    try:
        with open(BOOT_ID) as f:
            return f.read().strip() or None
    except OSError:
        return None


class RunActor:
    """One run's training process on a cluster node: the same Worker, commands and ticks as the worker process.

    What differs is only the transport. A command is an actor call that returns the Worker's Reply; ticks are
    pulled: each app server (a reader) asks every TICK_S for what each run gained since *it* last asked, so two or
    more servers over the same run each get every row, and a server that joins late first gets the whole history.
    The actor runs its methods in a small thread pool (max_concurrency), so a tick pull never waits behind a
    command; training runs in the Trainer's own thread, as in the worker process.
    """

    def __init__(self, torch_threads: int = 1, preload: str | None = "mnist5k"):
        import torch  # in the actor's process only: the driver imports this module without it

        heap.keep_flat()  # hours of ticks from several threads: gan/worker/heap.py
        if torch_threads > 0:
            torch.set_num_threads(torch_threads)
        self.worker = Worker(None, None)  # no pipes: call() and ticks() below are its transport
        if preload:  # warm the dataset cache so the Start that follows is quick
            threading.Thread(target=Worker.preload, args=(preload,), daemon=True).start()

    def call(self, request_id: int, cmd):
        """One command (gan.worker.messages) -> its Reply (never raises: a refusal is a Reply too)."""
        return self.worker.handle(request_id, cmd)

    def ticks(self, reader: str) -> list:
        """What each run gained since ``reader`` (an app server) last asked; [] when nothing changed."""
        return self.worker.ticks(reader)

    def where(self) -> dict:
        """The node and process this run trains in (placement tests, the bench, the node-loss check)."""
        import ray

        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(), "machine": machine_id()}

    def stop_all(self, timeout: float = 2.0) -> None:
        """Stop every run here with a last autosave (the server shuts down; the actor is killed next)."""
        for trainer in list(self.worker.trainers.values()):
            trainer.stop(timeout=timeout, clean=False)


class RoomState:
    """The cluster's one record of the presenter's run, shared by every app server over the cluster (a named,
    detached actor: ROOM_NAME in gan.worker.ray_client.NAMESPACE). Each server watches it and shows the run it
    names; a server that starts or brings back the presenter's run first claims the next epoch, so two servers
    pressing Start at the same moment start one run (the other shows it).

    An entry is a plain dict: name, actor (the run actor's name), config (Config.to_dict()), autosave_dir,
    autosave_root, epoch."""

    def __init__(self):
        self.epoch = 0  # bumped by every claim: the presenter's run changed hands
        self.current: dict | None = None
        self.labs: dict[str, LabRecord] = {}  # lab folder -> its shared record (gan.workshop.lab, on a cluster)

    def claim(self, seen_epoch: int) -> int | None:
        """The next epoch, when the caller's view (``seen_epoch``) is still the newest; None: another server was
        first (its run is or will be the current one). A caller that knows a newer epoch than this record (the
        record was made again after its head restarted) carries the count on."""
        if seen_epoch < self.epoch:
            return None
        self.epoch = seen_epoch + 1
        return self.epoch

    def publish(self, epoch: int, entry: dict) -> bool:
        """The run started under ``epoch`` is now the presenter's (False: a later claim came first)."""
        if epoch != self.epoch:
            return False
        self.current = {**entry, "epoch": epoch}
        return True

    def view(self) -> tuple[int, dict | None]:
        return self.epoch, self.current

    def lab(self, key: str, method: str, *args):
        """One call to the lab record of ``key`` (the lab's folder: servers over the same shared storage share one
        lab) -> (its answer, the record after it), so the caller's copy is fresh after every change it makes."""
        if method not in LabRecord.CALLS:
            raise ValueError(f"LabRecord has no call {method!r}")
        record = self.labs.setdefault(key, LabRecord())
        return getattr(record, method)(*args), record.view()


STARTING_S = 60.0  # a slot held for a start that never published its run (its server died) frees after this


class LabRecord:
    """A lab's shared state on a cluster (gan.workshop.lab keeps a copy per app server): the switch, the rules,
    the seats, the queue and each participant's run actor. Plain JSON-able data; every change is one actor call,
    so two servers can never give one name twice, start past the cap together, or disagree on a queue place.

    runs: slug -> a run entry (as RoomState's: name, actor, config, autosave_dir, autosave_root, step), or a slot
    held while its server starts the run ({"held": time}); "ended": True once a server saw the run finish."""

    CALLS = frozenset({"view", "seed", "set", "join", "request", "hold", "take", "cancel", "publish", "ended",
                       "forget"})

    def __init__(self):
        self.state = {"open": False, "away": "keep", "fixed": {}, "notice": "", "seats": {}, "queue": [],
                      "runs": {}}
        self.changes = 0  # a record never changed takes a server's saved lab (seed)

    def view(self) -> dict:
        return self.state

    def seed(self, saved: dict) -> bool:
        """The first server's lab from disk (a restart of the whole cluster); False when the record has a life."""
        if self.changes:
            return False
        for field in ("open", "away", "fixed", "seats"):
            if field in saved:
                self.state[field] = saved[field]
        self.changes += 1
        return True

    def set(self, fields: dict) -> None:
        """The presenter's switch and rules, and the notice every tab reads; closing empties the queue."""
        self.state.update({k: v for k, v in fields.items() if k in ("open", "away", "fixed", "notice")})
        if fields.get("open") is False:
            self.state["queue"] = []
        self.changes += 1

    def join(self, slug: str, name: str, new_key: str, given_key: str | None) -> tuple[str, list | None]:
        """("yours", seat) when given_key holds it; ("taken", seat); ("closed", None); ("new", seat) made now."""
        seat = self.state["seats"].get(slug)
        if seat is not None and given_key is not None and given_key == seat[1]:
            return "yours", seat
        if not self.state["open"]:
            return "closed", None
        if seat is not None:
            return "taken", seat
        seat = self.state["seats"][slug] = [name, new_key]
        self.changes += 1
        return "new", seat

    def _live(self) -> int:
        now = time.time()
        return sum(1 for e in self.state["runs"].values()
                   if not e.get("ended") and ("held" not in e or now - e["held"] < STARTING_S))

    def hold(self, slug: str, slots: int) -> bool:
        """A slot for ``slug``'s start (a Continue) when one is free under ``slots``."""
        if self._live() >= slots:
            return False
        self.state["runs"][slug] = {"held": time.time()}
        self.changes += 1
        return True

    def request(self, slug: str, config: dict, actions: list, slots: int) -> int:
        """0: start now (a slot is held for it); else its 1-based place in the queue (a new Start replaces an older
        request of the same seat)."""
        self.cancel(slug)
        if not self.state["queue"] and self.hold(slug, slots):
            return 0
        self.state["queue"].append([slug, config, actions])
        self.changes += 1
        return len(self.state["queue"])

    def take(self, slots: int) -> list | None:
        """The first queued request, its slot held, when one is free; None otherwise."""
        if not self.state["open"] or not self.state["queue"] or self._live() >= slots:
            return None
        item = self.state["queue"].pop(0)
        self.hold(item[0], slots)
        return item

    def cancel(self, slug: str) -> None:
        self.state["queue"] = [q for q in self.state["queue"] if q[0] != slug]
        self.changes += 1

    def publish(self, slug: str, entry: dict) -> None:
        self.state["runs"][slug] = dict(entry)
        self.changes += 1

    def ended(self, pairs: list) -> None:
        """[(slug, actor name)] a server saw finish; an entry of another actor (a newer run) stays live."""
        for slug, actor in pairs:
            entry = self.state["runs"].get(slug)
            if entry is not None and entry.get("actor") == actor:
                entry["ended"] = True
                self.changes += 1

    def forget(self, slug: str) -> None:
        self.state["runs"].pop(slug, None)
        self.cancel(slug)
