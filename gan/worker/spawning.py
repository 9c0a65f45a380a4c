"""Spawned processes that start without the parent's __main__: the training worker and the presets checker's pool.
Must not start a process itself; it only decides what a child of ``context()`` imports before its target runs.

multiprocessing's spawn re-imports the parent's __main__ in every child. In this app that may be a Streamlit page
(Streamlit and AppTest install each script they run as __main__, and leave it there), a user's unguarded script or
the CLI: none belongs in a training process, a page run bare in a child raises or spawns again, and the child then
dies before its target runs (a ProcessPoolExecutor reports it as BrokenProcessPool). A child of ``context()`` is
told no main at all.
"""

from __future__ import annotations

from multiprocessing import context as mp_context
from multiprocessing import spawn

PREFIX = "gan-live-"  # a process whose name starts so is spawned without the parent's __main__


def _preparation_data_without_main(name, _original=spawn.get_preparation_data):
    """multiprocessing's spawn preparation, less the parent's __main__ for this app's processes."""
    data = _original(name)
    if name.startswith(PREFIX):
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
    return data


spawn.get_preparation_data = _preparation_data_without_main  # looked up at each start (popen_spawn_posix)


class _Process(mp_context.SpawnProcess):
    """A spawned process named with PREFIX (a pool names its own processes: the name is how the start knows)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.name.startswith(PREFIX):
            self.name = PREFIX + self.name


class _Context(mp_context.SpawnContext):
    Process = _Process


_CONTEXT = _Context()


def context() -> mp_context.SpawnContext:
    """The spawn context for this app's processes (Process, Pipe, and ``mp_context=`` of a ProcessPoolExecutor)."""
    return _CONTEXT
