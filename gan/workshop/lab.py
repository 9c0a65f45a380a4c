"""Owns lab mode: every participant trains their own run, one seat per name, a pool with a cap and a queue.
Must not touch streamlit or a run's internals: it calls the registry (gan.workshop.runs) and gan.engine.run's
interface; the pages (pages/my_run.py, pages/room.py) only call it.

The presenter opens the lab (Workshop switch, or GAN_LIVE_LAB=1). A participant takes a seat by name and gets a
key with it; both sit in their tab's address (?me=NAME&key=KEY), so a reload or a second device with that address
reattaches, while somebody else typing the same name is told it is taken and offered another. The pool's cap
(GAN_LIVE_MAX_RUNS, default from the machine: default_max_runs) counts the presenter's run too, and keeps one slot
for it; participants beyond it wait in a queue, in order, and start as soon as a slot frees (a thread polls every
poll_s). Seats and the lab's rules are kept in <runs dir>/lab/lab.json, so a restarted server reopens the lab and
every participant's address still works; their runs come back from their autosaves (Continue on My run).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from gan.core.config import Config
from gan.engine.status import LIVE_STATES, RunState
from gan.store.autosave import find_interrupted
from gan.store.storage import StorageError, atomic_write
from gan.worker.pool import WorkerPool, default_workers
from gan.workshop.runs import LAB_PREFIX, RunRegistry, int_from_env

NAME_MAX = 24  # a name shows under a grid on the Room wall: 24 characters fit a 1280-px projector's tile
KNOBS = ("loss", "lr_g", "lr_d", "d_steps", "latent_dim", "model", "seed", "preset")  # what a participant may set
AWAY_S = 60.0  # a tab not seen for this long is "away" (a closed laptop lid); the presenter's rule says what then
RUNS_PER_CORE = 4  # measured (bench --parts lab): at 1/4 of a core a default run still scores 7 well within 3 min
MB_PER_RUN = 200  # a participant run in a shared worker: models, optimisers, history, its quality monitor
STATE_FILE = "lab.json"
CLOSED_POLL_S = 2.0  # how soon a server on a cluster sees the lab opened on another one
CLOSED = "The lab is closed: the presenter opens it from the Train page."
log = logging.getLogger(__name__)


class Refusal(str, Enum):
    """Why the lab said no (the page words each; no logic reads an error's text)."""

    LAB_CLOSED = "lab_closed"
    BAD_NAME = "bad_name"
    NAME_TAKEN = "name_taken"
    NOT_YOURS = "not_yours"  # a seat's key did not match: another participant's address, or a forged one
    FIXED = "fixed"  # the presenter fixed that knob for the room
    NO_SLOTS = "no_slots"  # the cap leaves no run for participants


class LabError(ValueError):
    def __init__(self, refusal: Refusal, message: str, suggestion: str = ""):
        super().__init__(message)
        self.refusal, self.suggestion = refusal, suggestion


class Away(str, Enum):
    """The presenter's rule for a participant whose tab went away (closed lid, lost Wi-Fi)."""

    KEEP = "keep"  # the run trains on; the participant finds it further along
    PAUSE = "pause"  # the run pauses until they press Resume: the room's CPU goes to those who are watching


@dataclass(frozen=True)
class Rules:
    fixed: Mapping = field(default_factory=dict)  # knob -> the value every participant gets (KNOBS)
    away: Away = Away.KEEP

    def __post_init__(self):
        unknown = set(self.fixed) - set(KNOBS)
        if unknown:
            raise ValueError(f"not a participant's setting: {', '.join(sorted(unknown))}; fixable: {', '.join(KNOBS)}")


@dataclass(frozen=True)
class Seat:
    name: str
    key: str


@dataclass(frozen=True)
class Entry:
    """One participant as the Room page shows them: their run (None before a Start), or their place in the queue."""

    name: str
    run: object = None  # a RunView
    place: int | None = None  # 1-based place in the queue, None when not waiting


def default_max_runs(cores: int | None = None, available_mb: float | None = None) -> int:
    """The pool's cap when GAN_LIVE_MAX_RUNS is unset: the presenter's run plus RUNS_PER_CORE participants per
    core, fewer where half the free memory would not hold them."""
    cores = cores or default_workers()
    if available_mb is None:
        available_mb = _available_mb()
    by_memory = int(available_mb * 0.5 // MB_PER_RUN)
    return 1 + max(1, min(RUNS_PER_CORE * cores, by_memory))


def _available_mb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 4096.0  # not Linux: assume a small laptop


def check_name(raw) -> str:
    """A participant's name, cleaned: 1..NAME_MAX letters, digits, spaces and - _ . ' (no markup, no control
    characters); LabError(BAD_NAME) says what is wrong."""
    if not isinstance(raw, str):
        raise LabError(Refusal.BAD_NAME, "Type a name.")
    name = " ".join(unicodedata.normalize("NFKC", raw).split())
    if not name:
        raise LabError(Refusal.BAD_NAME, "Type a name.")
    if len(name) > NAME_MAX:
        raise LabError(Refusal.BAD_NAME, f"At most {NAME_MAX} characters, please (that one has {len(name):,}).")
    if not all(ch.isalnum() or ch in " -_.'" for ch in name):
        raise LabError(Refusal.BAD_NAME, "Letters, digits, spaces and - _ . ' only.")
    return name


def slug(name: str) -> str:
    """The run's name for a participant (lab-<name>, safe for a folder); names that differ only in case or
    spacing share a slug, so check_name's seat rules treat them as the same name."""
    folded = name.casefold()
    if folded.isascii() and re.search(r"[0-9a-z]", folded):
        return LAB_PREFIX + re.sub(r"[^0-9a-z]+", "-", folded).strip("-")
    return LAB_PREFIX + "u" + hashlib.sha1(" ".join(folded.split()).encode()).hexdigest()[:12]  # Zoë, 李雷


class Lab:
    """Lab mode over one registry; every method is safe from any thread and returns at once (a Start in the
    queue starts from the lab's own thread)."""

    def __init__(self, registry: RunRegistry, *, max_runs: int | None = None, workers: int | None = None,
                 poll_s: float = 0.25, away_s: float = AWAY_S, root=None):
        self.registry = registry
        env_cap = int_from_env("GAN_LIVE_MAX_RUNS", 0, 0)  # set: the cap; unset (0): from the machine
        on_cluster = registry.backend is not None  # a Ray cluster: runs train there, each an actor of its own
        self.max_runs = int(max_runs) if max_runs is not None else (
            env_cap or (registry.backend.slots() if on_cluster else default_max_runs()))
        if self.max_runs < 1:
            raise ValueError(f"max_runs must be >= 1, got {self.max_runs}")
        self.cap_from_machine = max_runs is None and not env_cap and not on_cluster
        self.cap_from_cluster = max_runs is None and not env_cap and on_cluster
        self.poll_s, self.away_s = poll_s, away_s
        self.pool = None
        if registry.worker is not None:  # process mode: participants train in their own workers, niced
            size = workers if workers is not None else int_from_env("GAN_LIVE_LAB_WORKERS", default_workers(), 1)
            self.pool = WorkerPool(size, torch_threads=max(1, registry.torch_threads))
        self.root = Path(root) if root is not None else registry.runs_root / "lab"
        self._lock = threading.RLock()
        self._open = False
        self.rules = Rules()
        self._seats: dict[str, Seat] = {}  # slug -> seat
        self._queue: list[tuple[str, Config, tuple]] = []  # (slug, config, actions), first come first served
        self._worker_of: dict[str, object] = {}  # slug -> the pool worker its run trains in
        self._seen: dict[str, float] = {}  # slug -> monotonic time its tab last refreshed
        self._away_paused: set[str] = set()
        self.notice = ""  # said on every tab after the presenter closed the lab
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # On a cluster the lab is shared by every app server over it: its record (switch, rules, seats, queue, each
        # participant's run actor) lives in the cluster's room actor (gan.worker.ray_actor.LabRecord), keyed by the
        # lab's folder, and the fields above are this server's copy, refreshed every poll_s and after each change.
        self.shared = on_cluster
        self._key = str(self.root.resolve())  # servers over the same shared runs folder share one lab
        self._shared_runs: dict[str, dict] = {}  # slug -> the record's run entry (or a held slot)
        self._load()
        if self.shared:
            self._join_cluster()

    # --- the presenter's switch -----------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def participant_slots(self) -> int:
        return self.max_runs - 1  # one slot is always the presenter's

    def open(self, rules: Rules | None = None) -> None:
        if self.participant_slots < 1:
            raise LabError(Refusal.NO_SLOTS, f"GAN_LIVE_MAX_RUNS={self.max_runs} leaves no slot for participants "
                           "(one is the presenter's): set it to 2 or more, or leave it unset.")
        if self.shared:
            self._call("set", {"open": True, "notice": "", **(_rules_fields(rules) if rules is not None else {})})
            return
        with self._lock:
            self._open, self.notice = True, ""
            if rules is not None:
                self.rules = rules
            self._save()
        if self.pool is not None:
            self.pool.start()  # warm: the first participant's Start does not wait for torch's import
        self._ensure_thread()

    def set_rules(self, rules: Rules) -> None:
        if self.shared:
            self._call("set", _rules_fields(rules))
            return
        with self._lock:
            self.rules = rules
            self._save()

    def close(self, timeout: float = 10.0) -> int:
        """Lab off: every participant run is stopped (its last autosave written) and the queue emptied; every
        tab then says so (``notice``). Returns how many runs were stopped."""
        if self.shared:
            self._call("set", {"open": False})
        with self._lock:
            self._open = False
            self._queue.clear()
            names = list(self._seats)
        stopped = 0
        for name in names:
            run = self.run_of_slug(name)
            if run is not None and (run.is_alive() or run.state in LIVE_STATES):
                run.stop(timeout)
                stopped += 1
        notice = (f"The presenter closed the lab at {time.strftime('%H:%M')}: "
                  f"{stopped} participant run(s) were stopped and saved.")
        if self.shared:
            self._call("set", {"notice": notice})
            return stopped
        with self._lock:
            self.notice = notice
            self._save()
        return stopped

    def shutdown(self, timeout: float = 5.0) -> None:
        """End the lab's thread and workers (server shutdown, test fixtures); runs are the registry's to stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.pool is not None:
            self.pool.shutdown(timeout)

    # --- seats --------------------------------------------------------------------------------------
    def join(self, raw_name, key: str | None = None) -> Seat:
        """Take a seat, or reattach to one with its key. A taken name: LabError(NAME_TAKEN) with a free one."""
        name = check_name(raw_name)
        s = slug(name)
        if self.shared:  # one actor call decides, so two servers never give one name twice
            status, held = self._call("join", s, name, secrets.token_urlsafe(9), key if isinstance(key, str) else None)
            if status == "closed":
                raise LabError(Refusal.LAB_CLOSED, CLOSED)
            if status == "taken":
                raise LabError(Refusal.NAME_TAKEN, f"“{held[0]}” is taken.", self._free_name(name))
            self._seen[s] = time.monotonic()
            return Seat(held[0], held[1])
        with self._lock:
            seat = self._seats.get(s)
            if seat is not None and key is not None and secrets.compare_digest(str(key), seat.key):
                return seat  # a reload or a second device: the same seat (also after the lab closed: its notice)
            if not self._open:
                raise LabError(Refusal.LAB_CLOSED, CLOSED)
            if seat is not None:
                raise LabError(Refusal.NAME_TAKEN, f"“{seat.name}” is taken.", self._free_name(name))
            seat = self._seats[s] = Seat(name, secrets.token_urlsafe(9))
            self._seen[s] = time.monotonic()
            self._save()
            return seat

    def seat(self, raw_name, key) -> Seat:
        """The seat a tab's address names, checked against its key (LabError NOT_YOURS otherwise)."""
        name = check_name(raw_name)
        if self.shared and slug(name) not in self._seats:
            self._refresh()  # taken on another app server since this one's last look
        with self._lock:
            seat = self._seats.get(slug(name))
            if seat is None or not isinstance(key, str) or not secrets.compare_digest(key, seat.key):
                raise LabError(Refusal.NOT_YOURS, f"This address does not hold the seat of “{name}”.",
                               self._free_name(name) if seat is not None else name)
            return seat

    def _free_name(self, name: str) -> str:
        for n in range(2, 10_000):
            candidate = f"{name[:NAME_MAX - len(str(n)) - 1]}-{n}"
            if slug(candidate) not in self._seats:
                return candidate
        return ""

    def seats(self) -> list[Seat]:
        with self._lock:
            return list(self._seats.values())

    def touch(self, seat: Seat) -> None:
        """Called on each refresh of the participant's tab: how the lab knows who is still watching."""
        s = slug(seat.name)
        self._seen[s] = time.monotonic()
        if s in self._away_paused:
            self._away_paused.discard(s)

    def paused_while_away(self, seat: Seat) -> bool:
        run = self.run_of(seat)
        return run is not None and run.state == RunState.PAUSED and run.status().reason == AWAY_REASON

    # --- runs ---------------------------------------------------------------------------------------
    def run_of(self, seat: Seat):
        return self.run_of_slug(slug(seat.name))

    def run_of_slug(self, s: str):
        return self.registry.get(s)

    def live_count(self) -> int:
        with self._lock:
            names = list(self._seats)
        return sum(1 for s in names if _live(self.registry.get(s)))

    def place(self, seat: Seat) -> int | None:
        """1-based place in the queue, None when not waiting."""
        s = slug(seat.name)
        with self._lock:
            for i, (name, _, _) in enumerate(self._queue):
                if name == s:
                    return i + 1
        return None

    def queue_length(self) -> int:
        with self._lock:
            return len(self._queue)

    def fixed(self, config: Config) -> Config:
        """``config`` with the knobs the presenter fixed for the room (the preset is the page's to apply)."""
        values = {k: v for k, v in self.rules.fixed.items() if k != "preset"}
        return dataclasses.replace(config, **values) if values else config

    def request(self, seat: Seat, config: Config, actions=()) -> tuple[object, int | None]:
        """Start the seat's run now if a slot is free (returns (run, None)), else queue it ((None, place)). A
        live run already there is returned as it is. Raises LabError when the lab is closed."""
        s = slug(seat.name)
        if self.shared:
            return self._request_shared(seat, config, tuple(actions))
        with self._lock:
            run = self._live_run_of(seat)
            if run is not None:
                return run, None
            self._queue = [q for q in self._queue if q[0] != s]  # a new Start replaces an older request
            if not self._queue and self.live_count() < self.participant_slots:
                return self._start(s, config, tuple(actions)), None
            self._queue.append((s, config, tuple(actions)))
            place = len(self._queue)
        self._ensure_thread()
        return None, place

    def _live_run_of(self, seat: Seat):
        """What every Start checks first: the lab is open and the seat is the caller's; then its live run or None."""
        if not self._open:
            raise LabError(Refusal.LAB_CLOSED, CLOSED)
        self.seat(seat.name, seat.key)
        run = self.registry.get(slug(seat.name))
        return run if _live(run) else None

    def cancel(self, seat: Seat) -> None:
        if self.shared:
            self._call("cancel", slug(seat.name))
        with self._lock:
            self._queue = [q for q in self._queue if q[0] != slug(seat.name)]

    def _pick_worker(self):  # caller holds self._lock; None in thread mode (runs train in this process)
        if self.pool is None:
            return None
        return self.pool.pick(lambda c: sum(1 for n, w in self._worker_of.items()
                                            if w is c and _live(self.registry.get(n))))

    def _start(self, s: str, config: Config, actions: tuple):  # caller holds self._lock
        worker = self._pick_worker()
        run = self.registry.start(config, name=s, owner=s, worker=worker, actions=actions)
        self._worker_of[s] = worker
        return run

    def stop(self, seat: Seat, timeout: float = 10.0) -> bool:
        self.cancel(seat)
        run = self.run_of(seat)
        return True if run is None else run.stop(timeout)

    def stop_run(self, run_name: str, timeout: float = 10.0) -> bool:
        """The presenter's Stop on the Room page, by run name."""
        run = self.registry.get(run_name)
        if run is None or self.registry.owner(run_name) is None:
            raise ValueError(f"{run_name!r} is not a participant's run")
        return run.stop(timeout)

    def reset(self, seat: Seat, timeout: float = 10.0) -> None:
        """Stop and forget the seat's run: My run is empty again (its folder stays on disk, marked stopped)."""
        self.cancel(seat)
        self.registry.forget_run(slug(seat.name), timeout)
        if self.shared:
            self._call("forget", slug(seat.name))  # the other app servers let it go too

    def continue_offer(self, seat: Seat):
        """The seat's interrupted run (the server died under it), or its failed run with an autosave; None."""
        s = slug(seat.name)
        run = self.registry.get(s)
        if _live(run):
            return None
        if run is not None and run.state != RunState.FAILED:
            return None
        try:
            found, _ = find_interrupted(self.registry.live_root, accept=lambda n: n == s)
        except OSError:
            return None
        return found[0] if found else None

    def continue_run(self, seat: Seat):
        offer = self.continue_offer(seat)
        if offer is None:
            raise ValueError("there is no saved run of yours to continue")
        if self.shared:
            s = slug(seat.name)
            if not self._call("hold", s, self.participant_slots):
                raise ValueError(f"all {self.participant_slots} participant slots are busy: press Start to queue")
            return self._started(s, lambda: self.registry.continue_run(offer, owner=s))
        with self._lock:
            s = slug(seat.name)
            if self.live_count() >= self.participant_slots:
                raise ValueError(f"all {self.participant_slots} participant slots are busy: press Start to queue")
            worker = self._pick_worker()
            run = self.registry.continue_run(offer, owner=s, worker=worker)
            self._worker_of[s] = worker
            return run

    def entries(self) -> list[Entry]:
        """Every seat, for the Room page: running, finished, or waiting with its place (in the order they joined)."""
        with self._lock:
            seats = list(self._seats.items())
            places = {name: i + 1 for i, (name, _, _) in enumerate(self._queue)}
        return [Entry(seat.name, self.registry.get(s), places.get(s)) for s, seat in seats]

    # --- the lab's thread: the queue and the away rule --------------------------------------------------
    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._loop, daemon=True, name="gan-lab")
                self._thread.start()

    def _loop(self) -> None:
        # A closed lab on a cluster is only watched for the presenter opening it on another server: every
        # CLOSED_POLL_S, not every poll_s (each look is an actor call, and every app server makes them).
        while not self._stop.wait(self.poll_s if self._open or not self.shared else CLOSED_POLL_S):
            try:
                self.tick()
            except Exception:  # noqa: BLE001  a run that fails to start must not end the queue for everyone
                log.exception("lab tick")

    def tick(self) -> None:
        """Start queued runs into free slots; pause the runs of away tabs when the rule says so."""
        if self.shared:
            self._tick_shared()
        with self._lock:
            while not self.shared and self._open and self._queue and self.live_count() < self.participant_slots:
                s, config, actions = self._queue.pop(0)
                try:
                    self._start(s, config, actions)
                except Exception:  # noqa: BLE001  a bad queued config: that one is dropped, the next goes on
                    log.exception("queued start of %s", s)
            rule, now = self.rules.away, time.monotonic()
            # only tabs seen by THIS server: on a cluster a participant's tab refreshes one app server only
            names = [s for s in self._seats if s in self._seen] if rule is Away.PAUSE else []
        for s in names:
            run = self.registry.get(s)
            if (run is not None and run.state == RunState.RUNNING and s not in self._away_paused
                    and now - self._seen.get(s, now) > self.away_s):
                self._away_paused.add(s)
                try:
                    run.pause(AWAY_REASON)
                except RuntimeError:  # the worker is busy or gone: the run's banner says so
                    pass

    # --- on a cluster: the lab's record in the room actor, shared by every app server -------------------------
    def _call(self, method: str, *args):
        """One LabRecord call (atomic: the actor takes one at a time); this server's copy is refreshed from the
        record it returns, and kept on disk after a change."""
        answer, record = self.registry.backend.room_call("lab", self._key, method, *args)
        self._apply(record)
        if method != "view":
            with self._lock:
                self._save()
        return answer

    def _refresh(self) -> None:
        self._call("view")

    def _apply(self, record: dict) -> None:
        queue = [(s, Config.from_dict(c), tuple(tuple(a) for a in acts)) for s, c, acts in record["queue"]]
        with self._lock:
            self._open = bool(record["open"])
            self.rules = Rules(dict(record["fixed"]), Away(record["away"]))
            self.notice = str(record["notice"])
            self._seats = {s: Seat(v[0], v[1]) for s, v in record["seats"].items()}
            self._queue = queue
            self._shared_runs = dict(record["runs"])

    def _join_cluster(self) -> None:
        """This server's saved lab seeds a record that is new (the first server after the cluster started); else
        the record wins. The thread runs from now on: it follows what the other servers change."""
        with self._lock:
            saved = {"open": self._open, **_rules_fields(self.rules),
                     "seats": {s: [seat.name, seat.key] for s, seat in self._seats.items()}}
        self._call("seed", saved)
        self._ensure_thread()

    def _request_shared(self, seat: Seat, config: Config, actions: tuple) -> tuple[object, int | None]:
        s = slug(seat.name)
        run = self._live_run_of(seat)
        if run is not None:
            return run, None
        place = self._call("request", s, config.to_dict(), [list(a) for a in actions], self.participant_slots)
        if place:
            return None, place
        return self._started(s, lambda: self.registry.start(config, name=s, owner=s, actions=actions)), None

    def _started(self, s: str, start):
        """Start a run whose slot the record holds, and publish its actor; a start that fails gives the slot back."""
        try:
            run = start()
        except BaseException:
            self._call("forget", s)
            raise
        self._call("publish", s, self.registry.entry_of(run))
        return run

    def _tick_shared(self) -> None:
        """Follow the other servers: attach the runs they started, tell the record which runs ended, republish a
        run this server brought back (a lost node), let go of a run that was reset, then start queued runs."""
        self._refresh()
        with self._lock:
            runs = dict(self._shared_runs)
        ended, follow, republish = [], [], []
        for s, entry in runs.items():
            actor = entry.get("actor")
            if actor is None or entry.get("ended"):
                continue  # a slot held for a start, or a finished run every server already shows
            here, only_follows = self.registry.actor_of(s)
            if here == actor:
                if not _live(self.registry.get(s)):
                    ended.append([s, actor])
            elif here is not None and not only_follows and _live(self.registry.get(s)):
                republish.append(s)  # started here again (recovered after a lost node): newer than the record's
            else:
                follow.append((s, entry))
        if ended:
            self._call("ended", ended)
        for s in republish:
            self._call("publish", s, self.registry.entry_of(self.registry.get(s)))
        for s, entry in follow:
            self.registry.attach_run(entry, owner=s)
        for name in self.registry.names():  # reset on another server: its record entry is gone
            if name not in runs and self.registry.owner(name) is not None:
                self.registry.let_go(name)
        while self._open:
            item = self._call("take", self.participant_slots)
            if item is None:
                break
            s, config, actions = item
            start = functools.partial(self._start_queued, s, config, actions)
            try:
                self._started(s, start)
            except Exception:  # noqa: BLE001  a bad queued config: that one is dropped, the next goes on
                log.exception("queued start of %s", s)

    def _start_queued(self, s: str, config: dict, actions: list):
        return self.registry.start(Config.from_dict(config), name=s, owner=s, actions=tuple(tuple(a) for a in actions))

    # --- kept on disk: the switch, the rules, the seats ---------------------------------------------------
    def _save(self) -> None:  # caller holds self._lock
        data = {"format": "gan-live-lab/1", "open": self._open, "away": self.rules.away.value,
                "fixed": dict(self.rules.fixed), "seats": {s: [seat.name, seat.key] for s, seat in self._seats.items()}}
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_write(self.root / STATE_FILE, json.dumps(data).encode())
        except (OSError, StorageError):
            pass  # a read-only runs folder: the lab works, a restart forgets its seats

    def _load(self) -> None:
        path = self.root / STATE_FILE
        try:
            data = json.loads(path.read_text())
            if data.get("format") != "gan-live-lab/1":
                return
            seats = {s: Seat(check_name(v[0]), str(v[1])) for s, v in dict(data.get("seats", {})).items()}
            rules = Rules(dict(data.get("fixed", {})), Away(data.get("away", "keep")))
        except (OSError, ValueError, TypeError, KeyError, IndexError):
            return  # none yet, or not ours: an empty lab
        self._seats = {slug(seat.name): seat for seat in seats.values()}
        self.rules = rules
        if self.participant_slots >= 1 and (data.get("open") is True
                                            or os.environ.get("GAN_LIVE_LAB", "").strip() == "1"):
            self._open = True
            self._ensure_thread()
            if self.pool is not None:
                self.pool.start()


AWAY_REASON = "paused while your tab was away (the presenter's rule): press Resume to go on"


def _rules_fields(rules: Rules) -> dict:
    return {"away": rules.away.value, "fixed": dict(rules.fixed)}


def _live(run) -> bool:
    return run is not None and (run.is_alive() or run.state in LIVE_STATES)


def lab_from_env(registry: RunRegistry) -> Lab:
    """The server's lab: open at start with GAN_LIVE_LAB=1 (or when it was open before a restart)."""
    lab = Lab(registry)
    if os.environ.get("GAN_LIVE_LAB", "").strip() == "1" and not lab.is_open:
        try:
            lab.open()
        except LabError as exc:  # no slot under the cap: every lab page says so, nothing starts
            lab.notice = f"Lab mode is off: {exc}"
    return lab
