"""Owns how a process trains in the background of others (the test suite's preset checks): a lower priority, and
OpenMP threads that sleep instead of spinning while they wait. Must not import torch: it runs in a fresh spawned
process before torch loads, because OpenMP reads OMP_WAIT_POLICY once, when torch loads it."""

import os


def background_process(nice: int) -> None:
    """ProcessPoolExecutor's initializer. Measured on this 2-core machine, a 2-thread preset run of 150 steps beside
    one busy process: 148 s with OpenMP's default spinning, 13.6 s with PASSIVE (11.3 s alone); the numbers it
    measures are the same to the last digit (the same threads split the same sums; only the waiting differs)."""
    os.nice(nice)
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
