"""Owns a run hosted as a Ray actor: gan.worker.process's Worker behind actor methods instead of its two pipes.
Must not touch the server or import streamlit; ray itself is imported only by gan.worker.ray_client, which wraps
this class with ray.remote (so this file imports without Ray installed, and a test can call it in-process)."""

from __future__ import annotations

import os
import threading

from gan.worker import heap
from gan.worker.process import Worker


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

        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}

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
