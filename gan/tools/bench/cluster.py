"""The ray part: the app on a real Ray cluster of this machine (gan.tools.raycluster) against its worker process.
Must not touch the user's runs folder or a Ray the user runs (its cluster is its own); servers are server.py's."""

# One session, in order, as a presenter and viewers meet it: (1) a server with the worker process: the presenter's
# run, steps/s and memory; (2) servers on the cluster (a head and two worker nodes): the same on the first, then 30
# viewers and the presenter's Pause; (3) a second server over the same cluster: its viewers and the first server's
# agree step for step; (4) the node that hosts the run killed: how long until the run trains again, and how much
# training it lost.

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

from gan.tools import procs
from gan.tools.bench.common import log
from gan.tools.bench.gaps import refresh_hole, server_gaps, show_gaps, tab_groups, widest_and_median
from gan.tools.bench.lab import pss_mb
from gan.tools.bench.server import free_port, start_app_server, stop_app_server, wait_http
from gan.tools.bench.viewers import press_start, steps_per_sec

RAY_KEYS = ("ray_vs_process", "ray_pause_to_last_viewer_s", "ray_two_servers_step_gap_s",
            "ray_two_servers_vs_one_viewer", "ray_node_loss_recovery_s", "ray_node_loss_lost_s", "ray_extra_rss_mb",
            "ray_process_steps_per_sec", "ray_actor_steps_per_sec", "ray_process_rss_mb", "ray_cluster_rss_mb",
            "ray_viewers")


def _shows(*states):
    return lambda v: v.status() is not None and v.status().state in states


def _window_rate(clients, seconds: float) -> float | None:
    """Steps/s the tabs saw over the last ``seconds``."""
    t1 = time.monotonic()
    return steps_per_sec([c.status_log for c in clients], t1 - seconds, t1)


SHOW_GAP_GRACE_S = 3.0  # after the window: longer than any gap worth reporting exactly
ROOM_SPREAD_S = 1.0  # tabs arrive spread over a refresh period, as a room's do (not all on one beat)


def _longest_silence(clients, t0: float, t1: float) -> float:
    """The longest stretch within [t0, t1] in which none of these tabs finished a script run: a side's stall."""
    ends = sorted(r.finished_at for c in clients for r in c.fragment_runs if t0 <= r.finished_at <= t1)
    points = [t0, *ends, t1]
    return round(max(b - a for a, b in zip(points, points[1:])), 2)


def actor_pids(cluster) -> list[int]:
    """The run actors' processes (Ray names them ray::RunActor)."""
    return [pid for pid in cluster.pids() if "RunActor" in procs.cmdline(pid)]


async def _measure_server(url: str, token: str, args) -> tuple[object, float | None]:
    """The presenter's tab: Start, warm up, then steps/s over the window (the tab stays open for what follows)."""
    from gan.tools.viewers import Viewer

    presenter = await Viewer(url, f"token={token}", name="presenter").connect(args.viewer_connect_timeout)
    await press_start(presenter)
    await asyncio.sleep(args.ray_warmup_s)  # measuring, not synchronising: the first steps are slower
    await asyncio.sleep(args.ray_window_s)
    return presenter, _window_rate([presenter], args.ray_window_s)


async def _process_session(url: str, token: str, server_pid: int, args) -> dict:
    presenter, rate = await _measure_server(url, token, args)
    try:
        return {"ray_process_steps_per_sec": rate,
                "ray_process_rss_mb": pss_mb([server_pid, *procs.descendants(server_pid)])}
    finally:
        await presenter.close()


