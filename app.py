"""GAN Live: `streamlit run app.py`. Entry point only: page config and navigation.

The pages live in pages/ and all the logic in gan/. AppTest runs pages directly (it skips this
file), so nothing here may be needed by a page.
"""

import sys
from pathlib import Path

import streamlit as st

# A local icon: a material-icon favicon is fetched from Google's font CDN, and workshops run offline.
st.set_page_config(page_title="GAN Live", page_icon=str(Path(__file__).parent / "static" / "favicon.png"),
                   layout="wide")

# Projectors are 720 or 1080 px tall: Streamlit's 6rem above the first element kept every chart below the fold at
# 1280x720. A style-only st.html takes no room on the page.
st.html("<style>[data-testid='stMainBlockContainer'] { padding-top: 3.5rem; }</style>")

# The first page after a start imports PyTorch and spawns the training process: 5-15 s on a busy laptop. Say so
# at once instead of a blank page; the page itself replaces this line when it is drawn.
booting = st.empty()
if "torch" not in sys.modules:
    booting.info("Starting GAN Live: loading PyTorch and the training process (the first page after a start "
                 "takes a few seconds)…", icon=":material/hourglass_top:")

from gan.worker.ray_client import RayBackendError  # noqa: E402  (imports no Ray)
from pages._shared import get_lab  # noqa: E402  after the line above: it imports PyTorch (seconds)

# Lab mode (gan.workshop.lab): My run and Room join the menu while the lab is open. Closed, their addresses still
# answer (hidden pages), so a participant's tab says why it stopped instead of landing on another page.
try:
    lab_open = get_lab().is_open
except RayBackendError as exc:  # GAN_LIVE_RAY_ADDRESS set, the cluster not usable: say why, at once (a reload retries)
    booting.empty()

    def refused(why: str = str(exc)) -> None:
        st.error(f"GAN Live could not start its runs on the Ray cluster: {why}", icon=":material/cloud_off:")

    # Through st.navigation all the same: without it Streamlit lists pages/ (helpers included) in the sidebar.
    st.navigation([st.Page(refused, title="GAN Live", url_path="refused")], position="hidden").run()
    st.stop()
shown = "visible" if lab_open else "hidden"
page = st.navigation(
    [
        st.Page("pages/train.py", title="Train", icon=":material/monitoring:", default=True),
        st.Page("pages/my_run.py", title="My run", icon=":material/person:", url_path="my_run", visibility=shown),
        st.Page("pages/room.py", title="Room", icon=":material/groups:", url_path="room", visibility=shown),
        st.Page("pages/samples.py", title="Samples", icon=":material/grid_view:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/stacked_line_chart:"),
        st.Page("pages/theory.py", title="Theory", icon=":material/function:"),
    ],
    position="top",
)
try:
    page.run()
finally:
    booting.empty()
