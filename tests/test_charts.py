"""gan.viz.charts without a browser: chart specs from a history snapshot, grids, the fabricated history."""

import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gan.engine.history import History
from gan.viz import charts, look, markers, sample_history
from gan.viz.images import grid_image, grid_png

LOSS_STEPS = 300  # bce for steps 1-100, mse 101-200, hinge 201-300


@pytest.fixture(scope="module")
def switched():
    # Small bounds so old steps are bucketed too: the reference lines must survive the folding.
    return sample_history.fabricate_history(LOSS_STEPS, switch_every=100, recent=60, max_buckets=40).snapshot()


def datasets(chart) -> list[list[dict]]:
    return list(chart.to_dict()["datasets"].values())


def layer_rows(chart, layer_index: int) -> list[dict]:
    spec = chart.to_dict()
    return spec["datasets"][spec["layer"][layer_index]["data"]["name"]]


def color_scales(spec) -> list[dict]:
    found = []
    if isinstance(spec, dict):
        color = spec.get("encoding", {}).get("color", {})
        if "scale" in color:
            found.append(color["scale"])
        for value in spec.values():
            found += color_scales(value)
    elif isinstance(spec, list):
        for value in spec:
            found += color_scales(value)
    return found


def test_dashboard_charts_are_valid_vega_lite(switched):
    built = charts.build_dashboard_charts(switched)
    assert set(built) == {"loss", "d_outputs", "histogram"}
    for name, chart in built.items():
        spec = chart.to_dict(validate=True)  # raises on a spec Vega-Lite would reject
        assert spec["height"] == look.CHART_HEIGHT, name
        assert spec["title"], name


def test_reference_lines_follow_the_active_loss(switched):
    eq = charts.equilibrium_lines(switched.scalars)
    d = eq[eq["series"] == "D loss"].sort_values("start")
    g = eq[eq["series"] == "G loss"].sort_values("start")
    assert list(d["loss"]) == ["BCE", "MSE", "Hinge"]
    assert d["value"].tolist() == pytest.approx([np.log(2), 0.25, 1.0])
    assert g["value"].tolist() == pytest.approx([np.log(2), 0.25, 0.0])
    # Each line ends where the next begins: the reference jumps at the switch, no gap, no overlap.
    assert d["end"].iloc[0] == d["start"].iloc[1] and d["end"].iloc[1] == d["start"].iloc[2]
    first_mse = switched.scalars[switched.scalars["loss"] == "mse"].iloc[0]  # a bucket, plotted at its middle
    assert d["start"].iloc[1] == first_mse["step"] == 101 + (first_mse["steps_in_row"] - 1) / 2  # from step 101
    # The same values reach the chart, drawn dashed.
    chart = charts.loss_chart(switched)
    rule = chart.to_dict()["layer"][1]
    assert rule["mark"]["type"] == "rule" and rule["mark"]["strokeDash"]
    assert {round(r["value"], 3) for r in layer_rows(chart, 1)} == {0.693, 0.25, 1.0, 0.0}


def test_every_loss_switch_gets_a_labelled_marker(switched):
    sw = markers.markers(switched.events)
    assert sw["step"].tolist() == [101, 201]
    assert sw["label"].tolist() == ["BCE→MSE", "MSE→Hinge"]
    spec = charts.loss_chart(switched).to_dict()
    marks = [layer["mark"]["type"] for layer in spec["layer"]]
    assert marks == ["line", "rule", "rule", "text", "text", "text", "text", "point"]  # halo + text per side
    assert [layer["mark"].get("align") for layer in spec["layer"][3:7]] == ["left", "left", "right", "right"]
    assert all(layer["encoding"]["text"]["field"] == "label" for layer in spec["layer"][3:7])
    drawn = layer_rows(charts.loss_chart(switched), 2)
    assert [(r["step"], r["label"], r["align"]) for r in drawn] == [(101, "BCE→MSE", "left"),
                                                                    (201, "MSE→Hinge", "left")]


def test_no_switch_no_marker_and_one_reference_per_player():
    snap = sample_history.fabricate_history(50).snapshot()
    spec = charts.loss_chart(snap).to_dict()
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["line", "rule"]
    assert len(layer_rows(charts.loss_chart(snap), 1)) == 2  # D and G at BCE's ln 2


