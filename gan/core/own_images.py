"""Your own images as a dataset: a folder or a .zip of PNG/JPEG files, or an .npz/IDX file, made MNIST-like.
Must not train or touch the UI: a path in, 28x28 uint8 images and a report of what was used and skipped out.

Every image becomes what MNIST's digits are: white strokes on black, the ink cropped, scaled to fit 20x20 and
centred by its centre of mass in 28x28. So digits drawn on paper and photographed work: a light background is
inverted (MNIST is light ink on dark), and the paper around the digit is cropped away.

Hostile or broken input gets one clear error (OwnImagesError) and nothing is half-loaded: too few usable images
(MIN_IMAGES), a zip entry that escapes its folder (../ or an absolute path), a zip that would unpack to more than
MAX_UNPACKED_BYTES or more than MAX_RATIO times its packed size (a zip bomb), more than MAX_FILES files. Corrupt
files and files that are not images are skipped and counted.
"""

import io
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

MIN_IMAGES = 64  # a batch and the 64-image preview; fewer cannot train a GAN to anything
MAX_FILES = 100_000  # more entries than any doodle collection: refuse before reading them
MAX_UNPACKED_BYTES = 512 * 2**20  # a zip may unpack to at most this much
MAX_RATIO = 100  # ... and at most 100x its packed size (real PNG/JPEG barely compress; a bomb does 1000x)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
INK_THRESHOLD = 0.2  # a pixel is ink above 20 % of the image's range, after inversion


class OwnImagesError(ValueError):
    """Your images cannot be used; the message says why and what would work."""


@dataclass
class OwnImages:
    images: np.ndarray  # (N, 28, 28) uint8, white ink on black, as MNIST
    source: str  # the path, for the status line
    skipped_corrupt: list[str] = field(default_factory=list)  # unreadable image files
    skipped_other: list[str] = field(default_factory=list)  # files that are not PNG/JPEG
    inverted: int = 0  # how many had a light background and were inverted

    def summary(self) -> str:
        parts = [f"{len(self.images):,} images from {self.source}"]
        if self.inverted:
            parts.append(f"{self.inverted:,} inverted (light background)")
        if self.skipped_corrupt:
            parts.append(f"{_files(len(self.skipped_corrupt), 'corrupt file')} skipped")
        if self.skipped_other:
            n = len(self.skipped_other)
            parts.append(f"{_files(n, 'file')} that {'is' if n == 1 else 'are'} not PNG/JPEG skipped")
        return "; ".join(parts)


