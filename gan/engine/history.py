"""What a run has done: per-step scalars, events, the latest D probabilities and sample grids.
Must not hold tensors that train or know how charts draw it; readers get copies.

Bounded for a run of any length: the last ``recent`` steps stay at full resolution; older steps are
folded into at most ``max_buckets`` buckets (mean, min and max per bucket); when the buckets fill
up, neighbours merge pairwise, so each bucket covers twice as many steps. A bucket never spans a
loss switch, so the dashboard can draw the right equilibrium line under every point.

The training thread writes behind one lock; readers take a snapshot (copies of at most
recent + max_buckets rows), so a read costs the same at 1k steps and at 1M steps.
"""

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gan.core.diagnosis import Diagnosis
from gan.core.step import Row, SampleGrid

SCALARS = ("loss_d", "loss_g", "d_real", "d_fake")  # aggregated with mean/min/max in old buckets
COLUMNS = Row._fields[:9]  # what a step records (and a delta carries)
SNAPSHOT_COLUMNS = Row._fields


@dataclass
class _Bucket:
    """Several consecutive steps with the same loss, summarised."""

    first_step: int
    last_step: int
    time: float  # wall time of the last step
    n: int
    sums: list  # per SCALARS
    mins: list
    maxs: list
    lr_g: float
    lr_d: float
    loss: str

    @classmethod
    def of(cls, row: tuple) -> "_Bucket":
        step, t, *vals, lr_g, lr_d, loss = row
        return cls(step, step, t, 1, list(vals), list(vals), list(vals), lr_g, lr_d, loss)

    def absorb(self, other: "_Bucket") -> None:
        self.last_step, self.time, self.lr_g, self.lr_d = other.last_step, other.time, other.lr_g, other.lr_d
        self.n += other.n
        self.sums = [a + b for a, b in zip(self.sums, other.sums)]
        self.mins = [min(a, b) for a, b in zip(self.mins, other.mins)]
        self.maxs = [max(a, b) for a, b in zip(self.maxs, other.maxs)]

    def row(self) -> Row:
        means = [s / self.n for s in self.sums]
        step = (self.first_step + self.last_step) / 2  # plotted at the bucket's middle
        return Row(step, self.time, *means, self.lr_g, self.lr_d, self.loss,
                   self.mins[0], self.maxs[0], self.mins[1], self.maxs[1], self.n)


@dataclass
class Snapshot:
    """A consistent copy of a history, safe to use while training goes on."""

    scalars: pd.DataFrame  # SNAPSHOT_COLUMNS; rows at full resolution have steps_in_row == 1
    events: pd.DataFrame  # step, time, kind, detail
    d_real_probs: np.ndarray  # (B,) latest D(x) probabilities
    d_fake_probs: np.ndarray  # (B,) latest D(G(z)) probabilities
    probs_step: int
    grids: list[SampleGrid] = field(default_factory=list)
    total_steps: int = 0


@dataclass(frozen=True)
class SyncCursor:
    """How far a mirror has read a History: what changes_since() returns next."""

    generation: int = -1  # -1: nothing read yet, the first read is a full copy
    step: int = -1
    events: int = 0
    grid_step: int = -1
    probs_step: int = -1


@dataclass
class HistoryDelta:
    """Rows, events, grids and the latest probabilities added since a SyncCursor."""

    rows: list  # COLUMNS tuples, oldest first
    events: list  # (step, time, kind, detail)
    grids: list  # SampleGrid
    probs: tuple | None  # (d_real (B,), d_fake (B,), step) when new
    total_steps: int


