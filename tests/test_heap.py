"""gan/worker/heap.py: the heap keeper starts once per process, on glibc Linux only."""

import sys
import threading

import pytest

from gan.worker import heap


def keepers():
    return [t for t in threading.enumerate() if t.name == "gan-heap-keeper"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux (glibc)")
def test_the_keeper_starts_once_and_keeps_running():
    assert heap.keep_flat() and heap.keep_flat()  # the second call finds the first keeper
    assert len(keepers()) == 1 and keepers()[0].daemon


def test_without_glibc_it_does_nothing(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert heap.keep_flat() is False
