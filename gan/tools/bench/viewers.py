"""The viewers part: what a workshop room costs, a presenter and N simulated tabs (gan/tools/viewers/).
Must not touch the user's runs folder nor measure memory over time (soak.py does); the server is server.py's."""

import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from gan.tools.bench.common import REPO, log
from gan.tools.bench.server import free_port, health_ms, start_app_server, stop_app_server, tree_cpu_seconds, wait_http
from gan.tools.procs import cpu_seconds, descendants


def steps_per_sec(logs: list[list], t0: float, t1: float) -> float | None:
    """Steps/s over [t0, t1] from status logs of (time, StatusLine): every tab shows the same run, so
    the first and last step seen by any of them in the window span the widest interval (the
    presenter's own page alone may refresh too rarely under load)."""
    inside = sorted((t, line.step) for log in logs for t, line in log if t0 <= t <= t1)
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


async def _viewers_round(n: int, url: str, presenter, server_pid: int, args) -> dict:
    """One round: n viewers connect, a measuring window, then Pause/Resume and a loss switch reach them."""
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
            health.append(await asyncio.to_thread(health_ms, url + "_stcore/health"))
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


async def press_start(presenter) -> tuple[float, float]:
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
        cold_s, cold_running_s = await press_start(presenter)
        # Warm, as in a workshop (the presenter opened the page a while before): Stop, then Start again.
        await presenter.click("Stop", timeout=60)
        if not await presenter.wait_until(lambda v: v.status() is not None and v.status().state == "Stopped", 60):
            raise RuntimeError("the run did not stop")
        warm_s, warm_running_s = await press_start(presenter)
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
    """What a workshop room costs: the real app with a presenter (?token=) who presses Start, then for each
    N in --viewers, N simulated browser tabs (gan/tools/viewers/) over --viewer-seconds:
    viewers_N_train_ratio (steps/s vs the first N), refresh rate per viewer, server CPU ms per refresh,
    /_stcore/health latency, and how long a presenter action (Pause, a loss switch) takes to reach the
    last viewer."""
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
