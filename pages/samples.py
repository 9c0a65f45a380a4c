"""Samples: the fixed-noise grids of the current run on a step slider, a time-lapse GIF, latent
interpolation, the reference classifier's guess per cell, and downloads.

The same 64 noise vectors make every grid, so sliding through the steps shows G learning. The list
of grids is frozen per browser session (a training run keeps adding grids; a slider whose options
changed under the mouse would jump back); "Load newer grids" takes the latest list. Everything heavy
(the GIF, a copy of G, the classifier's labels) is made on demand and cached per session by run and
step; this page has no timer, so it costs the training nothing while nobody touches it.

Presenter lock: the PNG, GIF and CSV downloads are for everyone; the checkpoint download (the
whole run, weights included) only for the presenter.
"""

import pandas as pd
import streamlit as st

from gan.core.config import OWN
from gan.core.data import data_noun
from gan.viz import animation, look
from gan.viz.images import grid_png
from gan.workshop.transfer import checkpoint_bytes, history_csv
from pages._shared import get_registry, no_run_notice, presenter_access, reference_classifier

ss = st.session_state
st.title("Samples")
access = presenter_access()
trainer = get_registry().current()

if trainer is None:
    no_run_notice(access, "No run yet. Start one on the Train page (top menu); its sample grids appear here.")
    st.stop()

if ss.get("_samples_run") != trainer.name or st.button("Load newer grids", icon=":material/refresh:"):
    ss["_samples_run"] = trainer.name
    ss["_samples_grids"] = list(trainer.history.snapshot().grids)  # references, no pixel copies
    ss.pop("samples_step", None)
grids = ss["_samples_grids"]
status = trainer.status()
st.caption(f"{trainer.name}: {status.state}, step {status.step:,}. {len(grids)} grids from fixed noise "
           f"(one every {trainer.config.sample_every} steps; older ones are thinned out on long runs).")
if not grids:
    st.info("No sample grid yet: the first appears when the run has loaded.", icon=":material/hourglass_top:")
    st.stop()


def session_cached(slot: str, key, make):
    """make() once per key (run, step, ...) for this browser session; the latest value only."""
    cached = ss.get(slot)
    if cached is None or cached[0] != key:
        cached = (key, make())
        ss[slot] = cached
    return cached[1]


by_step = {g.step: g for g in grids}
steps = list(by_step)
if len(steps) > 1:
    step = st.select_slider("Step", options=steps, value=steps[-1], key="samples_step",
                            format_func=lambda s: f"{s:,}")
else:
    step = steps[0]
grid = by_step[step]
png = grid_png(grid.images, scale=4)

# The grid gets half the width (about 560 px at 1280x720): a third of it was ~280 px, too small to read its
# digits from the back of a room.
left, middle, right = st.columns([2, 1, 1], gap="medium")
left.image(png, output_format="PNG", width="stretch",
           caption=f"Step {grid.step:,} · {look.loss_label(grid.loss)} loss")

with middle:
    st.subheader("Time-lapse")
    gif_key = (trainer.name, tuple(steps))
    made = ss.get("_gif") is not None and ss["_gif"][0] == gif_key
    if st.button(f"Make the GIF ({len(grids)} frames)", key="make_gif", icon=":material/movie:",
                 width="stretch") or made:
        try:
            with st.spinner(f"Making the GIF from {len(grids)} sample grids…"):  # seconds for a long run
                gif = session_cached("_gif", gif_key, lambda: animation.grids_to_gif(grids, scale=2))
        except ValueError as exc:
            st.info(str(exc))
        else:
            st.download_button("Download time-lapse (GIF)", gif, file_name=f"gan-live-{trainer.name}.gif",
                               mime="image/gif", icon=":material/download:", on_click="ignore", key="gif_download",
                               width="stretch")
            st.image(gif, caption=f"{animation.gif_frame_count(gif)} frames, steps {steps[0]:,} to {steps[-1]:,}",
                     width="stretch")
    else:
        st.caption("Every sample grid of this run as one animated GIF: watch G learn from noise to "
                   f"{data_noun(trainer.dataset_name)}.")

