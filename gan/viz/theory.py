"""The numbers behind the Theory page: entropy, cross-entropy, the 0.693 / 0.25 lines, a loss catalogue.
Must not redefine a loss: every number goes through gan.core.losses.

Everything here is a pure function returning numbers or DataFrames, so the page stays thin and the
tests can check the maths without a browser. The GAN losses are evaluated THROUGH gan.core.losses (the
same functions that train), with torch autograd for the gradients: if the registry changed, the
Theory page would change with it.

Two identities let one registry function give both halves of D's loss for a single output p:
- a term with target 1 ("real") is  loss(σ(l), 1)  = spec.g_loss(fake_logits=l)   (G's target is "real");
- a term with target 0 ("fake") is  loss(σ(l), 0)  = spec.g_loss(fake_logits=-l)  because 1 − σ(l) = σ(−l).
This holds for BCE and MSE (the two losses with a probability target); hinge and minimax are not
of that form and are shown through their d_loss / g_loss directly.
"""

import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from gan.core.live import StepTarget
from gan.core.losses import LOSSES, get_loss
from gan.core.step import StepReport

EPS = 1e-6  # keeps p away from 0 and 1, where ln and logit are infinite
TARGET_LOSSES = ("bce", "mse")  # the losses that compare D's probability with a 0/1 target


# --- entropy and cross-entropy (natural log: nats, so a fair coin has ln 2 ≈ 0.693) -----------------
def coin_entropy(p: float) -> float:
    """H(p) = −p ln p − (1−p) ln(1−p), with 0·ln 0 = 0 (a two-headed coin holds no surprise)."""
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p}")
    return 0.0 - sum(q * math.log(q) for q in (p, 1.0 - p) if q > 0.0)  # 0.0 - …: never "-0.000"


def entropy_curve(n: int = 201) -> pd.DataFrame:
    """H(p) for p from 0 to 1: columns p, entropy. Maximum ln 2 at p = 0.5."""
    ps = np.linspace(0.0, 1.0, n)
    return pd.DataFrame({"p": ps, "entropy": [coin_entropy(p) for p in ps]})


def binary_cross_entropy(prediction: float, target: float) -> float:
    """−[y ln x + (1−y) ln(1−x)] for a predicted probability x and a target probability y."""
    x = min(max(float(prediction), EPS), 1.0 - EPS)
    y = float(target)
    if not 0.0 <= y <= 1.0:
        raise ValueError(f"target must be a probability in [0, 1], got {y}")
    # F.binary_cross_entropy is the very formula; computed in float64 so 0.693 prints exactly.
    return float(F.binary_cross_entropy(torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)))


DEFAULT_PAIRS = ((0.9, 1.0), (0.1, 1.0), (0.9, 0.0), (0.5, 1.0), (0.5, 0.0))  # the source text's rows + equilibrium


def cross_entropy_table(pairs=DEFAULT_PAIRS) -> pd.DataFrame:
    """One row per (prediction, target): cross-entropy and squared error, with a reading of the row."""
    rows = []
    for x, y in pairs:
        ce = binary_cross_entropy(x, y)
        wrong = abs(x - y)
        verdict = ("undecided (equilibrium)" if abs(x - 0.5) < 1e-9
                   else "nearly right" if wrong < 0.5 else "confidently wrong")
        rows.append({"prediction": x, "target": y, "cross_entropy": ce, "squared_error": (x - y) ** 2,
                     "reading": verdict})
    return pd.DataFrame(rows)


