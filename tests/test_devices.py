"""Any presenter's laptop: which device "auto" picks (CUDA, then Apple's MPS, then the CPU), "mps" as an explicit
choice, a clear failure for an operation MPS lacks, and the branches that differ off Linux (no core pinning, a parent
watch without /proc, folders under the user's home).

Only Linux x86 runs these tests here: the macOS and Windows branches are exercised by taking away what Linux has
(os.sched_setaffinity, a parent pid that changes) or by asking Python's path modules of those systems; the
accelerators by replacing torch's availability checks. Module imports stay light: the real-process test below spawns
children that import this file.
"""

import logging
import ntpath
import os
import posixpath
import sys
import time
from pathlib import PureWindowsPath

import pytest

from gan.core.config import Config, ConfigError, auto_device, device_unsupported_reason
from gan.tools import procs
from gan.worker import client as client_module
from gan.worker import process as worker
from gan.worker import spawning

MPS_MISSING_OP = NotImplementedError(
    "The operator 'aten::_fake_op' is not currently implemented for the MPS device. As a temporary fix, you can set "
    "the environment variable `PYTORCH_ENABLE_MPS_FALLBACK=1` to use the CPU as a fallback for this op.")


def _accelerators(monkeypatch, cuda: bool, mps: bool) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


# --- which device ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cuda, mps, device, model", [
    (True, True, "cuda", "dcgan"),  # a GPU box that is somehow also a Mac: NVIDIA first
    (True, False, "cuda", "dcgan"),
    (False, True, "mps", "dcgan"),  # a MacBook with Apple silicon: its GPU, and the GPU's model
    (False, False, "cpu", "mlp"),
])
def test_auto_takes_cuda_then_mps_then_the_cpu(monkeypatch, cuda, mps, device, model):
    _accelerators(monkeypatch, cuda, mps)
    assert auto_device() == device
    config = Config(device="auto", model="auto")
    assert (config.resolved_device(), config.resolved_model()) == (device, model)
    assert Config(device="cpu").resolved_device() == "cpu"  # an explicit choice stays whatever is there


def test_mps_is_a_choice_where_it_exists_and_a_clear_error_where_not(monkeypatch):
    _accelerators(monkeypatch, cuda=False, mps=True)
    assert Config(device="mps").resolved_device() == "mps"
    _accelerators(monkeypatch, cuda=True, mps=False)
    with pytest.raises(ConfigError) as err:
        Config(device="mps")
    assert err.value.field == "device"
    assert "mps (Apple's GPU) was asked for but is not available here" in str(err.value)
    assert str(err.value).endswith("use auto or cpu")


