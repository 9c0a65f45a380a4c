"""A reference digit classifier: the yardstick for every quality metric in gan/quality/metrics.py.
Must not see a generated image in training, nor score one (gan.quality.metrics does).

A small CNN trained on REAL images of the dataset in use (never on generated ones), with a seeded
stratified held-out split so its accuracy is measured honestly. Training takes seconds on a CPU;
the weights are cached under the user's cache directory and retrained when missing or stale.

It also says "not a digit": an extra class trained on synthetic non-digits (noise, blank and grey
images, shuffled pixels, blobs, smudges of the mean digit). Without it a softmax must name a digit for
every input, and early grey blobs read as a confident "8" — counting noise as coverage. Samples whose
most likely class is "not a digit" count for no class in gan/quality/metrics.py.

Two rulers, not one (RULERS). A score tuned against one classifier flatters itself: ruler "A" is the one
the dashboard charts; ruler "B" is an independent judge — another architecture (wider, 5×5 kernels,
dropout), another init seed and another held-out split — and the bench and the quality panel's details
report both. A result counts only when it holds under both.

Cache key = dataset name + ruler + a hash of (the images, the labels, the ruler's version and split).
Bump a ruler's version whenever its architecture or the training recipe changes: a key mismatch is
"stale", and a stale or unreadable cache file is simply retrained and overwritten. One process trains a
missing file while any other that asks for it waits (a lock file beside it) and then reads it: on a fresh
machine the presenter's run, a lab worker and the bench all ask at once, and trained it once each.
"""

import contextlib
import hashlib
import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

try:
    import fcntl  # POSIX; on Windows every process trains its own copy, as before the lock
except ImportError:  # pragma: no cover - not on Linux
    fcntl = None

from gan.core.models import seeded
from gan.store.storage import torch_save_atomic

CLASSIFIER_VERSION = "cnn-v5-reject"  # ruler A's; bump when ReferenceCNN or train_classifier changes
HELDOUT_FRACTION = 0.2  # 100 of the 500 digits per class in mnist5k
SPLIT_SEED = 1234  # ruler A's held-out split
FEATURE_DIM = 128  # both rulers: FD is computed on 128-d features, so their FDs are on a like scale


class Embedding(NamedTuple):
    features: torch.Tensor  # (B, 128) the feature layer, for the Fréchet distance
    probs: torch.Tensor  # (B, C) class probabilities given "it is one of the C classes" (rows sum to 1)
    is_digit: torch.Tensor  # (B,) bool: the most likely of the C + 1 outputs is a class, not "not a digit"


class ReferenceCNN(nn.Module):
    """Ruler A: two conv blocks and a 128-d feature layer: ~98% on mnist5k held-out, fast on a CPU.

    Outputs C + 1 logits: the C classes and, last, "not a digit". Trained plainly on the real classes
    (no augmentation, no label smoothing) so it is confident on real digits, like the classifiers
    behind published MNIST "Inception scores": real held-out images score ~9.4 of 10. A softer
    classifier would compress every score towards 1 and hide differences between runs.
    """

    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.n_classes = n_classes
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 16, 14, 14)
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 7, 7)
        )
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, FEATURE_DIM), nn.ReLU())  # (B, 128)
        self.head = nn.Linear(FEATURE_DIM, n_classes + 1)  # the last logit: "not a digit"

    def forward(self, x):  # x: (B, 1, 28, 28) in [-1, 1]
        return self.head(self.features(self.conv(x)))  # (B, C + 1) logits


    @torch.no_grad()
    def embed(self, x, batch: int = 500) -> Embedding:
        """Features, class probabilities and the digit/not-a-digit verdict, in chunks to bound memory."""
        self.eval()
        feats, probs = [], []
        for i in range(0, x.shape[0], batch):
            f = self.features(self.conv(x[i:i + batch]))
            feats.append(f)
            probs.append(F.softmax(self.head(f), dim=1))  # (b, C + 1)
        f, p = torch.cat(feats), torch.cat(probs)
        digits = p[:, :self.n_classes]
        return Embedding(f, digits / digits.sum(1, keepdim=True).clamp_min(1e-12), p.argmax(1) < self.n_classes)


class JudgeCNN(ReferenceCNN):
    """Ruler B, the independent judge: strided 5×5 convs instead of 3×3 convs and pooling, a third conv
    block and dropout before the features — a different inductive bias from ruler A, so a G that games A's
    features is not rewarded by B. Same outputs (C + 1 logits) and the same 128-d feature size as A.
    Strides, not pooling, keep its training to ~25 s on one CPU thread (with pooling at full resolution: 68 s)."""

    def __init__(self, n_classes: int = 10):
        super().__init__(n_classes)
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 5, stride=2, padding=2), nn.ReLU(),  # (B, 32, 14, 14)
            nn.Conv2d(32, 64, 5, stride=2, padding=2), nn.ReLU(),  # (B, 64, 7, 7)
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),  # (B, 64, 7, 7)
        )
        self.features = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 7 * 7, FEATURE_DIM),
                                      nn.ReLU())  # (B, 128); dropout is off in eval mode (embed)