def optimal_discriminator(p_data: float, p_model: float) -> float:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)): the best D for a fixed G. 0.5 once G matches the data."""
    total = p_data + p_model
    if p_data < 0 or p_model < 0 or total <= 0:
        raise ValueError("densities must be non-negative and not both zero")
    return p_data / total


# --- D's loss as a function of its output, through gan.core.losses -------------------------------------
def _logit(p: torch.Tensor) -> torch.Tensor:
    return torch.log(p) - torch.log1p(-p)


def _prob_to_logit(p: float) -> torch.Tensor:
    return _logit(torch.tensor([min(max(float(p), EPS), 1 - EPS)], dtype=torch.float64))  # (1,)


def loss_term(loss: str, d_output: float, target: int) -> float:
    """The loss of one D output p against target 1 (real) or 0 (fake), via the registry's g_loss."""
    if loss not in TARGET_LOSSES:
        raise ValueError(f"loss_term is defined for {', '.join(TARGET_LOSSES)}, not {loss!r}")
    sign = 1.0 if target == 1 else -1.0
    return float(get_loss(loss).g_loss(fake_logits=sign * _prob_to_logit(d_output)))


def loss_curves(n: int = 199) -> pd.DataFrame:
    """Long table: loss, target, d_output, value, grad_output (dL/dp), grad_logit (dL/dl).

    grad_output is the slope against D's probability (the picture in the source text);
    grad_logit is what really reaches D's weights, because D ends in a logit.
    """
    frames = []
    ps = torch.linspace(0.005, 0.995, n, dtype=torch.float64)
    for loss in TARGET_LOSSES:
        spec = get_loss(loss)
        for target, name in ((1, "real (target 1)"), (0, "fake (target 0)")):
            p = ps.clone().requires_grad_(True)
            logit = _logit(p)
            logit.retain_grad()
            sign = 1.0 if target == 1 else -1.0
            # Per-element losses: the registry takes a mean, so evaluate each point on its own by
            # summing n means of one element (a mean over one item is the item).
            values = torch.stack([spec.g_loss(fake_logits=sign * logit[i:i + 1]) for i in range(n)])
            values.sum().backward()
            frames.append(pd.DataFrame({
                "loss": spec.label, "target": name, "d_output": ps.numpy(),
                "value": values.detach().numpy(), "grad_output": p.grad.numpy(),
                "grad_logit": logit.grad.numpy(),
            }))
    return pd.concat(frames, ignore_index=True)


def off_chart(curves: pd.DataFrame, column: str, low: float, high: float) -> pd.DataFrame:
    """Where each curve of ``curves`` (by loss and target) leaves a chart's y range [low, high].

    The Theory charts clip their y axis (BCE's −ln p reaches 5.3 at p = 0.005, which would squash MSE into
    a sliver); each curve that leaves the range gets a marker at the edge saying how far it goes. Columns:
    loss, target, d_output (the last point still inside, next to where it leaves), edge (low or high),
    extreme (the curve's value furthest out), text ("↑ 5.3"). Empty when every curve fits.
    """
    rows = []
    for (loss, target), g in curves.groupby(["loss", "target"], sort=False):
        v = g[column].to_numpy(np.float64)
        p = g["d_output"].to_numpy(np.float64)
        for edge, out, arrow, pick in ((high, v > high, "↑", np.argmax), (low, v < low, "↓", np.argmin)):
            if not out.any():
                continue
            inside = np.flatnonzero(~out)
            extreme_at = int(pick(v))
            near = inside[np.argmin(np.abs(inside - extreme_at))] if len(inside) else extreme_at
            rows.append({"loss": loss, "target": target, "d_output": float(p[near]), "edge": float(edge),
                         "extreme": float(v[extreme_at]), "text": f"{arrow} {v[extreme_at]:.3g}"})
    return pd.DataFrame(rows, columns=["loss", "target", "d_output", "edge", "extreme", "text"])


def g_push_table(d_fakes=(0.5, 0.1, 0.01, 0.001), losses=("minimax", "bce", "mse")) -> pd.DataFrame:
    """How hard each G loss pushes a fake that D rejects: |∂L_G/∂l| at D(G(z)) = p, per sample.

    The rescue story in numbers: minimax's ln(1 − σ(l)) has slope σ(l) → 0 as D(fake) → 0
    (saturates); BCE's −ln σ(l) has slope 1 − σ(l) → 1 (keeps pushing); MSE's (σ(l) − 1)² has slope
    2(1 − σ(l))σ(l) → 0 (saturates too: the sigmoid's own slope σ(1 − σ) kills it). Columns: loss,
    d_fake, push. Computed through gan.core.losses, so it is the slope the trainer really backpropagates.
    """
    rows = []
    for loss in losses:
        spec = get_loss(loss)
        for p in d_fakes:
            logit = _prob_to_logit(p).requires_grad_(True)
            spec.g_loss(fake_logits=logit).backward()
            rows.append({"loss": loss, "label": spec.label, "d_fake": float(p), "push": abs(float(logit.grad))})
    return pd.DataFrame(rows)


