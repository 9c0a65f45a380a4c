"""Moving pictures of a run: a time-lapse GIF of the fixed-noise grids, latent interpolation, digit labels.
Must not train or hold a run; it takes grids or a G copy and returns pictures.

Pure functions over numpy/torch; the Samples page only calls them and shows the results.

Interpolation: spherical (slerp) by default. z ~ N(0, I) in d dimensions lives near the sphere of
radius √d (for d = 64, |z| ≈ 8 ± 0.7). A straight line between two such points cuts through the
inside: halfway, |z| ≈ √d / √2 ≈ 5.7, a norm G almost never saw in training, so the middle frames
wash out. Slerp walks along the sphere and keeps the norm, so every frame is a typical z.
Linear (lerp) is offered too, to show the difference.
"""

import io

import numpy as np
import torch
from PIL import Image, ImageDraw

from gan.core.data import to_uint8, to_unit_range
from gan.viz.images import tile

MAX_GIF_FRAMES = 200  # the history keeps at most ~120 grids; a cap keeps a GIF small anyway


def grids_to_gif(grids, *, per_row: int = 8, scale: int = 2, frame_ms: int = 250, hold_last_ms: int = 1500,
                 caption: bool = True, loop: int = 0) -> bytes:
    """Animated GIF bytes from a list of SampleGrid (step, loss, images (N, 28, 28) uint8).

    Each frame is the grid tiled ``per_row`` wide and enlarged ``scale`` times (nearest: crisp on a
    projector), with "step 1200 · bce" written above it when ``caption``. The last frame is held
    longer so the final state is visible before the loop restarts.
    """
    grids = list(grids)
    if not grids:
        raise ValueError("no sample grids yet: train for a few steps first")
    if len(grids) > MAX_GIF_FRAMES:  # keep the first, the last and an even spread in between
        idx = np.linspace(0, len(grids) - 1, MAX_GIF_FRAMES).round().astype(int)
        grids = [grids[i] for i in idx]
    if not 1 <= scale <= 8:
        raise ValueError("scale must be in [1, 8]")
    band = 14 if caption else 0  # pixels of caption strip above the grid, before scaling
    frames = []
    for g in grids:
        images = np.asarray(g.images, dtype=np.uint8)  # (N, 28, 28)
        mosaic = tile(images, per_row)  # (H, W)
        canvas = np.full((mosaic.shape[0] + band, mosaic.shape[1]), 0, dtype=np.uint8)
        canvas[band:] = mosaic
        img = Image.fromarray(canvas, mode="L")
        if caption:
            ImageDraw.Draw(img).text((3, 2), f"step {g.step} · {g.loss}", fill=255)
        if scale > 1:
            img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
        frames.append(img.convert("P"))
    durations = [frame_ms] * len(frames)
    durations[-1] = max(frame_ms, hold_last_ms)
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=loop,
                   optimize=False, disposal=1)
    return buf.getvalue()


def gif_frame_count(data: bytes) -> int:
    """Number of frames in GIF bytes (for tests and for a caption under the download button)."""
    with Image.open(io.BytesIO(data)) as img:
        return getattr(img, "n_frames", 1)


