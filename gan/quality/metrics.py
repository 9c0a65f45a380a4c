"""Quality metrics for generated digits, all measured with the reference classifier (gan/quality/classifier.py).
Must not train, draw, or know about runs; arrays in, numbers and one-sentence verdicts out.

On a fixed number of samples (SAMPLE_COUNT) we compute:
- classifier score: the Inception-score form exp(E_x KL(p(y|x) ‖ p(y))). 1 = every image gets the
  same (or no confident) label; 10 = every image is a confident digit and all ten are equally common.
- Fréchet distance between Gaussian fits of the classifier's 128-d features of the samples and of
  the real training images: ‖μ₁-μ₂‖² + Tr(Σ₁ + Σ₂ - 2(Σ₁Σ₂)^½). 0 = same feature statistics.
- class coverage: the share of samples whose most likely class is each digit, and its entropy in
  nats (ln 10 ≈ 2.30 = perfectly even; 0 = one class only).
- not a digit: the share of samples the classifier rejects (gan/quality/classifier.py). They count for no
  class: in the score they carry no label (uniform p(y|x)), in coverage they fill no bar.
The same numbers for real held-out images (never seen by the classifier) are the ceiling.

A GAN has collapsed when its digits cover few classes: `collapse_alarm` says so in one sentence. While
most samples are not digits yet there is nothing to judge, and the alarm says that instead.
Their charts live in gan/viz/quality_charts.py.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from gan.core.data import data_noun
from gan.quality.classifier import load_reference

SAMPLE_COUNT = 1000  # generated images per evaluation; FD is biased by n, so real references use the same n
COVERED_SHARE = 0.02  # a class "is covered" when at least 2% of the samples fall in it
MIN_COVERED = 7  # the alarm fires below 7 covered classes ...
MIN_ENTROPY = 1.6  # ... or below 1.6 nats of coverage entropy (e^1.6 ≈ 5 equally used classes)
MIN_DIGIT_SHARE = 0.5  # judge collapse only when at least half the samples are digits
# FD is in the units of the features it is computed on, and two rulers' 128-d features differ in scale
# (on mnist5k the real features' total variance is 767 under ruler A and 2,007 under ruler B). Each
# ruler's features are multiplied by one fixed factor so the real TRAINING features have this total
# variance: then "FD <= 10" asks the same of G under either ruler. 768 is ruler A's own scale on
# mnist5k (its FDs move by 0.08 %), so A's Fréchet distances are what they always were.
FEATURE_TRACE = 768.0


# --- pure metrics on arrays ------------------------------------------------------------------------
def classifier_score(probs, is_digit=None) -> float:
    """exp(mean_x KL(p(y|x) ‖ p(y))) for probs (N, C) whose rows sum to 1.

    Rows where ``is_digit`` (N,) is False become uniform: a non-digit tells nothing about the label,
    so all-noise samples score 1, the same as "no confident label".
    """
    p = np.array(probs, dtype=np.float64)
    if is_digit is not None:
        p[~np.asarray(is_digit, dtype=bool)] = 1.0 / p.shape[1]
    p_y = p.mean(axis=0, keepdims=True)  # (1, C) the marginal label distribution
    eps = 1e-12
    kl = (p * (np.log(p + eps) - np.log(p_y + eps))).sum(axis=1)  # (N,)
    return float(np.exp(kl.mean()))


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)  # (N, D)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """‖μ₁-μ₂‖² + Tr(Σ₁) + Tr(Σ₂) - 2 Tr((Σ₁Σ₂)^½), with the trace term from symmetric eigenvalues.

    Tr((Σ₁Σ₂)^½) = Σ √λ(√Σ₁ Σ₂ √Σ₁), and √Σ₁ Σ₂ √Σ₁ is symmetric PSD, so eigh is exact and stable
    (no scipy.linalg.sqrtm and its complex round-off).
    """
    w, v = np.linalg.eigh(sigma1)
    sqrt1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = sqrt1 @ sigma2 @ sqrt1
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    diff = np.asarray(mu1) - np.asarray(mu2)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def class_coverage(probs, is_digit=None, n_classes: int | None = None) -> np.ndarray:
    """Share of ALL samples whose most likely class is c, counting digits only: (C,) summing to the
    share of digits (1 when ``is_digit`` is None)."""
    p = np.asarray(probs)
    n_classes = n_classes or p.shape[1]
    keep = np.ones(len(p), bool) if is_digit is None else np.asarray(is_digit, dtype=bool)
    counts = np.bincount(p.argmax(axis=1)[keep], minlength=n_classes)
    return counts / max(1, len(p))


def coverage_entropy(coverage) -> float:
    c = np.asarray(coverage, dtype=np.float64)
    c = c[c > 0]
    return float(-(c * np.log(c)).sum()) + 0.0  # + 0.0: no '-0.00' for a single class


@dataclass(frozen=True)
class Alarm:
    firing: bool
    covered: int  # classes with at least COVERED_SHARE of the digits
    entropy: float  # of the classes among the digits, nats
    message: str  # one sentence for the dashboard
    not_digit: float = 0.0  # share of samples that are no digit
    judged: bool = True  # False while too few samples are digits to call collapse either way


def collapse_alarm(coverage, *, min_covered: int = MIN_COVERED, min_entropy: float = MIN_ENTROPY,
                   covered_share: float = COVERED_SHARE, min_digit_share: float = MIN_DIGIT_SHARE,
                   noun: str = "digits") -> Alarm:
    """coverage: (C,) shares of all samples per class (class_coverage); 1 - its sum are non-digits.
    noun: what the dataset's images are (gan.core.data.data_noun), so clothes are never called digits."""
    raw = np.asarray(coverage, dtype=np.float64)
    digits = float(raw.sum())
    not_digit = max(0.0, 1.0 - digits)
    cov = raw / digits if digits > 0 else raw  # shares among the digits
    covered = int((cov >= covered_share).sum())
    entropy = coverage_entropy(cov)
    top = int(cov.argmax())
    if digits < min_digit_share:
        return Alarm(False, covered, entropy, f"Too early to judge collapse: {not_digit:.0%} of the samples are "
                     f"not {noun} yet (the classifier rejects them), so they count for no class.", not_digit, False)
    firing = covered < min_covered or entropy < min_entropy
    if firing:
        message = (f"Mode collapse: only {covered} of {len(cov)} classes appear in at least {covered_share:.0%} "
                   f"of the samples (coverage entropy {entropy:.2f} nats, real data {math.log(len(cov)):.2f}); "
                   f"G keeps drawing the same few {noun}, most often class {top} ({cov[top]:.0%}).")
    else:
        message = (f"No collapse: {covered} of {len(cov)} classes each make up at least {covered_share:.0%} "
                   f"of the samples (coverage entropy {entropy:.2f} of {math.log(len(cov)):.2f} nats).")
    if not_digit >= 0.005:
        message += f" {not_digit:.0%} of the samples are not {noun} yet and count for no class."
    return Alarm(firing, covered, entropy, message, not_digit)