def equilibrium_table() -> pd.DataFrame:
    """Every registry loss evaluated at D = 0.5 (logit 0) with its declared equilibrium beside it."""
    zero = torch.zeros(8, dtype=torch.float64)  # a batch of logits 0: D says 0.5 to everything
    rows = []
    for name, spec in LOSSES.items():
        rows.append({
            "loss": spec.label, "key": name,
            "d_loss_at_half": float(spec.d_loss(real_logits=zero, fake_logits=zero)),
            "g_loss_at_half": float(spec.g_loss(fake_logits=zero)),
            "declared_d": spec.equilibrium_d, "declared_g": spec.equilibrium_g,
        })
    return pd.DataFrame(rows)


def gradient_at_half(loss: str, target: int = 1) -> dict:
    """Value and slopes at p = 0.5: BCE −1/p = −2, MSE 2(p−1) = −1 for a real target."""
    df = loss_curves(n=199)  # an odd linspace from 0.005 to 0.995 has 0.5 as its middle point
    rows = df[(df["loss"] == get_loss(loss).label) & (df["target"].str.startswith("real" if target == 1 else "fake"))]
    row = rows.iloc[int((rows["d_output"] - 0.5).abs().argmin())]
    return {"d_output": float(row["d_output"]), "value": float(row["value"]),
            "grad_output": float(row["grad_output"]), "grad_logit": float(row["grad_logit"])}


# --- the loss catalogue (survey text): NLL, reconstruction, KL, adversarial --------------------------
def nll_example(logits, target: int) -> dict:
    """Negative log-likelihood of one class under softmax(logits): −ln softmax(z)[target].

    Returns the manual value, PyTorch's F.cross_entropy (the same number) and the probabilities.
    """
    z = torch.as_tensor(logits, dtype=torch.float64).reshape(1, -1)  # (1, C)
    if not 0 <= int(target) < z.shape[1]:
        raise ValueError(f"target must be a class index in [0, {z.shape[1] - 1}]")
    probs = F.softmax(z, dim=1)[0]
    manual = -math.log(float(probs[int(target)]))
    torch_value = float(F.cross_entropy(z, torch.tensor([int(target)])))
    return {"probs": probs.numpy(), "nll": manual, "torch_cross_entropy": torch_value}


