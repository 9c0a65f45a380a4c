"""Sample grids as pictures: uint8 (N, 28, 28) -> one tiled image (PIL / PNG bytes)."""

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


def grid_image(images: np.ndarray, per_row: int = 8, scale: int = 1) -> Image.Image:
    img = Image.fromarray(tile(images, per_row), mode="L")
    if scale > 1:  # nearest keeps pixels crisp on a projector
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return img


def grid_png_bytes(images: np.ndarray, per_row: int = 8, scale: int = 1) -> bytes:
    buf = io.BytesIO()
    grid_image(images, per_row, scale).save(buf, format="PNG")
    return buf.getvalue()
