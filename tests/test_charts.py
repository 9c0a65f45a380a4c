"""gan.viz.charts without a browser: chart specs from a history snapshot, grids, the fabricated history."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from gan.engine.history import History
from gan.viz import charts
from gan.viz.images import grid_image, grid_png

LOSS_STEPS = 300  # bce for steps 1-100, mse 101-200, hinge 201-300


@pytest.fixture(scope="module")
def switched():
    # Small bounds so old steps are bucketed too: the reference lines must survive the folding.
    return charts.fabricate_history(LOSS_STEPS, switch_every=100, recent=60, max_buckets=40).snapshot()


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
        assert spec["height"] == charts.CHART_HEIGHT, name
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
    assert d["start"].iloc[1] == pytest.approx(101, abs=1.5)  # the first MSE step (a bucket midpoint)
    # The same values reach the chart, drawn dashed.
    chart = charts.loss_chart(switched)
    rule = chart.to_dict()["layer"][1]
    assert rule["mark"]["type"] == "rule" and rule["mark"]["strokeDash"]
    assert {round(r["value"], 3) for r in layer_rows(chart, 1)} == {0.693, 0.25, 1.0, 0.0}


def test_every_loss_switch_gets_a_labelled_marker(switched):
    sw = charts.markers(switched.events)
    assert sw["step"].tolist() == [101, 201]
    assert sw["label"].tolist() == ["BCE → MSE", "MSE → Hinge"]
    spec = charts.loss_chart(switched).to_dict()
    marks = [layer["mark"]["type"] for layer in spec["layer"]]
    assert marks == ["line", "rule", "rule", "text"]
    assert spec["layer"][3]["encoding"]["text"]["field"] == "label"


def test_no_switch_no_marker_and_one_reference_per_player():
    snap = charts.fabricate_history(50).snapshot()
    spec = charts.loss_chart(snap).to_dict()
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["line", "rule"]
    assert len(layer_rows(charts.loss_chart(snap), 1)) == 2  # D and G at BCE's ln 2


def test_one_colour_for_d_and_one_for_g_on_every_chart(switched):
    seen = {}
    for chart in charts.build_dashboard_charts(switched).values():
        for scale in color_scales(chart.to_dict()):
            for series, colour in zip(scale["domain"], scale["range"]):
                seen[series] = colour
    assert seen == {"D loss": charts.D_COLOR, "G loss": charts.G_COLOR,
                    "D(real)": charts.D_COLOR, "D(fake)": charts.G_COLOR}
    assert charts.D_COLOR != charts.G_COLOR


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
    snap = charts.fabricate_history(5000).snapshot()  # 2000 recent + buckets
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
        snap = charts.fabricate_history(n, switch_every=n // 5).snapshot()
        assert snap.total_steps == n
        rows = sum(len(d) for c in charts.build_dashboard_charts(snap).values() for d in datasets(c))
        sizes[n] = rows
    # What reaches the browser is bounded by MAX_POINTS, not by the number of steps.
    assert sizes[1_000_000] <= 2 * 2 * charts.MAX_POINTS + 2 * charts.HIST_BINS + 40  # 2 line charts x 2 series
    assert sizes[1_000_000] < 1.5 * sizes[1_000] + 100


def test_fabricated_history_matches_appending_every_step():
    fast = charts.fabricate_history(3000, switch_every=700, recent=100, max_buckets=50, seed=3)
    exact = charts.fabricate_history(3000, switch_every=700, recent=100, max_buckets=50, seed=3, exact=True)
    for hist in (fast, exact):
        snap = hist.snapshot()
        assert snap.total_steps == 3000
        assert len(snap.scalars) <= 100 + 50 + 1
        weights = snap.scalars["steps_in_row"]
        assert weights.sum() == 3000
    f, e = fast.snapshot().scalars, exact.snapshot().scalars
    mean = lambda s, c: float((s[c] * s["steps_in_row"]).sum() / s["steps_in_row"].sum())  # noqa: E731
    assert mean(f, "loss_g") == pytest.approx(mean(e, "loss_g"), rel=1e-9)
    assert list(fast.snapshot().events["detail"]) == list(exact.snapshot().events["detail"])
    assert isinstance(fast, History)


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