class History:
    def __init__(self, recent: int = 2000, max_buckets: int = 2000, max_grids: int = 120, max_events: int = 1000):
        self.recent_limit = recent
        self.max_buckets = max_buckets
        self.max_grids = max_grids
        self._lock = threading.Lock()
        self._recent: deque[Row] = deque()
        self._buckets: list[_Bucket] = []
        self._bucket_rows: list[tuple] = []  # _Bucket.row() of each closed bucket: they never change
        self._bucket_size = 1  # steps per bucket; doubles each time the buckets are merged
        self._open: _Bucket | None = None  # bucket being filled from the oldest recent rows
        self._events: deque[tuple] = deque(maxlen=max_events)
        self._grids: list[SampleGrid] = []
        self._grid_stride = 1  # steps between kept sample points: doubles as the run grows (add_grid)
        self._probs = (np.zeros(0, np.float32), np.zeros(0, np.float32), 0)
        self.total_steps = 0
        # Bumped by every change: a reader (the shared render of gan.viz.liveview) redraws only when it moved.
        self.version = 0
        # Bumped by load_state_dict: an incremental reader (gan.worker.process's tick publisher) must resend all.
        self.generation = 0
        self._event_count = 0  # events ever added (the deque forgets old ones; this never goes back)
        self._last_folded_step = -1  # newest step folded out of the recent rows

    # --- writer side (the training thread) ----------------------------------------------------
    def append(self, step: int, loss_d: float, loss_g: float, d_real: float, d_fake: float,
               lr_g: float, lr_d: float, loss: str, when: float | None = None) -> None:
        # Stored in snapshot shape (min = max = value, one step per row): a read is one list copy.
        row = Row.one_step(step, time.time() if when is None else when, loss_d, loss_g, d_real, d_fake, lr_g, lr_d,
                           loss)
        with self._lock:
            self._recent.append(row)
            self.total_steps += 1
            self.version += 1
            if len(self._recent) > self.recent_limit:
                self._fold(self._recent.popleft())

    def _fold(self, row: tuple) -> None:
        self._last_folded_step = row[0]
        b = _Bucket.of(row[:len(COLUMNS)])
        if self._open is not None and self._open.loss == b.loss:
            self._open.absorb(b)
        else:
            self._close_open()
            self._open = b
        if self._open.n >= self._bucket_size:
            self._close_open()

    def _close_open(self) -> None:
        if self._open is None:
            return
        self._buckets.append(self._open)
        self._bucket_rows.append(self._open.row())
        self._open = None
        if len(self._buckets) > self.max_buckets:
            self._merge_pairs()

    def _merge_pairs(self) -> None:
        # Neighbours of the same loss merge while the sum fits the doubled size: no bucket ever grows past it
        # (checking only the older one's size let a run of short buckets snowball into one 2.5x too long).
        merged: list[_Bucket] = []
        for b in self._buckets:
            last = merged[-1] if merged else None
            if last is not None and last.loss == b.loss and last.n + b.n <= 2 * self._bucket_size:
                last.absorb(b)
            else:
                merged.append(b)
        if len(merged) > self.max_buckets:  # pathological: a loss switch every bucket; merge anyway
            merged = [_merge_two(merged[i], merged[i + 1]) if i + 1 < len(merged) else merged[i]
                      for i in range(0, len(merged), 2)]
        self._buckets = merged
        self._bucket_rows = [b.row() for b in merged]
        self._bucket_size *= 2

    def add_event(self, step: int, kind: str, detail: str = "", when: float | None = None) -> None:
        with self._lock:
            self._events.append((step, time.time() if when is None else when, kind, detail))
            self._event_count += 1
            self.version += (
                1)  # pragma: no mutate (any increase is a new version: version is only compared for a change)

    def set_probs(self, d_real: np.ndarray, d_fake: np.ndarray, step: int) -> None:
        with self._lock:
            self._probs = (d_real, d_fake, step)
            self.version += (
                1)  # pragma: no mutate (any increase is a new version: version is only compared for a change)

    def add_grid(self, grid: SampleGrid) -> None:
        """Keep sample points evenly over the whole run for replay: those whose step is a multiple of a stride
        that doubles whenever more than max_grids are kept (always the first, and the newest for the live
        grid), so a 1M-step run keeps ~max_grids points ~8k steps apart, not a dense tail and a hole."""
        with self._lock:
            self.version += 1
            if len(self._grids) > 1 and self._grids[-1].step % self._grid_stride:
                self._grids.pop()  # it was kept only as the newest
            self._grids.append(grid)
            while len(self._grids) > self.max_grids:
                self._grid_stride *= 2
                first, *middle, newest = self._grids
                self._grids = [first] + [g for g in middle if g.step % self._grid_stride == 0] + [newest]

    # --- reader side ---------------------------------------------------------------------------
    def snapshot(self, with_grids: bool = True) -> Snapshot:
        with self._lock:
            rows = self._bucket_rows + ([self._open.row()] if self._open is not None else []) + list(self._recent)
            events = list(self._events)
            d_real, d_fake, probs_step = self._probs
            grids = list(self._grids) if with_grids else []
            total = self.total_steps
        scalars = pd.DataFrame(rows, columns=list(SNAPSHOT_COLUMNS))
        ev = pd.DataFrame(events, columns=["step", "time", "kind", "detail"])
        return Snapshot(scalars, ev, d_real, d_fake, probs_step, grids, total)

    def changes_since(self, cursor: "SyncCursor") -> "tuple[HistoryDelta | None, SyncCursor]":
        """What was added after ``cursor``, for a mirror in another process (gan.worker.process -> gan.worker.remote).

        Returns (delta, new cursor). The delta is None when an incremental update is impossible — the
        history was reloaded, or more than ``recent`` steps went by so some were folded already — and
        the reader must then copy the whole history (state_dict). Plain lists and numpy only.
        """
        with self._lock:
            if cursor.generation != self.generation:
                return None, self._cursor()
            if self._last_folded_step > cursor.step:
                return None, self._cursor()  # rows the reader has not seen were folded already
            rows = [r for r in self._recent if r[0] > cursor.step] if self._recent else []
            new_events = min(self._event_count - cursor.events, len(self._events))
            events = list(self._events)[len(self._events) - new_events:] if new_events > 0 else []
            grids = [g for g in self._grids if g.step > cursor.grid_step]
            d_real, d_fake, probs_step = self._probs
            probs = (d_real, d_fake, probs_step) if probs_step != cursor.probs_step else None
            delta = HistoryDelta([r[:len(COLUMNS)] for r in rows], events, grids, probs, self.total_steps)
            return delta, self._cursor()

    def _cursor(self) -> "SyncCursor":  # caller holds self._lock
        return SyncCursor(self.generation, self._recent[-1][0] if self._recent else self._last_folded_step,
                          self._event_count,
                          self._grids[-1].step if self._grids else -1, self._probs[2])

    def apply(self, delta: "HistoryDelta") -> None:
        """Add a delta from changes_since() of another History: the mirror then reads like the source."""
        for row in delta.rows:
            step, when, loss_d, loss_g, d_real, d_fake, lr_g, lr_d, loss = row
            self.append(step, loss_d, loss_g, d_real, d_fake, lr_g, lr_d, loss, when=when)
        for step, when, kind, detail in delta.events:
            self.add_event(step, kind, detail, when=when)
        for grid in delta.grids:
            self.add_grid(grid)
        if delta.probs is not None:
            self.set_probs(*delta.probs)
        with self._lock:
            self.total_steps = max(self.total_steps, delta.total_steps)

    def recent_rows(self, n: int) -> list[Row]:
        """The last ``n`` (at most) steps at full resolution, oldest first, in snapshot shape (the coach reads
        these at each sample point: a copy of n rows, not a snapshot of the whole run)."""
        with self._lock:
            k = len(self._recent)
            return [self._recent[i] for i in range(max(0, k - n), k)]

    def latest_grid(self) -> SampleGrid | None:
        with self._lock:
            return self._grids[-1] if self._grids else None

    def row_count(self) -> int:
        with self._lock:
            return len(self._recent) + len(self._buckets) + (self._open is not None)

    # --- persistence (checkpoints hold plain lists and tensors only: torch.load(weights_only=True)) -
    def state_dict(self) -> dict:
        import torch

        snap = self.snapshot()
        s = snap.scalars
        return {
            "scalars": {c: s[c].tolist() for c in s.columns},
            "events": {c: snap.events[c].tolist() for c in snap.events.columns},
            "grid_steps": [g.step for g in snap.grids],
            "grid_losses": [g.loss for g in snap.grids],
            "grid_images": torch.from_numpy(np.stack([g.images for g in snap.grids])) if snap.grids
            else torch.zeros(
                0, 0, 28, 28, dtype=torch.uint8),  # pragma: no mutate (no grid: this empty tensor is never read)
            # Replay (optional on load: older checkpoints have none): each grid's batch of D outputs and the
            # coach's reading, as plain lists (weights_only loads).
            "grid_probs": [None if g.d_real_probs is None else [g.d_real_probs.tolist(), g.d_fake_probs.tolist()]
                           for g in snap.grids],
            "grid_diagnoses": [None if g.diagnosis is None else g.diagnosis.to_plain() for g in snap.grids],
            "total_steps": snap.total_steps,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a saved history row for row: the newest single-step rows (up to ``recent``) come back as
        recent rows, the older ones as the buckets they were (their steps, min/max and size)."""
        frame = pd.DataFrame(state["scalars"])
        rows = [r._asdict()
                for r in frame.itertuples(index=False)]  # pragma: no mutate (with an Index field or not: read by name)
        tail = len(rows)
        while tail > 0 and int(rows[tail - 1]["steps_in_row"]) == 1 and len(rows) - tail < self.recent_limit:
            tail -= 1
        with self._lock:
            self._recent.clear()
            self._buckets = []
            self._open = None
            for r in rows[:tail]:
                n = int(r["steps_in_row"])
                first = round(float(r["step"]) - (n - 1) / 2)  # a row sits at its bucket's middle step
                self._buckets.append(_Bucket(
                    first, first + n - 1, float(r["time"]), n, [float(r[c]) * n for c in SCALARS],
                    [float(r["loss_d_min"]), float(r["loss_g_min"]), float(r["d_real"]), float(r["d_fake"])],
                    [float(r["loss_d_max"]), float(r["loss_g_max"]), float(r["d_real"]), float(r["d_fake"])],
                    float(r["lr_g"]), float(r["lr_d"]), str(r["loss"])))
            for r in rows[tail:]:  # in the shape append() stores
                self._recent.append(Row(int(r["step"]), float(r["time"]), *(float(r[c]) for c in SCALARS),
                                        float(r["lr_g"]), float(r["lr_d"]), str(r["loss"]), float(r["loss_d_min"]),
                                        float(r["loss_d_max"]), float(r["loss_g_min"]), float(r["loss_g_max"]), 1))
            self._bucket_size = max([b.n for b in self._buckets], default=1)  # new buckets as coarse as the old
            self._last_folded_step = self._buckets[-1].last_step if self._buckets else -1
            self._bucket_rows = [b.row() for b in self._buckets]
            while len(self._buckets) > self.max_buckets:
                self._merge_pairs()
            ev = state["events"]
            self._events.clear()
            for row in zip(ev["step"], ev["time"], ev["kind"], ev["detail"]):
                self._events.append(tuple(row))
            images = state["grid_images"].numpy()
            n = len(state["grid_steps"])
            probs = state.get("grid_probs") or [None] * n
            diagnoses = state.get("grid_diagnoses") or [None] * n
            self._grids = [SampleGrid(int(st), str(lo), images[i],
                                      *((None, None) if probs[i] is None else
                                        (np.asarray(probs[i][0], np.float32), np.asarray(probs[i][1], np.float32))),
                                      None if diagnoses[i] is None else Diagnosis.from_plain(diagnoses[i]))
                           for i, (st, lo) in enumerate(zip(state["grid_steps"], state["grid_losses"]))]
            self._grid_stride = 1  # grows again from the loaded points as new ones come
            self.total_steps = int(state["total_steps"])
            self.generation += (
                1)  # pragma: no mutate (any increase is a new generation: it is only compared for a change)
            self.version += (
                1)  # pragma: no mutate (any increase is a new version: version is only compared for a change)
            self._event_count += len(self._events)  # pragma: no mutate (only compared within a generation: a new one)


def _merge_two(a: _Bucket, b: _Bucket) -> _Bucket:
    a.absorb(b)
    a.loss = b.loss
    return a
