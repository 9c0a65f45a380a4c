"""The Train page's live panels on a crowded run, for tests/test_projector.py (projector sizes, no training).

Run from the repository root (tests/apps/static links to static/):

    streamlit run tests/apps/projector_app.py --server.enableStaticServing true

A fabricated 2,007-step run whose last steps hold loss switches 10 steps apart and two mode-collapse alarms
close together (what presenters clicked at the workshop), drawn by the same component as the Train page, in
the same wide layout with the sidebar open, plus the quality panel.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import streamlit as st  # noqa: E402

from gan.quality import metrics  # noqa: E402
from gan.viz import images, livechart, sample_history  # noqa: E402
from pages._livechart import live_charts  # noqa: E402

st.set_page_config(page_title="GAN Live", layout="wide")


@st.cache_resource
def crowded() -> tuple[str, str]:
    history = sample_history.fabricate_history(2007, n_grids=1)  # ends 7 steps past a tick: its label near the edge
    for step, detail in ((1500, "bce → mse"), (1510, "mse → bce"), (1520, "bce → mse"), (1530, "mse → bce")):
        history.add_event(step, "loss", detail)
    for step in (1200, 1230):
        history.add_event(step, "coach", "mode_collapse")
    snapshot = history.snapshot(with_grids=False)
    png = images.grid_png(history.latest_grid().images, scale=4)
    live = livechart.dashboard_payload(snapshot, grid_png=png, grid_caption="Samples from fixed noise at step 2,007")
    rows = [{"step": s, "score": 5 + s / 1000, "fd": 40 - s / 100} for s in range(500, 1601, 500)]
    cov = metrics.class_coverage(np.eye(10)[[0] * 7 + [1, 2, 3]])
    quality = livechart.quality_payload(rows, {"score": 9.2}, cov, np.full(10, 0.1), metrics.collapse_alarm(cov),
                                        score_caption="4 evaluations")
    return live, quality


with st.sidebar:
    st.header("Run settings")
    st.selectbox("Loss", ["BCE", "MSE"], key="loss_pick")
st.title("Train")
live, quality = crowded()
live_charts(live, key="live_charts")
st.markdown("#### Quality")
live_charts(quality, key="quality_charts")
