"""Compare: overlay the curves of saved snapshots and of the current (live) run.

Presenter-only (gan.workshop.auth lock): add a snapshot from a checkpoint upload, delete a snapshot. The live
run is read as a history snapshot (gan.workshop.transfer.live_state: no weights), so including it is cheap.
"""

import altair as alt
import pandas as pd
import streamlit as st

from gan.engine.history import Snapshot
from gan.store.checkpoint import CheckpointError
from gan.viz.charts import histogram_chart, run_encoding, step_axis
from gan.viz.images import grid_png
from gan.viz.liveview import replay_point
from gan.viz.look import CHART_CONFIG, CHART_HEIGHT, loss_label
from gan.workshop import snapshots
from gan.workshop.transfer import live_state, read_upload
from pages._shared import get_registry, get_store, no_run_notice, presenter_access

st.title("Compare runs")
access = presenter_access()
store = get_store()  # the same store the Train page saves to
registry = get_registry()
live = registry.current()
LIVE = f"{live.name} (current run)" if live is not None else None

if access.presenter:
    with st.expander("Add a snapshot from a checkpoint file", expanded=not store.names()):
        st.caption(f"A GAN Live checkpoint (.pt, at most {snapshots.MAX_UPLOAD_MB} MB). It is read with "
                   "torch.load(weights_only=True) and validated: files that hold code or are not ours are refused.")
        upload = st.file_uploader("Checkpoint file", type=["pt", "pth", "ckpt"], key="compare_upload",
                                  max_upload_size=snapshots.MAX_UPLOAD_MB)
        default_name = (upload.name.rsplit(".", 1)[0] if upload is not None else "")
        name = st.text_input("Snapshot name", value=default_name, key="compare_upload_name",
                             help="letters, digits, '-', '_' or '.'")
        if st.button("Add snapshot", key="compare_add", disabled=upload is None):
            try:
                state = read_upload(upload)
                store.add_state(snapshots.check_name(name), state)
            except (CheckpointError, ValueError, FileExistsError, OSError) as exc:
                st.error(f"Not added: {exc}")
            else:
                st.success(f"Added snapshot {name!r} (step {state['step']}, loss {state['loss']}).")

names = store.names()
options = names + ([LIVE] if LIVE else [])
if not options:
    no_run_notice(access, "No snapshots yet. On the Train page, save the run as a named snapshot; it appears here.")
    st.stop()
if not names:
    st.caption("No snapshots yet: save one in the Train page's Workshop area to overlay it with the current run."
               if access.presenter else "No snapshots yet: when the presenter saves one, it appears here beside the "
                                        "current run.")

chosen = st.multiselect("Runs to compare", options, default=names[-3:] + ([LIVE] if LIVE else []),
                        key="compare_runs")
if not chosen:
    st.stop()
if LIVE in chosen:
    st.button("Refresh the current run's curves", icon=":material/refresh:", key="compare_refresh")

states, broken = {}, []
for n in chosen:
    try:
        states[n] = live_state(live, registry.quality_columns(live)) if n == LIVE else store.load(n)
    except (CheckpointError, KeyError, OSError) as exc:
        broken.append(f"{n}: {exc}")
for line in broken:
    st.warning(f"Skipped {line}")
if not states:
    st.stop()

curves = pd.concat([snapshots.history_frame(s, n) for n, s in states.items()], ignore_index=True)
events = pd.concat([snapshots.events_frame(s, n) for n, s in states.items()], ignore_index=True)
labels = {"loss_d": "D loss", "loss_g": "G loss", "d_real": "D(real)", "d_fake": "D(fake)"}
curve = st.selectbox("Curve", list(labels), format_func=labels.get, key="compare_curve")

# One colour per run on every chart here (the live run near-black and thicker): see gan.viz.charts.run_colors.
runs = run_encoding(list(states), LIVE)
lines = alt.Chart(curves).mark_line().encode(
    x=alt.X("step:Q", title="step", axis=step_axis()), y=alt.Y(f"{curve}:Q", title=labels[curve]),
    color=runs["color"], strokeWidth=runs["strokeWidth"],
    tooltip=["run", "step", alt.Tooltip(f"{curve}:Q", format=".3f"), "loss"])
marks = events[events["kind"].isin(["loss", "branch"])]
chart = lines
if not marks.empty:  # loss switches and branch points, as on the Train page
    chart = lines + alt.Chart(marks).mark_rule(strokeDash=[4, 3], strokeWidth=2).encode(
        x="step:Q", color=runs["color"], tooltip=["run", "step", "kind", "detail"])
