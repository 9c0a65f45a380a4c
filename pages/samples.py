"""Samples: the fixed-noise grids of the current run on a step slider, and downloads.

The same 64 noise vectors make every grid, so sliding through the steps shows G learning. The list
of grids is frozen per browser session (a training run keeps adding grids; a slider whose options
changed under the mouse would jump back); "Load newer grids" takes the latest list.
"""

import streamlit as st

from gan import charts
from gan.runs import checkpoint_bytes, history_csv
from pages._shared import get_registry

ss = st.session_state
trainer = get_registry().current()

st.title("Samples")
if trainer is None:
    st.info("No run yet. Start one on the Train page (top menu); its sample grids appear here.",
            icon=":material/info:")
    st.stop()

if ss.get("_samples_run") != trainer.name or st.button("Load newer grids", icon=":material/refresh:"):
    ss["_samples_run"] = trainer.name
    ss["_samples_grids"] = list(trainer.history.snapshot().grids)  # references, no pixel copies
    ss.pop("samples_step", None)
grids = ss["_samples_grids"]
status = trainer.status()
st.caption(f"{trainer.name}: {status['state']}, step {status['step']:,}. {len(grids)} grids from fixed noise "
           f"(one every {trainer.config.sample_every} steps; older ones are thinned out on long runs).")
if not grids:
    st.info("No sample grid yet: the first appears when the run has loaded.", icon=":material/hourglass_top:")
    st.stop()

by_step = {g.step: g for g in grids}
steps = list(by_step)
if len(steps) > 1:
    step = st.select_slider("Step", options=steps, value=steps[-1], key="samples_step",
                            format_func=lambda s: f"{s:,}")
else:
    step = steps[0]
grid = by_step[step]
png = charts.grid_png(grid.images, scale=4)

left, right = st.columns([3, 2])
left.image(png, output_format="PNG", width="stretch",
           caption=f"Step {grid.step:,} · {charts.loss_label(grid.loss)} loss")
with right:
    st.subheader("Downloads")
    st.download_button("Grid (PNG)", png, file_name=f"gan-live-{trainer.name}-step{grid.step}.png",
                       mime="image/png", icon=":material/image:", on_click="ignore", width="stretch")
    # Deferred: the CSV and the checkpoint are made only when their button is pressed.
    st.download_button("History (CSV)", lambda: history_csv(trainer), file_name=f"gan-live-{trainer.name}.csv",
                       mime="text/csv", icon=":material/table:", on_click="ignore", width="stretch")
    st.download_button("Checkpoint (.pt)", lambda: checkpoint_bytes(trainer),
                       file_name=f"gan-live-{trainer.name}-step{status['step']}.pt",
                       mime="application/octet-stream", icon=":material/save:", on_click="ignore",
                       width="stretch", disabled=trainer.G is None,
                       help="G, D, both optimisers, the config and the history; resume it with the CLI.")
