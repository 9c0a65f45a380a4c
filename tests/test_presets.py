"""Every workshop preset shows what its text promises: trained headless to its check step (about 60 s
of one laptop CPU thread), measured, and each Claim of gan/workshop/presets.py checked with its number.

Each preset is checked twice per suite run: seed 0 on one torch thread, and one rotating extra setting
(another seed, or two threads: another reduction order, a cheap stand-in for another processor) that
changes every day (gan.workshop.presets_check.rotating_extra; GAN_LIVE_PRESET_EXTRA=SEED,THREADS picks
one). A claim that holds on seed 0 of one CPU only is caught here before it ships; docs/workshop.md's table
is the full sweep (`python -m gan.workshop.presets_check --seeds 0 1 2 3 4 --threads 1 2 --markdown`).
Marked `presets`: `python -m pytest -m "not presets"` skips them. The runs are trained side by side, one
process per core (a 2-thread run alone): a run is the same run whichever process trains it.
"""

import os
import re
from pathlib import Path

import pytest

from gan.workshop.presets import PRESETS, get_preset
from gan.workshop.presets_check import Job, failed_claims, measure_side_by_side, rotating_extra

pytestmark = pytest.mark.presets
CLAIMED = [name for name, p in PRESETS.items() if p.claims]
EXTRA = rotating_extra()  # (seed, threads) of this run's second check of every preset
SETTINGS = [(0, 1), EXTRA]
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
# docs/workshop.md's screenshots: GAN_LIVE_PRESET_SHOTS=docs/presets python -m pytest tests/test_presets.py
SHOTS = os.environ.get("GAN_LIVE_PRESET_SHOTS")


_STARTED: dict = {}  # "dir": the checked runs' folder, "futures": (name, seed, threads) -> Future of a Measurement
NICE = 19  # the checks train beside the rest of the suite: they take the CPU it leaves idle, and yield it at once


def start_measurements(folder: Path) -> dict:
    """Every claimed preset trained in spawned processes, never more torch threads at once than there are cores
    (measure_side_by_side), at nice 19; the seed-0 runs save their checkpoints into ``folder``. Called once: by
    tests/conftest.py as soon as collection selects this module's checks (they then train while the rest of the
    suite runs, mostly servers and browsers that wait: ~10 min of CPU that no longer run alone at the end), or by
    the fixture below when this module runs alone. A run's numbers do not depend on the load beside it."""
    if not _STARTED:
        jobs = [Job(name, seed, threads, checkpoint=str(folder / f"{name}.pt") if (seed, threads) == (0, 1) else None)
                for seed, threads in SETTINGS for name in CLAIMED]
        futures = measure_side_by_side(jobs, max(1, min(2, os.cpu_count() or 1)), nice=NICE)
        _STARTED.update(dir=folder, futures={(j.preset, j.seed, j.threads): f for j, f in futures.items()})
    return _STARTED


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """preset name -> the checkpoint of its checked run (for the browser screenshots at the end)."""
    if not _STARTED:
        start_measurements(tmp_path_factory.mktemp("preset-runs"))
    return {"dir": _STARTED["dir"]}


@pytest.fixture(scope="module")
def measured(checkpoints):
    """(preset name, seed, threads) -> a Future of its Measurement (start_measurements)."""
    yield _STARTED["futures"]
    for future in _STARTED["futures"].values():  # no run outlives the module
        future.exception(timeout=1800)


def test_every_failure_and_rescue_preset_makes_claims():
    assert set(CLAIMED) >= {"d_too_strong", "minimax_stall", "mode_collapse", "bce_rescue", "lsgan_rescue"}
    for name in CLAIMED:
        assert get_preset(name).check_steps > 0


@pytest.mark.parametrize("seed, threads", SETTINGS, ids=[f"seed{s}-threads{t}" for s, t in SETTINGS])
@pytest.mark.parametrize("name", CLAIMED)
def test_preset_shows_what_its_text_promises(name, seed, threads, checkpoints, measured):
    m = measured[name, seed, threads].result(timeout=1800)
    assert (m.preset, m.seed, m.threads) == (name, seed, threads)
    assert m.steps == get_preset(name).check_steps
    assert failed_claims(get_preset(name), m) == []  # the coach's diagnosis among them (diagnosis_step)
    if (seed, threads) == (0, 1):
        checkpoints[name] = checkpoints["dir"] / f"{name}.pt"


@pytest.mark.parametrize("day, expected", [(0, (0, 2)), (1, (1, 1)), (9, (0, 2)), (17, (4, 2))])
def test_the_extra_setting_rotates_through_seeds_and_thread_counts(day, expected, monkeypatch):
    monkeypatch.delenv("GAN_LIVE_PRESET_EXTRA", raising=False)
    assert rotating_extra(day) == expected
    monkeypatch.setenv("GAN_LIVE_PRESET_EXTRA", "3,2")
    assert rotating_extra(day) == (3, 2)
    for bad in ("3", "a,b", "-1,1", "0,0"):
        monkeypatch.setenv("GAN_LIVE_PRESET_EXTRA", bad)
        with pytest.raises(ValueError, match="GAN_LIVE_PRESET_EXTRA"):
            rotating_extra(day)


def test_each_checked_preset_run_in_a_real_browser(checkpoints, tmp_path):
    """A checked run loaded on the Train page (Load a checkpoint file), paused, and photographed: the grid,
    D(real)/D(fake) and the losses a teacher points at. The suite loads one; GAN_LIVE_PRESET_SHOTS, all five."""
    pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian's /usr/bin/chromium")
    runs = {n: p for n, p in checkpoints.items() if n != "dir"}
    if not runs:
        pytest.skip("no preset run was checked in this session")
    if not SHOTS:  # the suite loads one run (the upload path is the same for all); the docs' shots take all
        runs = dict(sorted(runs.items())[:1])
    shots = Path(SHOTS) if SHOTS else tmp_path / "shots"
    for name, size in photograph(runs, shots, tmp_path).items():
        assert size > 20_000, f"{name}: the screenshot is nearly empty"


def photograph(runs: dict, shots: Path, tmp_path: Path) -> dict:
    """Start the app, load each checkpoint as the presenter, pause it and take a screenshot; returns sizes."""
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
                page.get_by_text("Workshop: presets").click()
                page.get_by_role("tab", name="Snapshots and branches").click()
                page.get_by_text("Load a checkpoint file").click()
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


def test_side_by_side_runs_come_back_each_as_its_own_job():
    """1- and 2-thread jobs in one call (grouped so that no more torch threads run than cores): each Future
    holds its own job's run, trained to the steps asked."""
    jobs = [Job("minimax_stall", seed, threads, steps=30) for seed, threads in ((0, 1), (1, 1), (0, 2))]
    futures = measure_side_by_side(jobs, cores=2)
    got = {job: futures[job].result(timeout=600) for job in jobs}
    assert {(m.preset, m.seed, m.threads, m.steps) for m in got.values()} == {
        (j.preset, j.seed, j.threads, 30) for j in jobs}
    assert got[jobs[0]].d_fake != got[jobs[1]].d_fake  # another seed, another run
