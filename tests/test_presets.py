"""Every workshop preset shows what its text promises: trained headless to its check step (about 60 s
of one laptop CPU thread), measured, and each Claim of gan/workshop/presets.py checked with its number.

Every preset is checked on seed 0 with one torch thread, and one of them a day on another seed too (another
trajectory, a cheap stand-in for another processor's rounding; every (preset, seed) pair in turn:
gan.workshop.presets_check.extra_checks; GAN_LIVE_PRESET_EXTRA=SEED,THREADS checks all five with that setting).
A claim that holds on seed 0 of one CPU only is caught here before it ships; docs/workshop.md's table is the sweep
(`python -m gan.workshop.presets_check --seeds 0 1 2 3 4 --threads 1 2 --markdown`). Marked `presets`:
`python -m pytest -m "not presets"` skips them. The runs are trained side by side, one process per core (a
2-thread run alone), in whichever pytest process (of the README's two xdist workers) collects them first; the
others read their results from files. A run is the same run whichever process trains it.
"""

import functools
import os
import pickle
import re
import sys
import time
import traceback
from pathlib import Path

import pytest

from gan.workshop.presets import PRESETS, get_preset
from gan.workshop.presets_check import Job, extra_checks, failed_claims, measure_side_by_side

pytestmark = pytest.mark.presets
CLAIMED = [name for name, p in PRESETS.items() if p.claims]
# (preset, seed, torch threads): seed 0 of every preset, then today's extra check (one preset, another seed)
CHECKS = [(name, 0, 1) for name in CLAIMED] + [c for c in extra_checks(CLAIMED) if c[1:] != (0, 1)]
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
# docs/workshop.md's screenshots: GAN_LIVE_PRESET_SHOTS=docs/presets python -m pytest tests/test_presets.py
SHOTS = os.environ.get("GAN_LIVE_PRESET_SHOTS")


NICE = 19  # the checks train beside the rest of the suite: they take the CPU it leaves idle, and yield it at once
TIMEOUT_S = 1800  # a check not measured by then failed (on this 2-core box all ten take ~10 min of CPU)
_OWNED: list = []  # the Futures of the checks this process trains (wait_for_owned waits for them at the end)


def result_path(folder: Path, name: str, seed: int, threads: int) -> Path:
    return folder / f"{name}-seed{seed}-threads{threads}.pickle"


def start_measurements(folder: Path) -> bool:
    """Every claimed preset trained in spawned processes, never more torch threads at once than there are cores
    (measure_side_by_side), at nice 19; each result is written to ``folder`` as it comes (a pickled Measurement,
    or the error's text), the seed-0 runs' checkpoints too. Several pytest processes share one ``folder`` (the
    suite runs in two xdist workers): the first to claim it trains, the others read the files. Called as soon as
    collection selects this module's checks (tests/conftest.py), so they train while the rest of the suite runs,
    mostly servers and browsers that wait. A run's numbers do not depend on the load beside it. True when this
    process trains them."""
    try:
        (folder / "owner").mkdir()
    except FileExistsError:
        return False
    jobs = [Job(name, seed, threads, checkpoint=str(folder / f"{name}.pt") if (seed, threads) == (0, 1) else None)
            for name, seed, threads in CHECKS]
    futures = measure_side_by_side(jobs, max(1, min(2, os.cpu_count() or 1)), nice=NICE)
    for job, future in futures.items():
        future.add_done_callback(functools.partial(_write, result_path(folder, job.preset, job.seed, job.threads)))
    _OWNED.extend(futures.values())
    return True


def _write(path: Path, future) -> None:
    exc = future.exception()
    value = ("error", "".join(traceback.format_exception(exc))) if exc is not None else ("ok", future.result())
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(value))
    os.replace(tmp, path)  # a reader never sees half a file


def wait_for_owned(timeout: float = TIMEOUT_S) -> None:
    """No check this process trains outlives it (its workers are this process's children)."""
    for future in _OWNED:
        future.exception(timeout=timeout)


def measurement(folder: Path, name: str, seed: int, threads: int, timeout: float = TIMEOUT_S):
    """The Measurement of one check, whichever process trains it: polled from its file until ``timeout``."""
    path, deadline = result_path(folder, name, seed, threads), time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"{path.name}: not measured within {timeout:.0f} s")
        time.sleep(1.0)  # polling a file another process writes (bounded by the deadline above)
    kind, value = pickle.loads(path.read_bytes())
    if kind == "error":
        pytest.fail(f"measuring {name} (seed {seed}, {threads} threads) failed:\n{value}")
    return value


@pytest.fixture(scope="module")
def folder(preset_runs):
    """Where this session's checks write (tests/conftest.py: one folder for all pytest processes of a run);
    starts them here if the conftest's early start did not (it never starts them twice)."""
    start_measurements(preset_runs)
    return preset_runs


def test_every_failure_and_rescue_preset_makes_claims():
    assert set(CLAIMED) >= {"d_too_strong", "minimax_stall", "mode_collapse", "bce_rescue", "lsgan_rescue"}
    for name in CLAIMED:
        assert get_preset(name).check_steps > 0


@pytest.mark.parametrize("name, seed, threads", CHECKS, ids=[f"{n}-seed{s}-threads{t}" for n, s, t in CHECKS])
def test_preset_shows_what_its_text_promises(name, seed, threads, folder):
    m = measurement(folder, name, seed, threads)
    assert (m.preset, m.seed, m.threads) == (name, seed, threads)
    assert m.steps == get_preset(name).check_steps
    assert failed_claims(get_preset(name), m) == []  # the coach's diagnosis among them (diagnosis_step)


