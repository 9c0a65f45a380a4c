"""Owns the process-wide run registry and its lock: named runs, the live cap, start, replace, continue, reset.
Must not touch streamlit, a page's state or a run's internals (it calls only gan.engine.run's interface)."""

import contextlib
import logging
import os
import threading
from pathlib import Path

import torch

from gan.core.config import Config
from gan.engine.history import History
from gan.engine.run import Run, RunView
from gan.engine.status import LIVE_STATES, FailureKind, RunState
from gan.engine.trainer import Trainer
from gan.quality.monitor import MetricsMonitor, quality_columns
from gan.store.autosave import (
    Autosaver,
    Interrupted,
    SavedRun,
    cap_bytes_from_env,
    every_s_from_env,
    find_interrupted,
    latest_valid,
    mark_clean,
    new_run_dir,
    read_quality,
    write_quality,
)
from gan.store.checkpoint import trainer_from_checkpoint
from gan.store.storage import StorageError
from gan.worker import heap
from gan.worker.client import WorkerClient
from gan.worker.ray_client import RayBackend, RayClient
from gan.worker.ray_client import address_from_env as ray_address_from_env
from gan.worker.remote import RemoteTrainer
from gan.workshop.snapshots import runs_dir

DEFAULT_MAX_RUNS = 1
# Quality metrics every N steps in the monitor's own thread (gan/quality/monitor.py); 0 turns them off.
DEFAULT_METRICS_EVERY = 500
# The dashboard shares the CPU with the Streamlit server and the browser that draws the charts.
# Measured on the 2-core workshop box (see docs/measurements.md / issue 4): 1 torch thread keeps the server and
# the browser responsive; GAN_LIVE_TORCH_THREADS overrides it (0 = leave torch's default).
DEFAULT_TORCH_THREADS = 1
# Where dashboard runs train (GAN_LIVE_TRAINER): "process" = a warm worker process with its own GIL
# (gan.worker.process), so viewers' refreshes cost training nothing; "thread" = a thread in the server process
# (tests, debugging; every viewer refresh then competes with training for the GIL).
TRAINER_MODES = ("process", "thread")
DEFAULT_TRAINER_MODE = "process"
ROOM_POLL_S = 0.25  # on a cluster: how often a server looks for a presenter's run another server started
log = logging.getLogger(__name__)


LAB_PREFIX = "lab-"  # a lab participant's run is named lab-<their name> (gan.workshop.lab); the presenter's never


def is_lab_run(name: str) -> bool:
    return name.startswith(LAB_PREFIX)


class RunLimitError(RuntimeError):
    """Starting another run would exceed the cap on concurrently live runs."""


class PresenterRunTaken(RunLimitError):
    """Another app server over the same cluster started (or brought back) the presenter's run at the same moment:
    this server shows that run instead of starting a second one."""


def recovery_banner(note: str) -> str:
    """What every page says of a run brought back after its node was lost (note: RunRegistry.recovered's text)."""
    return f"This run's {note.removeprefix('its ')}."


def trainer_mode_from_env() -> str:
    raw = os.environ.get("GAN_LIVE_TRAINER", "").strip().lower() or DEFAULT_TRAINER_MODE
    if raw not in TRAINER_MODES:
        raise ValueError(f"GAN_LIVE_TRAINER must be one of {', '.join(TRAINER_MODES)}, got {raw!r}")
    return raw


def int_from_env(name: str, default: int, minimum: int) -> int:
    """An integer setting from the environment; a bad value is an error that names the variable."""
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        value = (minimum -
                 1)  # pragma: no mutate (minimum - 2 is below the minimum too: the same error)
    if value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {raw!r}")
    return value


