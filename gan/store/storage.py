"""Files on disk, written so that a crash at any moment leaves either the old file or the new one.
Must not know what it writes (checkpoints, JSON, PNG): only how to write it safely.

The one home of atomic writing for checkpoints, snapshots, autosaves and the classifier cache: write a
temporary file in the same folder, flush and fsync it, rename it over the target, fsync the folder.
A reader never sees half a file, and a power cut after the rename keeps the new one. No streamlit.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


class StorageError(OSError):
    """A write that did not happen (disk full, no permission, size cap): the message says which file."""


def atomic_write(path: str | os.PathLike, data: bytes | Callable[[io.BufferedWriter], None]) -> Path:
    """Write ``data`` (bytes, or a function that writes to a binary file) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # and the rename itself survives a power cut
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def torch_save_atomic(obj, path: str | os.PathLike) -> Path:
    """torch.save through atomic_write."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not possible on this platform/filesystem: the file itself is synced
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def folder_bytes(folder: str | os.PathLike) -> int:
    """Total size of the regular files under a folder (symlinks are not followed)."""
    total = 0
    for root, _dirs, files in os.walk(folder):  # os.walk does not follow links to folders
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if not os.path.islink(os.path.join(root, name)):
                total += st.st_size
    return total
