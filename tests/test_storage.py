"""Atomic writes and folder sizes (gan/store/storage.py): the order of fsync and rename, what a failed write
leaves behind, and which bytes count towards a run folder's size."""

import os

import pytest
import torch

from gan.store import storage
from gan.store.storage import atomic_write, folder_bytes, torch_save_atomic


def test_atomic_write_writes_bytes_or_a_writer_function_and_makes_the_folder(tmp_path):
    path = tmp_path / "a" / "b" / "f.bin"
    assert atomic_write(path, b"\x00\x01") == path and path.read_bytes() == b"\x00\x01"
    atomic_write(path, lambda f: f.write(b"second"))
    assert path.read_bytes() == b"second"
    assert sorted(os.listdir(path.parent)) == ["f.bin"]  # no temporary file left beside it


def test_the_file_is_synced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.path.isdir(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.path.basename(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(storage.os, "fsync", fsync)
    monkeypatch.setattr(storage.os, "replace", replace)
    atomic_write(tmp_path / "f.bin", b"x")
    assert events == [("fsync", False), ("replace", "f.bin"), ("fsync", True)]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def broken(f):
        f.write(b"half of the new")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError, match="disk gone"):
        atomic_write(path, broken)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.bin"]


@pytest.mark.parametrize("refuse", ["open", "fsync"])
def test_a_folder_that_cannot_be_synced_is_no_error(tmp_path, monkeypatch, refuse):
    """Some filesystems cannot open or fsync a folder: the file itself is synced, so the write stands."""
    real = getattr(os, refuse)

    def fake(target, *args):
        is_dir = os.path.isdir(target) if refuse == "open" else os.path.isdir(f"/proc/self/fd/{target}")
        if is_dir:
            raise OSError(f"{refuse} of a folder is not supported here")
        return real(target, *args)

    monkeypatch.setattr(storage.os, refuse, fake)
    before = len(os.listdir("/proc/self/fd"))
    assert atomic_write(tmp_path / "f.bin", b"kept").read_bytes() == b"kept"
    assert len(os.listdir("/proc/self/fd")) == before  # the folder's descriptor was closed again


def test_torch_save_atomic_round_trips(tmp_path):
    path = torch_save_atomic({"w": torch.arange(3)}, tmp_path / "s.pt")
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.arange(3))


def test_folder_bytes_counts_regular_files_only(tmp_path):
    run = tmp_path / "run"
    (run / "sub").mkdir(parents=True)
    (run / "a.pt").write_bytes(b"x" * 100)
    (run / "sub" / "b.json").write_bytes(b"y" * 23)
    big = tmp_path / "big.bin"
    big.write_bytes(b"z" * 10_000)
    (run / "link.bin").symlink_to(big)  # a link to a big file is not this folder's bytes
    (run / "linked_dir").symlink_to(tmp_path)  # nor is a linked folder followed
    assert folder_bytes(run) == 123
    assert folder_bytes(tmp_path / "no such folder") == 0


def test_the_new_bytes_are_written_beside_the_file_under_a_hidden_temporary_name(tmp_path, monkeypatch):
    """The rename is atomic only within one filesystem, so the temporary file sits in the target's folder;
    it is hidden and ends in .tmp, so a folder listing (the run registry, autosave discovery) never takes a
    half-written file for a checkpoint."""
    renamed = []
    real_replace = os.replace

    def replace(src, dst):
        renamed.append((os.fspath(src), os.fspath(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(storage.os, "replace", replace)
    target = tmp_path / "run" / "checkpoint.pt"
    atomic_write(target, b"x")
    ((src, dst),) = renamed
    src = os.path.basename(src) if os.path.dirname(src) == str(target.parent) else src
    assert dst == str(target)
    assert src.startswith(".checkpoint.pt.") and src.endswith(".tmp") and "/" not in src, src


def test_a_file_that_vanishes_while_a_folder_is_measured_does_not_stop_the_count(tmp_path, monkeypatch):
    for name, size in (("a.pt", 100), ("b.pt", 20), ("c.pt", 3)):
        (tmp_path / name).write_bytes(b"x" * size)
    real_lstat, gone = os.lstat, []

    def lstat(path, *args, **kwargs):
        if not gone:  # the first file the walk meets was deleted in between (an autosave rotating)
            gone.append(os.path.basename(path))
            raise FileNotFoundError(path)
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(storage.os, "lstat", lstat)
    sizes = {"a.pt": 100, "b.pt": 20, "c.pt": 3}
    assert folder_bytes(tmp_path) == 123 - sizes[gone[0]]
