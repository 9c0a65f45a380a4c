"""`python -m gan bench`: numbers, not adjectives.

Parts (``--parts``, comma-separated; all but soak by default):
  overhead  trainer_vs_bare: steps/s of the Trainer thread / a bare loop calling the same gan_step
            (same models, batch and seed, one run each); monitor_vs_trainer: with the MetricsMonitor on.
  autosave  autosave_ms (one autosave of the default run: state_dict + atomic write + fsync), autosave_cost
            (that per 30 s of training) and autosave_every_1s_vs_none (steps/s, interleaved rounds).
  render    render_ms: one shared LiveView frame (snapshot + the live charts' data + grid PNG + status)
            plus the quality panel's payload, for histories of 1,000 and 1,000,000 steps (median of
            repeats); render_altair_ms: the old per-session Altair path, for comparison.
  rss       rss_growth_mb: resident memory growth over --rss-steps steps after a warm-up (Trainer +
            MetricsMonitor + sample grids; a small fast model so 20,000 steps fit the time budget).
  browser   dashboard_vs_headless and tab_heap_growth_mb: the real app (streamlit run app.py) in
            headless Chromium driven by Playwright; JS heap via the DevTools protocol.
  score     seconds_to_score_7, score_120s (default config) and score_120s_textbook, CPU.
            G is copied every few seconds while the Trainer runs (a copy costs milliseconds) and the
            copies are scored after training, so measuring does not slow the run being measured.
  viewers   what a workshop room costs: the real app with a presenter (?token=) who presses Start,
            then for each N in --viewers, N simulated browser tabs (gan/tools/viewers.py) over
            --viewer-seconds: viewers_N_train_ratio (steps/s vs the first N), refresh rate per
            viewer, server CPU ms per refresh, /_stcore/health latency, and how long a presenter
            action (Pause, a loss switch) takes to reach the last viewer.
  soak      an hour of a workshop (--minutes, default 60; not in the default set): the real app, a
            presenter who presses Start and --soak-viewers tabs connected throughout; every
            --soak-sample-s the server's and the training worker's RSS, the step, the viewers and the
            autosave files; soak_server/worker_rss_growth_mb (after a warm-up of min(10 %, 60 s)),
            soak_autosaves and soak_autosaves_readable (each loaded with gan.engine.checkpoint),
            soak_log_errors, soak_viewers_dropped, soak_refresh_min.

With --json the last line printed is one JSON object holding every key (null where a part was not
run or failed; ``errors`` says why).
"""

import argparse
import gc
import json
import math
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from gan.engine.procs import cpu_seconds, descendants, training_worker_pid
from gan.engine.storage import atomic_write

KEYS = ("trainer_vs_bare", "dashboard_vs_headless", "render_ms", "rss_growth_mb", "tab_heap_growth_mb",
        "seconds_to_score_7", "score_120s", "score_120s_textbook")
PARTS = ("overhead", "autosave", "render", "rss", "browser", "score", "viewers", "soak")
DEFAULT_PARTS = tuple(p for p in PARTS if p != "soak")  # an hour long: only when asked for
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
REPO = Path(__file__).resolve().parents[2]  # gan/tools/bench.py -> the repository
TINY = {"model": "mlp", "width": 16, "batch_size": 16, "latent_dim": 16}  # for --quick and the rss part


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- overhead ----------------------------------------------------------------------------------
def bare_steps_per_sec(cfg, steps: int, warmup: int) -> float:
    """The same gan_step as the Trainer, in a plain loop: no thread, no history, no commands."""
    from gan.engine.losses import get_loss
    from gan.engine.models import build_models
    from gan.engine.trainer import cached_dataset, gan_step

    data = cached_dataset(cfg.dataset, cfg.data_dir, "cpu")
    torch.manual_seed(cfg.seed)
    G, D = build_models(cfg.resolved_model(), cfg.latent_dim, cfg.width)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    spec = get_loss(cfg.loss)
    t0 = time.perf_counter()
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        out = gan_step(G, D, opt_g, opt_d, data, spec, batch_size=cfg.batch_size, latent_dim=cfg.latent_dim,
                       d_steps=cfg.d_steps, generator=gen)
        torch.stack([out[0], out[1], out[2].mean(), out[3].mean()]).tolist()  # the trainer's one host sync
    return steps / (time.perf_counter() - t0)


def trainer_steps_per_sec(cfg, steps: int, warmup: int, monitor_every: int | None = None, timeout: float = 600.0,
                          autosave_dir=None, autosave_every: float = 30.0) -> tuple[float, object]:
    """Run a Trainer to warmup+steps; steps/s from the history's per-step wall times after warm-up."""
    from gan.engine.autosave import Autosaver
    from gan.engine.trainer import PAUSED, Trainer
    from gan.quality.monitor import MetricsMonitor

    saver = None if autosave_dir is None else Autosaver(autosave_dir, name="bench", every_s=autosave_every)
    trainer = Trainer(cfg, name="bench", autosave=saver)
    monitor = None
    if monitor_every:  # the classifier loads before the run starts: measure the steady state only
        monitor = MetricsMonitor(trainer, every=monitor_every, evaluator=_evaluator(cfg)).start()
    trainer.start(stop_at_step=warmup + steps)
    try:
        ok = trainer.wait_until(lambda t: t.state == PAUSED and t.step_count >= warmup + steps or
                                t.state in ("failed", "stopped"), timeout=timeout, poll=0.05)
        if not ok or trainer.state != PAUSED:
            raise RuntimeError(f"trainer did not reach step {warmup + steps}: {trainer.status().reason}")
        s = trainer.history.snapshot(with_grids=False).scalars
        s = s[(s.steps_in_row == 1) & (s.step > warmup)]
        rate = (s.step.iloc[-1] - s.step.iloc[0]) / max(1e-9, s.time.iloc[-1] - s.time.iloc[0])
        evals = monitor.evaluations if monitor else (saver.saves if saver else 0)
        return float(rate), evals
    finally:
        if monitor is not None:
            monitor.stop()
        trainer.stop(5.0)


def _evaluator(cfg):
    from gan.engine.trainer import cached_dataset
    from gan.quality.metrics import Evaluator

    return Evaluator.for_dataset(cached_dataset(cfg.dataset, cfg.data_dir, "cpu"))


