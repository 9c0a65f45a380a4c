"""Sample grids as pictures: uint8 (N, 28, 28) -> one tiled mosaic (array, PIL image or PNG bytes).
Must not know about runs or charts; uint8 arrays in, pictures out.

The one home for turning a grid into a picture; G's output becomes uint8 in gan.core.data.to_uint8.
"""

import io

import numpy as np
from PIL import Image


def tile(images: np.ndarray, per_row: int = 8, pad: int = 2, background: int = 40) -> np.ndarray:
    """(N, 28, 28) uint8 -> (H, W) uint8 grid, `per_row` images a row, `pad` pixels between them."""
    n, h, w = images.shape
    rows = max(1, -(-n // per_row))
    cols = min(per_row, max(n, 1))
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), background, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, per_row)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y:y + h, x:x + w] = images[i]
    return out


def grid_image(images: np.ndarray, per_row: int = 8, padding: int = 2, scale: int = 1) -> np.ndarray:
    """(N, 28, 28) or (N, 1, 28, 28) uint8 -> one (H, W) uint8 mosaic, scaled by nearest neighbour.

    Nearest-neighbour upscaling keeps pixels crisp on a projector (a browser would blur them).
    """
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]  # (N, 1, H, W) -> (N, H, W)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images (N, H, W), got {images.dtype} {images.shape}")
    out = tile(images, per_row=per_row, pad=padding)
    if scale > 1:
        out = np.repeat(np.repeat(out, scale, axis=0), scale, axis=1)
    return out


def grid_pil(images: np.ndarray, per_row: int = 8, padding: int = 2, scale: int = 3) -> Image.Image:
    return Image.fromarray(grid_image(images, per_row, padding, scale), mode="L")


def grid_png(images: np.ndarray, per_row: int = 8, padding: int = 2, scale: int = 3) -> bytes:
    buf = io.BytesIO()
    grid_pil(images, per_row, padding, scale).save(buf, format="PNG")
    return buf.getvalue()
