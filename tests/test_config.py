import dataclasses

import pytest
import torch

from gan.core.config import Config, ConfigError


@pytest.mark.parametrize("field, value, fragment", [
    ("batch_size", 0, "batch_size: must be a whole number from 1 to 4,096, got 0"),
    ("batch_size", 2.5, "batch_size"),
    ("lr_g", 0.0, "lr_g: must be a number more than 0 and at most 1"),
    ("lr_d", -1e-3, "lr_d: must be a number more than 0"),
    ("lr_g", 1000.0, "lr_g: must be a number more than 0 and at most 1, got 1000.0"),
    ("lr_g", float("nan"), "lr_g"),
    ("beta1", 1.0, "beta1: must be a number at least 0 and below 1"),
    ("ema", 1.0, "ema: must be a number at least 0 and below 1"),  # 1 would freeze the average at the initial G
    ("ema", -0.1, "ema: must be a number at least 0 and below 1"),
    ("loss", "wgan", "loss: must be one of bce, mse, hinge, minimax"),
    ("model", "resnet", "model: must be one of auto, mlp, dcgan"),
    ("dataset", "cifar", "dataset: must be one of mnist5k, mnist, fashion"),
    ("d_steps", 0, "d_steps"),
    ("latent_dim", 0, "latent_dim"),
    ("seed", -1, "seed"),
    ("sample_every", 0, "sample_every"),
    ("device", "tpu", "device: must be one of auto, cpu, cuda, mps, got 'tpu'"),
])
def test_invalid_values_name_the_field_and_range(field, value, fragment):
    with pytest.raises(ConfigError) as err:
        Config(**{field: value})
    assert err.value.field == field
    assert fragment in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_is_refused():
    with pytest.raises(ConfigError, match="no GPU"):
        Config(device="cuda")


def test_auto_resolves_to_cpu_and_the_mlp_pair_without_gpu_and_explicit_choices_stay():
    c = Config(model="auto", device="auto")
    # whatever this machine has (every combination: tests/test_devices.py)
    expected = (("cuda", "dcgan") if torch.cuda.is_available()
                else ("mps", "dcgan") if torch.backends.mps.is_available() else ("cpu", "mlp"))
    assert (c.resolved_device(), c.resolved_model()) == expected
    assert Config(model="mlp").resolved_model() == "mlp" and Config(model="dcgan").resolved_model() == "dcgan"


def test_config_is_frozen_and_round_trips_through_a_dict():
    c = Config(loss="mse", batch_size=32)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.batch_size = 1
    assert Config.from_dict(c.to_dict()) == c
    with pytest.raises(ConfigError, match="unknown setting"):
        Config.from_dict({**c.to_dict(), "lr": 1.0})


def test_the_page_says_it_in_the_forms_words():
    """The dashboard shows ``plain`` beside the field: the label the form uses, the range in words."""
    with pytest.raises(ConfigError) as err:
        Config(lr_g=-0.5)
    assert err.value.plain == "Learning rate G must be a number more than 0 and at most 1, got -0.5."
    assert str(err.value) == "lr_g: must be a number more than 0 and at most 1, got -0.5"  # the CLI's line
    with pytest.raises(ConfigError) as err:
        Config(d_steps=0)
    assert err.value.plain == "D steps per G step must be a whole number from 1 to 20, got 0."
    from gan.core.config import FIELD_LABELS

    missing = {f.name for f in dataclasses.fields(Config)} - set(FIELD_LABELS)
    assert not missing, f"settings the page cannot name: {missing}"
