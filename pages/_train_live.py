"""The Train page's live half, the same for the presenter and every viewer: the replay scrubber, the live panel
(status, banners, the coach, the charts) and the quality panel. Helpers of pages/train.py, not a page: app.py's
st.navigation lists the pages (the underscore marks a helper, as pages/_shared.py).
Must not call the controller: the one button here, the coach's Apply, calls pages/train.py back (on_apply).
"""

import streamlit as st

from gan.engine.status import RunState
from gan.viz.liveview import BannerKind
from pages._livechart import live_charts
from pages._shared import live_view, no_run_notice, quality_view

ss = st.session_state

BANNER = {BannerKind.INFO: st.info, BannerKind.WARNING: st.warning, BannerKind.ERROR: st.error}


def replaying_step() -> int | None:
    """The step this tab replays (Replay on, a step chosen), or None when it shows the run live."""
    return ss.get("replay_step") if ss.get("replay") else None


def coach_box(d, run_state, presenter: bool, on_apply, replaying: bool = False) -> None:
    """The coach's one sentence (gan.core.coach); an alarm stands out, and the presenter gets its action
    (not while this tab replays: the reading is of a past step, the action would change the live run); its
    click calls on_apply(changes)."""
    text = f"**Coach · {d.title}** — {d.evidence}" + (f". *Suggestion: {d.advice}.*" if d.advice else "")
    if d.alarm:
        st.warning(text, icon=":material/sports:")
    else:
        st.info(text, icon=":material/sports:")
    if presenter and d.changes and run_state in (RunState.RUNNING, RunState.PAUSED) and not replaying:
        st.button(f"Apply: {d.advice}", key="coach_apply", on_click=on_apply, args=(d.changes,),
                  icon=":material/auto_fix_high:")


def live_panel(seen_state: str, registry, access, on_apply, pick=None, empty: str = "") -> None:
    """The live status, banners, charts and sample grid: one shared LiveFrame (gan.viz.liveview) per tick, laid
    out by every viewer's rerun; the charts are drawn in each browser (pages/_livechart.py). ``pick``: which run
    (a participant's, on My run; the Room's spotlight); the presenter's current run by default."""
    trainer = pick() if pick is not None else registry.current()
    if trainer is None:
        if empty:
            st.info(empty, icon=":material/info:")
        else:
            no_run_notice(access, "No run yet. Pick the settings on the left and press **Start**.")
        return
    step = replaying_step()
    view = live_view(trainer.name)
    frame = view.frame(trainer) if step is None else view.replay_frame(trainer, step)
    if frame.state != seen_state or ss.pop("_coach_applied", False):
        st.rerun()  # the buttons and the refresh timer depend on the state: redraw the whole page
    st.markdown(f"{frame.headline}\n\n{frame.details}")  # one element: every element costs each refresh
    for banner in frame.banners:
        BANNER[banner.kind](banner.for_viewer(access.presenter), icon=banner.icon)
    if frame.coach is not None:
        coach_box(frame.coach, frame.state, access.presenter, on_apply, replaying=step is not None)
    if frame.charts is None:
        st.caption("The charts appear after the first step.")
    else:
        live_charts(frame.charts, key="live_charts")


def metrics_panel(registry, pick=None) -> None:
    """Classifier score over steps against the real-data ceiling, class coverage and the collapse alarm."""
    trainer = pick() if pick is not None else registry.current()
    monitor = registry.monitor(trainer)
    if monitor is None:
        return
    frame = quality_view(trainer.name).frame(trainer.name, monitor, replaying_step())  # shared unless replaying
    st.markdown(f"#### {frame.title}")
    if frame.failed:
        st.warning(frame.message, icon=":material/warning:")
    elif frame.charts is None:
        st.caption(frame.message)
    else:
        live_charts(frame.charts, key="quality_charts")
        st.caption(frame.message)
        if frame.alarm_firing:
            st.error(frame.alarm, icon=":material/warning:")
        else:
            st.caption(frame.alarm)


def on_replay(registry, pick=None) -> None:
    """Replay on: the scrubber spans the sample points saved so far (fixed while it is shown, so the slider
    keeps its place while training goes on); off: back to the live panel."""
    t = pick() if pick is not None else registry.current()
    grids = [] if t is None else t.history.snapshot().grids
    if ss.get("replay") and grids:
        ss["_replay_range"] = (t.name, grids[0].step, grids[-1].step)
        ss["replay_step"] = grids[-1].step
    else:
        on_live()


def on_live() -> None:
    ss["replay"] = False
    ss.pop("_replay_range", None)
    ss.pop("replay_step", None)


def replay_controls(trainer, registry, pick=None) -> None:
    """A step scrubber for this session only: the grid, the histogram, the coach and a cursor on the line
    charts move to the same step together; Live returns to now. Viewers may scrub too (it changes nothing)."""
    if trainer is None:
        return
    span = ss.get("_replay_range")
    if span is not None and span[0] != trainer.name:
        on_live()  # another run (Reset, a preset, Continue): its own replay starts from Live
        span = None
    # One flex row: the toggle and Live as wide as their words (a column share cut "Replay" to "R…" at 1400 px),
    # the scrubber takes the rest.
    row = st.container(horizontal=True, vertical_alignment="center", key="replay_row")
    row.toggle("Replay", key="replay", on_change=on_replay, args=(registry, pick), width="content",
               help="Scrub back through the run: every chart, the grid and the coach at one step.")
    if not ss.get("replay") or span is None:
        return
    _, lo, hi = span
    if hi <= lo:
        row.caption("Replay needs two sample points: wait for the next one.")
    else:
        row.slider("Replay step", lo, hi, step=trainer.config.sample_every, key="replay_step",
                   label_visibility="collapsed", width="stretch")
    row.button("Live", key="replay_live", icon=":material/fast_forward:", width="content", on_click=on_live)