async def _ray_session(urls: list[str], token: str, server_pids: list[int], cluster, args) -> dict:
    from gan.tools.viewers import close_viewers, open_viewers, wait_all

    for url in urls[1:]:  # the other servers warm, as in a workshop (the first page imports torch, joins Ray)
        warm, failed = await open_viewers(url, 1, timeout=args.viewer_connect_timeout, prefix="warm")
        await close_viewers(warm)
        if failed:
            raise RuntimeError(f"the second server's first page failed: {failed[0]}")
    presenter, rate = await _measure_server(urls[0], token, args)
    out: dict = {"ray_actor_steps_per_sec": rate,
                 "ray_cluster_rss_mb": pss_mb([p for s in server_pids[:1] for p in [s, *procs.descendants(s)]]
                                              + cluster.pids())}
    viewers: list = []
    try:
        # (2) 30 viewers on the first server; the presenter's Pause until the last of them shows it.
        viewers, failed = await open_viewers(urls[0], args.ray_viewers, timeout=args.viewer_connect_timeout,
                                             prefix="v", spread_s=ROOM_SPREAD_S)
        if failed:
            log(f"ray: {len(failed)} of {args.ray_viewers} viewers did not connect, e.g. {failed[0]}")
        if await wait_all(viewers, _shows("Running"), 60) is None:
            raise RuntimeError("not every viewer showed the run Running within 60 s")
        sent = await presenter.click("Pause")
        out["ray_pause_to_last_viewer_s"] = await wait_all(viewers, _shows("Paused"), args.viewer_action_timeout,
                                                           since=sent)
        await presenter.click("Resume")
        if await wait_all([presenter, *viewers], _shows("Running"), 60) is None:
            raise RuntimeError("the run did not resume")
        out["ray_viewers"] = len(viewers)

        # (3) a second server over the same cluster: half the viewers move there (15 on each, as the issue asks);
        # both show the same step.
        if len(urls) > 1:
            await close_viewers(viewers[1::2])  # every other one: those left still span the second they arrived in
            viewers = viewers[::2]
            out.update(await _two_servers(urls, viewers, rate, args))

        # (4) the node that hosts the run killed.
        out.update(await _node_loss(cluster, presenter, args))
        return out
    finally:
        await close_viewers(viewers)
        await presenter.close()