def test_the_command_line_takes_mps_and_refuses_it_in_one_line_where_it_is_missing(monkeypatch, capsys, tmp_path):
    from gan.tools import cli

    _accelerators(monkeypatch, cuda=False, mps=False)
    assert cli.main(["train", "--device", "mps", "--steps", "1", "--out", str(tmp_path / "out")]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith("error: device: mps (Apple's GPU) was asked for"), err
    assert not (tmp_path / "out").exists()
    assert cli.main(["train", "--help"]) == 0
    assert "one of auto, cpu, cuda, mps; auto takes cuda, then mps on a Mac, then cpu" in " ".join(
        capsys.readouterr().out.split())


# --- an operation MPS lacks --------------------------------------------------------------------------------------
class _StepRaises:
    """A ThreadedRun (the class that turns a step's exception into the run's FAILED reason) on a given device whose
    first step raises a given exception: what torch does on a Mac for an operation the MPS backend lacks."""

    @staticmethod
    def make(device: str, exc: Exception):
        from gan.engine.threaded_run import ThreadedRun

        class Run(ThreadedRun):
            def _setup(self):
                pass

            def _train_step(self, which, manual, changes):
                raise exc

            def status(self):
                return self._status(device=self.device, model="mlp", dataset="mnist5k", loss="bce", lr_g=1e-3,
                                    lr_d=1e-3, d_steps=1)

        run = Run(f"on-{device}")
        run.device = device
        return run


def test_an_operation_mps_lacks_fails_the_run_with_what_to_do_and_no_traceback(caplog):
    from gan.engine.status import FailureKind, RunState

    run = _StepRaises.make("mps", MPS_MISSING_OP)
    with caplog.at_level(logging.WARNING, logger="gan.engine.threaded_run"):
        run.start()
        assert run.wait_until(lambda r: r.state == RunState.FAILED, timeout=30), run.status()
    st = run.status()
    assert st.failure == FailureKind.ERROR
    assert st.reason.startswith("this run needs an operation that Apple's GPU backend (MPS) does not support")
    assert "PYTORCH_ENABLE_MPS_FALLBACK=1" in st.reason and "--device cpu" in st.reason
    assert "aten::_fake_op" in st.reason  # torch's own words say which operation
    assert not st.reason.startswith("NotImplementedError")
    records = [r for r in caplog.records if r.name == "gan.engine.threaded_run"]
    assert records and all(r.exc_info is None and r.levelno == logging.WARNING for r in records)
    assert run.history.snapshot().events.kind.tolist() == ["failed"]


@pytest.mark.parametrize("device, exc", [
    ("cpu", MPS_MISSING_OP),  # the same exception elsewhere is not MPS's: an ordinary error with its traceback
    ("cuda", NotImplementedError("something else")),
    ("mps", RuntimeError("MPS backend out of memory")),  # on MPS, but not a missing operation
])
def test_other_failures_keep_the_exception_and_its_traceback(caplog, device, exc):
    from gan.engine.status import FailureKind, RunState

    run = _StepRaises.make(device, exc)
    with caplog.at_level(logging.WARNING, logger="gan.engine.threaded_run"):
        run.start()
        assert run.wait_until(lambda r: r.state == RunState.FAILED, timeout=30)
    st = run.status()
    assert (st.failure, st.reason) == (FailureKind.ERROR, f"{type(exc).__name__}: {exc}")
    assert any(r.exc_info is not None for r in caplog.records if r.name == "gan.engine.threaded_run")


def test_the_device_reason_is_decided_by_type_and_device_only():
    assert device_unsupported_reason("mps:0", NotImplementedError("")) is not None  # an indexed MPS device
    assert device_unsupported_reason("mps", NotImplementedError("no text at all")).startswith("this run needs")
    assert device_unsupported_reason("cpu", NotImplementedError("... MPS device ...")) is None
    assert device_unsupported_reason("mps", TypeError("not implemented for the MPS device")) is None


# --- off Linux: pinning, the parent watch, /proc, folders ------------------------------------------------------------
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux side of the branch")
def test_pinning_is_possible_here_and_skipped_without_sched_setaffinity_or_proc(monkeypatch, tmp_path):
    assert client_module.can_pin()
    monkeypatch.setattr(client_module, "THREADS_DIR", str(tmp_path / "no-proc"))  # Linux without /proc mounted
    assert not client_module.can_pin()
    monkeypatch.undo()
    monkeypatch.delattr(os, "sched_setaffinity")  # macOS, Windows
    assert not client_module.can_pin()


def test_the_training_gets_the_last_cores_and_the_server_keeps_at_least_one():
    """One split for the worker process and the presenter's Ray actor (gan.worker.client.split_cores)."""
    assert client_module.split_cores([0, 1], 1) == ([0], [1])
    assert client_module.split_cores([0, 1, 2, 3], 2) == ([0, 1], [2, 3])
    assert client_module.split_cores([2, 5, 7], 0) == ([2, 5], [7])  # 0 threads still trains on one core
    assert client_module.split_cores([0, 1], 2) is None and client_module.split_cores([3], 1) is None


def test_without_sched_setaffinity_the_worker_starts_unpinned_and_answers(monkeypatch):
    from gan.worker import messages as p

    monkeypatch.delattr(os, "sched_setaffinity", raising=False)
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    client = client_module.WorkerClient(torch_threads=1, preload=None, pin=True)
    try:
        assert client.call(p.Ping()) == client.pid  # a real worker process, started and answering
        assert client.pinned is None
        if before is not None:
            assert os.sched_getaffinity(0) == before  # the server's cores untouched
    finally:
        client.shutdown()
    assert not client.alive()


class _Parent:
    def __init__(self, alive: bool):
        self.alive = alive

    def is_alive(self) -> bool:
        return self.alive


def test_the_parent_watch_reads_the_parent_pid_or_the_spawn_handle_never_proc(monkeypatch):
    monkeypatch.setattr(worker.os, "getppid", lambda: 4242)
    monkeypatch.setattr(worker.multiprocessing, "parent_process", lambda: _Parent(True))
    assert not worker.parent_gone(4242)
    assert worker.parent_gone(17)  # Linux, macOS: re-parented to init
    # Windows: the pid never changes, the handle on the parent says it ended
    monkeypatch.setattr(worker.multiprocessing, "parent_process", lambda: _Parent(False))
    assert worker.parent_gone(4242)
    monkeypatch.setattr(worker.multiprocessing, "parent_process", lambda: None)  # not started by multiprocessing
    assert not worker.parent_gone(4242)


def _write(path: str, text: str) -> None:
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)  # whole or absent for the test that polls for it