def test_one_colour_for_d_and_one_for_g_on_every_chart(switched):
    seen = {}
    for chart in charts.build_dashboard_charts(switched).values():
        for scale in color_scales(chart.to_dict()):
            for series, colour in zip(scale["domain"], scale["range"]):
                seen[series] = colour
    assert seen == {"D loss": look.D_COLOR, "G loss": look.G_COLOR,
                    "D(real)": look.D_COLOR, "D(fake)": look.G_COLOR}
    assert look.D_COLOR != look.G_COLOR


def test_axes_have_titles(switched):
    titles = []
    for chart in charts.build_dashboard_charts(switched).values():
        for layer in chart.to_dict()["layer"]:
            for channel in ("x", "y"):
                title = layer["encoding"].get(channel, {}).get("title")
                if title:
                    titles.append(title)
    assert {"step", "loss", "mean D output", "images", "D output (probability of 'real')"} <= set(titles)


def test_d_outputs_chart_has_the_half_line(switched):
    spec = charts.d_outputs_chart(switched).to_dict()
    half = spec["layer"][1]
    assert half["mark"]["type"] == "rule"
    assert list(spec["datasets"][half["data"]["name"]]) == [{"y": 0.5}]


def test_histogram_counts_every_probability_on_0_1():
    rng = np.random.default_rng(1)
    real, fake = rng.uniform(0, 1, 64), rng.uniform(0, 1, 48)
    h = charts.histogram(real, fake)
    assert h[h.series == "D(real)"]["count"].sum() == 64
    assert h[h.series == "D(fake)"]["count"].sum() == 48
    assert h["lo"].min() == 0.0 and h["hi"].max() == 1.0
    assert len(h) == 2 * charts.HIST_BINS


def test_downsample_caps_rows_and_keeps_the_live_edge():
    snap = sample_history.fabricate_history(5000).snapshot()  # 2000 recent + buckets
    assert len(snap.scalars) > charts.MAX_POINTS
    cols = charts.downsample(snap.scalars, charts.MAX_POINTS)
    assert len(cols["step"]) <= charts.MAX_POINTS
    assert cols["step"][-1] == snap.scalars["step"].iloc[-1]
    assert cols["loss_d"][-1] == snap.scalars["loss_d"].iloc[-1]
    assert np.all(np.diff(cols["step"]) > 0)
    # Block means keep the overall level of the curve.
    assert cols["loss_d"].mean() == pytest.approx(snap.scalars["loss_d"].mean(), abs=0.02)


def test_chart_data_does_not_grow_with_run_length():
    sizes = {}
    for n in (1_000, 1_000_000):
        snap = sample_history.fabricate_history(n, switch_every=n // 5).snapshot()
        assert snap.total_steps == n
        rows = sum(len(d) for c in charts.build_dashboard_charts(snap).values() for d in datasets(c))
        sizes[n] = rows
    # What reaches the browser is bounded by MAX_POINTS, not by the number of steps.
    assert sizes[1_000_000] <= 2 * 2 * charts.MAX_POINTS + 2 * charts.HIST_BINS + 40  # 2 line charts x 2 series
    assert sizes[1_000_000] < 1.5 * sizes[1_000] + 100


def test_fabricated_history_is_a_history_fed_step_by_step():
    hist = sample_history.fabricate_history(3000, switch_every=700, recent=100, max_buckets=50, seed=3)
    snap = hist.snapshot()
    assert isinstance(hist, History) and snap.total_steps == 3000
    assert len(snap.scalars) <= 100 + 50 + 1  # History folded the old steps itself
    assert snap.scalars["steps_in_row"].sum() == 3000
    assert list(snap.events["detail"]) == ["bce → mse", "mse → hinge", "hinge → minimax", "minimax → bce"]


def test_grid_image_tiles_eight_a_row_with_padding_and_scale():
    images = np.zeros((64, 28, 28), np.uint8)
    images[5] = 255
    tiled = grid_image(images, per_row=8, padding=2)
    assert tiled.shape == (8 * 30 + 2, 8 * 30 + 2)
    y, x = 2, 2 + 5 * 30  # image 5 is in row 0, column 5
    assert tiled[y:y + 28, x:x + 28].min() == 255
    assert tiled[y - 1, x] != 255  # padding around it
    assert grid_image(images[:, None], scale=3).shape == (3 * 242, 3 * 242)
    with pytest.raises(ValueError, match="uint8"):
        grid_image(images.astype(np.float32))


def test_grid_png_decodes_to_the_grid():
    images = np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8)
    png = grid_png(images, scale=2)
    img = Image.open(io.BytesIO(png))
    assert img.size == (2 * 242, 2 * 242)
    assert np.array_equal(np.asarray(img)[::2, ::2], grid_image(images))