# --- latent interpolation -------------------------------------------------------------------------------
def lerp(z0: torch.Tensor, z1: torch.Tensor, t: float) -> torch.Tensor:
    return (1.0 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of two (d,) vectors; falls back to lerp when they are (anti)parallel."""
    a, b = z0 / z0.norm(), z1 / z1.norm()
    cos = torch.clamp((a * b).sum(), -1.0, 1.0)
    omega = torch.arccos(cos)
    so = torch.sin(omega)
    if so.abs() < 1e-6:
        return lerp(z0, z1, t)
    return (torch.sin((1.0 - t) * omega) / so) * z0 + (torch.sin(t * omega) / so) * z1


def latent_pair(latent_dim: int, seed_a: int, seed_b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two reproducible z vectors (d,), one per seed, so a slider can pick endpoints by number."""
    za = torch.randn(latent_dim, generator=torch.Generator().manual_seed(int(seed_a)))
    zb = torch.randn(latent_dim, generator=torch.Generator().manual_seed(int(seed_b)))
    return za, zb


def interpolation_path(z0: torch.Tensor, z1: torch.Tensor, steps: int, method: str = "slerp") -> torch.Tensor:
    """(steps, d) latent vectors from z0 to z1 inclusive."""
    if method not in ("slerp", "lerp"):
        raise ValueError("method must be slerp or lerp")
    if not 2 <= steps <= 64:
        raise ValueError("steps must be in [2, 64]")
    fn = slerp if method == "slerp" else lerp
    return torch.stack([fn(z0, z1, float(t)) for t in torch.linspace(0.0, 1.0, steps)])


@torch.no_grad()
def render(generator, z: torch.Tensor) -> np.ndarray:
    """(n, d) latents -> (n, 28, 28) uint8 through G. Pass trainer.generator_copy() (an eval-mode CPU copy)."""
    images = generator(z.float())  # (n, 1, 28, 28) in [-1, 1]
    return to_uint8(images)


def interpolate(generator, z0: torch.Tensor, z1: torch.Tensor, steps: int = 10, method: str = "slerp") -> np.ndarray:
    """A strip of images (steps, 28, 28) uint8 morphing from G(z0) to G(z1)."""
    return render(generator, interpolation_path(z0, z1, steps, method))


def interpolate_at(generator, z0: torch.Tensor, z1: torch.Tensor, t: float, method: str = "slerp") -> np.ndarray:
    """One image (28, 28) uint8 at position t in [0, 1] between z0 and z1 — for a slider."""
    if not 0.0 <= t <= 1.0:
        raise ValueError("t must be in [0, 1]")
    fn = slerp if method == "slerp" else lerp
    return render(generator, fn(z0, z1, float(t)).unsqueeze(0))[0]


# --- labels from the reference classifier ---------------------------------------------------------------
@torch.no_grad()
def classify_cells(images: np.ndarray, embed) -> list[tuple[int | None, float]]:
    """The reference classifier's guess for each grid cell: [(digit, confidence), ...].

    ``embed`` maps float (N, 1, 28, 28) in [-1, 1] to (features, class probabilities (N, C), is_digit (N,)),
    e.g. gan.quality.classifier's ``reference.model.embed``. A cell that is not a digit gets (None, 0.0).
    """
    x = to_unit_range(images)  # (N, 1, 28, 28) in [-1, 1]
    _, probs, is_digit = embed(x)
    conf, digit = torch.as_tensor(probs).max(dim=1)
    return [(int(d), float(c)) if ok else (None, 0.0) for d, c, ok in zip(digit, conf, is_digit)]


def cell_captions(labels: list[tuple[int | None, float]], min_confidence: float = 0.5) -> list[str]:
    """'7 (93%)' per cell; '?' when the classifier is unsure (below min_confidence); '–' for not a digit."""
    return ["–" if d is None else f"{d} ({c:.0%})" if c >= min_confidence else f"? ({c:.0%})" for d, c in labels]


def classes_caption(step: int, cells: list[str], noun: str = "digits", one: str = "a digit") -> str:
    """What the classifier's cell labels say about a grid, with a verdict only where the counts support one.

    cells: one short label per cell ("7", "?" unsure, "–" none of the classes). 64 real images cover all 10
    classes almost surely (a given class is missing with probability 0.9**64 ~ 0.001), so 8 or more is healthy;
    3 or fewer on many cells is what mode collapse looks like; in between, a class may simply not be learned yet.
    """
    known = [c for c in cells if c not in ("?", "–")]
    classes = len(set(known))
    text = (f"Grid step {step:,}: {classes} different classes among {len(known)} confident cells "
            f"({cells.count('?')} unsure, below 50%; {cells.count('–')} not {one}, '–').")
    if len(known) < 16:
        return text + " Too few confident cells to judge mode collapse."
    if classes <= 3:
        return text + f" Few classes on many cells: this is mode collapse (G draws the same few {noun})."
    if classes >= 8:
        return text + " Most classes appear: no sign of mode collapse."
    return text + " Some classes are missing: a partial collapse, or classes G has not learned yet."