def _report_parent(path: str, parent_pid: int) -> None:
    """Grandchild: pretend to be on Windows (the parent pid never changes); report at once, and when the parent ends."""
    worker.os.getppid = lambda: parent_pid
    gone = worker.parent_gone(parent_pid)
    _write(path + ".first", str(gone))
    deadline = time.monotonic() + 60
    while not gone and time.monotonic() < deadline:
        time.sleep(0.05)
        gone = worker.parent_gone(parent_pid)
    _write(path, str(gone))


def _spawn_and_exit(path: str, go: str) -> None:
    """Child: spawn the grandchild, wait for the test's go, then end without cleaning up (as a killed server)."""
    ctx = spawning.context()
    ctx.Process(target=_report_parent, args=(path, os.getpid()), daemon=False).start()
    deadline = time.monotonic() + 60
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.05)
    os._exit(0)


def test_the_parent_watch_sees_its_parent_end_even_where_the_parent_pid_never_changes(tmp_path):
    """Real processes: a server stand-in spawns a worker stand-in whose os.getppid is frozen (Windows), then ends;
    the worker's watch still sees it through the handle spawn gave it, so it would not outlive the server."""
    from gan.engine.control import poll_until

    out, go = str(tmp_path / "seen"), str(tmp_path / "go")
    middle = spawning.context().Process(target=_spawn_and_exit, args=(out, go))  # never AppTest's last page
    middle.start()
    try:
        assert poll_until(lambda: os.path.exists(out + ".first"), 120, 0.05), "the worker stand-in did not start"
        with open(out + ".first") as f:
            assert f.read() == "False"  # while the parent lives: not gone (no false alarm)
        open(go, "w").close()
        middle.join(60)
        assert poll_until(lambda: os.path.exists(out), 60, 0.05), "the worker stand-in never saw its parent end"
        with open(out) as f:
            assert f.read() == "True"
    finally:
        if middle.is_alive():
            middle.kill()


def test_proc_readers_say_clearly_that_they_need_linux(monkeypatch, tmp_path):
    monkeypatch.setattr(procs, "PROC", str(tmp_path / "no-proc"))  # macOS, Windows
    for read in (procs.parents, lambda: procs.children(1), lambda: procs.cmdline(1), lambda: procs.alive(1),
                 lambda: procs.cpu_seconds(1), lambda: procs.training_worker_pid(1)):
        with pytest.raises(procs.ProcUnavailable, match="needs Linux"):
            read()


@pytest.mark.parametrize("default", ["data_dir", "runs_dir"])
def test_default_folders_are_under_the_home_on_macos_and_windows(monkeypatch, default):
    from gan.workshop.snapshots import DEFAULT_RUNS_DIR

    path = Config().data_dir if default == "data_dir" else DEFAULT_RUNS_DIR
    leaf = "data" if default == "data_dir" else "runs"
    monkeypatch.setenv("HOME", "/Users/ann")
    assert posixpath.expanduser(path) == f"/Users/ann/.cache/gan-live/{leaf}"
    monkeypatch.setenv("USERPROFILE", r"C:\Users\ann")
    assert PureWindowsPath(ntpath.expanduser(path)) == PureWindowsPath(rf"C:\Users\ann\.cache\gan-live\{leaf}")