@dataclass(frozen=True)
class Quality:
    score: float  # classifier score, 1..n_classes
    fd: float  # Fréchet distance to the real training features
    coverage: tuple  # (C,) shares
    entropy: float  # nats
    alarm: Alarm
    n: int  # samples measured

    @property
    def not_digit(self) -> float:
        """Share of the samples the classifier rejects as no digit."""
        return self.alarm.not_digit

    def as_row(self) -> dict:
        return {"score": self.score, "fd": self.fd, "entropy": self.entropy, "covered": self.alarm.covered,
                "collapse": self.alarm.firing, "not_digit": self.not_digit}


def quality_from_embedding(features, probs, real_mu, real_sigma, is_digit=None, noun: str = "digits") -> Quality:
    cov = class_coverage(probs, is_digit)
    mu, sigma = gaussian_stats(features)
    alarm = collapse_alarm(cov, noun=noun)
    return Quality(classifier_score(probs, is_digit), frechet_distance(mu, sigma, real_mu, real_sigma),
                   tuple(float(c) for c in cov), alarm.entropy, alarm, len(probs))


# --- an evaluator bound to one dataset's reference classifier -------------------------------------
@dataclass
class Evaluator:
    """Holds the classifier, the real feature statistics and the real held-out ceiling."""

    reference: object  # gan.quality.classifier.Reference
    real_mu: np.ndarray  # (128,) of the scaled real training features
    real_sigma: np.ndarray  # (128, 128), trace FEATURE_TRACE
    ceiling: Quality  # real held-out images, SAMPLE_COUNT of them (or all if fewer)
    n_samples: int = SAMPLE_COUNT
    info: dict = field(default_factory=dict)
    feature_scale: float = 1.0  # multiplies every feature vector (see FEATURE_TRACE)
    noun: str = "digits"  # what the dataset's images are, in the alarm's words (gan.core.data.data_noun)

    @classmethod
    def for_dataset(cls, dataset, n_samples: int = SAMPLE_COUNT, *, ruler: str = "A", **load_kwargs) -> "Evaluator":
        """The evaluator of one ruler (gan.quality.classifier.RULERS: "A" charts, "B" the independent judge)."""

        ref = load_reference(dataset, ruler=ruler, **load_kwargs)
        images = dataset.images.cpu()
        mu, sigma = gaussian_stats(ref.model.embed(images[ref.train_idx]).features.numpy())
        scale = math.sqrt(FEATURE_TRACE / max(float(np.trace(sigma)), 1e-12))
        mu, sigma = mu * scale, sigma * scale**2  # the same as the statistics of the scaled features
        rng = np.random.default_rng(0)
        held = ref.heldout_idx
        if len(held) > n_samples:
            held = np.sort(rng.choice(held, n_samples, replace=False))
        hf, hp, hd = ref.model.embed(images[held])
        noun = data_noun(dataset.name)
        ceiling = quality_from_embedding(hf.numpy() * scale, hp.numpy(), mu, sigma, hd.numpy(), noun)
        info = {"dataset": dataset.name, "ruler": ruler, "heldout_accuracy": ref.heldout_accuracy,
                "train_seconds": ref.train_seconds, "from_cache": ref.from_cache, "key": ref.key,
                "feature_scale": scale}
        return cls(ref, mu, sigma, ceiling, n_samples, info, scale, noun)

    @classmethod
    def for_own_images(cls, own, digits, n_samples: int = SAMPLE_COUNT) -> "Evaluator":
        """Your images (gan.core.own_images: no labels): Fréchet distance only, against THEM. The features are
        ruler A's (trained on the real ``digits`` dataset), a fixed image descriptor here; its score and coverage
        name MNIST classes and mean nothing for your images. A fixed half of your images gives the statistics, the
        other half (up to n_samples) the real-data ceiling, so "real" is your own images scored the same way."""

        ref = load_reference(digits, ruler="A")
        images = own.images.cpu()
        order = np.random.default_rng(0).permutation(len(images))
        half = len(images) // 2
        stats_idx, held = np.sort(order[:half]), np.sort(order[half:][:n_samples])
        mu, sigma = gaussian_stats(ref.model.embed(images[stats_idx]).features.numpy())
        scale = math.sqrt(FEATURE_TRACE / max(float(np.trace(sigma)), 1e-12))
        mu, sigma = mu * scale, sigma * scale**2
        hf, hp, hd = ref.model.embed(images[held])
        ceiling = quality_from_embedding(hf.numpy() * scale, hp.numpy(), mu, sigma, hd.numpy())
        info = {"dataset": own.name, "ruler": "A", "own_images": True, "images": len(images),
                "heldout_accuracy": ref.heldout_accuracy, "from_cache": ref.from_cache, "feature_scale": scale,
                "train_seconds": ref.train_seconds}
        return cls(ref, mu, sigma, ceiling, n_samples, info, scale)

    @torch.no_grad()
    def evaluate_images(self, images: torch.Tensor) -> Quality:
        """images: (N, 1, 28, 28) in [-1, 1] on the CPU."""
        feats, probs, is_digit = self.reference.model.embed(images.float().clamp(-1, 1))
        return quality_from_embedding(feats.numpy() * self.feature_scale, probs.numpy(), self.real_mu,
                                      self.real_sigma, is_digit.numpy(), self.noun)

    @torch.no_grad()
    def evaluate_generator(self, G, latent_dim: int, seed: int = 0, batch: int = 500) -> Quality:
        """Score n_samples images from G on fixed noise (same seed -> same z, so curves are smooth)."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(self.n_samples, latent_dim, generator=g)  # (N, latent)
        was_training = G.training
        G.eval()
        try:
            images = torch.cat([G(z[i:i + batch]) for i in range(0, len(z), batch)])  # (N, 1, 28, 28)
        finally:
            G.train(was_training)
        return self.evaluate_images(images.cpu())
