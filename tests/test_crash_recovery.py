"""kill -9 of the whole app mid-run, a restart, and Continue — all through the websocket, as a browser would.

A real `streamlit run app.py` (training in its worker process, autosaves every 2 s here instead of 30)
is killed with SIGKILL together with its worker; a new server on the same runs folder shows the
interrupted run's charts to a viewer at once and offers the presenter "Continue run …", which picks up
the last autosave: the step count goes on from there and the history before the crash is kept.
"""

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

from gan.store.autosave import FILE_RE, latest_valid
from gan.tools import viewers
from gan.tools.bench import free_port, start_app_server, wait_http

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "crash-test-token"


def start_server(port: int, runs: Path, log: Path) -> subprocess.Popen:
    env = dict(os.environ, GAN_LIVE_TRAINER="process", PYTHONPATH=str(ROOT), GAN_LIVE_RUNS_DIR=str(runs),
               GAN_LIVE_TOKEN=TOKEN, GAN_LIVE_AUTOSAVE_S="2", GAN_LIVE_METRICS_EVERY="0")
    proc = start_app_server(port, env, log.with_name(f"{log.stem}-{port}.log"))
    assert wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60), "the server did not come up"
    return proc


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the server and its worker, like a crashed terminal
    except ProcessLookupError:
        pass
    proc.wait(10)


def autosaves(runs: Path) -> list[Path]:
    return sorted((runs / "live").glob("*/autosave-*.pt"))


def test_kill_minus_9_then_continue_from_the_last_autosave(tmp_path):
    runs, log = tmp_path / "runs", tmp_path / "server.log"
    url = lambda port: f"http://127.0.0.1:{port}"  # noqa: E731

    async def first_life(port: int) -> int:
        presenter = await viewers.Viewer(url(port), f"token={TOKEN}", name="presenter").connect(60)
        try:
            await presenter.click("Start", timeout=60)
            assert await presenter.wait_until(lambda v: v.status() is not None and v.status().step >= 30, 120)
            deadline = time.monotonic() + 60
            while not autosaves(runs) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)  # polling the folder: the first autosave comes 2 s of training after Start
            assert autosaves(runs), "no autosave was written"
            first = int(FILE_RE.match(autosaves(runs)[-1].name).group(1))
            # The run goes on past that autosave, seen by the presenter, so the kill loses some steps, as a crash does.
            assert await presenter.wait_until(lambda v: v.status().step > first, 120), presenter.markdown()
            return presenter.status().step
        finally:
            await presenter.abort()

    async def second_life(port: int, saved: int) -> tuple[int, str, str]:
        viewer = await viewers.Viewer(url(port), name="viewer").connect(60)
        presenter = await viewers.Viewer(url(port), f"token={TOKEN}", name="presenter").connect(60)
        try:
            # Everyone sees the saved run at once, before anybody presses anything.
            assert await viewer.wait_until(lambda v: v.status() is not None and v.status().step == saved, 30), \
                viewer.markdown()
            # The banner comes with the same page; polled, not read once (a loaded server draws it a refresh later).
            assert await viewer.wait_until(lambda v: any("interrupted" in a for a in v.alerts()), 30), viewer.alerts()
            banner = " ".join(viewer.alerts())
            label = next(b for b in presenter.buttons() if b.startswith("Continue run"))
            await presenter.click(label, timeout=30)
            assert await viewer.wait_until(lambda v: v.status() is not None and v.status().state == "Running"
                                           and v.status().step > saved + 5, 120), (viewer.markdown(), viewer.alerts())
            return viewer.status().step, banner, label
        finally:
            await viewer.close()
            await presenter.close()

    port = free_port()
    server = start_server(port, runs, log)
    try:
        reached = asyncio.run(first_life(port))
    finally:
        kill_group(server)
    run_dir = autosaves(runs)[-1].parent
    _, state, _ = latest_valid(run_dir)
    saved = int(state["step"])
    assert saved >= 1 and reached >= 30

    port = free_port()
    server = start_server(port, runs, log)
    try:
        step, banner, label = asyncio.run(second_life(port, saved))
    finally:
        kill_group(server)
    assert f"from step {saved:,}" in label and "(saved " in label
    assert "interrupted" in banner
    assert step > saved + 5
    _, later, _ = latest_valid(run_dir)  # it goes on autosaving into the same folder
    history = later["history"]["scalars"]["step"]
    assert history[:saved] == list(range(1, saved + 1))  # every step before the crash's autosave survived
    logs = " ".join(p.read_text(errors="replace") for p in tmp_path.glob("server-*.log"))
    assert logs and "Traceback" not in logs
