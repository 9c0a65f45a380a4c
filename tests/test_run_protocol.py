"""Every kind of run against the run interface (gan.engine.run): Trainer and RemoteTrainer are a `Run`, SavedRun a
`RunView` only; each offers every member of its protocol with the protocol's parameters (then optional ones of
its own at most), refuses bad
arguments with the same words (the checks are gan.engine.control's, written once), and waits with the one
wait_until. A new kind of run (a participant's, a Ray actor) is added to KINDS and must pass the same tests.
"""

import inspect

import pytest

from gan.core.config import Config, ConfigError
from gan.core.live import Knob, LiveChange, StepTarget
from gan.engine.run import LiveCommands, Run, RunView, Waiting
from gan.engine.trainer import Trainer
from gan.store.autosave import SavedRun, find_interrupted
from gan.worker.client import RunMirror
from gan.worker.remote import RemoteTrainer
from gan.workshop.runs import RunRegistry

SMALL = Config(model="mlp", width=16, batch_size=16, latent_dim=8, device="cpu", sample_every=5)


class RecordingClient:
    """Stands in for gan.worker.client.WorkerClient: records what would be sent, answers None."""

    spawns = 1
    call_timeout = 10.0

    def __init__(self):
        self.sent = []

    def register(self, run) -> None:
        pass

    def forget(self, name: str) -> None:
        pass

    def alive(self) -> bool:
        return True

    @staticmethod
    def waiting_for() -> None:  # a local worker never waits for a cluster slot
        return None

    def call(self, cmd, timeout=None):
        self.sent.append(cmd)


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    registry = RunRegistry(mode="thread", metrics_every=0, runs_root=root)
    try:
        t = registry.start(SMALL)
        assert t.wait_until(lambda t: t.step_count >= 6, timeout=60), t.status()
        t.pause()  # an autosave at this step
        t.stop(clean=False)  # the server went down: the run is offered as interrupted
    finally:
        registry.close(timeout=10.0)
    found, _ = find_interrupted(root / "live")
    return SavedRun(found[0])


def make(kind: str, saved_run):
    if kind == "Trainer":
        return Trainer(SMALL, name="t")
    if kind == "RemoteTrainer":
        return RemoteTrainer(RecordingClient(), SMALL, name="r")
    return saved_run


KINDS = {"Trainer": Run, "RemoteTrainer": Run, "SavedRun": RunView}


def members(protocol) -> dict:
    """The protocol's own members: name -> the function (or property) it declares."""
    out = {}
    for klass in reversed(protocol.__mro__):
        if klass in (object,) or not getattr(klass, "_is_protocol", False) or klass.__name__ == "Protocol":
            continue
        for name, value in vars(klass).items():
            if not name.startswith("_") and (callable(value) or isinstance(value, property)):
                out[name] = value
        out.update({name: None for name in getattr(klass, "__annotations__", {})})
    return out


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_implements_its_protocol_with_the_same_parameters(kind, saved_run):
    run, protocol = make(kind, saved_run), KINDS[kind]
    assert isinstance(run, protocol) and isinstance(run, RunView) and isinstance(run, Waiting)
    assert isinstance(run, Run) is (protocol is Run)  # a saved run has no commands: nothing can train it
    for name, declared in members(protocol).items():
        assert hasattr(run, name), f"{kind} lacks {name}"
        if callable(declared) and not isinstance(declared, property):
            params = list(inspect.signature(getattr(run, name)).parameters.values())
            want = [p.name for p in inspect.signature(declared).parameters.values() if p.name != "self"]
            # the protocol's parameters first, in its order; anything more is optional (Trainer.pause's cause)
            assert [p.name for p in params[:len(want)]] == want, (kind, name, params, want)
            assert all(p.default is not p.empty for p in params[len(want):]), (kind, name, params)


@pytest.mark.parametrize("kind", ["Trainer", "RemoteTrainer"])
@pytest.mark.parametrize("call, error, words", [
    (lambda r: r.step(0), ValueError, "n must be in [1, 10000]"),
    (lambda r: r.step(1, which="both-ish"), ValueError, "which must be both, d or g"),
    (lambda r: r.set_max_rate(-1), ValueError, "steps/s throttle must be in (0, 100000] or None"),
    (lambda r: r.set_lr(lr_g=0), ConfigError, "lr_g: must be a number more than 0 and at most 1, got 0"),
    (lambda r: r.set_lr(lr_d="fast"), ConfigError, "lr_d:"),
    (lambda r: r.set_d_steps(0), ConfigError, "d_steps:"),
    (lambda r: r.set_loss("wasserstein-ish"), ValueError, "wasserstein-ish"),
    (lambda r: r.schedule(10, "momentum", 0.9), ValueError, "cannot change 'momentum' live"),
    (lambda r: r.change(LiveChange.checked("lr_d", -1)), ConfigError, "lr_d:"),
])
def test_bad_arguments_are_refused_alike_before_anything_is_sent(kind, call, error, words, saved_run):
    run = make(kind, saved_run)
    with pytest.raises(error) as caught:
        call(run)
    assert words in str(caught.value)
    if kind == "RemoteTrainer":
        assert run.client.sent == []  # refused here: the worker never saw it


def test_wait_until_is_one_implementation(saved_run):
    for kind in KINDS:
        run = make(kind, saved_run)
        assert type(run).wait_until is Waiting.wait_until, kind
        assert run.wait_until(lambda r, name=run.name: r.name == name, timeout=1)
    assert not saved_run.wait_until(lambda r: r.is_alive(), timeout=0.05)  # a saved run never comes alive


def test_the_live_setters_are_one_implementation_over_change():
    for kind in ("Trainer", "RemoteTrainer"):
        run = make(kind, None)
        for name in ("set_loss", "set_lr", "set_d_steps"):
            assert getattr(type(run), name) is getattr(LiveCommands, name), (kind, name)
    remote = make("RemoteTrainer", None)
    remote.client.spawns = -1  # the process an unstarted run names: its commands reach the (recording) client
    remote.set_lr(lr_g=2e-4, lr_d=1e-3)
    remote.set_loss("mse")
    remote.step(2, which="d")
    changes = [cmd.changes for cmd in remote.client.sent if hasattr(cmd, "changes")]
    # both rates in one message, at one step boundary; values in their types; knobs typed
    assert changes == [(LiveChange(Knob.lr_g, 2e-4), LiveChange(Knob.lr_d, 1e-3)), (LiveChange(Knob.loss, "mse"),)]
    step = [cmd for cmd in remote.client.sent if type(cmd).__name__ == "Step"]
    assert [(s.n, s.which) for s in step] == [(2, StepTarget.d)] and step[0].which is StepTarget.d


def test_the_remote_run_is_the_mirror_the_client_talks_to():
    assert isinstance(make("RemoteTrainer", None), RunMirror)
    assert not isinstance(make("Trainer", None), RunMirror)
