"""Owns what the Room page shows of every participant's run: the wall of grids, the leaderboard and the sweep the
room is running (outcome against setting). Must not touch streamlit or command a run: it reads statuses, histories
and quality monitors, and builds one RoomFrame per second that every tab showing the Room reuses."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import altair as alt
import pandas as pd

from gan.engine.status import LIVE_STATES
from gan.viz import images, look

MIN_INTERVAL_S = 1.0  # one frame per second for every tab on the Room page (the projector, curious participants)
SCORE_GOAL = 7.0  # "time to score 7": the leaderboard's race (gan.quality: 1..10, real digits ~9.4)
SETTINGS = {"lr_d": "Learning rate D", "lr_g": "Learning rate G", "d_steps": "D steps per G step",
            "latent_dim": "Latent size (z)"}


@dataclass(frozen=True)
class Tile:
    name: str  # the participant
    run_name: str
    png: bytes | None  # the latest fixed-noise grid (None before the first sample)
    caption: str  # "BCE · step 1,200 · score 7.4"
    state: str


@dataclass(frozen=True)
class RoomFrame:
    tiles: tuple[Tile, ...]
    board: pd.DataFrame  # the leaderboard, best score first
    sweep: pd.DataFrame  # one row per run: its settings, loss and score (the outcome chart's data)
    waiting: tuple[tuple[str, int], ...]  # (name, place) of those in the queue
    built_at: float
    specs: dict = None  # setting -> the sweep chart as a Vega-Lite dict, built once per frame for every tab


def _score_rows(monitor) -> pd.DataFrame | None:
    if monitor is None:
        return None
    rows = monitor.snapshot().rows
    return None if rows.empty else rows


class RoomView:
    """The shared renderer of the Room page: frame(entries, monitor_of) at most once per MIN_INTERVAL_S."""

    def __init__(self, min_interval: float = MIN_INTERVAL_S):
        self.min_interval = min_interval
        self._lock = threading.Lock()
        self._cached: RoomFrame | None = None
        self._grids: dict[str, tuple[int, bytes]] = {}  # run -> (grid step, png): each grid encoded once
        self._to_goal: dict[str, float] = {}  # run -> seconds from its start to score 7 (never changes once seen)

    def frame(self, entries, monitor_of) -> RoomFrame:
        cached = self._cached
        if cached is not None and time.monotonic() - cached.built_at < self.min_interval:
            return cached
        with self._lock:
            cached = self._cached
            if cached is not None and time.monotonic() - cached.built_at < self.min_interval:
                return cached  # another tab built it while this one waited
            self._cached = self._build(entries, monitor_of)
            return self._cached

    def _grid_png(self, run) -> bytes | None:
        grid = run.history.latest_grid()
        if grid is None:
            return None
        seen = self._grids.get(run.name)
        if seen is None or seen[0] != grid.step:
            seen = self._grids[run.name] = (grid.step, images.grid_png(grid.images[:36], per_row=6, scale=1))
        return seen[1]

    def _seconds_to_goal(self, run, rows: pd.DataFrame | None) -> float | None:
        if run.name in self._to_goal:
            return self._to_goal[run.name]
        if rows is None:
            return None
        hit = rows[rows["score"] >= SCORE_GOAL]
        if hit.empty:
            return None
        scalars = run.history.snapshot(with_grids=False).scalars
        if scalars.empty:
            return None
        at = scalars[scalars["step"] >= float(hit["step"].iloc[0])]
        end = float((at if not at.empty else scalars)["time"].iloc[0])
        self._to_goal[run.name] = end - float(scalars["time"].iloc[0])
        return self._to_goal[run.name]

    def _build(self, entries, monitor_of) -> RoomFrame:
        tiles, board, sweep, waiting = [], [], [], []
        for entry in entries:
            run = entry.run
            if run is None:
                if entry.place is not None:
                    waiting.append((entry.name, entry.place))
                continue
            status = run.status()
            rows = _score_rows(monitor_of(run))
            score = float(rows["score"].iloc[-1]) if rows is not None else None
            fd = float(rows["fd"].iloc[-1]) if rows is not None else None
            caption = f"{look.loss_label(status.loss)} · step {status.step:,}" + (
                f" · score {score:.1f}" if score is not None else "")
            if status.state not in LIVE_STATES:
                caption += f" · {status.state}"
            tiles.append(Tile(entry.name, run.name, self._grid_png(run), caption, str(status.state)))
            to_goal = self._seconds_to_goal(run, rows)
            coach = status.diagnosis.title if status.diagnosis is not None else ""
            board.append({"name": entry.name, "score": score, "FD": fd,
                          "time to 7 (s)": None if to_goal is None else round(to_goal),
                          "step": status.step, "loss": look.loss_label(status.loss), "coach": coach,
                          "state": str(status.state)})
            sweep.append({"name": entry.name, "loss": look.loss_label(status.loss), "score": score,
                          "lr_d": status.lr_d, "lr_g": status.lr_g, "d_steps": status.d_steps,
                          "latent_dim": run.config.latent_dim})
        board_df = pd.DataFrame(board, columns=["name", "score", "FD", "time to 7 (s)", "step", "loss", "coach",
                                                "state"])
        if not board_df.empty:
            board_df = board_df.sort_values("score", ascending=False, na_position="last").reset_index(drop=True)
        sweep_df = pd.DataFrame(sweep, columns=["name", "loss", "score", *SETTINGS])
        # Altair builds and validates a chart in ~35 ms: once a second here, not at every tab's refresh.
        specs = {setting: sweep_chart(sweep_df, setting).to_dict() for setting in SETTINGS}
        return RoomFrame(tuple(tiles), board_df, sweep_df, tuple(waiting), time.monotonic(), specs)


def sweep_chart(sweep: pd.DataFrame, setting: str) -> alt.Chart:
    """Each run's latest score against the setting its participant chose, coloured by loss: the room's sweep."""
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {', '.join(SETTINGS)}, got {setting!r}")
    scale = alt.Scale(type="log") if setting.startswith("lr") else alt.Scale(zero=False)
    data = sweep.dropna(subset=["score"])
    points = alt.Chart(data).mark_circle(size=160, opacity=0.85).encode(
        x=alt.X(f"{setting}:Q", title=SETTINGS[setting], scale=scale),
        y=alt.Y("score:Q", title="Classifier score (1-10)", scale=alt.Scale(domain=[1, 10])),
        color=alt.Color("loss:N", title="Loss"),
        tooltip=["name", "loss", alt.Tooltip("score:Q", format=".2f"), setting])
    goal = alt.Chart(pd.DataFrame({"y": [SCORE_GOAL]})).mark_rule(strokeDash=[6, 4], color="#555").encode(y="y:Q")
    return (points + goal).properties(height=320)