chart_slot = st.empty()  # drawn after the replay below has picked its step: the cursor goes on this chart


def replay_section():
    """One run's saved sample points: its grid, that step's histogram and the coach's reading, at one step.
    Returns the replayed (run, step) for the cursor on the chart above, or None."""
    st.subheader("Replay")
    who = st.selectbox("Run to replay", list(states), key="compare_replay_run")
    try:
        points = snapshots.replay_points(states[who])
    except (KeyError, TypeError, ValueError) as exc:
        st.warning(f"{who}: no sample points to replay ({exc}).")
        return None
    if len(points) < 2:
        st.caption(f"{who} has fewer than two saved sample points: nothing to scrub through yet.")
        return None
    step = st.select_slider("Step", [g.step for g in points], value=points[-1].step, key="compare_replay_step")
    point = replay_point(points, step)
    grid_col, hist_col = st.columns(2)
    grid_col.image(grid_png(point.images, scale=3), output_format="PNG",
                   caption=f"{who}: samples from fixed noise at step {point.step:,} ({loss_label(point.loss)})")
    if point.d_real_probs is not None:
        frame = Snapshot(pd.DataFrame(), pd.DataFrame(), point.d_real_probs, point.d_fake_probs, point.step)
        hist_col.altair_chart(histogram_chart(frame), width="stretch")
        hist_col.caption(f"Histogram of the batch at step {point.step:,}; dashed line: 0.5.")
    else:
        hist_col.caption(f"No histogram was kept for step {point.step:,} (saved before replay existed, or step 0).")
    if point.diagnosis is not None:
        d = point.diagnosis
        (st.warning if d.alarm else st.info)(f"**Coach at step {point.step:,} · {d.title}** — {d.evidence}",
                                             icon=":material/sports:")
    return who, point.step


def run_cursor(run: str, step: int) -> alt.Chart:
    """The replayed step as a rule in its run's colour, on each chart of this page."""
    return alt.Chart(pd.DataFrame({"run": [run], "step": [step]})).mark_rule(strokeWidth=3).encode(
        x="step:Q", color=runs["color"], tooltip=["run", "step"])


def projector(chart) -> alt.LayerChart:
    """The dashboard's projector look (gan.viz.look.CHART_CONFIG) and height on a chart of this page."""
    return alt.layer(chart, height=CHART_HEIGHT, config=CHART_CONFIG)


replayed = replay_section()
if replayed is not None:
    chart = chart + run_cursor(*replayed)
chart_slot.altair_chart(projector(chart), width="stretch")

st.subheader("Quality")
metrics = pd.concat([snapshots.metrics_frame(s, n) for n, s in states.items()], ignore_index=True)
scored = sorted(set(metrics["run"])) if not metrics.empty else []
if not scored:
    st.caption("No quality scores among these runs yet: a snapshot keeps the quality panel's scores of its run "
               "up to the moment it was saved (the first score comes after 500 steps).")
else:
    quality_labels = {"score": "classifier score (↑, max 10)", "fd": "Fréchet distance (↓)",
                      "not_digit": "share of samples that are not digits (↓)",
                      "entropy": "coverage entropy, nats (↑, max 2.30)", "covered": "classes covered (of 10)"}
    present = [m for m in quality_labels if m in set(metrics["metric"])]
    metric = st.selectbox("Quality metric", present, format_func=quality_labels.get, key="compare_metric")
    quality = alt.Chart(metrics[metrics["metric"] == metric]).mark_line(point=True).encode(
        x=alt.X("step:Q", title="step", axis=step_axis()), y=alt.Y("value:Q", title=quality_labels[metric]),
        color=runs["color"], strokeWidth=runs["strokeWidth"],
        tooltip=["run", "step", alt.Tooltip("value:Q", format=".3f")])
    if replayed is not None:  # the replay's cursor on this chart too
        quality = quality + run_cursor(*replayed)
    st.altair_chart(projector(quality), width="stretch")
    missing = [n for n in states if n not in scored]
    if missing:
        st.caption(f"No scores saved for: {', '.join(missing)} (saved before the first score, or by an older version).")

st.dataframe(pd.DataFrame([snapshots.summary(s, n) for n, s in states.items()]), hide_index=True, width="stretch")

if access.presenter and names:
    with st.expander("Delete a snapshot"):
        victim = st.selectbox("Snapshot", names, key="compare_delete_name")
        if st.button("Delete", key="compare_delete"):
            store.delete(victim)
            st.success(f"Deleted {victim!r}.")
            st.rerun()