def _files(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def load_own_images(path) -> OwnImages:
    """A folder, .zip, .npz or IDX file -> OwnImages; OwnImagesError for anything unusable.

    A missing path (None, "" or blanks) is an error, never the current folder: Path("") is ".", and a server
    asked for "your images" without a path would otherwise read its own working folder as a dataset.
    """
    if path is None or not str(path).strip():
        raise OwnImagesError("no path given for your images: give a folder, .zip, .npz or IDX file (--data PATH)")
    p = Path(path).expanduser()
    if not p.exists():
        raise OwnImagesError(f"{p}: no such file or folder")
    if p.is_dir():
        out = _from_files(((str(f.relative_to(p)), f.read_bytes) for f in sorted(p.rglob("*"))
                           if f.is_file() and not f.is_symlink()), str(p))
    elif p.suffix.lower() == ".zip":
        out = _from_zip(p)
    elif p.suffix.lower() == ".npz":
        out = OwnImages(_prepare_array(_npz_array(p), str(p)), str(p))
    elif p.suffix.lower() in (".idx", ".ubyte") or p.name.endswith("-ubyte"):
        out = OwnImages(_prepare_array(_idx_array(p), str(p)), str(p))
    elif p.suffix.lower() in IMAGE_SUFFIXES:
        raise OwnImagesError(f"{p} is one image: give a folder or a .zip of at least {MIN_IMAGES} images")
    else:
        raise OwnImagesError(f"{p}: not a folder, .zip, .npz or IDX file")
    if len(out.images) < MIN_IMAGES:
        raise OwnImagesError(f"{out.source}: {len(out.images)} usable images, at least {MIN_IMAGES} are needed"
                             + (f" ({out.summary()})" if out.skipped_corrupt or out.skipped_other else ""))
    return out


def _from_zip(p: Path) -> OwnImages:
    try:
        archive = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as exc:
        raise OwnImagesError(f"{p}: not a readable zip ({exc})") from None
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > MAX_FILES:
            raise OwnImagesError(f"{p}: {len(infos):,} files, more than the {MAX_FILES:,} allowed")
        for info in infos:
            name = PurePosixPath(info.filename.replace("\\", "/"))
            if name.is_absolute() or ".." in name.parts:
                raise OwnImagesError(f"{p}: refused, the entry {info.filename!r} points outside the archive")
        unpacked = sum(i.file_size for i in infos)
        packed = max(1, sum(i.compress_size for i in infos))
        if unpacked > MAX_UNPACKED_BYTES or unpacked > MAX_RATIO * packed:
            raise OwnImagesError(f"{p}: refused, it would unpack to {unpacked / 2**20:,.0f} MB from "
                                 f"{packed / 2**20:,.1f} MB (a zip bomb?); the limits are "
                                 f"{MAX_UNPACKED_BYTES / 2**20:.0f} MB and {MAX_RATIO}x")
        return _from_files(((i.filename, lambda i=i: archive.read(i)) for i in infos), str(p))


def _from_files(files, source: str) -> OwnImages:
    """files: (name, read) pairs; PNG/JPEG are decoded, anything else is counted and skipped."""
    from PIL import Image, UnidentifiedImageError

    out, images = OwnImages(np.zeros((0, 28, 28), np.uint8), source), []
    for count, (name, read) in enumerate(files):
        if count >= MAX_FILES:
            raise OwnImagesError(f"{source}: more than {MAX_FILES:,} files")
        if not name.lower().endswith(IMAGE_SUFFIXES):
            out.skipped_other.append(name)
            continue
        try:
            with Image.open(io.BytesIO(read())) as im:
                gray = np.asarray(im.convert("L"), np.float32) / 255.0  # (H, W) in [0, 1]
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            out.skipped_corrupt.append(name)
            continue
        image, inverted = mnist_like(gray)
        images.append(image)
        out.inverted += inverted
    out.images = np.stack(images) if images else np.zeros((0, 28, 28), np.uint8)
    return out


def mnist_like(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """One grayscale image (H, W) in [0, 1] -> (28, 28) uint8 as MNIST draws digits, and whether it was inverted.

    A light border means dark ink on paper: invert. Then crop to the ink, fit it in 20x20 keeping its aspect,
    and place it so its centre of mass is the centre of the 28x28 image (MNIST's own preprocessing).
    """
    from PIL import Image

    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    inverted = bool(border.mean() > 0.5)
    x = 1.0 - gray if inverted else gray
    lo, hi = float(x.min()), float(x.max())
    x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)  # stretch: faint pencil counts as ink
    x[x < INK_THRESHOLD] = 0.0  # paper texture and shadows are not ink
    rows, cols = np.flatnonzero(x.any(axis=1)), np.flatnonzero(x.any(axis=0))
    if len(rows) == 0:
        return np.zeros((28, 28), np.uint8), inverted
    x = x[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = x.shape
    scale = 20.0 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray((x * 255).astype(np.uint8)).resize(size, Image.LANCZOS), np.float32)
    canvas = np.zeros((28, 28), np.float32)
    top, left = (28 - small.shape[0]) // 2, (28 - small.shape[1]) // 2
    canvas[top:top + small.shape[0], left:left + small.shape[1]] = small
    mass = canvas.sum()
    if mass > 0:  # shift the centre of mass to (13.5, 13.5), as MNIST does
        ys, xs = np.indices(canvas.shape)
        dy, dx = round(13.5 - (ys * canvas).sum() / mass), round(13.5 - (xs * canvas).sum() / mass)
        canvas = np.roll(canvas, (dy, dx), axis=(0, 1))
    return np.clip(canvas, 0, 255).astype(np.uint8), inverted


def _prepare_array(a: np.ndarray, source: str) -> np.ndarray:
    """An array of images (N, 28, 28) or (N, 784) as uint8 or floats in [0, 1]/[0, 255]; others go through
    mnist_like one by one (any size, light or dark background)."""
    a = np.asarray(a)
    if a.ndim == 2 and a.shape[1] == 784:
        a = a.reshape(-1, 28, 28)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 3 or not np.issubdtype(a.dtype, np.number):
        raise OwnImagesError(f"{source}: expected images of shape (N, H, W) or (N, 784), got {a.shape} {a.dtype}")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise OwnImagesError(f"{source}: the array holds NaN or infinite values")
    a = a / 255.0 if a.max() > 1.0 else a
    if a.min() < 0:
        a = (a + 1.0) / 2.0  # [-1, 1], as GAN code saves them
    if a.shape[1:] == (28, 28) and np.median(np.concatenate([a[:, 0], a[:, -1]])) < 0.5:
        return (np.clip(a, 0, 1) * 255).round().astype(np.uint8)  # already MNIST-like: keep as is
    return np.stack([mnist_like(np.clip(im, 0, 1))[0] for im in a]) if len(a) else np.zeros((0, 28, 28), np.uint8)


def _npz_array(p: Path) -> np.ndarray:
    try:
        with np.load(p, allow_pickle=False) as z:
            names = list(z.files)
            key = next((k for k in ("images", "x_train") if k in names), names[0] if names else None)
            if key is None:
                raise OwnImagesError(f"{p}: the .npz holds no arrays")
            return z[key]
    except OwnImagesError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise OwnImagesError(f"{p}: not a readable .npz ({exc})") from None


def _idx_array(p: Path) -> np.ndarray:
    """An IDX image file (MNIST's format: magic 0x00000803, then N, rows, cols as big-endian uint32)."""
    data = p.read_bytes()
    if len(data) < 16 or struct.unpack(">I", data[:4])[0] != 0x803:
        raise OwnImagesError(f"{p}: not an IDX image file (MNIST's *-images-idx3-ubyte format)")
    n, rows, cols = struct.unpack(">III", data[4:16])
    if rows * cols == 0 or len(data) != 16 + n * rows * cols:
        raise OwnImagesError(f"{p}: truncated or inconsistent IDX file ({n} images of {rows}x{cols}, "
                             f"{len(data) - 16:,} bytes of pixels)")
    return np.frombuffer(data, np.uint8, offset=16).reshape(n, rows, cols)