def test_charts_serialise_to_json(switched):
    """What Streamlit sends must be plain JSON, and the JSON must still carry the run's numbers."""
    loss = charts.build_dashboard_charts(switched)["loss"]
    spec = json.loads(json.dumps(loss.to_dict()))
    rows = [r for d in spec.get("datasets", {}).values() for r in d]
    steps = {r["step"] for r in rows if "step" in r}
    assert int(switched.scalars.step.iloc[-1]) in steps  # the live edge survived the round trip
    assert {round(v, 6) for v in switched.scalars.loss_d.tail(5)} <= {round(r["value"], 6) for r in rows
                                                                        if r.get("series") == "D loss"}


# --- marker labels on a crowded loss chart (gan.viz.markers.marker_layout) ----------------------------------
def _marks(*events) -> pd.DataFrame:
    rows = [(s, "loss", markers.switch_label(d)) if "→" in d else (s, "coach", d) for s, d in events]
    return pd.DataFrame(rows, columns=["step", "kind", "label"])


def _drawn(laid) -> list:
    return [r for r in laid.itertuples(index=False) if r.align != "none"]


def _overlaps(laid) -> list:
    drawn = _drawn(laid)
    return [(a.label, b.label) for i, a in enumerate(drawn) for b in drawn[i + 1:]
            if a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1]


def _at_width(laid, domain, width) -> "pd.DataFrame":
    """The same layout drawn on a wider plot: each box moves with its rule, keeps its side and its size."""
    out = laid.copy()
    x = (out["step"] - domain[0]) / (domain[1] - domain[0]) * width
    w = out["x1"] - out["x0"]
    left = out["align"] == "left"
    out["x0"] = np.where(left, x + markers.MARKER_GAP_PX, x - markers.MARKER_GAP_PX - w)
    out["x1"] = out["x0"] + w
    return out


def _check(laid, domain, width=markers.MARKER_LAYOUT_WIDTH):
    """No two labels overlap, each stays inside the plot (so none reaches the legend, above it), at this width
    and wider ones; the labels' band is the lanes'."""
    for w in (width, width * 1.3, width * 2.5):
        at = _at_width(laid, domain, w) if w != width else laid
        assert _overlaps(at) == [], w
        for r in _drawn(at):
            lanes_bottom = markers.LANE_TOP_PX + markers.MARKER_LANES * markers.LANE_PX
            assert 0 <= r.x0 < r.x1 <= w and 0 <= r.y0 and r.y1 <= lanes_bottom


def test_loss_switches_10_steps_apart_share_one_label_and_never_overprint():
    """The workshop's "BCEMSEMSEBCE": two switches 10 steps apart printed over each other."""
    domain = (1, 1600)
    laid = markers.marker_layout(_marks((1500, "bce → mse"), (1510, "mse → bce")), domain)
    _check(laid, domain)
    assert [r.label for r in _drawn(laid)] == ["BCE→MSE→BCE"]  # one label, at the first rule
    assert laid["tip"].tolist() == ["BCE→MSE", "MSE→BCE"]  # each rule keeps its own tooltip
    # farther apart (50 px at 1280 px), each its own label, in lanes one above the other
    laid = markers.marker_layout(_marks((1300, "bce → mse"), (1490, "mse → bce")), domain)
    _check(laid, domain)
    assert sorted(r.label for r in _drawn(laid)) == ["BCE→MSE", "MSE→BCE"]
    assert laid["lane"].nunique() == 2


