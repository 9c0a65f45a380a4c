"""Shared pytest fixtures. Keep this small: fixtures used by several test files only."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # pages import `pages._shared` and `gan` from the repository root
    sys.path.insert(0, str(ROOT))

# In-process tests (AppTest, registries built here) train in a thread: a worker process per test would
# add seconds each. The worker-process path has its own tests (test_worker.py, process-mode AppTests),
# and every real server a test starts runs the product's default, the worker process.
os.environ.setdefault("GAN_LIVE_TRAINER", "thread")


_MADE: list[Path] = []  # the preset checks' folder, when this process made it (and so removes it)
PRESET_KEY = "gan_live_preset_runs"  # how an xdist worker learns its controller's folder (config.workerinput)


def pytest_configure(config):
    """One folder per test run for the presets' checks (tests/test_presets.py), made by pytest's first process:
    with xdist (the README's command runs two workers) the controller makes it and hands it to each worker."""
    if not hasattr(config, "workerinput") and not os.environ.get("MUTANT_UNDER_TEST"):  # mutmut: thousands of
        preset_folder(config)  # sessions ended by os._exit, none of which trains a preset; it never gets one


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):  # xdist's controller, before each worker starts
    node.workerinput[PRESET_KEY] = str(preset_folder(node.config))


def preset_folder(config) -> Path:
    if hasattr(config, "workerinput"):
        return Path(config.workerinput[PRESET_KEY])
    if not _MADE:
        _MADE.append(Path(tempfile.mkdtemp(prefix="gan-live-presets-")))
    return _MADE[0]


@pytest.fixture(scope="session")
def preset_runs(request) -> Path:
    return preset_folder(request.config)


def pytest_collection_modifyitems(config, items):
    """The presets' checks last: they train in the background from collection on, so the rest of the suite runs
    before anything waits for them (a stable sort: every other test keeps its order)."""
    items.sort(key=lambda item: item.get_closest_marker("presets") is not None)


def pytest_collection_finish(session):
    """The presets' checks (tests/test_presets.py, ~10 min of CPU) start as soon as collection selects them, at
    nice 19, and train while the rest of the suite runs: most of it waits on servers and browsers. Of several
    xdist workers, the first to get here trains them (test_presets.start_measurements) and the others read."""
    if session.config.option.collectonly or os.environ.get("MUTANT_UNDER_TEST"):
        return
    for item in session.items:
        if item.get_closest_marker("presets") and item.originalname == "test_preset_shows_what_its_text_promises":
            item.module.start_measurements(preset_folder(session.config))
            return


def pytest_sessionfinish(session):
    """A process that trains the checks ends after them: the other workers may still be reading their files."""
    module = sys.modules.get("tests.test_presets") or sys.modules.get("test_presets")
    if module is not None and not session.shouldstop and not session.shouldfail:
        module.wait_for_owned()


def pytest_unconfigure(config):
    for folder in _MADE:
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
