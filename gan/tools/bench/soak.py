"""The soak part: an hour of a workshop; the server's and worker's RSS, the step, the viewers, the autosaves.
Must not touch the user's runs folder (it uses a temporary one); never a default part (it takes an hour)."""

import asyncio
import os
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from gan.tools.bench.common import REPO, log
from gan.tools.bench.report import fmt
from gan.tools.bench.server import free_port, start_app_server, stop_app_server, vm_rss_mb, wait_group_gone, wait_http
from gan.tools.bench.viewers import press_start
from gan.tools.procs import training_worker_pid

# The lead's naming (gan/store/autosave.py's FILE_RE), written here so the part also runs on a tree without it.
AUTOSAVE_RE = re.compile(r"^autosave-\d{9}\.pt$")
SOAK_MARGIN_S = 300.0  # on top of --minutes: server start, connects, Start, the final Stop, closing


def autosave_files(runs_dir: Path) -> list[Path]:
    """Autosaves of every dashboard run: $GAN_LIVE_RUNS_DIR/live/<run folder>/autosave-<step>.pt
    (gan.store.storage's temporary files start with a dot and never match)."""
    live = runs_dir / "live"
    try:
        return sorted(p for p in live.glob("*/autosave-*.pt") if AUTOSAVE_RE.match(p.name))
    except OSError:
        return []  # a folder removed while we listed it: the next sample sees the new state


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
    """Load each file as a user would continue it (gan.store.checkpoint: weights_only, then validated);
    returns how many loaded and one line per file that did not."""
    from gan.store.checkpoint import load_checkpoint

    readable, failures = 0, []
    for path in paths:
        try:
            load_checkpoint(path)
            readable += 1
        except Exception as exc:  # noqa: BLE001 — every unreadable file is reported, whatever the cause
            failures.append(f"{path.parent.name}/{path.name}: {type(exc).__name__}: {exc}")
    return readable, failures


async def _soak_session(url: str, token: str, server_pid: int, runs_dir: Path, args) -> dict:
    """The soak window with the presenter and the viewers connected: samples every --soak-sample-s, then Stop."""
    from gan.tools.viewers import Viewer, close_viewers, open_viewers, wait_all

    duration = args.minutes * 60
    presenter = await Viewer(url, f"token={token}", name="presenter").connect(args.viewer_connect_timeout)
    viewers: list = []
    try:
        await press_start(presenter)  # default settings, as a workshop starts
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
            log(f"soak: {s['t']:7.0f} s  step {s['step']}  server {fmt(s['server_rss_mb'])} MB  "
                f"worker {fmt(s['worker_rss_mb'])} MB  viewers {s['viewers_connected']}  autosaves {len(seen)}")
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
    """An hour of a workshop (--minutes, default 60; not in the default set): the real app, a presenter who
    presses Start and --soak-viewers tabs connected throughout; every --soak-sample-s the server's and the
    training worker's RSS, the step, the viewers and the autosave files; soak_server/worker_rss_growth_mb
    (after a warm-up of min(10 %, 60 s)), soak_autosaves and soak_autosaves_readable (each loaded with
    gan.store.checkpoint), soak_log_errors, soak_viewers_dropped, soak_refresh_min."""
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