def reconstruction_example(image: np.ndarray, noise_std: float, seed: int = 0) -> dict:
    """A real image x in [-1, 1] and a 'reconstruction' x̂ = x + noise: MSE = mean((x − x̂)²).

    The MSE of pure Gaussian noise is about noise_std² (before clipping to the pixel range).
    """
    x = torch.as_tensor(np.asarray(image, dtype=np.float32))  # (28, 28) in [-1, 1]
    g = torch.Generator().manual_seed(seed)
    x_hat = (x + noise_std * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    return {"reconstruction": x_hat.numpy(), "mse": float(F.mse_loss(x_hat, x))}


def kl_gaussians(mu_q: float, sigma_q: float, mu_p: float, sigma_p: float) -> float:
    """KL(q ‖ p) for 1-D Gaussians, closed form: ln(σp/σq) + (σq² + (μq − μp)²) / (2σp²) − ½."""
    if sigma_q <= 0 or sigma_p <= 0:
        raise ValueError("standard deviations must be positive")
    return math.log(sigma_p / sigma_q) + (sigma_q ** 2 + (mu_q - mu_p) ** 2) / (2 * sigma_p ** 2) - 0.5


def kl_monte_carlo(mu_q: float, sigma_q: float, mu_p: float, sigma_p: float, n: int = 20_000,
                   seed: int = 0) -> tuple[float, float]:
    """KL(q ‖ p) ≈ mean over x ~ q of ln q(x) − ln p(x). Returns (estimate, its standard error)."""
    q = torch.distributions.Normal(torch.tensor(float(mu_q), dtype=torch.float64), float(sigma_q))
    p = torch.distributions.Normal(torch.tensor(float(mu_p), dtype=torch.float64), float(sigma_p))
    # Own generator, never torch.manual_seed: the page must not reseed a training thread's global RNG.
    g = torch.Generator().manual_seed(seed)
    x = mu_q + sigma_q * torch.randn(n, generator=g, dtype=torch.float64)  # (n,) samples from q
    terms = q.log_prob(x) - p.log_prob(x)
    return float(terms.mean()), float(terms.std() / math.sqrt(n))


def gaussian_densities(mu_q: float, sigma_q: float, mu_p: float, sigma_p: float, n: int = 241) -> pd.DataFrame:
    """Long table x, density, distribution for plotting q and p together."""
    lo = min(mu_q - 4 * sigma_q, mu_p - 4 * sigma_p)
    hi = max(mu_q + 4 * sigma_q, mu_p + 4 * sigma_p)
    xs = np.linspace(lo, hi, n)
    frames = []
    for name, mu, sigma in (("q", mu_q, sigma_q), ("p", mu_p, sigma_p)):
        dens = np.exp(-0.5 * ((xs - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
        frames.append(pd.DataFrame({"x": xs, "density": dens, "distribution": name}))
    return pd.concat(frames, ignore_index=True)


def adversarial_table(d_real: float, d_fake: float) -> pd.DataFrame:
    """Every registry loss for a D that says d_real to real images and d_fake to fakes.

    Also the value function of the original paper, V = ln D(x) + ln(1 − D(G(z))), which D
    maximises: our BCE d_loss is −V / 2 (the MEAN of the two terms, not their sum).
    """
    real, fake = _prob_to_logit(d_real), _prob_to_logit(d_fake)
    rows = []
    for spec in LOSSES.values():
        rows.append({"loss": spec.label, "d_loss": float(spec.d_loss(real_logits=real, fake_logits=fake)),
                     "g_loss": float(spec.g_loss(fake_logits=fake)), "equilibrium_d": spec.equilibrium_d,
                     "equilibrium_g": spec.equilibrium_g})
    return pd.DataFrame(rows)


def value_function(d_real: float, d_fake: float) -> float:
    """V(D, G) = ln D(x) + ln(1 − D(G(z))) for one real and one fake output."""
    d_real = min(max(float(d_real), EPS), 1 - EPS)
    d_fake = min(max(float(d_fake), EPS), 1 - EPS)
    return math.log(d_real) + math.log(1 - d_fake)


# --- stepping: what one manual step changed ---------------------------------------------------------
def step_caption(last_manual_step: StepReport | None) -> str:
    """One line for the Step buttons, from Trainer.last_manual_step.

    'Step 12 (D only): D(real) 0.512 → 0.547 (+0.035) · D(fake) 0.498 → 0.461 (−0.037) ·
    loss D 0.694 → 0.651 (−0.043) · loss G 0.701 → 0.772 (+0.071)'.
    """
    if not last_manual_step:
        return "No manual step yet: pause, then press Step D, Step G or Step both."
    s = last_manual_step
    parts = []
    for key, label in (("d_real", "D(real)"), ("d_fake", "D(fake)"), ("loss_d", "loss D"), ("loss_g", "loss G")):
        old, now = getattr(s.before, key), getattr(s.after, key)
        delta = now - old
        sign = "+" if delta >= 0 else "−"
        parts.append(f"{label} {old:.3f} → {now:.3f} ({sign}{abs(delta):.3f})")
    note = {StepTarget.d: " — only D's weights moved; G is untouched.",
            StepTarget.g: " — only G's weights moved; D is untouched."}.get(s.which, "")
    return f"Step {s.step} ({s.which.label}): " + " · ".join(parts) + note