@dataclass(frozen=True)
class Ruler:
    """How one reference classifier is made: architecture, init seed, held-out split, cache version."""

    name: str  # "A" or "B": the column suffix in the bench and on the quality panel
    model: type  # ReferenceCNN or a subclass: C + 1 logits, 128-d features
    seed: int  # weight init and batch order
    split_seed: int  # which 20% of each class is held out (the ceiling; never trained on)
    version: str  # part of the cache key: bump when the architecture or recipe changes
    epochs: int = 10


RULERS = {
    "A": Ruler("A", ReferenceCNN, seed=0, split_seed=SPLIT_SEED, version=CLASSIFIER_VERSION),
    "B": Ruler("B", JudgeCNN, seed=7, split_seed=4321, version="judge-v2"),
}


def non_digits(n: int, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """n synthetic images that are no digit, (n, 1, 28, 28) in [-1, 1]: the "not a digit" class.

    Eight kinds in equal parts, each a way a GAN's early or broken samples look: uniform and Gaussian
    noise, blank and flat grey, the pixels of a real digit shuffled, a soft blob, the mean digit
    smudged with noise, and smooth low-frequency noise (grey clouds, what G draws after ~100 steps).
    ``images`` are the real (N, 1, 28, 28) digits the shuffled and mean kinds are made from.
    """
    g = generator
    k = -(-n // 8)

    def rand(*shape):
        return torch.rand(*shape, generator=g)

    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    cx, cy, width = 8 + 12 * rand(k, 1, 1), 8 + 12 * rand(k, 1, 1), 2 + 6 * rand(k, 1, 1)
    blob = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * width ** 2)) * (2 * rand(k, 1, 1)) - 1
    pick = torch.randint(len(images), (k,), generator=g)
    shuffled = torch.stack([im.reshape(-1)[torch.randperm(784, generator=g)] for im in images[pick]])
    mean = images.mean(0, keepdim=True)
    clouds = F.interpolate(torch.randn(k, 1, 7, 7, generator=g), size=28, mode="bilinear", align_corners=False)
    kinds = [
        rand(k, 1, 28, 28) * 2 - 1,  # uniform noise
        torch.randn(k, 1, 28, 28, generator=g) * (0.2 + 0.6 * rand(k, 1, 1, 1)),  # Gaussian noise
        -1 + 0.1 * rand(k, 1, 1, 1) * torch.randn(k, 1, 28, 28, generator=g),  # blank, maybe a little noisy
        (2 * rand(k, 1, 1, 1) - 1).expand(k, 1, 28, 28),  # flat grey of any level
        shuffled.reshape(k, 1, 28, 28),  # a digit's ink, scattered
        blob.unsqueeze(1),  # one soft blob
        mean + (0.1 + 0.4 * rand(k, 1, 1, 1)) * torch.randn(k, 1, 28, 28, generator=g),  # the mean digit, smudged
        clouds * (0.3 + 0.7 * rand(k, 1, 1, 1)) - 0.5 * rand(k, 1, 1, 1),  # grey clouds
    ]
    return torch.cat(kinds)[:n].clamp(-1, 1)


@dataclass
class Reference:
    """A trained classifier plus what the metrics compare against."""

    model: ReferenceCNN
    dataset: str
    key: str
    heldout_accuracy: float
    train_seconds: float  # 0.0 when loaded from the cache
    train_idx: np.ndarray  # indices into the dataset used for training
    heldout_idx: np.ndarray  # indices never seen in training: the "ceiling" for every metric
    from_cache: bool
    note: str = "loaded from the cache"  # or why it was (re)trained
    ruler: str = "A"  # which of RULERS