def test_the_extra_check_is_one_preset_a_day_each_seed_in_turn_and_can_be_set(monkeypatch):
    monkeypatch.delenv("GAN_LIVE_PRESET_EXTRA", raising=False)
    names = ["a", "b", "c"]
    days = [extra_checks(names, day) for day in range(100, 112)]
    assert all(len(d) == 1 and d[0][2] == 1 for d in days)
    assert {d[0] for d in days} == {(n, s, 1) for n in names for s in (1, 2, 3, 4)}  # 12 days: every pair once
    assert [d[0][0] for d in days[:3]] == ["b", "c", "a"]  # day after day, another preset
    monkeypatch.setenv("GAN_LIVE_PRESET_EXTRA", "3,2")
    assert extra_checks(names, 100) == [("a", 3, 2), ("b", 3, 2), ("c", 3, 2)]
    for bad in ("3", "a,b", "-1,1", "0,0"):
        monkeypatch.setenv("GAN_LIVE_PRESET_EXTRA", bad)
        with pytest.raises(ValueError, match="GAN_LIVE_PRESET_EXTRA"):
            extra_checks(names, 100)


def test_each_checked_preset_run_in_a_real_browser(folder, tmp_path):
    """A checked run loaded on the Train page (Load a checkpoint file), paused, and photographed: the grid,
    D(real)/D(fake) and the losses a teacher points at. The suite loads one; GAN_LIVE_PRESET_SHOTS, all five."""
    pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian's /usr/bin/chromium")
    names = CLAIMED if SHOTS else sorted(CLAIMED)[:1]  # the upload path is the same for all; the docs' shots take all
    for name in names:
        measurement(folder, name, 0, 1)  # its checked run is saved by now
    runs = {name: folder / f"{name}.pt" for name in names}
    shots = Path(SHOTS) if SHOTS else tmp_path / "shots"
    for name, size in photograph(runs, shots, tmp_path).items():
        assert size > 20_000, f"{name}: the screenshot is nearly empty"


def photograph(runs: dict, shots: Path, tmp_path: Path) -> dict:
    """Start the app, load each checkpoint as the presenter, pause it and take a screenshot; returns sizes."""
    from browsing import open_popover, script_idle
    from playwright import sync_api

    from gan.tools.bench import free_port, start_app_server, stop_app_server, wait_http

    port, token = free_port(), "preset-shots"
    env = dict(os.environ, PYTHONPATH=str(ROOT), GAN_LIVE_TOKEN=token, GAN_LIVE_RUNS_DIR=str(tmp_path / "runs"),
               GAN_LIVE_TRAINER="thread", GAN_LIVE_MAX_RUNS="1")
    proc = start_app_server(port, env, tmp_path / "server.log")
    shots.mkdir(parents=True, exist_ok=True)
    sizes = {}
    try:
        assert wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60)
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
            page.set_default_timeout(60_000)
            sync_api.expect.set_options(timeout=60_000)
            for name, path in runs.items():
                page.goto(f"http://127.0.0.1:{port}/?token={token}")
                sync_api.expect(page.get_by_text("Workshop: presets")).to_be_visible()
                script_idle(page)  # the page's first run has sent all its elements
                page.get_by_text("Workshop: presets").click()
                page.get_by_role("tab", name="Snapshots and branches").click()
                open_popover(page, "Load a checkpoint file", ".st-key-ckpt_upload input[type=file]")
                page.locator(".st-key-ckpt_upload input[type=file]").set_input_files(str(path))
                load = page.locator(".st-key-load_upload button")
                sync_api.expect(load).to_be_enabled()  # the server holds the whole upload
                load.click()
                steps = get_preset(name).check_steps
                sync_api.expect(page.get_by_text(f"continues from step {steps:,}")).to_be_visible()
                page.keyboard.press("Escape")  # close the popover
                pause = page.locator(".st-key-pause_resume button")
                sync_api.expect(pause).to_have_text(re.compile("Pause"))
                pause.click()
                sync_api.expect(page.get_by_text(re.compile(r"Paused · Step"))).to_be_visible()
                sync_api.expect(page.locator(".host svg").nth(2)).to_be_visible()  # the three charts
                sync_api.expect(page.locator(".host img").first).to_be_visible()  # the sample grid
                page.wait_for_timeout(1000)  # not a synchronisation: lets the charts finish their layout
                page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
                sizes[name] = (shots / f"{name}.png").stat().st_size
            browser.close()
    finally:
        stop_app_server(proc)
    return sizes


def test_side_by_side_runs_start_whatever_the_caller_s_main_is(monkeypatch, tmp_path):
    """AppTest leaves the last page it ran as __main__ in a test process (Streamlit installs each script so), and
    spawn re-runs __main__ in every child: a page run bare there raised and broke the pool (CI, stop 40). The
    children start without it."""
    import types

    page = tmp_path / "page.py"
    page.write_text("raise ValueError('a page run bare in a spawned child')\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(page)
    monkeypatch.setitem(sys.modules, "__main__", main)
    job = Job("minimax_stall", 0, 1, steps=3)
    got = measure_side_by_side([job], cores=1)[job].result(timeout=300)
    assert got.steps == 3


def test_side_by_side_runs_come_back_each_as_its_own_job():
    """1- and 2-thread jobs in one call (grouped so that no more torch threads run than cores): each Future
    holds its own job's run, trained to the steps asked."""
    jobs = [Job("minimax_stall", seed, threads, steps=30) for seed, threads in ((0, 1), (1, 1), (0, 2))]
    futures = measure_side_by_side(jobs, cores=2)
    got = {job: futures[job].result(timeout=600) for job in jobs}
    assert {(m.preset, m.seed, m.threads, m.steps) for m in got.values()} == {
        (j.preset, j.seed, j.threads, 30) for j in jobs}
    assert got[jobs[0]].d_fake != got[jobs[1]].d_fake  # another seed, another run
