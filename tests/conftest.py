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


@pytest.fixture
def app_registry():
    """The dashboard's process-wide RunRegistry, emptied after the test.

    AppTest runs pages in this process, and st.cache_resource outlives a test together with any
    training thread it holds: stop every run and clear the cache so no thread leaks into the next test.
    """
    import streamlit as st

    from pages._shared import get_registry

    st.cache_resource.clear()
    registry = get_registry()
    yield registry
    try:
        assert registry.stop_all(timeout=10.0), "a training thread did not stop within 10 s"
    finally:
        registry.close(timeout=10.0)
        get_registry().close(timeout=10.0)  # the same object unless the test cleared the cache
        st.cache_resource.clear()
