"""Owns the training worker process: its command loop, the Trainers running in it and the ticks it publishes.
Must not touch streamlit, the server's state or anything outside its runs; it exits when its parent dies."""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import threading
import time

TICK_S = 0.2  # publisher period: a Pause reaches the server within this, a viewer within its refresh on top
WATCH_PARENT_S = 0.5  # how often the worker checks that the server process still exists


def parent_gone(parent_pid: int) -> bool:
    """True once the server that spawned this process has ended, on Linux, macOS and Windows alike.

    On Linux and macOS an orphan is re-parented (to init or a subreaper), so its parent pid changes. Windows never
    re-parents (os.getppid keeps the dead parent's pid), so there the handle multiprocessing's spawn keeps on the
    parent answers (multiprocessing.parent_process: a process handle on Windows, a pipe the parent holds elsewhere).
    Neither needs /proc."""
    if os.getppid() != parent_pid:
        return True
    parent = multiprocessing.parent_process()  # None when not started by multiprocessing (then getppid says it)
    return parent is not None and not parent.is_alive()


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(WATCH_PARENT_S)
        if parent_gone(parent_pid):
            # The command loop has normally seen EOF and is stopping the runs with a last autosave: give it
            # the time for that, then make sure this process does not outlive the server.
            time.sleep(5.0)
            os._exit(0)


