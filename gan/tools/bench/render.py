"""The render part: what one shared LiveView frame costs the server (render_ms) vs the old Altair path.
Must not train, start a server or import streamlit (it mirrors Streamlit's Arrow conversion instead)."""

import hashlib
import math
import statistics
import time


def _arrow_transformer(data, datasets: dict) -> dict:
    """What Streamlit's st.altair_chart does with chart data: Arrow IPC bytes named by a content hash.

    (gan/ never imports streamlit, so this mirrors streamlit.elements.vega_charts._to_arrow_dataset.)
    """
    import pyarrow as pa

    table = pa.Table.from_pandas(data)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    raw = sink.getvalue().to_pybytes()
    name = hashlib.md5(raw, usedforsecurity=False).hexdigest()
    datasets[name] = raw
    return {"name": name}


def chart_specs(charts: dict) -> list[dict]:
    """Vega-Lite dicts as Streamlit builds them: validated to_dict with data moved out as Arrow."""
    import altair as alt

    alt.data_transformers.register("gan_bench_arrow", _arrow_transformer)
    specs = []
    datasets: dict = {}
    with alt.data_transformers.enable("gan_bench_arrow", datasets=datasets):
        for chart in charts.values():
            specs.append(chart.to_dict())
    return specs


def part_render(args) -> dict:
    """render_ms: one shared LiveView frame (snapshot + the live charts' data + grid PNG + status) plus the
    quality panel's payload, for histories of 1,000 and 1,000,000 steps (median of repeats);
    render_altair_ms: the old per-session Altair path, for comparison."""
    import numpy as np

    from gan.viz.charts import build_dashboard_charts
    from gan.viz.quality_charts import coverage_chart, metrics_chart
    from gan.viz.sample_history import fabricate_history

    rng = np.random.default_rng(0)
    rows = [{"step": 500 * i, "score": 1 + 8 * (1 - math.exp(-i / 50)), "fd": 300 * math.exp(-i / 50),
             "entropy": 2.2} for i in range(400)]  # a full MetricsMonitor history (max_points rows)
    ceiling = {"score": 8.9, "fd": 1.4, "entropy": 2.30}
    coverage = rng.dirichlet(np.ones(10))

    def build(hist):
        snap = hist.snapshot()
        charts = dict(build_dashboard_charts(snap))
        charts["score"] = metrics_chart(rows, ceiling, "score")
        charts["coverage"] = coverage_chart(coverage, np.full(10, 0.1))
        return chart_specs(charts)

    from gan.core.config import Config
    from gan.engine.status import RunState, RunStatus
    from gan.viz import livechart
    from gan.viz.liveview import LiveView

    class _Run:  # what LiveView reads of a run: a name, its config, a status and a history
        def __init__(self, name, hist):
            self.name, self.history, self.config = name, hist, Config()

        def status(self):
            return RunStatus(name=self.name, state=RunState.RUNNING, step=self.history.total_steps,
                             steps_per_sec=30.0, elapsed=60.0, device="cpu", dataset="mnist5k", loss="bce",
                             lr_g=1e-3, lr_d=5e-4, d_steps=1, model="dcgan")

    def build_live(hist, name):
        # What one tick now costs the server, once for every viewer: snapshot, chart data, grid PNG
        # (a new grid each time: the worst case), status text; plus the quality panel's payload.
        view = LiveView(min_interval=0.0)
        view.frame(_Run(name, hist))
        livechart.quality_payload(rows, ceiling, coverage, np.full(10, 0.1), None)

    out, old = {}, {}
    for n in args.render_lengths:
        hist = fabricate_history(n, switch_every=max(1, n // 7))
        for fn, into in ((lambda h, i: build_live(h, f"run-{i}"), out), (lambda h, i: build(h), old)):
            fn(hist, -1)  # warm caches (Altair schema, imports, spec templates)
            times = []
            for i in range(args.render_repeats):
                t0 = time.perf_counter()
                fn(hist, i)
                times.append((time.perf_counter() - t0) * 1000)
            into[str(n)] = statistics.median(times)
    return {"render_ms": out, "render_altair_ms": old,
            "render_includes": "one shared LiveView frame (snapshot + chart data + grid PNG + status) and the "
            "quality payload; render_altair_ms: the old per-session path (snapshot + Altair charts, validated "
            "to_dict with Arrow data as st.altair_chart)"}
