import shutil
import socket
from pathlib import Path

import pytest
import torch

from gan.core.data import FASHION_DIR, DataProblem, DataUnavailable, load_dataset, read_idx


def check_images(ds, n):
    assert ds.images.shape == (n, 1, 28, 28) and ds.images.dtype == torch.float32
    assert ds.images.min().item() == -1.0 and ds.images.max().item() == 1.0
    assert ds.labels.shape == (n,) and set(ds.labels.unique().tolist()) == set(range(10))
    batch = ds.sample(32)
    assert batch.shape == (32, 1, 28, 28)


def test_mnist5k_loads_offline_with_500_real_digits_per_class():
    ds = load_dataset("mnist5k")
    check_images(ds, 5000)
    assert ds.labels.bincount().tolist() == [500] * 10
    # Real digits: mostly background with a stroke, not noise. About 19% of MNIST pixels are ink.
    ink = (ds.images > 0).float().mean().item()
    assert 0.1 < ink < 0.3


fashion_installed = pytest.mark.skipif(
    not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(),
    reason="Debian's dataset-fashion-mnist is not installed (.ci/run installs it)")


@fashion_installed
def test_fashion_loads_the_60k_debian_idx_files():
    ds = load_dataset("fashion")
    check_images(ds, 60_000)
    assert str(FASHION_DIR) in ds.source


@fashion_installed
def test_mnist_reads_a_torchvision_cache_without_network(tmp_path):
    # torchvision's MNIST reads IDX files from <root>/MNIST/raw. We place real IDX files there (the
    # Fashion-MNIST ones, same format) to exercise the cached path offline; labels and shapes must come back.
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    for name in names:
        src = FASHION_DIR / f"{name}.gz"
        shutil.copy(src, raw / f"{name}.gz")
        (raw / name).write_bytes(__import__("gzip").decompress(src.read_bytes()))
    ds = load_dataset("mnist", data_dir=str(tmp_path))
    check_images(ds, 60_000)
    assert "cached" in ds.source


def test_mnist_without_cache_or_network_fails_fast_naming_mnist5k(tmp_path, monkeypatch):
    asked = []

    def offline(url, dest, timeout):  # the download stubbed: the test holds whether or not this machine is online
        asked.append(timeout)
        raise OSError("no network here")

    monkeypatch.setattr("gan.core.data.fetch", offline)
    monkeypatch.setenv("GAN_LIVE_DOWNLOAD_TIMEOUT", "2")
    with pytest.raises(DataUnavailable, match="use dataset mnist5k") as err:
        load_dataset("mnist", data_dir=str(tmp_path))
    assert err.value.problem == DataProblem.OFFLINE
    assert asked and set(asked) == {2.0}  # each request was given the configured timeout
    assert socket.getdefaulttimeout() is None  # the download's timeout never leaked into the process


def test_missing_fashion_files_name_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_LIVE_FASHION_DIR", str(tmp_path))
    with pytest.raises(DataUnavailable, match="dataset-fashion-mnist") as err:
        load_dataset("fashion")
    assert err.value.problem == DataProblem.NOT_FOUND


def test_truncated_idx_file_is_reported(tmp_path):
    good = Path(tmp_path / "x-idx3-ubyte")
    good.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28]) + bytes(28 * 28 * 2 - 5))
    with pytest.raises(DataUnavailable, match="truncated") as err:
        read_idx(good)
    assert err.value.problem == DataProblem.CORRUPT
    other = Path(tmp_path / "y")
    other.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(DataUnavailable, match="not an unsigned-byte IDX"):
        read_idx(other)
