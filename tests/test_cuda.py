"""The GPU path: the trainer, sampling, checkpoints across devices, the live loss toggle and the training
worker process, each on CUDA. Marked `cuda`; without a GPU the CUDA cases skip with the reason, and the
same test bodies run on the CPU, so the tests themselves are known to work before a GPU ever runs them.

On a GPU machine: `python -m pytest -m cuda` (and `python -m gan bench --parts overhead,score`).
"""

import pytest
import torch

from gan.core.config import Config
from gan.engine.status import RunState
from gan.engine.trainer import Trainer
from gan.store.checkpoint import load_checkpoint, save_checkpoint, trainer_from_checkpoint
from gan.workshop.runs import RunRegistry

NO_GPU = "no CUDA GPU on this machine: the GPU path is untested here (docs/measurements.md: which system ran what)"
DEVICES = [pytest.param("cpu"),
           pytest.param("cuda", marks=[pytest.mark.cuda,
                                       pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)])]


def config(device: str, **kw) -> Config:
    # DCGAN (the GPU default) on both devices; a small batch keeps the CPU case to seconds
    return Config(device=device, model="dcgan", batch_size=64 if device == "cuda" else 16, sample_every=10,
                  seed=3, **kw)


def tensors(obj):
    """Every tensor inside a nested state dict."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from tensors(v)


@pytest.fixture
def paused(device):
    t = Trainer(config(device), name=f"on-{device}")
    t.start(stop_at_step=20)
    assert t.wait_until(lambda t: t.state in (RunState.PAUSED, RunState.FAILED), timeout=120)
    assert t.state == RunState.PAUSED, t.status()
    yield t
    t.stop()


@pytest.mark.parametrize("device", DEVICES)
def test_the_trainer_trains_and_samples_on_its_device(paused, device):
    assert next(paused.G.parameters()).device.type == device == paused.status().device
    assert next(paused.D.parameters()).device.type == device
    grid = paused.history.latest_grid()
    assert grid.step == 20 and grid.images.shape == (64, 28, 28) and grid.images.dtype.name == "uint8"
    assert next(paused.generator_copy().parameters()).device.type == "cpu"  # what scoring and the pages get
    s = paused.history.snapshot().scalars
    assert len(s) == 20 and s.loss_d.notna().all() and s.d_real.between(0, 1).all()


@pytest.mark.parametrize("device", DEVICES)
def test_a_checkpoint_saved_on_the_device_loads_on_a_cpu_and_back(paused, device, tmp_path):
    path = save_checkpoint(paused, tmp_path / "run.pt")
    state = load_checkpoint(path)
    assert all(t.device.type == "cpu" for t in tensors(state))  # loads on a machine without a GPU
    targets = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for target in targets:
        resumed = trainer_from_checkpoint(state, device=target)
        resumed.start(paused=True)  # builds the models on `target` and loads the weights
        try:
            assert resumed.wait_until(lambda t: t.state == RunState.PAUSED, timeout=120), resumed.status()
            for a, b in zip(paused.G.state_dict().values(), resumed.G.state_dict().values()):
                assert b.device.type == target and torch.equal(a.cpu(), b.cpu())
            resumed.step(5)  # five manual steps on the training thread, then paused again
            assert resumed.wait_until(lambda t: t.step_count == 25 and t.state == RunState.PAUSED, timeout=120), \
                resumed.status()
        finally:
            resumed.stop()


@pytest.mark.parametrize("device", DEVICES)
def test_the_loss_toggles_live_on_the_device(paused, device):
    paused.set_loss("mse")
    paused.resume()
    assert paused.wait_until(lambda t: t.step_count >= 30, timeout=120), paused.status()
    paused.pause()
    snap = paused.history.snapshot(with_grids=False)
    assert "loss" in set(snap.events.kind)
    s = snap.scalars
    assert set(s[s.step <= 20].loss) == {"bce"} and set(s[s.step > 21].loss) == {"mse"}


@pytest.mark.parametrize("device", DEVICES)
def test_the_training_worker_process_trains_on_the_device(device):
    registry = RunRegistry(mode="process", metrics_every=0, torch_threads=1)
    try:
        t = registry.start(config(device))
        assert t.wait_until(lambda t: t.step_count >= 20, timeout=120), t.status()
        assert t.status().device == device
        t.pause()
        assert t.wait_until(lambda t: t.state == RunState.PAUSED, timeout=30)
    finally:
        registry.close(timeout=10.0)
