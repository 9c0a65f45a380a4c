"""Shared pytest fixtures. Keep this small: fixtures used by several test files only."""

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # pages import `pages._shared` and `gan` from the repository root
    sys.path.insert(0, str(ROOT))

# In-process tests (AppTest, registries built here) train in a thread: a worker process per test would
# add seconds each. The worker-process path has its own tests (test_worker.py, process-mode AppTests),
# and every real server a test starts runs the product's default, the worker process.
os.environ.setdefault("GAN_LIVE_TRAINER", "thread")


_PRESET_FOLDER: list[Path] = []


def pytest_collection_finish(session):
    """The presets' checks (tests/test_presets.py, ~10 min of CPU) start as soon as collection selects them, at
    nice 19, and train while the rest of the suite runs: most of it waits on servers and browsers."""
    if session.config.option.collectonly or os.environ.get("MUTANT_UNDER_TEST"):
        return
    for item in session.items:
        if item.get_closest_marker("presets") and item.originalname == "test_preset_shows_what_its_text_promises":
            import tempfile

            _PRESET_FOLDER.append(Path(tempfile.mkdtemp(prefix="gan-live-presets-")))
            item.module.start_measurements(_PRESET_FOLDER[0])
            return


def pytest_unconfigure(config):
    for folder in _PRESET_FOLDER:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def mutant_session_leaves_no_tmp(request):
    """Under mutmut (MUTANT_UNDER_TEST set), this session's tmp_path folders go when it ends. mutmut ends each
    forked test session with os._exit, so pytest's lock on the folder stays and its own cleanup never removes
    it: the runs folders of thousands of mutant sessions once filled this disk (73 GB)."""
    factory = request.getfixturevalue("tmp_path_factory") if os.environ.get("MUTANT_UNDER_TEST") else None
    yield
    if factory is not None:
        shutil.rmtree(factory.getbasetemp(), ignore_errors=True)


@pytest.fixture(autouse=True)
def runs_dir(tmp_path, monkeypatch):
    """Every test gets its own runs folder: autosaves and snapshots never land in the user's cache, and
    one test's interrupted run is never offered to the next."""
    path = tmp_path / "runs"
    monkeypatch.setenv("GAN_LIVE_RUNS_DIR", str(path))
    return path


def still_running(registry) -> list[str]:
    """What of a RunRegistry has not stopped yet: its runs' training and their quality monitors, by name."""
    names = []
    for name in registry.names():
        run = registry.get(name)
        if run is not None and run.is_alive():
            names.append(f"run {name!r}")
        monitor = registry.monitor(run)
        if monitor is not None and monitor.is_alive():
            names.append(f"the quality monitor of {name!r}")
    return names


@pytest.fixture
def app_registry(monkeypatch):
    """The dashboard's process-wide RunRegistry, emptied after the test.

    AppTest runs pages in this process, and st.cache_resource outlives a test together with any
    training thread it holds: stop every run and clear the cache so no thread leaks into the next test.

    No quality monitor unless the test asks for one (``app_registry.metrics_every = N``, or the environment):
    a monitor's first evaluation loads, on a fresh machine trains, the reference classifiers (tens of seconds
    on a busy CPU) and nothing interrupts that, so teardowns of page tests that never look at the quality
    panel waited for it and failed ("did not stop within 10 s") on a new or loaded machine.
    """
    import streamlit as st

    from pages._shared import get_registry

    monkeypatch.setenv("GAN_LIVE_METRICS_EVERY", os.environ.get("GAN_LIVE_METRICS_EVERY", "0"))
    st.cache_resource.clear()
    registry = get_registry()
    yield registry
    try:
        # Generous: stopping waits for the step in flight and the run's last autosave, nothing longer.
        assert registry.stop_all(timeout=30.0), f"not stopped within 30 s: {still_running(registry)}"
    finally:
        registry.close(timeout=10.0)
        get_registry().close(timeout=10.0)  # the same object unless the test cleared the cache
        st.cache_resource.clear()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, for one test module (test_browser.py, test_lab_browser.py); a module that
    needs its server up first defines its own (test_livechart.py, test_projector.py)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from gan.tools.bench.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