class RunRegistry:
    """Named Trainers, the newest one 'current'; every method is safe from any thread. One per server
    (st.cache_resource): reloads, tabs and page switches reattach to the same run instead of starting a
    second, and the cap (GAN_LIVE_MAX_RUNS, default 1) keeps a shared laptop from training twice."""

    def __init__(self, max_runs: int | None = None, torch_threads: int | None = None,
                 metrics_every: int | None = None, mode: str | None = None, runs_root=None):
        env = int_from_env
        self.max_runs = env("GAN_LIVE_MAX_RUNS", DEFAULT_MAX_RUNS, 1) if max_runs is None else int(max_runs)
        if self.max_runs < 1:
            raise ValueError("max_runs must be >= 1")
        self.torch_threads = (env("GAN_LIVE_TORCH_THREADS", DEFAULT_TORCH_THREADS, 0) if torch_threads is None
                              else int(torch_threads))
        self._lock = threading.Lock()  # two tabs pressing Start at once must not both pass the cap
        self.metrics_every = (env("GAN_LIVE_METRICS_EVERY", DEFAULT_METRICS_EVERY, 0) if metrics_every is None
                              else int(metrics_every))
        self.mode = trainer_mode_from_env() if mode is None else mode
        if self.mode not in TRAINER_MODES:
            raise ValueError(f"mode must be one of {TRAINER_MODES}, got {self.mode!r}")
        heap.keep_flat()  # the server lives for hours of refreshes: gan/worker/heap.py
        self.worker = None  # the one worker process every presenter run trains in (process mode)
        self.backend = None  # or a Ray cluster, one actor per run (GAN_LIVE_RAY_ADDRESS: gan.worker.ray_client)
        address = ray_address_from_env() if self.mode == "process" else None
        if address is not None:
            self.backend = RayBackend(address, torch_threads=max(1, self.torch_threads))
            self.backend.on_lost = self._recover_lost
            self._room_epoch = 0  # the newest presenter's run this server knows of (RoomState's epoch)
            self._closing = threading.Event()
        elif self.mode == "process":
            self.worker = WorkerClient(torch_threads=self.torch_threads)
            self.worker.ensure_started()  # warm now: torch imports while the page draws, Start is then quick
        self.recovered: dict[str, str] = {}  # run name -> how it came back after its node was lost (pages say so)
        self._runs: dict[str, RunView] = {}  # every kind: a live run, a finished one, an interrupted SavedRun
        # Autosaves: each run keeps itself in <runs dir>/live/<date-time>-<name>/ (gan.store.autosave). A run there
        # that did not stop cleanly (the server or the worker died) is shown at once and offered to continue.

        every_s_from_env(), cap_bytes_from_env()  # a bad GAN_LIVE_AUTOSAVE_S / _RUNS_MAX_MB: a clear error now
        self.runs_root = Path(runs_root).expanduser() if runs_root is not None else runs_dir()
        self.live_root = self.runs_root / "live"
        try:
            found, self.storage_notes = find_interrupted(self.live_root, accept=lambda name: not is_lab_run(name))
        except OSError as exc:  # an unreadable runs folder: say so, start empty
            found, self.storage_notes = [], [f"{self.live_root}: not readable ({exc})"]
        self._preview = SavedRun(found[0]) if found else None  # the newest interrupted run
        self._offer_cache: tuple | None = None  # ((run folder, newest autosave, mtime), Interrupted)
        self._monitors: dict[str, MetricsMonitor] = {}  # run name -> its quality monitor
        self._current: str | None = None  # pragma: no mutate ("" is falsy like None: no current run either way)
        self._owners: dict[str, str] = {}  # run name -> the lab participant it belongs to (gan.workshop.lab)
        self._counter = 0
        self._recovering: str | None = None  # the run recover() is starting (its note survives the start)
        if self.backend is not None:  # last: it reads what is set above
            self._look_at_room()  # now, not in ROOM_POLL_S: a Start right away must claim the newest epoch
            threading.Thread(target=self._watch_room, daemon=True, name="gan-ray-room").start()

    def live_runs(self) -> list[RunView]:
        with self._lock:
            return [t for t in self._runs.values() if t.is_alive() or t.state in LIVE_STATES]

    def start(self, config: Config, *, paused: bool = False, name: str | None = None, actions=(),
              replace: bool = False, timeout: float = 10.0, owner: str | None = None, worker=None) -> Run:
        """Create, register and start a run (a Trainer, or its twin in the worker process); raises RunLimitError
        when the cap is reached.

        actions: (after_step, kind, value) live changes handed to Trainer.schedule before the thread
        starts (a preset's "MSE at step 1200"), so they fire even when no browser tab is open.
        replace: stop the current run first (waiting up to timeout s), under the same lock as the start,
        so no other tab can start a run in between.
        owner: a lab participant's run (gan.workshop.lab): it never becomes the current (presenter's) run and the
        lab's own pool cap counts it, not max_runs; ``worker`` is the lab's worker process it trains in.
        """
        with self._lock:
            if replace:
                self._stop_current(timeout)
            if owner is None:
                self._check_cap()
            self._counter += 1
            if self.backend is not None and owner is None:  # cluster-wide names: the epoch this start claims
                name = name or f"run-{self._room_epoch + 1}"
            name = name or f"run-{self._counter}"
            if name in self._runs and (self._runs[name].is_alive() or self._runs[name].state in LIVE_STATES):
                raise RunLimitError(f"a run named {name!r} is live already")
            trainer = self._new_trainer(config, name, self._new_saver(name), worker, owner)
            for after_step, kind, value in actions:
                trainer.schedule(after_step, kind, value)
            return self._register_and_start(trainer, paused, owner)

    def adopt(self, trainer: Trainer, *, paused: bool = False, replace: bool = False,
              timeout: float = 10.0, owner: str | None = None, worker=None) -> Run:
        """Register a Trainer built elsewhere (a branch of a snapshot, an uploaded checkpoint), make it
        current and start it; the same cap and the same ``replace`` as start(). Its name gets a suffix if
        it is taken."""
        if trainer.is_alive() or trainer.state != RunState.IDLE:
            raise ValueError(f"run {trainer.name!r} was already started; adopt takes a new Trainer")
        with self._lock:
            if replace:
                self._stop_current(timeout)
            if owner is None:
                self._check_cap()
            self._counter += 1
            base, n = trainer.name, 2
            while trainer.name in self._runs:
                trainer.name, n = f"{base}-{n}", n + 1
            trainer.dataset_fallback = True  # dashboard semantics: fall back to mnist5k, with a warning
            if trainer.autosave is None:  # a branch or an upload: a folder of its own
                trainer.autosave = self._new_saver(trainer.name)
            worker = worker or self._worker_for_new_run(owner)
            if worker is not None:
                trainer = RemoteTrainer.from_trainer(worker, trainer)
            return self._register_and_start(trainer, paused, owner)

    def _new_saver(self, name: str, run_dir=None):

        return Autosaver(run_dir or new_run_dir(self.live_root, name), name=name, root=self.runs_root)

    def _worker_for_new_run(self, owner: str | None = None):
        """Where a new run trains: the worker process, a Ray actor of its own, or None (this process). The
        presenter's actor (no ``owner``) is pinned beside this server when it lands on its machine."""
        if self.backend is None:
            return self.worker
        client = self.backend.client(pin=owner is None)
        client.ensure_started()  # its actor exists (and has a name) before the run is published to the room
        return client

    # --- the presenter's run across app servers (a Ray cluster's RoomState) -------------------------------
    def _claim_presenter(self) -> int:  # caller holds self._lock
        epoch = self.backend.room_call("claim", self._room_epoch)
        if epoch is None:
            raise PresenterRunTaken("another app server started the presenter's run at the same moment: this page "
                                    "shows that run")
        return epoch

    def entry_of(self, trainer) -> dict:
        """What another app server needs to follow ``trainer``'s actor (RoomState's and LabRecord's entries)."""
        return {"name": trainer.name, "actor": trainer.client.actor_name, "config": trainer.config.to_dict(),
                "autosave_dir": trainer.autosave_dir, "autosave_root": trainer.autosave_root,
                "step": trainer.status().step, "note": self.recovered.get(trainer.name)}

    def _publish_presenter(self, epoch: int, trainer) -> None:  # caller holds self._lock
        entry = self.entry_of(trainer)
        if self._recovering != trainer.name:
            entry["note"] = None
        if self.backend.room_call("publish", epoch, entry):
            self._room_epoch = epoch

    def _watch_room(self) -> None:
        """Show the presenter's run another app server started (or brought back), within ROOM_POLL_S."""
        while not self._closing.wait(ROOM_POLL_S):
            self._look_at_room()

    def _look_at_room(self) -> None:
        try:
            epoch, entry = self.backend.room_call("view")
            if epoch > self._room_epoch and entry is not None and entry["epoch"] == epoch:
                self._attach_presenter(entry)
        except Exception:  # noqa: BLE001 — a slow or restarting head: the next look tries again
            log.debug("the room actor did not answer", exc_info=True)

    def _attach_presenter(self, entry: dict) -> None:
        try:
            client = self.backend.attach(entry["actor"], pin=True)
        except ValueError:  # its actor is gone (its server ended it): nothing to show, and this server may Start
            with self._lock:
                self._room_epoch = max(self._room_epoch, entry["epoch"])
            return
        trainer = RemoteTrainer.attached(client, Config.from_dict(entry["config"]), name=entry["name"],
                                         step=int(entry.get("step", 0)), autosave_dir=entry["autosave_dir"],
                                         autosave_root=entry["autosave_root"])
        with self._lock:
            if entry["epoch"] <= self._room_epoch:  # started here meanwhile
                client.detach()
                return
            self._room_epoch = entry["epoch"]
            previous = self._runs.get(self._current) if self._current not in (None, entry["name"]) else None
            replaced = self._runs.get(entry["name"])
            self._runs[entry["name"]] = trainer
            self._owners.pop(entry["name"], None)
            self._current = entry["name"]
            if entry.get("note"):  # brought back after its node was lost, by another app server: say so here too
                self.recovered[entry["name"]] = entry["note"]
                trainer.add_note(recovery_banner(entry["note"]))
            else:
                self.recovered.pop(entry["name"], None)
            self._start_monitor(trainer)
        for old in (replaced, previous):  # the presenter's previous run, finished: its charts stay, its CPU goes
            if old is not None and old is not trainer and not old.is_alive() and old.state not in LIVE_STATES:
                self._release(old)

    def attach_run(self, entry: dict, owner: str) -> RunView | None:
        """Follow a participant's run another app server started (the lab's shared record names its actor): its
        charts and its commands here too, so the Room page of every server shows it and its owner can steer it
        from any. None when its actor is gone."""
        try:
            client = self.backend.attach(entry["actor"])
        except ValueError:
            return None
        trainer = RemoteTrainer.attached(client, Config.from_dict(entry["config"]), name=entry["name"],
                                         step=int(entry.get("step", 0)), autosave_dir=entry["autosave_dir"],
                                         autosave_root=entry["autosave_root"])
        if entry.get("note"):
            trainer.add_note(recovery_banner(entry["note"]))
        with self._lock:
            old = self._runs.get(entry["name"])
            self._runs[entry["name"]] = trainer
            self._owners[entry["name"]] = owner
            self._start_monitor(trainer)
        if old is not None:
            self._release(old)
        return trainer

    def actor_of(self, name: str) -> tuple[str | None, bool]:
        """(the Ray actor name of run ``name`` or None, whether this server only follows it)."""
        client = getattr(self.get(name), "client", None)
        if not isinstance(client, RayClient):
            return None, False
        return client.actor_name, client.attached

    @property
    def remote(self) -> bool:
        """Runs train outside this process (a worker process or a Ray cluster)."""
        return self.worker is not None or self.backend is not None

    def _new_trainer(self, config: Config, name: str, saver, worker=None, owner: str | None = None) -> Run:
        worker = worker or self._worker_for_new_run(owner)
        if worker is None:
            return Trainer(config, dataset_fallback=True, name=name, autosave=saver)
        return RemoteTrainer(worker, config, name=name, dataset_fallback=True, autosave_dir=str(saver.run_dir),
                             autosave_root=str(saver.root))

    def _stop_current(self, timeout: float) -> None:  # caller holds self._lock
        current = self._runs.get(self._current) if self._current else None
        if current is not None and (current.is_alive() or current.state in LIVE_STATES):
            current.stop(timeout)

    def _check_cap(self) -> None:  # caller holds self._lock
        live = [t for n, t in self._runs.items()
                if n not in self._owners and (t.is_alive() or t.state in LIVE_STATES)]
        if len(live) >= self.max_runs:
            names = ", ".join(f"{t.name} (step {t.step_count}, {t.state})" for t in live)
            raise RunLimitError(
                f"{len(live)} run(s) already live, the limit is {self.max_runs}: {names}. "
                "Stop it first (or raise GAN_LIVE_MAX_RUNS to allow more at once).")

    def _register_and_start(self, trainer: Run, paused: bool, owner: str | None = None) -> Run:  # holds _lock
        epoch = None
        if self.backend is not None and owner is None:
            try:
                epoch = self._claim_presenter()
            except PresenterRunTaken:
                self._release(trainer)  # its actor was made for nothing
                if trainer.run_dir is not None:
                    with contextlib.suppress(OSError):
                        os.rmdir(trainer.run_dir)  # and its folder, still empty (it would read as a damaged run)
                raise
        if self.torch_threads > 0:
            # Process-wide in torch: intra-op threads for every run in this server.
            torch.set_num_threads(self.torch_threads)
        trainer.start(paused=paused)  # inside the lock: the cap counts it before anyone else looks
        replaced = self._runs.get(trainer.name)
        self._runs[trainer.name] = trainer  # after a start that worked: a refused one leaves no run behind
        if self._recovering != trainer.name:
            self.recovered.pop(trainer.name, None)  # a new start of that name is not the recovered run any more
        if self.backend is not None:  # a cluster: a run's actor holds a CPU until it is released
            self._release(replaced)
            if owner is None and self._current not in (None, trainer.name):
                old = self._runs.get(self._current)
                if old is not None and not old.is_alive() and old.state not in LIVE_STATES:
                    self._release(old)  # the presenter's previous run, finished: its charts stay, its CPU goes
        if owner is not None:  # a participant's run: the presenter's run and its Continue offer stay as they are
            self._owners[trainer.name] = owner
            self._start_monitor(trainer)
            return trainer
        self._owners.pop(trainer.name, None)
        self._current = trainer.name
        if epoch is not None:
            self._publish_presenter(epoch, trainer)
        if self._preview is not None and self._preview.run_dir != trainer.run_dir:
            # The presenter started something else instead of continuing: the interrupted run stays on disk
            # but is no longer offered (the next start of the app would otherwise offer it again).

            try:
                mark_clean(self._preview.run_dir)
            except OSError:
                pass
        self._preview = None
        self._start_monitor(trainer)
        return trainer

    @staticmethod
    def _release(run) -> None:
        """End a replaced or finished run's Ray actor (its mirror keeps the charts). Whichever server started it:
        a finished run's actor only holds a CPU, and the server that started it may be gone. A live one another
        server started is only no longer followed here."""
        client = getattr(run, "client", None)
        if not isinstance(client, RayClient):
            return
        if client.attached and (run.is_alive() or run.state in LIVE_STATES):
            client.detach()
        else:
            threading.Thread(target=client.shutdown, daemon=True, name=f"gan-release-{run.name}").start()

    def recover(self, name: str) -> Run | None:
        """A run whose cluster node was lost, continued from its newest autosave on another node, as the same
        run (its owner, its folder, the presenter's current run if it was); None when it has no autosave yet."""
        with self._lock:
            run = self._runs.get(name)
            owner = self._owners.get(name)
        if run is None or run.run_dir is None or run.status().failure != FailureKind.NODE_LOST:
            return None  # gone, never saved, or already back (another app server brought it back first)
        if owner is not None and getattr(getattr(run, "client", None), "attached", False):
            return None  # a participant's run is brought back by the server that started it (the lab republishes)
        try:
            path, state, skipped = latest_valid(run.run_dir, self.runs_root)
        except (StorageError, OSError):
            return None  # nothing saved yet: the run stays failed, with why, and Start begins anew
        step = int(state["step"])
        note = (f"its cluster node was lost at step {run.step_count:,}; it came back on another node from its "
                f"autosave at step {step:,}")
        history = History()
        history.load_state_dict(state["history"])
        history.add_event(step, "recovered", note)
        state = dict(state, history=history.state_dict())
        offer = Interrupted(run.run_dir, name, step, path.stat().st_mtime, path, state, tuple(skipped))
        self._recovering = name
        self.recovered[name] = note  # before the start: the room's entry carries it to the other app servers
        try:
            new = self.continue_run(offer, owner=owner)
        except BaseException:
            self.recovered.pop(name, None)
            raise
        finally:
            self._recovering = None
        new.add_note(recovery_banner(note))
        return new

    def _recover_lost(self, names: list[str]) -> None:
        """RayBackend.on_lost: bring back each run of a lost node (a thread each: a recovery loads an autosave)."""
        for name in names:
            threading.Thread(target=self._recover_quietly, args=(name,), daemon=True,
                             name=f"gan-recover-{name}").start()

    def _recover_quietly(self, name: str) -> None:
        try:
            self.recover(name)
        except PresenterRunTaken:
            pass  # another app server brought it back first: _watch_room shows its run
        except Exception:  # noqa: BLE001 — the run stays failed with its cause; Continue is offered as for any failure
            log.exception("could not bring run %s back after its node was lost", name)

    def _start_monitor(self, trainer: Run) -> None:  # caller holds self._lock
        if self.metrics_every > 0:
            # Its own thread: waits for the trainer's dataset, then scores a copy of G every N steps.
            run_dir = trainer.run_dir
            old = self._monitors.get(trainer.name)
            if old is not None:
                old.stop(0.0)  # a run of the same name again (a participant's second Start): its old scorer ends
            self._monitors[trainer.name] = MetricsMonitor(
                trainer, every=self.metrics_every, initial_rows=_read_quality(run_dir),
                on_rows=(lambda rows: _write_quality(run_dir, rows)) if run_dir else None).start()

    def monitor(self, trainer: RunView | None) -> MetricsMonitor | None:
        """The quality monitor of a run (None when metrics are off or the run is unknown)."""
        if trainer is None:
            return None
        with self._lock:
            return self._monitors.get(trainer.name)

    def quality_columns(self, trainer: RunView | None) -> dict | None:
        """The run's quality rows as plain columns (gan.quality.monitor.quality_columns), None without a monitor."""
        monitor = self.monitor(trainer)
        return None if monitor is None else quality_columns(monitor.snapshot().rows)

    def current(self) -> RunView | None:
        """The live or latest run; before any, the newest interrupted run as it was saved (SavedRun)."""
        with self._lock:
            return self._runs.get(self._current) if self._current else self._preview

    def continue_offer(self):
        """What the presenter can continue (gan.store.autosave.Interrupted), or None: the interrupted run shown
        since the app started, or the current run if it failed (a dead worker, an exception) and has an
        autosave."""

        current = self.current()
        if isinstance(current, SavedRun):
            return current.found
        if current is None or current.state != RunState.FAILED or current.run_dir is None:
            return None
        try:
            files = sorted(current.run_dir.glob("autosave-*.pt"))
            key = (current.run_dir, files[-1].name if files else "", files[-1].stat().st_mtime if files else 0)
            cached = self._offer_cache
            if cached is not None and cached[0] == key:
                return cached[1]  # the presenter's page asks on every rerun: load the file once
            path, state, skipped = latest_valid(current.run_dir, self.runs_root)
        except (StorageError, OSError):
            return None
        offer = Interrupted(current.run_dir, current.name, int(state["step"]), path.stat().st_mtime, path, state,
                            tuple(skipped))
        self._offer_cache = (key, offer)
        return offer

    def continue_run(self, offer=None, *, owner: str | None = None, worker=None) -> Run:
        """Continue an interrupted or failed run from its newest autosave, in the same folder (``owner``,
        ``worker``: a lab participant's run, as in start())."""

        offer = offer or self.continue_offer()
        if offer is None:
            raise ValueError("there is no interrupted run to continue")
        if not self.remote:
            trainer = trainer_from_checkpoint(offer.state, name=offer.name)
        else:
            # The worker checks the autosave against its config as it builds the run (a misfit fails the run, with
            # why). Checking it here too would build this process's first optimisers, which imports torch's compiler
            # stack: 12-14 s measured on a busy 2-core CPU, all of it inside the presenter's click on Continue.
            trainer = Trainer(Config.from_dict(dict(offer.state["config"], device="auto")), name=offer.name)
            trainer.set_resume_state(offer.state)
        trainer.autosave = self._new_saver(offer.name, run_dir=offer.run_dir)
        with self._lock:
            self._runs.pop(offer.name, None)  # the failed run of that name makes way for its continuation
        return self.adopt(trainer, owner=owner, worker=worker)

    def owner(self, name: str) -> str | None:
        """The lab participant a run belongs to, or None for the presenter's runs."""
        with self._lock:
            return self._owners.get(name)

    def forget_run(self, name: str, timeout: float = 5.0) -> None:
        """Stop one run and forget it (a participant's Reset); its folder stays on disk, marked as stopped."""
        with self._lock:
            run = self._runs.pop(name, None)
            monitor = self._monitors.pop(name, None)
            self._owners.pop(name, None)
            if self._current == name:
                self._current = None
        if monitor is not None:
            monitor.stop(timeout)
        if run is not None:
            run.stop(timeout)
            run.forget(timeout)
            if run.run_dir is not None:
                try:
                    mark_clean(run.run_dir)
                except OSError:
                    pass

    def let_go(self, name: str) -> None:
        """Stop following a run another app server started and forgot (a participant's Reset there): nothing is
        sent to it; its charts leave this server."""
        with self._lock:
            run = self._runs.pop(name, None)
            monitor = self._monitors.pop(name, None)
            self._owners.pop(name, None)
        if monitor is not None:
            monitor.stop(0.0)
        if run is not None:
            self._release(run)

    def get(self, name: str) -> RunView | None:
        with self._lock:
            return self._runs.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._runs)

    def reset(self, timeout: float = 5.0) -> None:
        """Stop every run and forget them all: the dashboard is back to 'no run'. Their folders stay on disk,
        marked as stopped, so an interrupted run is no longer offered to continue."""

        self.stop_all(timeout)
        with self._lock:
            dirs = [t.run_dir for t in self._runs.values()] + ([self._preview.run_dir] if self._preview else [])
            for trainer in self._runs.values():
                trainer.forget(timeout)  # a worker-process run is dropped there too
            self._preview = None
            for run_dir in dirs:
                if run_dir is not None:
                    try:
                        mark_clean(run_dir)
                    except OSError:
                        pass
            self._runs.clear()
            self._monitors.clear()
            self._owners.clear()
            self._current = None  # pragma: no mutate ("" is falsy like None: current() reads neither)

    def close(self, timeout: float = 5.0) -> bool:
        """Stop every run and end the training worker process (server shutdown, test fixtures). On a cluster, a
        run another app server started is left training: this server only stops following it."""
        if self.backend is not None:
            self._closing.set()
            with self._lock:
                attached = {n: r for n, r in self._runs.items()
                            if getattr(getattr(r, "client", None), "attached", False)}
                for name in attached:
                    del self._runs[name]
            for run in attached.values():
                run.client.detach()
        stopped = self.stop_all(timeout)
        if self.worker is not None:
            self.worker.shutdown(timeout)
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:  # a cluster's actors: each run's own (a no-op for the others)
            if isinstance(getattr(run, "client", None), RayClient):
                run.client.shutdown(timeout)
        return stopped

    def stop_all(self, timeout: float = 5.0) -> bool:
        """Stop and join every run; True when all threads ended within the timeout."""
        with self._lock:
            runs = list(self._runs.values())
            monitors = list(self._monitors.values())
        stopped = [t.stop(timeout) for t in runs]  # stop every one, even after a failure
        stopped += [m.stop(timeout) for m in monitors]
        return all(stopped)


def _read_quality(run_dir) -> list:

    return read_quality(run_dir) if run_dir is not None else []


def _write_quality(run_dir, rows) -> None:

    try:
        write_quality(run_dir, rows)
    except OSError:  # a full disk shows as the autosave's warning; the quality curve stays in memory
        pass