def test_alarms_close_together_never_merge_into_one_string():
    domain = (1, 3000)
    laid = markers.marker_layout(_marks((1200, "mode collapse"), (1230, "mode collapse")), domain)
    _check(laid, domain)
    assert [r.label for r in _drawn(laid)] == ["mode collapse ×2"]
    laid = markers.marker_layout(_marks((1200, "mode collapse"), (1600, "mode collapse"), (1650, "BCE→MSE"),
                                       (1700, "D wins")), domain)
    _check(laid, domain)
    assert sorted(r.label for r in _drawn(laid)) == ["BCE→MSE", "D wins", "mode collapse", "mode collapse"]


def test_many_switches_never_overprint_and_the_newest_is_always_labelled():
    rng = np.random.default_rng(0)
    names = ["bce", "mse", "hinge", "minimax"]
    for trial in range(20):
        steps = np.sort(rng.choice(np.arange(10, 5000), size=int(rng.integers(5, 60)), replace=False))
        events = [(int(s), f"{names[i % 4]} → {names[(i + 1) % 4]}") for i, s in enumerate(steps)]
        events += [(int(s), "mode collapse") for s in rng.choice(np.arange(10, 5000), size=4, replace=False)]
        domain = (1, 5000)
        laid = markers.marker_layout(_marks(*events), domain)
        _check(laid, domain)
        assert len(laid) == len(events)  # every marker keeps its rule and tooltip, drawn or not
        # The newest marker is labelled, or the run of close markers it ends is, at its first rule: every
        # marker after the last drawn label follows the one before it by less than CHAIN_PX.
        last = int(np.flatnonzero(laid["align"].to_numpy() != "none")[-1])
        gaps = np.diff(laid["step"].to_numpy()[last:]) / (domain[1] - domain[0]) * markers.MARKER_LAYOUT_WIDTH
        assert (gaps < markers.CHAIN_PX).all(), trial


def test_labels_stay_clear_of_the_legend_and_the_lines(switched):
    """The legend sits above the plot, where no label goes; the invisible headroom point lifts the y scale
    so the lines stay under the labels' lanes."""
    spec = charts.loss_chart(switched).to_dict()
    assert spec["layer"][0]["encoding"]["color"]["legend"]["orient"] == "top"
    top = layer_rows(charts.loss_chart(switched), 7)[0]["value"]
    values = switched.scalars[["loss_d", "loss_g"]].to_numpy()
    lo, hi = values.min(), values.max()
    band = markers.LANE_TOP_PX + markers.LANE_PX + 4  # one lane used
    # the lines' top sits at least `band` pixels under the plot's top on a LOSS_PLOT_HEIGHT plot
    assert (top - hi) / (top - lo) * markers.LOSS_PLOT_HEIGHT >= band - 1e-6


def test_label_width_estimate_grows_with_the_text():
    assert markers.label_width("BCE→MSE→BCE") > markers.label_width("BCE→MSE") > markers.label_width("NaN") > 0


def test_step_axis_fits_its_ticks_to_the_width(switched):
    axis = charts.loss_chart(switched).to_dict()["layer"][0]["encoding"]["x"]["axis"]
    assert axis["tickCount"] == {"expr": f"ceil(width / {charts.X_TICK_PX})"}
    assert axis["labelOverlap"] and axis["labelSeparation"] >= 8


def test_compare_colours_keep_runs_apart_and_the_live_run_stands_out():
    runs = ["a", "b", "c", "live (current run)"]
    colors = charts.run_colors(runs, "live (current run)")
    assert list(colors) == runs and len(set(colors.values())) == 4
    assert colors["live (current run)"] == charts.LIVE_RUN_COLOR and colors["a"] == charts.RUN_PALETTE[0]
    assert charts.run_colors(["a"], None) == {"a": charts.RUN_PALETTE[0]}
    enc = charts.run_encoding(runs, "live (current run)")
    scale = enc["strokeWidth"].to_dict()["scale"]
    widths = dict(zip(scale["domain"], scale["range"]))
    assert widths["live (current run)"] > widths["a"] == widths["b"]
