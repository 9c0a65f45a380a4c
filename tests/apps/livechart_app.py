"""A one-page app around the live charts, for tests/test_livechart.py and for measuring server CPU.

Run from the repository root (tests/apps/static links to the repository's static/ folder, which
Streamlit serves next to the main script):

    streamlit run tests/apps/livechart_app.py --server.enableStaticServing true

Query parameters:
- ``charts``: ``live`` (a payload built at every rerun from a history that grows by 50 steps per
  rerun, plus the quality panel), ``live_pre`` (one precomputed payload), ``live_build`` (the
  payload built at every rerun from one fixed snapshot, like ``altair``), ``altair`` (the three
  charts built with gan.viz.charts and drawn with st.altair_chart at every rerun, as the Train page
  did), ``altair_pre`` (prebuilt Altair charts) or ``empty`` (the fragment only, a baseline);
- ``every``: seconds between fragment reruns (default 1);
- ``alarm=cycle``: the quality panel's collapse alarm fires every third rerun (live mode).
With GAN_LIVE_RERUN_COUNTER=<path> every fragment rerun appends one byte to that file.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import streamlit as st  # noqa: E402

from gan.quality import metrics  # noqa: E402
from gan.viz import charts, images, livechart, sample_history  # noqa: E402
from pages._livechart import live_charts  # noqa: E402

COUNTER = os.environ.get("GAN_LIVE_RERUN_COUNTER")


@st.cache_resource
def fixed() -> dict:
    """One long fabricated run, its grid PNG, payload and Altair charts: the 'precomputed' cases."""
    history = sample_history.fabricate_history(100_000, switch_every=30_000)
    snapshot = history.snapshot(with_grids=False)
    png = images.grid_png(history.latest_grid().images)
    return {"snapshot": snapshot, "png": png,
            "payload": livechart.dashboard_payload(snapshot, grid_png=png, grid_caption="Samples (fabricated)"),
            "altair": charts.build_dashboard_charts(snapshot)}


mode = st.query_params.get("charts", "live")
every = float(st.query_params.get("every", "1"))
st.title("Live charts test")


@st.fragment(run_every=every)
def panel() -> None:
    if COUNTER:
        with open(COUNTER, "ab") as f:
            f.write(b".")
    n = st.session_state["reruns"] = st.session_state.get("reruns", 0) + 1
    st.caption(f"rerun {n}")
    if mode == "empty":
        return  # the fragment's own cost, for a baseline
    data = fixed()
    if mode == "live_pre":
        live_charts(data["payload"], key="live")
    elif mode == "live_build":
        live_charts(livechart.dashboard_payload(data["snapshot"], grid_png=data["png"],
                                                grid_caption="Samples (fabricated)"), key="live")
    elif mode == "live":
        # A per-session run that grows between reruns, so every rerun sends new data.
        history = (st.session_state.get("history")
                   or sample_history.fabricate_history(1_000, switch_every=600, n_grids=1))
        st.session_state["history"] = history
        last = history.total_steps
        for step in range(last + 1, last + 51):
            history.append(step, 0.7 + 0.5 * (step % 7) / 7, 1.0 + 0.3 * (step % 5), 0.6, 0.4, 2e-4, 2e-4, "mse")
        snapshot = history.snapshot(with_grids=False)
        live_charts(livechart.dashboard_payload(snapshot, grid_png=data["png"], grid_caption=f"step {last}"),
                    key="live")
        # The quality panel; with alarm=cycle the collapse alarm (red bars and caption) fires every third rerun.
        firing = st.query_params.get("alarm") == "cycle" and n % 3 == 0
        cov = metrics.class_coverage(np.eye(10)[[0] * 9 + [1]]) if firing else np.full(10, 0.1)
        rows = [{"step": s, "score": 5 + s / 1000} for s in range(500, last, 500)]
        live_charts(livechart.quality_payload(rows, {"score": 9.2}, cov, np.full(10, 0.1), metrics.collapse_alarm(cov),
                                              score_caption=f"{len(rows)} evaluations"), key="quality")
    else:
        built = data["altair"] if mode == "altair_pre" else charts.build_dashboard_charts(data["snapshot"])
        top = st.columns([2, 1])
        top[0].altair_chart(built["loss"], width="stretch")
        top[1].image(data["png"], width="stretch", caption="Samples (fabricated)")
        bottom = st.columns(2)
        bottom[0].altair_chart(built["d_outputs"], width="stretch")
        bottom[1].altair_chart(built["histogram"], width="stretch")
        bottom[1].caption("Histogram of the latest batch; dashed line: 0.5.")


panel()