async def _two_servers(urls: list[str], a: list, one_viewer_rate: float | None, args) -> dict:
    """As many viewers on the second server as on the first: the step each side shows at the same moments. A third
    of ``a`` (the first server's tabs) is closed and opened again together with the second server's, so one server
    has tabs of two moments too (tab_groups); ``a`` is changed in place, and its caller closes it."""
    from gan.tools.viewers import close_viewers, open_viewers, wait_all

    k = max(1, len(a) // 3)
    leaving = a[2::3][:k]  # every third: those left still span the second they arrived in
    await close_viewers(leaving)
    a[:] = [v for v in a if v not in leaving]
    wait = args.viewer_connect_timeout
    (b, failed), (new_a, failed_a) = await asyncio.gather(open_viewers(urls[1], len(a) + k, timeout=wait, prefix="w",
                                                                       spread_s=ROOM_SPREAD_S),
                                                          open_viewers(urls[0], k, timeout=wait, prefix="v-again",
                                                                       spread_s=ROOM_SPREAD_S))
    old = list(a)  # the first server's tabs that stayed (tab_groups takes k of them evenly)
    a.extend(new_a)
    try:
        if failed or failed_a or not b:
            raise RuntimeError(f"viewers did not connect: {(failed + failed_a)[:1]}")
        if await wait_all([*a, *b], _shows("Running", "Paused"), 120) is None:
            raise RuntimeError(f"the second server's viewers never showed the presenter's run: {b[0].status()} "
                               f"{b[0].alerts()[:2]}")
        t0 = time.monotonic()
        await asyncio.sleep(args.ray_window_s)
        t_end = time.monotonic()
        await asyncio.sleep(SHOW_GAP_GRACE_S)  # a step shown just before t_end has time to reach the other side
        # "Both servers show the same step within 1 s": the servers' copies (server_gaps), and the tabs' first
        # showing of each step, which adds each tab's refresh phase (show_gaps), beside its baselines.
        gaps, now = server_gaps(a, b, t0, t_end), time.monotonic()
        groups = tab_groups(old, new_a, b, t0, t_end, now)
        figures = {**widest_and_median("ray_two_servers_step_gap", gaps),
                   **widest_and_median("ray_two_servers_tab_gap", list(show_gaps(a, b, t0, t_end, now).values()))}
        for name, g in groups.items():
            figures.update(widest_and_median(f"ray_tab_gap_{name}", g))
        figures["ray_refresh_hole_s"] = {name: round(refresh_hole(g, t0, t_end), 2) for name, g in
                                         (("old", old), ("new_a", new_a), ("a", a), ("b", b))}
        log("ray: two servers, at most / median, s: " + ", ".join(
            f"{key[4:-2]} {v:.2f}" for key, v in figures.items() if isinstance(v, float))
            + f"; refresh holes {figures['ray_refresh_hole_s']}")
        both = _window_rate([*a, *b], args.ray_window_s)
        return {**figures, "ray_two_servers_longest_silence_s": [_longest_silence(side, t0, t_end) for side in (a, b)],
                "ray_two_servers_vs_one_viewer": both / one_viewer_rate if both and one_viewer_rate else None}
    finally:
        await close_viewers(b)


async def _node_loss(cluster, presenter, args) -> dict:
    actors = actor_pids(cluster)
    if not actors:
        raise RuntimeError("no RunActor process found on the cluster's nodes")
    victim = cluster.node_of(actors[0])
    rate = _window_rate([presenter], 10.0)
    at = presenter.status().step
    t0 = time.monotonic()
    cluster.kill_node(victim)
    log(f"ray: killed the node of pid {actors[0]} at step {at:,}")
    # Back: the page shows the run Running again, and its step moves (a new actor on the other node).
    restored: int | None = None
    deadline = t0 + args.ray_recovery_bound_s
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        s = presenter.status()
        if s is not None and s.state in ("Loading", "Running") and s.step < at and restored is None:
            restored = s.step  # the first page of the recovered run: its autosave's step
        if restored is not None and s is not None and s.state == "Running" and s.step > restored:
            recovery = time.monotonic() - t0
            return {"ray_node_loss_recovery_s": recovery,
                    "ray_node_loss_lost_s": (at - restored) / rate if rate else None,
                    "ray_node_loss_restored_step": restored, "ray_node_loss_killed_at_step": at}
    raise RuntimeError(f"the run did not train again within {args.ray_recovery_bound_s:.0f} s of its node's loss; "
                       f"the page says {presenter.alerts()[:2]}")


def part_ray(args) -> dict:
    """The app on a Ray cluster of this machine vs its worker process (see the module's text)."""
    try:
        import ray  # noqa: F401  — only to say it is missing
    except ImportError:
        raise RuntimeError("Ray is not installed: pip install -r requirements.txt") from None
    from gan.tools.raycluster import LocalCluster

    token = os.urandom(8).hex()
    tmp = Path(tempfile.mkdtemp(prefix="gan-live-bench-ray-"))
    base = dict(os.environ, PYTHONUNBUFFERED="1", GAN_LIVE_TOKEN=token, GAN_LIVE_RUNS_DIR=str(tmp / "runs"))
    base.pop("GAN_LIVE_RAY_ADDRESS", None)
    out: dict = {}
    bound = 600 + 3 * (args.ray_warmup_s + args.ray_window_s) + args.ray_recovery_bound_s

    def serve(env: dict, name: str):
        port = free_port()
        server = start_app_server(port, env, tmp / f"{name}.log")
        url = f"http://127.0.0.1:{port}/"
        if not wait_http(url + "_stcore/health", 60):
            stop_app_server(server)
            raise RuntimeError(f"the {name} server did not answer within 60 s")
        return server, url

    # (1) today's worker process
    server, url = serve(base, "process")
    try:
        out.update(asyncio.run(asyncio.wait_for(_process_session(url, token, server.pid, args), bound)))
    finally:
        stop_app_server(server)
    log(f"ray: worker process {out['ray_process_steps_per_sec']} steps/s")
    cluster = LocalCluster(workers=2, cpus_per_worker=1)  # one run per node: a lost node's run has a free CPU
    servers = []
    try:
        env = dict(base, GAN_LIVE_RAY_ADDRESS=cluster.address, RAY_AUTH_MODE="disabled")  # the cluster's setting
        for i in range(args.ray_servers):
            servers.append(serve(env, f"ray-{i}"))
        urls = [u for _, u in servers]
        out.update(asyncio.run(asyncio.wait_for(
            _ray_session(urls, token, [s.pid for s, _ in servers], cluster, args), bound)))
    except Exception as exc:
        tail = " ".join((tmp / "ray-0.log").read_text(errors="replace")[-600:].split()) \
            if (tmp / "ray-0.log").exists() else ""
        raise RuntimeError(f"{type(exc).__name__}: {exc} | server log: ...{tail}") from exc
    finally:
        for s, _ in servers:
            stop_app_server(s)
        cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    p, r = out.get("ray_process_steps_per_sec"), out.get("ray_actor_steps_per_sec")
    out["ray_vs_process"] = r / p if p and r else None
    if out.get("ray_cluster_rss_mb") is not None and out.get("ray_process_rss_mb") is not None:
        out["ray_extra_rss_mb"] = out["ray_cluster_rss_mb"] - out["ray_process_rss_mb"]
    return out