with right:
    st.subheader("Downloads")
    st.download_button("Grid (PNG)", png, file_name=f"gan-live-{trainer.name}-step{grid.step}.png",
                       mime="image/png", icon=":material/image:", on_click="ignore", width="stretch")
    # Deferred: the CSV and the checkpoint are made only when their button is pressed.
    st.download_button("History (CSV)", lambda: history_csv(trainer), file_name=f"gan-live-{trainer.name}.csv",
                       mime="text/csv", icon=":material/table:", on_click="ignore", width="stretch")
    if access.presenter:
        st.download_button("Checkpoint (.pt)", lambda: checkpoint_bytes(trainer),
                           file_name=f"gan-live-{trainer.name}-step{status.step}.pt",
                           mime="application/octet-stream", icon=":material/save:", on_click="ignore",
                           width="stretch", disabled=not trainer.has_models(), key="checkpoint_download",
                           help="G, D, both optimisers, the config and the history; resume it with the CLI "
                                "or load it on the Train page.")

    st.subheader("Classifier")
    if trainer.dataset_name == OWN:  # nothing to train a classifier on: say so rather than offer a toggle
        st.caption("Your images have no classes, so no classifier labels them: the quality panel compares the "
                   "samples with your images by Fréchet distance instead.")
    elif st.toggle("Label the cells", key="label_cells", wrap=True,
                   help="A small CNN trained on the real images of this dataset (the yardstick of the quality "
                        "metrics). Its guess per cell, in the grid's order; '?' when it is unsure, "
                        "'–' when it is none of the classes (noise, a blob, blank)."):
        try:
            reference = reference_classifier(trainer)  # the run's own dataset, never one looked up by name
        except Exception as exc:  # a missing dataset or cache must not break the page
            st.error(f"The reference classifier is not available: {exc}")
        else:
            labels = session_cached("_cell_labels", (trainer.name, grid.step), lambda: animation.cell_captions(
                animation.classify_cells(grid.images, reference.model.embed)))
            digits = [lab.split(" ")[0] for lab in labels]  # "7 (93%)" -> "7"; "?" when unsure, "–" no digit
            per_row = 8  # the grid's layout: row r, column c of the table is the cell beside it
            st.table(pd.DataFrame([digits[i:i + per_row] for i in range(0, len(digits), per_row)]),
                     hide_index=True, hide_header=True)
            st.caption(animation.classes_caption(grid.step, digits, data_noun(trainer.dataset_name),
                                                 data_noun(trainer.dataset_name, one=True)))

st.divider()
st.subheader("Latent interpolation")
st.caption("Two noise vectors (picked by seed) and the path between them through the current G. Slerp walks "
           "along the sphere where N(0, I) noise lives; lerp cuts through the middle, where G saw no noise, "
           "so its middle frames fade.")
if not trainer.has_models():
    st.info("The generator is not built yet.")
    st.stop()
controls = st.columns([1, 1, 1, 3])
seed_a = controls[0].number_input("Seed A", 0, 2**31 - 1, 1, key="interp_a")
seed_b = controls[1].number_input("Seed B", 0, 2**31 - 1, 2, key="interp_b")
method = controls[2].radio("Path", ("slerp", "lerp"), key="interp_method", horizontal=True)
t = controls[3].slider("Position between A and B", 0.0, 1.0, 0.5, 0.05, key="interp_t")
# One copy of G per run and step (taken at a step boundary), not one per slider move.
with st.spinner("Fetching G's current weights from the training process…"):  # waits for a step boundary
    G = session_cached("_interp_G", (trainer.name, status.step), trainer.generator_copy)
z0, z1 = animation.latent_pair(trainer.config.latent_dim, seed_a, seed_b)
frames = st.columns([1, 6])
frames[0].image(grid_png(animation.interpolate_at(G, z0, z1, t, method)[None], per_row=1, scale=5),
                caption=f"t = {t:.2f}", width="stretch")
strip = animation.interpolate(G, z0, z1, 10, method)  # (10, 28, 28)
frames[1].image(grid_png(strip, per_row=10, scale=3), caption=f"A → B in 10 steps ({method}), G at step "
                f"{status.step:,}", width="stretch")
