"""Training in its own process (gan.worker.process / gan.worker.remote) and the in-process thread, through one protocol.

The same behaviour is asserted in both modes (GAN_LIVE_TRAINER=process|thread); the process-only
faults (a killed worker, a stopped server) use real processes and real signals.
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from gan.core.config import Config, ConfigError
from gan.engine.status import FailureKind, PauseCause, RunState
from gan.tools import procs
from gan.workshop.runs import RunLimitError, RunRegistry

ROOT = Path(__file__).resolve().parents[1]
SMALL = Config(model="mlp", width=64, batch_size=16, sample_every=20)  # fast steps on any CPU


@pytest.fixture(params=["process", "thread"])
def registry(request):
    reg = RunRegistry(mode=request.param, metrics_every=0, torch_threads=1)
    yield reg
    reg.close(timeout=10.0)


@pytest.fixture
def process_registry():
    reg = RunRegistry(mode="process", metrics_every=0, torch_threads=1)
    yield reg
    reg.close(timeout=10.0)


def test_every_command_works_the_same_in_both_modes(registry):
    t = registry.start(SMALL)
    assert t.wait_until(lambda t: t.step_count >= 30, timeout=60), t.status()
    t.pause("from the test")
    st = t.status()
    assert (st.state, st.pause_cause, st.reason) == (RunState.PAUSED, PauseCause.USER, "from the test")
    paused_at = t.step_count
    # A manual D-only step: exactly one more step, with a caption of what it changed.
    t.step(1, which="d")
    assert t.wait_until(lambda t: getattr(t.last_manual_step, 'step', None) == paused_at + 1, timeout=10)
    assert t.last_manual_step.which == "d" and t.step_count == paused_at + 1
    # Live changes are recorded at the step they take effect, in the mirror every page reads.
    t.set_loss("mse")
    t.set_lr(lr_d=2e-4)
    t.set_d_steps(2)
    t.resume()
    assert t.wait_until(lambda t: t.step_count >= paused_at + 10 and t.loss == "mse", timeout=30)
    assert t.wait_until(lambda t: {"loss", "lr_d", "d_steps"} <= set(t.history.snapshot().events["kind"]),
                        timeout=5)
    events = t.history.snapshot().events
    switch = events[events.kind == "loss"].iloc[-1]
    assert switch.detail == "bce → mse" and switch.step == paused_at + 2
    assert t.status().lr_d == 2e-4 and t.status().d_steps == 2
    # Bad values are refused with the config's own error, and nothing changes.
    with pytest.raises(ConfigError, match="lr_g"):
        t.set_lr(lr_g=-1.0)
    with pytest.raises(ValueError, match="unknown loss"):
        t.set_loss("wasserstein-ish")
    with pytest.raises(RuntimeError, match="paused"):
        t.step(1)  # only while paused
    # Sampling and checkpoints read the real weights at a step boundary.
    G = t.generator_copy()
    import torch

    with torch.no_grad():
        out = G(torch.zeros(2, SMALL.latent_dim))
    assert tuple(out.shape) == (2, 1, 28, 28)
    state = t.state_dict()
    assert state["step"] >= paused_at + 10 and state["loss"] == "mse"
    assert t.stop(timeout=10.0)
    assert t.wait_until(lambda t: t.state == RunState.STOPPED, timeout=5)
    # The history every page reads holds every step the run made (mirrored from the worker).
    final = t.step_count
    assert t.wait_until(lambda t: t.history.total_steps == final, timeout=5), (t.history.total_steps, final)
    snap = t.history.snapshot(with_grids=True)
    assert list(snap.scalars.step)[-1] == final
    assert [g.step for g in snap.grids][:2] == [0, 20]


def test_the_average_of_g_samples_with_batchnorm_statistics_of_its_own_in_both_modes(registry):
    """A copy of the averaged DCGAN G gets running statistics recomputed from its own samples (the saved ones are
    the raw G's). In process mode the server computes them, once per sample point, and hands each caller its own
    copy; the worker only sends the weights."""
    import torch

    t = registry.start(Config(model="dcgan", width=16, batch_size=8, sample_every=1000, ema=0.9), paused=True)
    assert t.wait_until(lambda t: t.state == RunState.PAUSED and t.has_models(), timeout=60), t.status()
    t.step(3)
    assert t.wait_until(lambda t: t.step_count == 3, timeout=30)
    saved = t.state_dict()["G_ema"]
    a, b = t.generator_copy(), t.generator_copy()
    assert a is not b and not a.training
    params = dict(a.named_parameters())
    assert all(torch.equal(params[k], v) for k, v in saved.items() if k in params)  # the average's weights
    assert not torch.equal(a.project[1].running_mean, saved["project.1.running_mean"])  # statistics of its own
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_second_start_gets_the_limit_message_and_starts_nothing(registry):
    t = registry.start(SMALL)
    with pytest.raises(RunLimitError, match="limit is 1"):
        registry.start(SMALL)
    assert registry.names() == [t.name]


def test_presets_scheduled_changes_fire_in_the_worker(registry):
    t = registry.start(SMALL, actions=[(15, "loss", "hinge")])
    assert t.wait_until(lambda t: t.loss == "hinge", timeout=60), t.status()
    events = t.history.snapshot().events
    assert t.wait_until(lambda t: "loss" in set(t.history.snapshot().events.kind), timeout=5)
    events = t.history.snapshot().events
    assert events[events.kind == "loss"].step.tolist() == [16]


def test_reset_forgets_the_run_everywhere(registry):
    t = registry.start(SMALL)
    assert t.wait_until(lambda t: t.step_count >= 5, timeout=60)
    registry.reset(timeout=10.0)
    assert registry.current() is None and registry.names() == []
    assert not t.is_alive()
    registry.start(SMALL)  # the cap is free again


def test_an_uploaded_checkpoint_continues_in_the_worker(process_registry, tmp_path):
    from gan.engine.trainer import Trainer
    from gan.store.checkpoint import load_checkpoint, save_checkpoint, trainer_from_checkpoint

    local = Trainer(SMALL, name="local")
    local.start(stop_at_step=40)
    assert local.wait_until(lambda t: t.state == RunState.PAUSED, timeout=60)
    path = save_checkpoint(local, tmp_path / "run.pt")
    local.stop()
    loaded = trainer_from_checkpoint(load_checkpoint(path), name="upload")
    remote = process_registry.adopt(loaded)
    assert remote.history.total_steps == 40  # the saved charts show at once, before the first tick
    assert remote.wait_until(lambda t: t.step_count >= 50, timeout=60), remote.status()
    assert remote.wait_until(lambda t: t.history.total_steps >= 50, timeout=5)
    assert list(remote.history.snapshot().scalars.step[:40]) == list(range(1, 41))


def test_a_killed_worker_fails_its_run_with_the_cause_and_the_next_start_works(process_registry):
    t = process_registry.start(SMALL)
    assert t.wait_until(lambda t: t.step_count >= 20, timeout=60)
    rows = t.history.total_steps
    pid = process_registry.worker.pid
    os.kill(pid, signal.SIGKILL)
    assert t.wait_until(lambda t: t.state == RunState.FAILED, timeout=2.0), t.status()
    st = t.status()
    assert st.failure == FailureKind.WORKER_DIED
    assert "SIGKILL" in st.reason and "out-of-memory" in st.reason
    assert t.history.total_steps >= rows  # the charts keep what the run did
    assert "failed" in set(t.history.snapshot().events.kind)
    # Commands to the dead run fail fast with a typed error, they never hang the page.
    t0 = time.monotonic()
    t.pause()  # a no-op on a failed run, answered at once by a fresh worker that does not know it
    assert time.monotonic() - t0 < 30
    again = process_registry.start(SMALL)
    assert again.wait_until(lambda t: t.step_count >= 5, timeout=60), again.status()
    assert process_registry.worker.pid != pid


def test_a_worker_that_stops_answering_is_reported_not_waited_for(process_registry, monkeypatch):
    import gan.worker.client
    import gan.worker.messages

    t = process_registry.start(SMALL)
    assert t.wait_until(lambda t: t.step_count >= 5, timeout=60)
    os.kill(process_registry.worker.pid, signal.SIGSTOP)  # alive but frozen
    try:
        t0 = time.monotonic()
        with pytest.raises(gan.worker.client.WorkerError) as err:
            process_registry.worker.call(gan.worker.messages.Ping(), timeout=1.0)
        assert err.value.kind == FailureKind.WORKER_UNRESPONSIVE and "within 1 s" in str(err.value)
        # The caller's 1 s was honoured, not the default (a generous bound: a loaded machine may be late).
        assert time.monotonic() - t0 < gan.worker.client.CALL_TIMEOUT_S
        monkeypatch.setattr(gan.worker.remote, "SILENT_S", 1.5)
        # The page is told that the numbers have stopped, instead of showing a stale "Running" as if live.
        assert t.wait_until(lambda t: any("No news from the training process" in w for w in t.status().warnings),
                            timeout=10)
    finally:
        os.kill(process_registry.worker.pid, signal.SIGCONT)


def test_a_busy_worker_is_not_answering_not_dead_and_recovers_by_itself(process_registry, tmp_path):
    """A command that times out on a worker that is only busy (here: stopped by SIGSTOP past the timeout) says "not
    answering, try again" to its caller and on the run, which is not failed; when the worker catches up, its next
    tick clears the warning, the run goes on and the command sent meanwhile still applies."""
    from gan.workshop.controller import Kind, TrainController
    from gan.workshop.snapshots import SnapshotStore

    t = process_registry.start(SMALL)
    assert t.wait_until(lambda t: t.state == RunState.RUNNING and t.step_count >= 5, timeout=60), t.status()
    ctl = TrainController(process_registry, SnapshotStore(tmp_path / "snapshots"))
    worker = process_registry.worker
    worker.call_timeout = 1.0  # read at each call (gan.worker.client.CALL_TIMEOUT_S is only the default's copy)
    pid = worker.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        notices = [ctl.set_d_steps(3), ctl.set_max_rate(0), ctl.set_loss("bce"), ctl.apply_advice([("lr_d", 3e-3)])]
        for notice in notices:  # each live setting's path: the caller is told, no traceback
            assert notice.kind == Kind.ERROR and "not answering" in notice.text and "try again" in notice.text, notice
        st = t.status()
        assert (st.state, st.failure) == (RunState.RUNNING, FailureKind.NONE), st  # neither failed nor "died"
        assert any("not answering" in w for w in st.warnings), st.warnings
        assert t.is_alive() and t.history.snapshot().events.kind.ne("failed").all()
        frozen_at = t.step_count
    finally:
        os.kill(pid, signal.SIGCONT)
    # Ticks alone (no command answered yet) clear the warning, and the run goes on.
    assert t.wait_until(lambda t: t.step_count > frozen_at
                        and not any("not answering" in w for w in t.status().warnings), timeout=30), t.status()
    assert t.wait_until(lambda t: t.status().d_steps == 3, timeout=10), t.status()  # sent meanwhile: not lost
    # The next command gets its own reply: the late one of the timed-out command waits first in the pipe and is
    # dropped by its request id (taken as this one's, it would be None, not the run's weights).
    state = t.state_dict()
    assert state["step"] >= frozen_at and state["d_steps"] == 3
    assert t.state == RunState.RUNNING and worker.pid == pid and worker.alive()


class _Client:
    """A WorkerClient stand-in whose next calls fail with a chosen WorkerError kind (the real ones: above)."""

    spawns, call_timeout = 1, 1.0

    def __init__(self, fail_on=object):
        self.kind, self.fail_on = None, fail_on  # fail_on: the command type that fails (object: every one)

    def register(self, run):
        pass

    def forget(self, name):
        pass

    def alive(self):
        return True

    @staticmethod
    def waiting_for() -> None:  # a local worker never waits for a cluster slot
        return None

    def call(self, cmd, timeout=None):
        from gan.worker.client import WorkerError

        if self.kind is not None and isinstance(cmd, self.fail_on):
            raise WorkerError(self.kind, f"the training worker {self.kind}")
        return None


@pytest.mark.parametrize("kind", [FailureKind.WORKER_UNRESPONSIVE, FailureKind.WORKER_DIED])
def test_the_error_kind_alone_decides_between_not_answering_and_dead(kind):
    from gan.worker import messages as p
    from gan.worker.client import WorkerError
    from gan.worker.remote import RemoteTrainer

    client = _Client()
    t = RemoteTrainer(client, SMALL, name="r")
    t.start()
    t.pause()  # answered: the Start went through
    client.kind = kind
    before = time.monotonic()
    with pytest.raises(WorkerError) as err:
        t.set_d_steps(2)
    assert err.value.kind == kind  # the caller gets it either way
    st = t.status()
    if kind == FailureKind.WORKER_DIED:
        assert (st.state, st.failure) == (RunState.FAILED, FailureKind.WORKER_DIED), st
        assert t.stop(timeout=0.1)  # nothing left to stop
        return
    assert st.is_live and st.failure == FailureKind.NONE, st
    assert any("not answering" in w for w in st.warnings), st.warnings

    def tick(stamp):
        t.on_tick(p.Tick("r", replace(st, state=RunState.RUNNING, step=7, warnings=()), None, stamp=stamp))

    tick(before - 1.0)  # taken before the command timed out (it was still in the pipe): proves nothing
    assert any("not answering" in w for w in t.status().warnings)
    tick(time.monotonic())  # taken after: the process runs again
    assert t.status().warnings == () and t.step_count == 7
    client.kind = kind
    with pytest.raises(WorkerError):
        t.resume()
    assert any("not answering" in w for w in t.status().warnings)
    assert not t.stop(timeout=0.1) and t.is_alive()  # the Stop waits in its queue: the run is not stopped yet
    client.kind = None
    t.resume()  # an answered command clears it too
    assert t.status().warnings == ()


@pytest.mark.parametrize("kind", [FailureKind.WORKER_UNRESPONSIVE, FailureKind.WORKER_DIED])
def test_a_start_the_worker_did_not_answer_in_time_is_still_loading_not_dead(kind):
    """The Start went out but got no reply in time: the worker runs it when it catches up (its ticks will show it),
    so the run stays LOADING and says the process is not answering; only a process that ended fails it."""
    from gan.worker import messages as p
    from gan.worker.remote import RemoteTrainer

    client = _Client(fail_on=p.Start)
    client.kind = kind
    t = RemoteTrainer(client, SMALL, name="r")
    t.start()
    if kind == FailureKind.WORKER_DIED:
        assert t.wait_until(lambda t: t.state == RunState.FAILED, timeout=30), t.status()
        assert t.status().failure == FailureKind.WORKER_DIED
        return
    assert t.wait_until(lambda t: any("not answering" in w for w in t.status().warnings), timeout=30), t.status()
    st = t.status()
    assert (st.state, st.failure) == (RunState.LOADING, FailureKind.NONE), st
    client.kind = None
    t.pause()  # the next command goes to the same worker (the run was not taken for one of another process)
    assert client.spawns == 1 and t.status().warnings == ()


# --- the real server: no orphans ---------------------------------------------------------------------
def _poll(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_stopping_the_server_stops_the_worker(tmp_path, how):
    from gan.tools import viewers
    from gan.tools.bench import free_port

    port = free_port()
    env = dict(os.environ, GAN_LIVE_TRAINER="process", PYTHONPATH=str(ROOT), GAN_LIVE_RUNS_DIR=str(tmp_path))
    env.pop("GAN_LIVE_TOKEN", None)
    log = tmp_path / "server.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def workers() -> set[int]:
            return {k for k in procs.children(server.pid) if "spawn_main" in procs.cmdline(k)}

        async def open_page_until_the_worker_runs() -> set[int]:
            # The viewer stays connected until the worker exists: a fresh server's first run reruns itself once
            # (pages/_shared.py leaves the pages-folder mode), and a viewer closed after the first run's end could
            # take the rerun that builds the registry with it (seen under load).
            vs, failed = await viewers.open_viewers(f"http://127.0.0.1:{port}", 1, timeout=60)
            assert not failed, failed
            try:
                deadline = time.monotonic() + 60
                while not workers() and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                return workers()
            finally:
                await viewers.close_viewers(vs)

        assert _poll(lambda: _ping(port), 60), "server did not come up"
        workers_seen = asyncio.run(open_page_until_the_worker_runs())  # the page builds the registry: it spawns
        assert workers_seen, "no training worker was spawned; server log:\n" + log.read_text()[-3000:]
        os.kill(server.pid, how)
        server.wait(timeout=30)
        assert _poll(lambda: not any(procs.alive(w) for w in workers_seen), 10), "the worker outlived the server"
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


def _ping(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.mark.parametrize("var, value, message", [
    ("GAN_LIVE_TRAINER", "gpu", "GAN_LIVE_TRAINER must be one of process, thread, got 'gpu'"),
    ("GAN_LIVE_AUTOSAVE_S", "soon", "GAN_LIVE_AUTOSAVE_S must be a number of seconds > 0, got 'soon'"),
    ("GAN_LIVE_RUNS_MAX_MB", "-1", "GAN_LIVE_RUNS_MAX_MB must be a whole number >= 1, got '-1'"),
])
def test_a_bad_setting_in_the_environment_is_a_clear_error(monkeypatch, var, value, message):
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError) as err:
        RunRegistry(metrics_every=0)
    assert str(err.value) == message


def test_the_worker_starts_whatever_the_server_s_main_is(monkeypatch, tmp_path):
    """Streamlit installs the page it runs as __main__ (and leaves it), and spawn re-runs __main__ in a child: a page
    there would build a registry and spawn again, or raise. The worker starts without it and answers."""
    import types

    from gan.worker import messages
    from gan.worker.client import WorkerClient

    page = tmp_path / "page.py"
    page.write_text("raise ValueError('a page run bare in the worker')\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(page)
    monkeypatch.setitem(sys.modules, "__main__", main)
    client = WorkerClient(preload=None, pin=False)
    try:
        client.ensure_started()
        assert client.call(messages.Ping(), timeout=60) is not None
        assert client.alive()
    finally:
        client.shutdown()