def stratified_split(labels: np.ndarray, fraction: float = HELDOUT_FRACTION, seed: int = SPLIT_SEED):
    """Seeded per-class split: mnist5k is sorted by label, so a plain tail split would hold out one class."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = round(len(idx) * fraction)
        held.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gan-live"


def data_key(dataset_name: str, images: torch.Tensor, labels: torch.Tensor, ruler: Ruler = RULERS["A"]) -> str:
    h = hashlib.sha256()
    h.update(ruler.version.encode())
    h.update(f"{HELDOUT_FRACTION}:{ruler.split_seed}".encode())
    h.update(images.detach().cpu().contiguous().numpy().tobytes())
    h.update(labels.detach().cpu().contiguous().numpy().tobytes())
    return f"{dataset_name}-{h.hexdigest()[:16]}"


def train_classifier(images: torch.Tensor, labels: torch.Tensor, train_idx, heldout_idx, *,
                     epochs: int = 10, batch_size: int = 64, seed: int = 0,
                     architecture: type = ReferenceCNN) -> tuple[ReferenceCNN, float]:
    """Train on images[train_idx] only; returns the model and its accuracy on images[heldout_idx].

    Each epoch adds fresh non_digits() (a fifth as many as the real images) labelled "not a digit".
    Accuracy counts a held-out digit as right only when it gets its own class, not "not a digit".
    """
    g = torch.Generator().manual_seed(seed)
    n_classes = int(labels.max()) + 1
    with seeded(seed):  # the init lock shared with every run's models; the caller's RNG is restored
        model = architecture(n_classes)
    real_x, real_y = images[train_idx].cpu(), labels[train_idx].cpu()
    n_neg = len(real_x) // 5
    x = torch.cat([real_x, non_digits(n_neg, real_x, g)])
    y = torch.cat([real_y, torch.full((n_neg,), n_classes, dtype=real_y.dtype)])
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    model.train()
    for epoch in range(epochs):
        if epoch:  # new non-digits every epoch: the class means "anything else", not these n images
            x[len(real_x):] = non_digits(n_neg, real_x, g)
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch_size):
            b = order[i:i + batch_size]
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    _, probs, is_digit = model.embed(images[heldout_idx].cpu())
    acc = ((probs.argmax(1) == labels[heldout_idx].cpu()) & is_digit).float().mean().item()
    return model.eval(), acc


class NoClasses(ValueError):
    """The dataset has no classes (your own images, labelled -1): no reference classifier can be trained on it."""


class NotLoaded(RuntimeError):
    """A run's reference classifier was asked for before the run loaded its dataset."""


def has_classes(dataset) -> bool:
    """Whether a gan.core.data.Dataset has labels to train a reference classifier on (your images have none)."""
    return len(dataset.labels) > 0 and int(dataset.labels.max()) >= 0


LOCK_WAIT_S = 600.0  # a training takes ~10-70 s; a holder stuck longer than this is ignored (we train too)


@contextlib.contextmanager
def training_lock(path: Path, wait_s: float = LOCK_WAIT_S):
    """Hold ``path``.lock while reading or training one classifier file; yields whether the lock was got.

    flock: the kernel frees it when its holder dies, so a killed trainer never leaves the file locked.
    """
    if fcntl is None:
        yield False
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path.with_name(path.name + ".lock"), "a")
    except OSError:  # a read-only cache folder: no lock to share (saving the weights will say why)
        yield False
        return
    with f:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    yield False
                    return
                time.sleep(0.2)  # another process trains this file: poll until it is done
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def load_reference(dataset, *, retrain: bool = False, directory: Path | None = None, ruler: str = "A") -> Reference:
    """The cached classifier ``ruler`` (a key of RULERS) for this dataset; trains (and caches) one when
    missing or stale. NoClasses for a dataset without labels (your own images).

    ``dataset`` is a gan.core.data.Dataset (images in [-1, 1], labels): the run's own, never one looked up by
    name with default settings. Loading uses torch.load(weights_only=True): the cache file can hold tensors and
    plain values only.
    """
    if not has_classes(dataset):
        raise NoClasses(f"{dataset.name}: your images have no classes, so no classifier can be trained on them")
    spec = RULERS[ruler]
    images, labels = dataset.images.cpu(), dataset.labels.cpu()
    key = data_key(dataset.name, images, labels, spec)
    train_idx, heldout_idx = stratified_split(labels.numpy(), seed=spec.split_seed)
    suffix = "" if ruler == "A" else f"-{ruler}"  # ruler A keeps the file name it always had
    path = (directory or cache_dir()) / f"classifier-{dataset.name}{suffix}.pt"
    with training_lock(path):  # another process training this file: wait for it, then read what it wrote
        return _load_or_train(dataset.name, spec, images, labels, key, train_idx, heldout_idx, path, retrain)


def _load_or_train(name: str, spec: Ruler, images, labels, key: str, train_idx, heldout_idx, path: Path,
                   retrain: bool) -> Reference:
    note = "retrain requested" if retrain else "no cached classifier; trained"
    if not retrain and path.is_file():
        note = "cached classifier is stale (data or code changed); retrained"
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and state.get("key") == key:
                model = spec.model(int(state["n_classes"]))
                model.load_state_dict(state["weights"])
                return Reference(model.eval(), name, key, float(state["heldout_accuracy"]), 0.0,
                                 train_idx, heldout_idx, True, ruler=spec.name)
        except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
            note = f"cache file unreadable ({type(exc).__name__}); retrained"  # overwritten below
    t0 = time.perf_counter()
    model, acc = train_classifier(images, labels, train_idx, heldout_idx, epochs=spec.epochs, seed=spec.seed,
                                  architecture=spec.model)
    seconds = time.perf_counter() - t0
    torch_save_atomic({"key": key, "n_classes": int(labels.max()) + 1, "heldout_accuracy": acc,
                       "weights": model.state_dict()}, path)  # a concurrent reader never sees half a file
    return Reference(model, name, key, acc, seconds, train_idx, heldout_idx, False, note, spec.name)