def part_overhead(args, cfg) -> dict:
    import statistics

    # Interleaved rounds (bare first, then trainer first, ...) and the median of the per-round
    # ratios: a load change on the machine hits both sides of a round instead of biasing one run.
    rounds = 3
    steps, warmup = max(10, args.overhead_steps // rounds), max(5, args.overhead_steps // 10)
    bares, trainers = [], []
    for r in range(rounds):
        order = ("bare", "trainer") if r % 2 == 0 else ("trainer", "bare")
        for side in order:
            if side == "bare":
                bares.append(bare_steps_per_sec(cfg, steps, warmup))
            else:
                trainers.append(trainer_steps_per_sec(cfg, steps, warmup)[0])
    ratio = statistics.median(t / b for t, b in zip(trainers, bares))
    bare, trainer = statistics.median(bares), statistics.median(trainers)
    with_monitor, evals = trainer_steps_per_sec(cfg, steps * rounds, warmup, monitor_every=args.monitor_every)
    return {"trainer_vs_bare": ratio, "monitor_vs_trainer": with_monitor / trainer,
            "overhead_rounds": [round(t / b, 3) for t, b in zip(trainers, bares)],
            "bare_steps_per_sec": bare, "trainer_steps_per_sec": trainer,
            "trainer_with_monitor_steps_per_sec": with_monitor, "monitor_every": args.monitor_every,
            "monitor_evaluations": evals, "overhead_steps": steps}


def part_autosave(args, cfg) -> dict:
    """What autosaving costs training: one autosave timed directly, and steps/s with an autosave every
    second (30x the real rate, so the effect is measurable) against none, in interleaved rounds."""
    import shutil
    import tempfile

    from gan.engine.autosave import EVERY_S, Autosaver
    from gan.engine.trainer import PAUSED, Trainer

    tmp = Path(tempfile.mkdtemp(prefix="gan-live-bench-autosave-"))
    try:
        trainer = Trainer(cfg, name="bench", autosave=Autosaver(tmp / "one", name="bench", every_s=3600))
        trainer.start(stop_at_step=50)
        if not trainer.wait_until(lambda t: t.state == PAUSED, timeout=300):
            raise RuntimeError(f"the run did not reach step 50: {trainer.status().reason}")
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            if not trainer.write_autosave():
                raise RuntimeError(trainer.status().warnings)
            times.append((time.perf_counter() - t0) * 1000)
        trainer.stop(5.0)
        ms = statistics.median(times)
        size = max(p.stat().st_size for p in (tmp / "one").glob("autosave-*.pt"))
        steps, warmup = max(10, args.overhead_steps // 3), max(5, args.overhead_steps // 10)
        ratios, saves = [], 0
        for r in range(3):
            sides = {}
            for side in (("none", "every_1s") if r % 2 == 0 else ("every_1s", "none")):
                rate, n = trainer_steps_per_sec(cfg, steps, warmup, autosave_dir=tmp / f"r{r}{side}",
                                                autosave_every=1.0 if side == "every_1s" else 1e9)
                sides[side] = rate
                saves += n if side == "every_1s" else 0
            ratios.append(sides["every_1s"] / sides["none"])
        return {"autosave_ms": ms, "autosave_mb": size / 2**20, "autosave_cost": ms / (EVERY_S * 1000),
                "autosave_every_1s_vs_none": statistics.median(ratios),
                "autosave_rounds": [round(x, 3) for x in ratios], "autosave_saves_in_rounds": saves}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- render ------------------------------------------------------------------------------------
def _arrow_transformer(data, datasets: dict) -> dict:
    """What Streamlit's st.altair_chart does with chart data: Arrow IPC bytes named by a content hash.

    (gan/ never imports streamlit, so this mirrors streamlit.elements.vega_charts._to_arrow_dataset.)
    """
    import hashlib

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
    import numpy as np

    from gan.viz.charts import build_dashboard_charts, fabricate_history
    from gan.viz.quality_charts import coverage_chart, metrics_chart

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

    from gan.engine.protocol import RunState, RunStatus
    from gan.viz import livechart
    from gan.viz.liveview import LiveView

    class _Run:  # what LiveView reads of a run: a name, a status and a history
        def __init__(self, name, hist):
            self.name, self.history = name, hist

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


# --- rss ---------------------------------------------------------------------------------------
def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def part_rss(args) -> dict:
    from gan.engine.config import Config
    from gan.engine.trainer import PAUSED, Trainer
    from gan.quality.monitor import MetricsMonitor

    cfg = Config(**TINY, sample_every=100)
    trainer = Trainer(cfg, name="bench-rss")
    monitor = MetricsMonitor(trainer, every=max(1, args.rss_steps // 20), evaluator=_evaluator(cfg)).start()
    warm = args.rss_warmup
    try:
        trainer.start(stop_at_step=warm)
        trainer.wait_until(lambda t: t.state == PAUSED and t.step_count >= warm, timeout=600, poll=0.05)
        gc.collect()
        before = rss_mb()
        t0 = time.perf_counter()
        target = warm + args.rss_steps
        trainer.resume(until_step=target)  # continue to the target step, then pause again
        ok = trainer.wait_until(lambda t: t.state == PAUSED and t.step_count >= target, timeout=900, poll=0.05)
        if not ok:
            raise RuntimeError(f"rss run stopped at step {trainer.step_count}: {trainer.status().reason}")
        gc.collect()
        after = rss_mb()
        return {"rss_growth_mb": after - before, "rss_before_mb": before, "rss_after_mb": after,
                "rss_steps": args.rss_steps, "rss_seconds": time.perf_counter() - t0,
                "rss_config": dict(TINY), "rss_monitor_evaluations": monitor.evaluations}
    finally:
        monitor.stop()
        trainer.stop(5.0)


# --- score -------------------------------------------------------------------------------------
def train_for_seconds(cfg, seconds: float, copy_every: float) -> list[tuple[float, int, object]]:
    """Run a Trainer for `seconds` of training time; (elapsed, step, G copy) every copy_every seconds."""
    from gan.engine.trainer import RUNNING, Trainer

    trainer = Trainer(cfg, name="bench-score")
    trainer.start()
    copies = []
    try:
        if not trainer.wait_until(lambda t: t.state == RUNNING, timeout=120, poll=0.01):
            raise RuntimeError(f"trainer did not start: {trainer.status().reason}")
        next_copy = copy_every
        while True:
            elapsed = trainer.active_seconds
            if trainer.state != RUNNING:
                raise RuntimeError(f"training stopped: {trainer.status().reason}")
            if elapsed >= min(next_copy, seconds):
                if elapsed >= seconds:
                    trainer.pause("bench time is up")
                copies.append((trainer.active_seconds, trainer.step_count, trainer.generator_copy()))
                next_copy += copy_every
                if elapsed >= seconds:
                    return copies
            time.sleep(0.02)  # the bench's own polling; a short wait keeps it off the cores
    finally:
        trainer.stop(5.0)


def part_score(args, cfg, evaluator) -> dict:
    from gan.workshop.presets import preset_config

    out = {"ceiling_score": evaluator.ceiling.score, "ceiling_fd": evaluator.ceiling.fd,
           "classifier_heldout_accuracy": evaluator.info["heldout_accuracy"]}
    curves = {}
    for name, c in (("default", cfg), ("textbook", preset_config("textbook", seed=cfg.seed))):
        if args.quick:
            c = c.replace(**TINY)
        log(f"score: training {name} for {args.score_seconds:g} s ...")
        copies = train_for_seconds(c, args.score_seconds, args.copy_every)
        curve = []
        for elapsed, step, G in copies:
            q = evaluator.evaluate_generator(G, c.latent_dim)
            curve.append({"seconds": round(elapsed, 1), "step": step, "score": q.score, "fd": q.fd,
                          "covered": q.alarm.covered})
        curves[name] = curve
        final = copies[-1][2]
        if args.grid_dir:
            save_grid(final, c.latent_dim, Path(args.grid_dir) / f"grid_{name}_{int(args.score_seconds)}s.png")
    d, t = curves["default"], curves["textbook"]
    hit = [p["seconds"] for p in d if p["score"] >= 7.0]
    out.update({"seconds_to_score_7": hit[0] if hit else None, "score_120s": d[-1]["score"],
                "steps_120s": d[-1]["step"], "fd_120s": d[-1]["fd"],
                "score_120s_textbook": t[-1]["score"], "steps_120s_textbook": t[-1]["step"],
                "fd_120s_textbook": t[-1]["fd"], "score_seconds": args.score_seconds, "curves": curves})
    return out


def save_grid(G, latent_dim: int, path: Path) -> None:
    from gan.engine.data import to_uint8
    from gan.viz.images import grid_png

    g = torch.Generator().manual_seed(2)  # 64 fixed samples
    with torch.no_grad():
        x = G.eval()(torch.randn(64, latent_dim, generator=g))  # (64, 1, 28, 28)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, grid_png(to_uint8(x), scale=3))
    log(f"sample grid written to {path}")


# --- browser -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float) -> bool:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass  # not up yet; poll again
        time.sleep(0.2)
    return False


STEP_RE = re.compile(r"Step\s+([\d,]+)")


def read_step(page, timeout: float = 60.0) -> int | None:
    """The largest 'Step N' on the page, polled until it appears."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = [int(m.replace(",", "")) for m in STEP_RE.findall(page.inner_text("body"))]
        except Exception:  # noqa: BLE001 — page mid-rerender; poll again
            found = []
        if found:
            return max(found)
        page.wait_for_timeout(200)
    return None


def must_read_step(page, what: str, timeout: float = 60.0) -> int:
    step = read_step(page, timeout)
    if step is None:
        try:
            text = " ".join(page.inner_text("body").split())[:300]
        except Exception as exc:  # noqa: BLE001 — only for the error message
            text = f"(page unreadable: {exc})"
        raise RuntimeError(f"no 'Step N' on the page {what}; the page says: {text}")
    return step


def heap_mb(cdp) -> float:
    cdp.send("HeapProfiler.collectGarbage")
    return cdp.send("Runtime.getHeapUsage")["usedSize"] / 2**20


def part_browser(args) -> dict:
    from playwright.sync_api import sync_playwright

    if not (REPO / "app.py").is_file():
        raise RuntimeError("app.py is not in the tree yet")
    port = free_port()
    import tempfile

    token = os.urandom(8).hex()  # the presenter lock (gan/workshop/auth.py): the bench is the presenter
    runs = tempfile.mkdtemp(prefix="gan-live-bench-browser-")  # its autosaves, not in the user's runs folder
    env = dict(os.environ, PYTHONUNBUFFERED="1", GAN_LIVE_TOKEN=token, GAN_LIVE_RUNS_DIR=runs)
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
           "--server.headless", "true", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
    server = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        if not wait_http(url + "_stcore/health", 60):
            raise RuntimeError("the app did not answer on its health endpoint within 60 s")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}?token={token}", wait_until="domcontentloaded")
            page.get_by_role("button", name=re.compile(r"^\W*Start")).first.click(timeout=60_000)
            if read_step(page, 120) is None:
                raise RuntimeError("no 'Step N' appeared on the page after pressing Start")
            page.wait_for_timeout(args.browser_warmup * 1000)  # settle: first charts, JIT, caches
            cdp = page.context.new_cdp_session(page)
            cdp.send("HeapProfiler.enable")
            heap0, step0, t0 = heap_mb(cdp), must_read_step(page, 'after warm-up'), time.monotonic()
            page.wait_for_timeout(args.heap_seconds * 1000)
            step1, t1 = must_read_step(page, 'after the heap window'), time.monotonic()
            heap1 = heap_mb(cdp)
            viewer_rate = (step1 - step0) / (t1 - t0)
            page.close()  # no viewer: the session ends, the run goes on in the server
            time.sleep(args.headless_seconds)  # nothing to poll: we measure what happens without us
            page = browser.new_page()
            page.goto(url, wait_until="domcontentloaded")
            step2, t2 = must_read_step(page, 'after reopening it', 120), time.monotonic()
            headless_rate = (step2 - step1) / (t2 - t1)  # includes the reload: slightly pessimistic
            browser.close()
        return {"dashboard_vs_headless": viewer_rate / headless_rate, "tab_heap_growth_mb": heap1 - heap0,
                "tab_heap_start_mb": heap0, "tab_heap_end_mb": heap1, "heap_seconds": args.heap_seconds,
                "steps_per_sec_with_viewer": viewer_rate, "steps_per_sec_no_viewer": headless_rate}
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        import shutil

        shutil.rmtree(runs, ignore_errors=True)


# --- viewers -----------------------------------------------------------------------------------
def tree_cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:
            pass  # ended in between: its time is lost to us, not to the figure's meaning
    return total


def start_app_server(port: int, env: dict, log_path: Path, script: str = "app.py",
                     extra: tuple = ()) -> subprocess.Popen:
    """`streamlit run app.py` in its own process group (so its worker children stop with it). The bench
    and the tests that need a real server start it here."""
    cmd = [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none",
           "--browser.gatherUsageStats", "false", *extra]
    with open(log_path, "wb") as log_file:  # a file, not a pipe: a chatty server can never block on it
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop_app_server(server: subprocess.Popen) -> None:
    import signal

    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.pid, sig)  # the group started above: server, worker, anything they spawned
        except ProcessLookupError:
            return
        try:
            server.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def steps_per_sec(logs: list[list], t0: float, t1: float) -> float | None:
    """Steps/s over [t0, t1] from status logs of (time, StatusLine): every tab shows the same run, so
    the first and last step seen by any of them in the window span the widest interval (the
    presenter's own page alone may refresh too rarely under load)."""
    inside = sorted((t, line.step) for log in logs for t, line in log if t0 <= t <= t1)
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


def _health_ms(url: str) -> float | None:
    """One /_stcore/health round trip in ms from a thread of its own (the viewers' event loop may lag)."""
    import urllib.request

    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            r.read()
            return (time.perf_counter() - t0) * 1000 if r.status == 200 else None
    except OSError:
        return None


async def _viewers_round(n: int, url: str, presenter, server_pid: int, args) -> dict:
    import asyncio

    from gan.tools.viewers import close_viewers, open_viewers, wait_all

    def shows(state):
        return lambda v: v.status() is not None and v.status().state == state

    def shows_loss(label, eq):
        return lambda v: any(label in m and eq in m for m in v.markdown())

    key = f"viewers_{n}"
    out: dict = {}
    viewers, failed = await open_viewers(url, n, timeout=args.viewer_connect_timeout, prefix=f"v{n}")
    try:
        if failed:
            out[f"{key}_connect_failures"] = len(failed)
            log(f"viewers: {len(failed)} of {n} did not connect, e.g. {failed[0]}")
        if not viewers:
            raise RuntimeError(f"none of {n} viewers connected: {failed[0] if failed else '?'}")
        if await wait_all(viewers, shows("Running"), 60) is None:
            raise RuntimeError(f"not every viewer showed 'Running' within 60 s (N={n})")
        await asyncio.sleep(args.viewer_warmup)  # measuring, not synchronising: let first charts settle
        clients = [presenter, *viewers]
        workers = descendants(server_pid)
        bytes0 = [v.stats.bytes_received for v in viewers]
        t0, cpu0, own0 = time.monotonic(), cpu_seconds(server_pid), time.process_time()
        wcpu0 = tree_cpu_seconds(workers)
        health: list[float | None] = []
        probes = max(3, int(args.viewer_seconds // 5))
        for _ in range(probes):  # spread over the window; each probe runs in a thread of its own
            await asyncio.sleep(args.viewer_seconds / probes)
            health.append(await asyncio.to_thread(_health_ms, url + "_stcore/health"))
        t1, cpu1, own1 = time.monotonic(), cpu_seconds(server_pid), time.process_time()
        wcpu1 = tree_cpu_seconds(workers)
        span = t1 - t0
        live = [v for v in viewers if v.connected]
        rates = [v.fragment_runs_between(t0, t1) / span for v in live]
        refreshes = sum(c.fragment_runs_between(t0, t1) for c in clients)  # the presenter's tab included
        viewer_refreshes = sum(v.fragment_runs_between(t0, t1) for v in live)
        window_bytes = sum(v.stats.bytes_received - b for v, b in zip(viewers, bytes0) if v.connected)
        timers = live[0].timers() if live else {}
        ok_health = [h for h in health if h is not None]
        out.update({
            f"{key}_steps_per_sec": steps_per_sec([c.status_log for c in clients], t0, t1),
            f"{key}_refresh_median": statistics.median(rates) if rates else None,
            f"{key}_refresh_min": min(rates) if rates else None,
            f"{key}_refresh_expected": sum(1 / i for i in timers.values()) if timers else None,
            f"{key}_refreshes": refreshes,
            f"{key}_window_s": span,
            f"{key}_server_ms_per_refresh": (cpu1 - cpu0) * 1000 / refreshes if refreshes else None,
            f"{key}_server_cpu": (cpu1 - cpu0) / span,  # cores used by the server process
            f"{key}_worker_cpu": (wcpu1 - wcpu0) / span,  # cores of its child processes (training worker)
            f"{key}_client_cpu": (own1 - own0) / span,  # this bench's own share of the same CPUs
            f"{key}_kb_per_refresh": window_bytes / 1024 / viewer_refreshes if viewer_refreshes else None,
            f"{key}_health_ms": max(ok_health) if ok_health else None,
            f"{key}_health_failures": len(health) - len(ok_health),
            f"{key}_dropped": len(viewers) - len(live),
            f"{key}_errors": sum(len(v.stats.errors) for v in viewers)})

        # A presenter action reaching the room: Pause until the last viewer shows "Paused"; Resume back.
        bound = args.viewer_action_timeout
        sent = await presenter.click("Pause")
        out[f"{key}_action_s"] = await wait_all(live, shows("Paused"), bound, since=sent)
        sent = await presenter.click("Resume")
        out[f"{key}_resume_s"] = await wait_all(live, shows("Running"), bound, since=sent)
        await presenter.wait_until(shows("Running"), bound)
        try:  # the loss bar, where the page has one; switched back so every round trains the same loss
            sent = await presenter.select("MSE", timeout=10)
            out[f"{key}_loss_s"] = await wait_all(live, shows_loss("MSE", "0.25"), bound, since=sent)
            sent = await presenter.select("BCE", timeout=10)
            await wait_all(live, shows_loss("BCE", "0.693"), bound, since=sent)
        except (TimeoutError, ConnectionError) as exc:
            log(f"viewers: no loss switch measured: {exc}")
        return out
    finally:
        await close_viewers(viewers)
        # The next round starts from a server that answers again (bounded), not from this round's backlog.
        await asyncio.to_thread(wait_http, url + "_stcore/health", 30)


async def _press_start(presenter) -> tuple[float, float]:
    """Seconds from the Start click until the presenter's page answers with the new run (Loading or
    Running), and until it shows it Running (dataset and models ready, seen on the next refresh)."""
    t0 = await presenter.click("Start", timeout=60)

    def shows(*states):
        return lambda v: v.status() is not None and v.status().state in states

    if not await presenter.wait_until(shows("Loading", "Running"), 120):
        raise RuntimeError(f"the page did not answer Start; it says {presenter.alerts()[:2]} "
                           f"{presenter.exceptions()[:1]}")
    answered = time.monotonic() - t0
    if not await presenter.wait_until(shows("Running"), 120):
        raise RuntimeError(f"the run did not start; the page says {presenter.alerts()[:2]} "
                           f"{presenter.exceptions()[:1]}")
    return answered, time.monotonic() - t0


async def _viewers_session(url: str, token: str, server_pid: int, args) -> dict:
    from gan.tools.viewers import Viewer

    presenter = await Viewer(url, f"token={token}", name="presenter").connect(args.viewer_connect_timeout)
    try:
        # Cold: Start right after the first page load, while the worker it spawned may still import torch.
        cold_s, cold_running_s = await _press_start(presenter)
        # Warm, as in a workshop (the presenter opened the page a while before): Stop, then Start again.
        await presenter.click("Stop", timeout=60)
        if not await presenter.wait_until(lambda v: v.status() is not None and v.status().state == "Stopped", 60):
            raise RuntimeError("the run did not stop")
        warm_s, warm_running_s = await _press_start(presenter)
        out: dict = {"viewers_counts": list(args.viewers), "viewer_seconds": args.viewer_seconds,
                     "viewers_start_cold_s": cold_s, "viewers_start_cold_running_s": cold_running_s,
                     "viewers_start_s": warm_s, "viewers_start_running_s": warm_running_s}
        first: dict | None = None
        for n in args.viewers:
            log(f"viewers: {n} viewer(s) ...")
            row = {k.replace(f"viewers_{n}_", ""): v for k, v in
                   (await _viewers_round(n, url, presenter, server_pid, args)).items()}
            first = first if first is not None else row
            rate, rate0 = row.get("steps_per_sec"), first.get("steps_per_sec")
            row["train_ratio"] = rate / rate0 if rate and rate0 else None
            # The cost of one more refresh: the first round's fixed costs (the app's own threads, the
            # presenter) cancel out. Only meaningful for rounds with more viewers than the first.
            # As rates (CPU seconds per second over refreshes per second): the windows differ slightly.
            extra = row["refreshes"] / row["window_s"] - first["refreshes"] / first["window_s"]
            row["server_ms_per_extra_refresh"] = ((row["server_cpu"] - first["server_cpu"]) * 1000 / extra
                                                  if extra > 0.5 else None)
            out.update({f"viewers_{n}_{k}": v for k, v in row.items()})
            if not presenter.connected:
                raise RuntimeError(f"the presenter lost its connection: {presenter.closed_reason}")
        return out
    finally:
        await presenter.close()


def part_viewers(args) -> dict:
    import asyncio
    import shutil
    import tempfile

    if not (REPO / "app.py").is_file():
        raise RuntimeError("app.py is not in the tree yet")
    port, token = free_port(), os.urandom(8).hex()
    tmp = Path(tempfile.mkdtemp(prefix="gan-live-bench-viewers-"))
    env = dict(os.environ, PYTHONUNBUFFERED="1", GAN_LIVE_TOKEN=token, GAN_LIVE_RUNS_DIR=str(tmp / "runs"))
    server = start_app_server(port, env, tmp / "server.log")
    url = f"http://127.0.0.1:{port}/"
    # Bound for the whole part: start, then per N its connects, warm-up, window and three actions.
    bound = 180 + sum(args.viewer_connect_timeout + 60 + args.viewer_warmup + args.viewer_seconds
                      + 4 * args.viewer_action_timeout for _ in args.viewers)
    try:
        if not wait_http(url + "_stcore/health", 60):
            raise RuntimeError("the app did not answer on its health endpoint within 60 s")
        try:
            out = asyncio.run(asyncio.wait_for(_viewers_session(url, token, server.pid, args), bound))
            text = (tmp / "server.log").read_text(errors="replace")
            out["viewers_server_log_errors"] = text.count("Traceback") + text.count(" ERROR ")
            return out
        except asyncio.TimeoutError:
            raise RuntimeError(f"the viewers part did not finish within its bound of {bound:.0f} s") from None
        except Exception as exc:
            tail = " ".join((tmp / "server.log").read_text(errors="replace")[-600:].split())
            raise RuntimeError(f"{type(exc).__name__}: {exc} | server log: ...{tail}") from exc
    finally:
        stop_app_server(server)
        shutil.rmtree(tmp, ignore_errors=True)


# --- soak --------------------------------------------------------------------------------------
# The lead's naming (gan/engine/autosave.py's FILE_RE), written here so the part also runs on a tree without it.
AUTOSAVE_RE = re.compile(r"^autosave-\d{9}\.pt$")
SOAK_MARGIN_S = 300.0  # on top of --minutes: server start, connects, Start, the final Stop, closing


def vm_rss_mb(pid: int) -> float | None:
    """Resident memory of one process (VmRSS), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass  # ended while we read
    return None


def autosave_files(runs_dir: Path) -> list[Path]:
    """Autosaves of every dashboard run: $GAN_LIVE_RUNS_DIR/live/<run folder>/autosave-<step>.pt
    (gan.engine.storage's temporary files start with a dot and never match)."""
    live = runs_dir / "live"
    try:
        return sorted(p for p in live.glob("*/autosave-*.pt") if AUTOSAVE_RE.match(p.name))
    except OSError:
        return []  # a folder removed while we listed it: the next sample sees the new state


def wait_group_gone(pgid: int, timeout: float) -> bool:
    """Wait (bounded) until no process of the group is left; SIGKILL what remains at the end."""
    import signal

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)  # signal 0: is anyone left in the group?
        except ProcessLookupError:
            return True
        time.sleep(0.2)  # polling interval of a bounded wait
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    return False


def soak_warmup_s(duration_s: float) -> float:
    """Allocator arenas, caches, the first autosave and the first quality evaluation settle in the first
    minutes; growth is counted from here: 10 % of the run, at most 60 s."""
    return min(0.1 * duration_s, 60.0)


def soak_schedule(duration_s: float, sample_s: float) -> list[float]:
    """Sample times (seconds from the start of the window): every sample_s, plus the end of the warm-up
    (growth is measured from that sample exactly) and the end of the window."""
    times = {0.0, soak_warmup_s(duration_s), duration_s}
    k = 1
    while k * sample_s < duration_s:
        times.add(k * sample_s)
        k += 1
    return sorted(times)


def _slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) points, in MB per hour; None for fewer than 3 points."""
    if len(points) < 3:
        return None
    mt = statistics.fmean(t for t, _ in points)
    mv = statistics.fmean(v for _, v in points)
    den = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (v - mv) for t, v in points) / den * 3600 if den > 0 else None


def check_autosaves(paths: list[Path]) -> tuple[int, list[str]]:
    """Load each file as a user would continue it (gan.engine.checkpoint: weights_only, then validated);
    returns how many loaded and one line per file that did not."""
    from gan.engine.checkpoint import load_checkpoint

    readable, failures = 0, []
    for path in paths:
        try:
            load_checkpoint(path)
            readable += 1
        except Exception as exc:  # noqa: BLE001 — every unreadable file is reported, whatever the cause
            failures.append(f"{path.parent.name}/{path.name}: {type(exc).__name__}: {exc}")
    return readable, failures


async def _soak_session(url: str, token: str, server_pid: int, runs_dir: Path, args) -> dict:
    import asyncio

    from gan.tools.viewers import Viewer, close_viewers, open_viewers, wait_all

    duration = args.minutes * 60
    presenter = await Viewer(url, f"token={token}", name="presenter").connect(args.viewer_connect_timeout)
    viewers: list = []
    try:
        await _press_start(presenter)  # default settings, as a workshop starts
        viewers, failed = await open_viewers(url, args.soak_viewers, timeout=args.viewer_connect_timeout,
                                             prefix="soak")
        if failed:
            log(f"soak: {len(failed)} of {args.soak_viewers} viewers did not connect, e.g. {failed[0]}")
        if not viewers:
            raise RuntimeError(f"none of {args.soak_viewers} viewers connected: {failed[0] if failed else '?'}")
        if await wait_all(viewers, lambda v: v.status() is not None and v.status().state == "Running", 60) is None:
            raise RuntimeError("not every viewer showed 'Running' within 60 s")

        # Refreshes are counted per sample interval and summed: a viewer keeps only its last 10,000 runs,
        # fewer than an hour-long soak makes, but far more than one interval holds.
        refreshes = [0] * len(viewers)
        # The slowest connected viewer in the slowest stretch of >= 10 s: a stall that the whole-run
        # average hides shows here (shorter stretches would only measure the 1 s timer's quantisation).
        worst_stretch_rate: float | None = None
        stretch_at, stretch_counts = None, [0] * len(viewers)
        seen: set[str] = set()
        samples: list[dict] = []
        worker_pids: set[int] = set()
        t0 = time.monotonic()
        prev = t0
        for at in soak_schedule(duration, args.soak_sample_s):
            await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
            now = time.monotonic()
            counts = [v.fragment_runs_between(prev, now) for v in viewers]
            refreshes = [r + c for r, c in zip(refreshes, counts)]
            stretch_counts = [r + c for r, c in zip(stretch_counts, counts)]
            stretch_at = now if stretch_at is None else stretch_at
            if now - stretch_at >= 10.0:
                live = [c for c, v in zip(stretch_counts, viewers) if v.connected]
                rate = min(live) / (now - stretch_at) if live else 0.0
                worst_stretch_rate = rate if worst_stretch_rate is None else min(worst_stretch_rate, rate)
                stretch_at, stretch_counts = now, [0] * len(viewers)
            prev = now
            worker = training_worker_pid(server_pid)
            if worker is not None:
                worker_pids.add(worker)
            files = autosave_files(runs_dir)
            seen.update(f"{p.parent.name}/{p.name}" for p in files)
            line = presenter.status()
            if line is None:  # the presenter's page mid-rerun or gone: any tab shows the same run
                lines = [v.status() for v in viewers if v.status() is not None]
                line = max(lines, key=lambda s: s.step) if lines else None
            samples.append({"t": round(now - t0, 1), "server_rss_mb": vm_rss_mb(server_pid),
                            "worker_rss_mb": vm_rss_mb(worker) if worker else None, "worker_pid": worker,
                            "step": line.step if line else None, "state": line.state if line else None,
                            "viewers_connected": sum(v.connected for v in viewers), "autosaves_now": len(files)})
            s = samples[-1]
            log(f"soak: {s['t']:7.0f} s  step {s['step']}  server {_fmt(s['server_rss_mb'])} MB  "
                f"worker {_fmt(s['worker_rss_mb'])} MB  viewers {s['viewers_connected']}  autosaves {len(seen)}")
        span = prev - t0

        out: dict = {"soak_minutes": span / 60, "soak_viewers": args.soak_viewers,
                     "soak_sample_s": args.soak_sample_s, "soak_warmup_s": soak_warmup_s(duration),
                     "soak_samples": samples, "soak_worker_pids": sorted(worker_pids),
                     "soak_autosaves": len(seen), "soak_autosave_names": sorted(seen)}
        warm = next(s for s in samples if s["t"] >= soak_warmup_s(duration) - 1)  # scheduled exactly there
        last = samples[-1]
        for who in ("server", "worker"):
            key = f"{who}_rss_mb"
            values = [s[key] for s in samples if s[key] is not None]
            growth = last[key] - warm[key] if last[key] is not None and warm[key] is not None else None
            # Last minus warm-up is what the goal reads, but one sample can land on a swing of the
            # allocator (the server's RSS moves by tens of MB between refreshes): the trend over every
            # post-warm-up sample says whether memory keeps climbing or only wobbles.
            after = [(s["t"], s[key]) for s in samples if s["t"] >= warm["t"] and s[key] is not None]
            out.update({f"soak_{who}_rss_growth_mb": growth, f"soak_{who}_rss_first_mb": values[0] if values else None,
                        f"soak_{who}_rss_warm_mb": warm[key], f"soak_{who}_rss_last_mb": last[key],
                        f"soak_{who}_rss_max_mb": max(values) if values else None,
                        f"soak_{who}_rss_trend_mb_per_h": _slope_per_hour(after)})
        steps = [(s["t"], s["step"]) for s in samples if s["step"] is not None]
        out["soak_steps"] = steps[-1][1] if steps else None  # the run started at step 0 on Start
        out["soak_steps_per_sec"] = ((steps[-1][1] - steps[0][1]) / (steps[-1][0] - steps[0][0])
                                     if len(steps) >= 2 and steps[-1][0] > steps[0][0] else None)
        out["soak_steps_advanced"] = len(steps) >= 2 and steps[-1][1] > steps[0][1]
        rates = [r / span for r, v in zip(refreshes, viewers) if v.connected] if span > 0 else []
        out.update({"soak_refresh_min": min(rates) if rates else None,
                    "soak_refresh_median": statistics.median(rates) if rates else None,
                    "soak_refresh_min_10s": worst_stretch_rate,
                    "soak_viewer_errors": sum(len(v.stats.errors) for v in viewers),
                    "soak_viewer_error_examples": [e for v in viewers for e in v.stats.errors][:5],
                    "soak_connect_failures": len(failed),
                    # asked for but not connected at the end: failed connects count, they are viewers lost too
                    "soak_viewers_dropped": args.soak_viewers - sum(v.connected for v in viewers),
                    "soak_dropped_reasons": [f"{v.name}: {v.closed_reason}" for v in viewers if not v.connected][:5],
                    "soak_presenter_connected": presenter.connected})

        # End as a workshop ends: Stop (it writes the run's last autosave), so the files are at rest when
        # they are loaded after the server is gone. Bounded; a Stop that is not seen is reported, not fatal.
        try:
            sent = await presenter.click("Stop", timeout=60)
            stopped = await presenter.wait_until(
                lambda v: v.status() is not None and v.status().state == "Stopped", 60)
            out["soak_stop_s"] = time.monotonic() - sent if stopped else None
        except (TimeoutError, ConnectionError) as exc:
            out["soak_stop_s"] = None
            log(f"soak: the final Stop was not seen: {exc}")
        return out
    finally:
        await close_viewers(viewers)
        await presenter.close()


def part_soak(args) -> dict:
    import asyncio
    import shutil
    import tempfile

    if not (REPO / "app.py").is_file():
        raise RuntimeError("app.py is not in the tree yet")
    port, token = free_port(), os.urandom(8).hex()
    tmp = Path(tempfile.mkdtemp(prefix="gan-live-bench-soak-"))  # kept until the autosaves are checked
    runs_dir = tmp / "runs"
    # The product as shipped: training in the worker process (pytest's conftest sets "thread" for its own
    # in-process tests, and a soak without a worker would measure nothing of it).
    env = dict(os.environ, PYTHONUNBUFFERED="1", GAN_LIVE_TOKEN=token, GAN_LIVE_RUNS_DIR=str(runs_dir),
               GAN_LIVE_TRAINER="process")
    log_path = tmp / "server.log"
    server = start_app_server(port, env, log_path)
    url = f"http://127.0.0.1:{port}/"
    bound = args.minutes * 60 + SOAK_MARGIN_S
    try:
        if not wait_http(url + "_stcore/health", 60):
            raise RuntimeError("the app did not answer on its health endpoint within 60 s")
        try:
            out = asyncio.run(asyncio.wait_for(_soak_session(url, token, server.pid, runs_dir, args), bound))
        except asyncio.TimeoutError:
            raise RuntimeError(f"the soak did not finish within its bound of {bound:.0f} s") from None
        except Exception as exc:
            tail = " ".join(log_path.read_text(errors="replace")[-600:].split())
            raise RuntimeError(f"{type(exc).__name__}: {exc} | server log: ...{tail}") from exc
        text = log_path.read_text(errors="replace")  # before stopping: shutdown noise is not the soak's
        out["soak_log_errors"] = text.count("Traceback") + text.count(" ERROR ")
        if out["soak_log_errors"]:
            first = next((ln for ln in text.splitlines() if "Traceback" in ln or " ERROR " in ln), "")
            out["soak_log_error_example"] = first[:300]
        stop_app_server(server)
        wait_group_gone(server.pid, 20)  # the worker too: nothing writes or rotates while the files are read
        files = autosave_files(runs_dir)
        out["soak_autosaves_present"] = len(files)
        out["soak_autosaves_readable"], out["soak_autosave_failures"] = check_autosaves(files)
        return out
    finally:
        stop_app_server(server)  # again on the error paths; a no-op once the group is gone
        shutil.rmtree(tmp, ignore_errors=True)


# --- the command -------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default=",".join(DEFAULT_PARTS),
                   help=f"comma-separated subset of {','.join(PARTS)} (default: all but soak)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--quick", action="store_true", help="tiny settings (seconds, for tests); figures meaningless")
    p.add_argument("--threads", type=int, default=1,
                   help="torch.set_num_threads (default 1: on this shared 2-core machine 1 thread ran the default "
                        "config at ~30 steps/s and 2 threads at 8-20)")
    p.add_argument("--score-seconds", type=float, default=120.0)
    p.add_argument("--copy-every", type=float, default=5.0, help="seconds between G copies in the score part")
    p.add_argument("--overhead-steps", type=int, default=600)
    p.add_argument("--monitor-every", type=int, default=500)
    p.add_argument("--render-lengths", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 1_000_000])
    p.add_argument("--render-repeats", type=int, default=5)
    p.add_argument("--rss-steps", type=int, default=20_000)
    p.add_argument("--rss-warmup", type=int, default=3000)
    p.add_argument("--heap-seconds", type=float, default=300.0)
    p.add_argument("--headless-seconds", type=float, default=45.0)
    p.add_argument("--browser-warmup", type=float, default=15.0)
    p.add_argument("--grid-dir", default=None, help="write the 120 s sample grids (PNG) here")
    p.add_argument("--viewers", type=_counts, default=[1, 10, 30, 100],
                   help="viewers part: comma-separated numbers of simulated viewers, one round each (1,10,30,100)")
    p.add_argument("--viewer-seconds", type=float, default=30.0, help="viewers part: measuring window per round")
    p.add_argument("--viewer-warmup", type=float, default=5.0, help="viewers part: seconds before each window")
    p.add_argument("--viewer-connect-timeout", type=float, default=120.0,
                   help="viewers part: seconds for a round's viewers to connect and see their first page")
    p.add_argument("--viewer-action-timeout", type=float, default=60.0,
                   help="viewers part: seconds for a presenter action to reach every viewer")
    p.add_argument("--minutes", type=_positive, default=60.0, help="soak part: minutes of the soak window")
    p.add_argument("--soak-viewers", type=_counts_one, default=10,
                   help="soak part: simulated viewers connected for the whole soak")
    p.add_argument("--soak-sample-s", type=_positive, default=30.0,
                   help="soak part: seconds between samples (RSS, step, viewers, autosave files)")
    return p


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _counts_one(text: str) -> int:
    counts = _counts(text)
    if len(counts) != 1:
        raise argparse.ArgumentTypeError(f"expected one number >= 1, got {text!r}")
    return counts[0]


def _counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers such as 1,10,30, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected numbers >= 1 such as 1,10,30, got {text!r}")
    return counts


def apply_quick(args) -> None:
    args.score_seconds, args.copy_every = min(args.score_seconds, 2.0), 1.0
    args.overhead_steps, args.monitor_every = min(args.overhead_steps, 60), 20
    args.render_repeats = 1
    args.rss_steps, args.rss_warmup = min(args.rss_steps, 300), 50
    args.heap_seconds, args.headless_seconds, args.browser_warmup = 3.0, 3.0, 1.0
    args.viewers, args.viewer_seconds, args.viewer_warmup = [1, 3], 4.0, 1.0
    args.minutes, args.soak_viewers, args.soak_sample_s = min(args.minutes, 1.0), min(args.soak_viewers, 2), 10.0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    unknown = [x for x in parts if x not in PARTS]
    if unknown:
        print(f"bench: unknown part {unknown[0]!r}; choose from {', '.join(PARTS)}", file=sys.stderr)
        return 2
    if args.threads < 1:
        print("bench: --threads must be at least 1", file=sys.stderr)
        return 2
    if args.quick:
        apply_quick(args)
    torch.set_num_threads(args.threads)
    from gan.engine.config import Config
    from gan.engine.trainer import cached_dataset
    from gan.quality.metrics import Evaluator

    cfg = Config(device="cpu")
    if args.quick:
        cfg = cfg.replace(**TINY)
    results: dict = dict.fromkeys(KEYS)
    results.update({"errors": {}, "parts": parts, "machine": {
        "cpus": os.cpu_count(), "torch_threads": args.threads, "torch": torch.__version__,
        "python": platform.python_version(), "note": "2-core machine shared with other work; timings are noisy"},
        "config": cfg.to_dict()})
    t_start = time.perf_counter()
    for part in parts:
        log(f"bench: {part} ...")
        t0 = time.perf_counter()
        try:
            if part == "overhead":
                results.update(part_overhead(args, cfg))
            elif part == "autosave":
                results.update(part_autosave(args, cfg))
            elif part == "render":
                results.update(part_render(args))
            elif part == "rss":
                results.update(part_rss(args))
            elif part == "browser":
                results.update(part_browser(args))
            elif part == "viewers":
                results.update(part_viewers(args))
            elif part == "soak":
                results.update(part_soak(args))
            elif part == "score":
                evaluator = Evaluator.for_dataset(cached_dataset(cfg.dataset, cfg.data_dir, "cpu"))
                results.update(part_score(args, cfg, evaluator))
        except Exception as exc:  # noqa: BLE001 — one failed part must not lose the others' figures
            results["errors"][part] = f"{type(exc).__name__}: {exc}"
            log(f"bench: {part} failed: {results['errors'][part]}")
        results.setdefault("part_seconds", {})[part] = round(time.perf_counter() - t0, 1)
    results["total_seconds"] = round(time.perf_counter() - t_start, 1)
    print_table(results)
    if args.json:
        print(json.dumps(results, default=float))
    return 0 if not results["errors"] else 1


GOALS = {"trainer_vs_bare": (">=", 0.95), "monitor_vs_trainer": (">=", 0.95), "dashboard_vs_headless": (">=", 0.85),
         "rss_growth_mb": ("<=", 50), "tab_heap_growth_mb": ("<=", 50), "score_120s": (">=", 7.0),
         "seconds_to_score_7": ("<=", 120), "soak_server_rss_growth_mb": ("<=", 50),
         "soak_worker_rss_growth_mb": ("<=", 50), "soak_log_errors": ("<=", 0)}


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def _verdict(key, v) -> str:
    if key not in GOALS or v is None:
        return ""
    op, goal = GOALS[key]
    ok = v >= goal if op == ">=" else v <= goal
    return f"{'ok ' if ok else 'MISS'} (goal {op} {goal:g})"


def print_table(r: dict) -> None:
    rows = [
        ("trainer_vs_bare", "trainer thread / bare loop, steps/s"),
        ("monitor_vs_trainer", "with metrics monitor / without, steps/s"),
        ("autosave_ms", "one autosave of the default run (state, atomic write, fsync), ms"),
        ("autosave_cost", "that per 30 s of training: share of training time (goal <= 0.02)"),
        ("autosave_every_1s_vs_none", "steps/s with an autosave every 1 s (30x the real rate) / none"),
        ("dashboard_vs_headless", "app open in Chromium / no viewer, steps/s"),
        ("rss_growth_mb", f"RSS growth over {r.get('rss_steps', '?')} steps, MB"),
        ("tab_heap_growth_mb", f"tab JS heap growth over {r.get('heap_seconds', '?')} s, MB"),
        ("seconds_to_score_7", "default: seconds of CPU training to score 7"),
        ("score_120s", f"default: classifier score after {r.get('score_seconds', 120):g} s"),
        ("score_120s_textbook", f"textbook: classifier score after {r.get('score_seconds', 120):g} s"),
        ("ceiling_score", "real held-out images: classifier score"),
    ]
    print(f"{'key':<22} {'value':>10}  {'':<18} what")
    for key, what in rows:
        print(f"{key:<22} {_fmt(r.get(key)):>10}  {_verdict(key, r.get(key)):<18} {what}")
    for n, ms in (r.get("render_ms") or {}).items():
        ok = "ok " if ms <= 100 else "MISS"
        what = f"one shared frame (all live charts' data, grid, quality), history of {int(n):,} steps"
        print(f"{'render_ms[' + n + ']':<22} {ms:>10.1f}  {ok + ' (goal <= 100)':<18} {what}")
    for n, ms in (r.get("render_altair_ms") or {}).items():
        what = f"before: the same as Altair charts, per session, history of {int(n):,} steps"
        print(f"{'render_altair_ms[' + n + ']':<22} {ms:>10.1f}  {'':<18} {what}")
    for n in r.get("viewers_counts") or []:

        def v(name: str, n=n) -> str:
            return _fmt(r.get(f"viewers_{n}_{name}"))

        cells = [f"train {v('train_ratio')}", f"refresh/s med {v('refresh_median')} min {v('refresh_min')}",
                 f"server {v('server_ms_per_refresh')} ms/refresh ({v('server_ms_per_extra_refresh')} per extra)",
                 f"pause->all {v('action_s')} s", f"loss->all {v('loss_s')} s", f"health {v('health_ms')} ms"]
        print(f"{'viewers[' + str(n) + ']':<22} " + " · ".join(cells))
    if r.get("viewers_start_s") is not None:
        print(f"{'viewers_start_s':<22} {_fmt(r['viewers_start_s']):>10}  {'':<18} Start click -> the page shows the "
              f"new run (warm worker); Running after {_fmt(r.get('viewers_start_running_s'))} s; first Start right "
              f"after the first page load: {_fmt(r.get('viewers_start_cold_s'))} s")
        print(f"{'viewers_server_log_errors':<22} {_fmt(r.get('viewers_server_log_errors')):>10}  {'':<18} "
              "tracebacks and ERROR lines in the server's log over the whole part")
    if r.get("soak_minutes") is not None:
        mins = f"{r['soak_minutes']:.1f} min, {r.get('soak_viewers')} viewers"
        for key, what in (("soak_server_rss_growth_mb", "server RSS growth after warm-up, MB"),
                          ("soak_worker_rss_growth_mb", "training worker RSS growth after warm-up, MB")):
            who = key.split("_")[1]
            print(f"{key:<22} {_fmt(r.get(key)):>10}  {_verdict(key, r.get(key)):<18} {what} ({mins}; "
                  f"first {_fmt(r.get(f'soak_{who}_rss_first_mb'))}, max {_fmt(r.get(f'soak_{who}_rss_max_mb'))}, "
                  f"trend {_fmt(r.get(f'soak_{who}_rss_trend_mb_per_h'))} MB/h)")
        print(f"{'soak_log_errors':<22} {_fmt(r.get('soak_log_errors')):>10}  "
              f"{_verdict('soak_log_errors', r.get('soak_log_errors')):<18} "
              "tracebacks and ERROR lines in the server log")
        present, readable = r.get("soak_autosaves_present"), r.get("soak_autosaves_readable")
        ok = "" if present is None else ("ok " if readable == present else "MISS") + " (goal all)"
        print(f"{'soak_autosaves':<22} {_fmt(r.get('soak_autosaves')):>10}  {ok:<18} autosave files seen; "
              f"{_fmt(readable)} of {_fmt(present)} left at the end load with gan.engine.checkpoint")
        print(f"{'soak_steps':<22} {_fmt(r.get('soak_steps')):>10}  {'':<18} "
              f"{_fmt(r.get('soak_steps_per_sec'))} steps/s; viewers dropped {_fmt(r.get('soak_viewers_dropped'))}, "
              f"viewer errors {_fmt(r.get('soak_viewer_errors'))}, refresh/s per viewer min "
              f"{_fmt(r.get('soak_refresh_min'))} (slowest 10 s: {_fmt(r.get('soak_refresh_min_10s'))})")
    for part, err in r.get("errors", {}).items():
        print(f"error in {part}: {err}")
    print(f"total {r.get('total_seconds', 0):.0f} s; {r['machine']['note']}")