def main(cmd_conn, tick_conn, parent_pid: int, torch_threads: int, preload: str | None, nice: int = 0) -> None:
    """Entry point of the spawned process (multiprocessing target). ``nice``: a lab's participant worker yields
    the CPU to the presenter's run (gan.worker.pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the server's terminal: the server stops us
    if nice > 0 and hasattr(os, "nice"):
        os.nice(nice)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="gan-watch-parent").start()
    import torch

    from gan.worker import heap

    heap.keep_flat()  # hours of ticks and history copies from several threads: gan/worker/heap.py
    if torch_threads > 0:
        torch.set_num_threads(torch_threads)
    Worker(cmd_conn, tick_conn).serve(preload)


class Worker:
    """Trainers run here, with their own GIL, away from the web server.

    Why a process: at these tensor sizes a training step is GIL-bound, so in one process every
    millisecond the Streamlit server spends on a viewer's refresh came out of training (30 viewers cut
    it to 0.09x). Here the server only sends commands (gan.worker.messages) and reads ticks.

    Two pipes: commands in, one Reply out for each (main thread); ticks out from a publisher thread that
    sends, every TICK_S, each run's status and what its History gained since the last tick. The worker
    exits when its parent dies: the command pipe reads EOF (its runs are stopped as interrupted, with a
    last autosave) and, as a backstop, a parent-pid watch. Not PR_SET_PDEATHSIG: it fires when the
    *thread* that spawned us ends, and Streamlit runs each script in a short-lived thread.
    """

    def __init__(self, cmd_conn, tick_conn):
        self.cmd_conn, self.tick_conn = cmd_conn, tick_conn
        self.trainers: dict = {}  # run name -> Trainer
        # (reader, run name) -> gan.engine.history.SyncCursor of what that reader has. A reader is one server: the
        # pipe has one (""); a Ray actor (gan.worker.ray_actor) one per app server, each pulling its own ticks.
        self.cursors: dict = {}
        self.published: dict = {}  # (reader, run name) -> the status its last tick carried
        self._lock = threading.Lock()  # trainers/cursors between the command loop and the publisher
        self._send_lock = threading.Lock()
        self._stop = threading.Event()

    def serve(self, preload: str | None) -> None:
        publisher = threading.Thread(target=self._publish_loop, daemon=True, name="gan-tick-publisher")
        publisher.start()
        if preload:  # warm the dataset cache so Start is quick (the server's first page spawned us)
            threading.Thread(target=self.preload, args=(preload,), daemon=True).start()
        from gan.worker import messages as p

        while True:
            try:
                request_id, cmd = self.cmd_conn.recv()
            except (EOFError, OSError):
                break  # the server is gone
            if isinstance(cmd, p.Shutdown):
                self._reply(p.Reply(request_id, True))
                break
            self._reply(self.handle(request_id, cmd))
        self._stop.set()
        for t in list(self.trainers.values()):
            t.stop(timeout=2.0, clean=False)  # the server went away: interrupted, to be continued
        # os._exit, not sys.exit: torch's intra-op threads may still exist, and interpreter teardown
        # with them alive aborts ("terminate called without an active exception").
        os._exit(0)

    @staticmethod
    def preload(dataset: str) -> None:
        """Load the dataset into this process's cache (a warm-up: a failure is left for Start to report)."""
        from gan.core.config import Config
        from gan.engine.trainer import cached_dataset

        try:
            cached_dataset(dataset, Config().data_dir, Config().resolved_device())
        except Exception:  # noqa: BLE001 — only a warm-up; Start reports a real failure
            pass

    def _reply(self, reply) -> None:
        with self._send_lock:
            self.cmd_conn.send(reply)

    # --- commands ---------------------------------------------------------------------------------
    def handle(self, request_id: int, cmd):
        """One command (gan.worker.messages) -> its Reply; never raises (the pipe's loop and the Ray actor)."""
        from gan.core.config import ConfigError
        from gan.worker import messages as p

        try:
            value = self._dispatch(cmd)
        except ConfigError as exc:
            return p.Reply(request_id, False, error=p.Refusal.CONFIG, message=exc.reason, field=exc.field)
        except (ValueError, TypeError) as exc:
            return p.Reply(request_id, False, error=p.Refusal.VALUE, message=str(exc))
        except RuntimeError as exc:
            return p.Reply(request_id, False, error=p.Refusal.RUNTIME, message=str(exc))
        except Exception as exc:  # noqa: BLE001 — a command must never kill the worker
            return p.Reply(request_id, False, error=p.Refusal.RUNTIME, message=f"{type(exc).__name__}: {exc}")
        trainer = self.trainers.get(cmd.name)
        stamp = time.monotonic()
        status = None if trainer is None else trainer.status()
        return p.Reply(request_id, True, value=value, status=status, stamp=stamp)

    def _dispatch(self, cmd):
        from gan.core.live import LiveChange
        from gan.worker import messages as p

        if isinstance(cmd, p.Ping):
            return os.getpid()
        if isinstance(cmd, p.Start):
            return self._start(cmd)
        if isinstance(cmd, p.Forget):
            with self._lock:
                trainer = self.trainers.pop(cmd.name, None)
                self._drop_cursors(cmd.name)
            if trainer is not None:
                trainer.stop(timeout=cmd.timeout)
            return None
        trainer = self.trainers.get(cmd.name)
        if trainer is None:
            raise RuntimeError(f"no run named {cmd.name!r} in the training worker")
        if isinstance(cmd, p.Pause):
            trainer.pause(cmd.reason)
        elif isinstance(cmd, p.Resume):
            trainer.resume()
        elif isinstance(cmd, p.Step):
            trainer.step(cmd.n, which=cmd.which)
        elif isinstance(cmd, p.Stop):
            return trainer.stop(timeout=cmd.timeout, clean=cmd.clean)
        elif isinstance(cmd, p.Change):
            trainer.change(*(LiveChange.checked(*c) for c in cmd.changes))  # checked again: the pipe is a border
        elif isinstance(cmd, p.SetMaxRate):
            trainer.set_max_rate(cmd.steps_per_sec)
        elif isinstance(cmd, p.Schedule):
            trainer.schedule(cmd.after_step, cmd.kind, cmd.value)
        elif isinstance(cmd, p.Snapshot):
            return _to_bytes(trainer.state_dict())
        elif isinstance(cmd, p.GeneratorWeights):
            if not trainer.has_models():
                raise RuntimeError("this run has no models yet (still loading, or it failed before the first step)")
            # the raw copy (ms at the boundary): RemoteTrainer computes the average's BatchNorm statistics in the
            # server, so a room of Samples pages costs the training process nothing more
            return _to_bytes(trainer.generator_copy(statistics=False).state_dict())
        else:
            raise ValueError(f"unknown command {type(cmd).__name__}")
        return None

    def _start(self, cmd):
        from gan.core.config import Config
        from gan.engine.trainer import Trainer
        from gan.store.checkpoint import CheckpointError, trainer_from_checkpoint

        if cmd.name in self.trainers and self.trainers[cmd.name].is_alive():
            raise RuntimeError(f"run {cmd.name!r} is already live in the training worker")
        config = Config.from_dict(cmd.config)
        if cmd.resume is not None:
            import torch

            state = torch.load(io.BytesIO(cmd.resume), map_location="cpu", weights_only=True)
            try:
                trainer = trainer_from_checkpoint(state, device=config.device, name=cmd.name)
            except CheckpointError as exc:
                raise ValueError(str(exc)) from None
        else:
            trainer = Trainer(config, name=cmd.name)
        trainer.dataset_fallback = cmd.dataset_fallback
        if cmd.autosave_dir:
            from gan.store.autosave import Autosaver

            trainer.autosave = Autosaver(cmd.autosave_dir, name=cmd.name, root=cmd.autosave_root or None)
        for after_step, kind, value in cmd.actions:
            trainer.schedule(after_step, kind, value)
        trainer.set_max_rate(cmd.max_rate)
        with self._lock:
            self.trainers[cmd.name] = trainer
            self._drop_cursors(cmd.name)  # every reader starts this run afresh: its first tick is the whole history
        trainer.start(paused=cmd.paused)
        return None

    def _drop_cursors(self, name: str) -> None:  # caller holds self._lock
        for key in [k for k in self.cursors if k[1] == name]:
            del self.cursors[key]
            self.published.pop(key, None)

    # --- ticks ------------------------------------------------------------------------------------
    def _publish_loop(self) -> None:
        while not self._stop.wait(TICK_S):
            for tick in self.ticks(""):
                try:
                    with self._send_lock:
                        self.tick_conn.send(tick)
                except (BrokenPipeError, EOFError, OSError):
                    os._exit(0)  # the server is gone: nobody to train for

    def ticks(self, reader: str) -> list:
        """What each run gained since ``reader`` last asked (a reader's first tick of a run: its whole history)."""
        with self._lock:
            runs = list(self.trainers.items())
        ticks = []
        for name, trainer in runs:
            tick = self._tick(reader, name, trainer)
            if tick is not None:
                ticks.append(tick)
        return ticks

    def _tick(self, reader: str, name: str, trainer):
        from gan.engine.history import SyncCursor
        from gan.worker import messages as p

        key = (reader, name)
        with self._lock:
            if self.trainers.get(name) is not trainer:
                return None  # forgotten or replaced meanwhile
            cursor = self.cursors.setdefault(key, SyncCursor())
        stamp = time.monotonic()  # system-wide clock: the server keeps the newest of tick and reply statuses
        status = trainer.status()  # before the delta: the delta holds at least the steps this status counts
        delta, new_cursor = trainer.history.changes_since(cursor)
        if (delta is not None and not delta.rows and not delta.events and not delta.grids and delta.probs is None
                and status == self.published.get(key)):
            return None  # nothing new: a paused or finished run sends nothing
        full = None if delta is not None else _to_bytes(trainer.history.state_dict())
        with self._lock:
            if self.trainers.get(name) is trainer:
                self.cursors[key] = new_cursor
                self.published[key] = status
        return p.Tick(name, status, delta, full, trainer.last_manual_step, trainer.last_stats,
                      trainer.has_models(), stamp=stamp)


def _to_bytes(obj) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()
