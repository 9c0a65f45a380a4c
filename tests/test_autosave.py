"""No run lost: autosaves, continue after a crash (bit for bit), storage faults, hostile run folders."""

import errno
import json
import os
import pickle
import shlex

import numpy as np
import pytest

from gan.core.config import Config
from gan.engine.status import RunState
from gan.engine.trainer import Trainer
from gan.store import autosave
from gan.store.autosave import Autosaver, SavedRun, find_interrupted, latest_valid
from gan.store.checkpoint import trainer_from_checkpoint
from gan.store.storage import atomic_write
from gan.workshop.runs import RunRegistry

SMALL = Config(model="mlp", width=64, batch_size=16, sample_every=20)


def losses(trainer, first: int, last: int) -> np.ndarray:
    s = trainer.history.snapshot(with_grids=False).scalars
    rows = s[(s.step >= first) & (s.step <= last)]
    return rows[["step", "loss_d", "loss_g", "d_real", "d_fake"]].to_numpy()


def test_continuing_from_an_autosave_is_bit_for_bit_the_uninterrupted_run(tmp_path):
    saver = Autosaver(tmp_path / "a", name="a", every_s=3600)
    a = Trainer(SMALL, name="a", autosave=saver)
    a.start(stop_at_step=60)  # pauses itself at 60, and a pause autosaves
    assert a.wait_until(lambda t: t.state == RunState.PAUSED and saver.saves == 1, timeout=60)
    path, state, skipped = latest_valid(tmp_path / "a")
    assert path.name == "autosave-000000060.pt" and state["step"] == 60 and not skipped
    a.step(50)  # the uninterrupted run goes on
    assert a.wait_until(lambda t: t.step_count == 110, timeout=60)
    b = trainer_from_checkpoint(state, name="b")
    b.start(paused=True)
    assert b.wait_until(lambda t: t.state == RunState.PAUSED, timeout=60)
    b.step(50)
    assert b.wait_until(lambda t: t.step_count == 110, timeout=60)
    expected, got = losses(a, 61, 110), losses(b, 61, 110)
    assert expected.shape == (50, 5)
    assert np.array_equal(expected, got)  # same losses and D outputs, exactly, for the next 50 steps
    assert losses(b, 1, 60).shape == (60, 5)  # and the history before the autosave came back
    a.stop(), b.stop()


def test_autosaves_every_interval_keep_the_last_two_and_a_stop_is_clean(tmp_path):
    saver = Autosaver(tmp_path / "run", name="run", every_s=0.05)
    t = Trainer(SMALL, name="run", autosave=saver)
    t.start()
    assert t.wait_until(lambda t: saver.saves >= 4, timeout=60), saver.last_error
    files = sorted(p.name for p in (tmp_path / "run").glob("autosave-*.pt"))
    assert len(files) == 2  # bounded: the newest and the one before
    assert json.loads((tmp_path / "run" / "run.json").read_text())["clean_stop"] is False
    assert find_interrupted(tmp_path)[0][0].name == "run"  # killed now, it would be offered
    t.stop(timeout=10)
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["clean_stop"] is True and meta["step"] == t.step_count
    assert find_interrupted(tmp_path)[0] == []


def test_a_loss_switch_autosaves(tmp_path):
    saver = Autosaver(tmp_path / "run", name="run", every_s=3600)
    t = Trainer(SMALL, name="run", autosave=saver)
    t.start()
    assert t.wait_until(lambda t: t.step_count >= 5, timeout=60)
    before = saver.saves
    t.set_loss("mse")
    assert t.wait_until(lambda t: saver.saves > before, timeout=30)
    _, state, _ = latest_valid(tmp_path / "run")
    assert state["loss"] == "mse"
    t.stop()


def test_a_full_disk_is_a_warning_training_goes_on_and_the_next_autosave_retries(tmp_path, monkeypatch):
    saver = Autosaver(tmp_path / "run", name="run", every_s=0.05)
    real = autosave.torch_save_atomic

    def disk_full(obj, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(autosave, "torch_save_atomic", disk_full)
    t = Trainer(SMALL, name="run", autosave=saver)
    t.start()
    assert t.wait_until(lambda t: saver.failures >= 2 and t.status().warnings, timeout=60), t.status()
    warning = " ".join(t.status().warnings)
    assert "No space left on device" in warning and "training goes on" in warning
    step = t.step_count
    assert t.wait_until(lambda t: t.step_count > step + 5, timeout=30)  # training did not stop
    monkeypatch.setattr(autosave, "torch_save_atomic", real)
    assert t.wait_until(lambda t: not t.status().warnings, timeout=30)  # the retry worked
    assert list((tmp_path / "run").glob("autosave-*.pt"))
    t.stop()


def test_the_runs_folder_cap_refuses_with_a_clear_message(tmp_path):
    class Watched(Autosaver):
        """Records the run's warning (last_error) at the moment each count changes."""

        def __setattr__(self, name, value):
            if name in ("failures", "saves") and value:
                seen.append((name, self.last_error))
            super().__setattr__(name, value)

    seen = []
    saver = Watched(tmp_path / "live" / "run", name="run", every_s=3600, cap_bytes=1, root=tmp_path)
    (tmp_path / "big.bin").write_bytes(b"x" * 1000)
    t = Trainer(SMALL, name="run", autosave=saver)
    t.start(stop_at_step=5)  # the pause at 5 autosaves, and is refused
    try:
        assert t.wait_until(lambda t: any("over its cap" in w for w in t.status().warnings), timeout=60), t.status()
        assert any("over its cap" in w and "GAN_LIVE_RUNS_MAX_MB" in w for w in t.status().warnings)
        # The message is set before the count moves: whoever waits for the count also finds the warning.
        assert seen and seen[0][0] == "failures" and "over its cap" in seen[0][1]
    finally:
        t.stop()


def test_a_failed_autosave_tries_again_after_its_interval_not_at_every_step(tmp_path):
    tries = []  # (the run's active seconds, its step) at each failed try, taken as the try is counted

    class Watched(Autosaver):
        def __setattr__(self, name, value):
            if name == "failures" and value:
                tries.append((self.last_saved_at, t.step_count))
            super().__setattr__(name, value)

    saver = Watched(tmp_path / "live" / "run", name="run", every_s=0.5, cap_bytes=1, root=tmp_path)
    (tmp_path / "big.bin").write_bytes(b"x" * 1000)  # over the cap: every try fails
    t = Trainer(SMALL, name="run", autosave=saver)
    t.start()
    try:
        assert t.wait_until(lambda t: len(tries) >= 3, timeout=60), t.status()  # it does try again, as promised
        for (at, step), (next_at, next_step) in zip(tries, tries[1:]):
            # Measured in the run's own training seconds, so a busy machine cannot make it pass or fail.
            assert next_at - at >= saver.every_s, tries  # not before its interval
            assert next_step > step + 1, tries  # not at every step
    finally:
        t.stop()


def test_a_truncated_autosave_is_named_and_the_previous_one_is_used(tmp_path):
    saver = Autosaver(tmp_path / "run", name="run", every_s=3600)
    t = Trainer(SMALL, name="run", autosave=saver)
    t.start(stop_at_step=10)
    assert t.wait_until(lambda t: t.state == RunState.PAUSED and saver.saves == 1, timeout=60)
    t.step(5)
    assert t.wait_until(lambda t: t.step_count == 15, timeout=30)
    t.pause()  # already paused: write one more autosave by hand
    assert t.write_autosave()
    t.stop(clean=False)  # the server went down: still to be continued
    newest = sorted((tmp_path / "run").glob("autosave-*.pt"))[-1]
    assert newest.name == "autosave-000000015.pt"
    newest.write_bytes(newest.read_bytes()[:5000])  # a crash mid-write on a filesystem without rename
    found, notes = find_interrupted(tmp_path)
    assert [r.step for r in found] == [10]
    assert any("autosave-000000015.pt" in n for n in notes)


def test_hostile_run_folders_are_refused_by_name_and_nothing_outside_is_read(tmp_path):
    root = tmp_path / "live"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "run.json").write_text(json.dumps({"format": "gan-live-run/1", "clean_stop": False}))
    root.mkdir()
    os.symlink(outside, root / "linked-run")  # a symlink pointing outside the runs folder
    (root / "garbage-run").mkdir()
    (root / "garbage-run" / "run.json").write_bytes(os.urandom(64))
    crafted = root / "crafted-run"
    crafted.mkdir()
    (crafted / "run.json").write_text(json.dumps({"format": "gan-live-run/1", "clean_stop": False, "name": "x"}))

    marker = tmp_path / "pwned"  # this test's own: another suite on the machine never sees or makes it

    class Boom:
        def __reduce__(self):
            return (os.system, (f"echo pwned > {shlex.quote(str(marker))}",))

    (crafted / "autosave-000000001.pt").write_bytes(pickle.dumps(Boom()))
    found, notes = find_interrupted(root)
    assert found == []
    text = "\n".join(notes)
    assert "linked-run" in text and "garbage-run" in text and "autosave-000000001.pt" in text
    assert not marker.exists()


def test_a_crash_between_write_and_rename_leaves_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    atomic_write(target, b"old contents")

    def crash(src, dst):
        raise OSError(errno.EIO, "power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        atomic_write(target, b"new contents that never land")
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temporary file left behind


def test_an_interrupted_run_shows_at_once_and_continues_where_it_was(tmp_path):
    first = RunRegistry(mode="thread", metrics_every=0, runs_root=tmp_path)
    t = first.start(SMALL)
    assert t.wait_until(lambda t: t.step_count >= 30, timeout=60)
    t.pause()  # an autosave at this step
    saved_step = t.step_count
    t.stop(clean=False)  # as if the server died here
    second = RunRegistry(mode="thread", metrics_every=0, runs_root=tmp_path)  # the app starts again
    shown = second.current()
    assert isinstance(shown, SavedRun) and shown.step_count == saved_step
    assert shown.history.total_steps == saved_step and shown.status().interrupted
    offer = second.continue_offer()
    assert offer.step == saved_step and offer.name == t.name
    resumed = second.continue_run()
    assert resumed.wait_until(lambda r: r.step_count >= saved_step + 10, timeout=60)
    steps = resumed.history.snapshot(with_grids=False).scalars.step.tolist()
    assert steps[:saved_step] == list(range(1, saved_step + 1))  # the history before the crash is there
    second.reset()
    assert RunRegistry(mode="thread", metrics_every=0, runs_root=tmp_path).current() is None  # Reset: not offered


def test_starting_another_run_instead_of_continuing_dismisses_the_interrupted_one(tmp_path):
    first = RunRegistry(mode="thread", metrics_every=0, runs_root=tmp_path)
    t = first.start(SMALL)
    assert t.wait_until(lambda t: t.step_count >= 5, timeout=60)
    t.pause()
    t.stop(clean=False)
    second = RunRegistry(mode="thread", metrics_every=0, runs_root=tmp_path)
    assert isinstance(second.current(), SavedRun)
    fresh = second.start(SMALL)
    assert second.current() is fresh and second.continue_offer() is None
    assert fresh.wait_until(lambda t: t.step_count >= 3, timeout=60)
    fresh.stop(clean=False)  # this one is interrupted too: it, not the dismissed one, is offered next time
    third = RunRegistry(mode="thread", metrics_every=0, runs_root=tmp_path)
    assert third.current().run_dir == fresh.run_dir


def test_an_exception_in_training_fails_the_run_and_offers_continue(tmp_path, monkeypatch):
    import gan.engine.trainer

    real, calls = gan.engine.trainer.gan_step, {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 40:
            raise RuntimeError("injected fault in the training step")
        return real(*args, **kwargs)

    monkeypatch.setattr(gan.engine.trainer, "gan_step", flaky)
    monkeypatch.setenv("GAN_LIVE_AUTOSAVE_S", "0.05")
    reg = RunRegistry(mode="thread", metrics_every=0, runs_root=tmp_path)
    t = reg.start(SMALL)
    assert t.wait_until(lambda t: t.state == RunState.FAILED, timeout=60)
    assert "injected fault" in t.status().reason
    offer = reg.continue_offer()
    assert offer is not None and 0 < offer.step < 40
    monkeypatch.setattr(gan.engine.trainer, "gan_step", real)
    again = reg.continue_run()
    # the continuation takes the failed run's place: its name, its folder, autosaves under its name
    assert again.name == t.name and reg.names() == [t.name] and reg.current() is again
    assert again.autosave.name == t.name and again.autosave.run_dir == offer.run_dir
    assert again.wait_until(lambda r: r.step_count >= offer.step + 5, timeout=60)
    reg.close()


def _interrupted_run(root, steps: int = 12):
    """A run killed mid-training in one registry (as if the server died), and the registry of the next start."""
    first = RunRegistry(mode="thread", metrics_every=0, runs_root=root)
    t = first.start(SMALL)
    assert t.wait_until(lambda t: t.step_count >= steps, timeout=60)
    t.pause()  # an autosave at this step
    t.stop(clean=False)
    return t, RunRegistry(mode="thread", metrics_every=0, runs_root=root)


def test_a_saved_run_reads_like_a_stopped_run_that_has_nothing_to_train(tmp_path):
    t, second = _interrupted_run(tmp_path)
    shown = second.current()
    assert isinstance(shown, SavedRun)
    assert (shown.name, shown.step_count, shown.loss) == (t.name, t.step_count, "bce")
    assert shown.config.to_dict() == dict(t.config.to_dict(), device="auto")
    status = shown.status()
    assert status.state == RunState.STOPPED and status.interrupted and status.step == t.step_count
    assert f"stopped at step {t.step_count:,}" in status.reason
    assert (status.lr_g, status.lr_d, status.d_steps) == (t.config.lr_g, t.config.lr_d, t.config.d_steps)
    assert not shown.is_alive() and not shown.has_models()  # no sampling, no download of weights
    assert shown.stop() is True and second.live_runs() == []  # Start is allowed: nothing is live
    assert shown.wait_until(lambda r: r.step_count == t.step_count) is True
    assert shown.wait_until(lambda r: r.step_count > t.step_count) is False  # it never moves
    assert second.names() == [] and second.get(t.name) is None  # shown, but not a run until continued


def test_reset_marks_every_folder_stopped_and_leaves_no_run(tmp_path):
    t, second = _interrupted_run(tmp_path)
    assert json.loads((t.run_dir / "run.json").read_text())["clean_stop"] is False
    second.reset()
    assert second.current() is None and second.names() == [] and second.live_runs() == []
    assert json.loads((t.run_dir / "run.json").read_text())["clean_stop"] is True
    assert list(t.run_dir.glob("autosave-*.pt"))  # the files stay on disk; only the offer goes
    assert find_interrupted(t.run_dir.parent)[0] == []


def test_a_continued_run_keeps_autosaving_into_its_own_folder(tmp_path):
    t, second = _interrupted_run(tmp_path)
    resumed = second.continue_run()
    assert resumed.name == t.name and second.get(t.name) is resumed and second.current() is resumed
    assert resumed.wait_until(lambda r: r.step_count >= t.step_count + 5, timeout=60)
    resumed.pause()  # autosaves now, into the folder it came from
    newest, state, _ = latest_valid(t.run_dir)
    assert state["step"] == resumed.step_count > t.step_count
    assert [p.name for p in t.run_dir.parent.iterdir()] == [t.run_dir.name]  # no second folder
    resumed.stop(clean=False)
    third = RunRegistry(mode="thread", metrics_every=0, runs_root=tmp_path)
    assert third.continue_offer().step == resumed.step_count  # the next crash offers the newer step


def test_a_link_among_the_autosaves_is_refused_by_name_and_the_real_file_before_it_is_used(tmp_path):
    t, _ = _interrupted_run(tmp_path, steps=5)
    real = max(t.run_dir.glob("autosave-*.pt"))
    link = t.run_dir / "autosave-999999999.pt"  # sorts after every real one
    link.symlink_to(real)  # even a link to a good file inside the folder: links are never followed
    path, state, skipped = latest_valid(t.run_dir)
    assert path == real and state["step"] == t.step_count
    assert skipped == [f"{link}: refused, a link or a file outside the runs folder"]
    for p in t.run_dir.glob("autosave-*.pt"):
        if p != link:
            p.unlink()
    with pytest.raises(autosave.StorageError) as err:
        latest_valid(t.run_dir)
    refused = f"{link}: refused, a link or a file outside the runs folder"
    assert str(err.value) == f"{t.run_dir}: no readable autosave ({refused})"


def test_a_saved_runs_status_line_is_the_runs_own(tmp_path):
    """The status a room reads for an interrupted run: its name, model, dataset, the training time it had
    (0 for an autosave from before that was saved), the CPU, each damaged autosave it passed over; and a
    run saved on a GPU machine shows on this CPU-only one."""
    import dataclasses

    t, second = _interrupted_run(tmp_path)
    shown = second.current()
    live = t.status()
    status = shown.status()
    state = shown.resume_state
    assert (status.name, status.model, status.dataset, status.device) == (t.name, live.model, live.dataset, "cpu")
    assert (shown.dataset_name, shown.model_kind) == (live.dataset, live.model)
    assert status.elapsed == state["active_seconds"] > 0 and status.warnings == ()
    assert shown.last_manual_step is None and shown.last_stats is None and shown.autosave is None

    older = {k: v for k, v in state.items() if k != "active_seconds"}
    from_gpu = dict(older, config=dict(state["config"], device="cuda"))
    found = dataclasses.replace(shown.found, state=from_gpu, skipped=("autosave-000000020.pt: truncated",))
    other = SavedRun(found).status()
    assert other.elapsed == 0.0 and other.device == "cpu" and other.model == live.model
    assert other.warnings == ("skipped a damaged autosave: autosave-000000020.pt: truncated",)


def test_no_readable_autosave_says_which_files_failed_and_why(tmp_path):
    from gan.store.storage import StorageError

    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(StorageError) as err:
        latest_valid(run)
    assert str(err.value) == f"{run}: no readable autosave"
    for step in (10, 20):
        (run / f"autosave-{step:09d}.pt").write_bytes(b"garbage")
    with pytest.raises(StorageError) as err:
        latest_valid(run)
    first, second = (f"{run}/autosave-{s:09d}.pt: not a readable checkpoint" for s in (20, 10))
    text = str(err.value)
    assert text.startswith(f"{run}: no readable autosave ({first}") and f"; {second}" in text and text.endswith(")")


def test_a_path_that_cannot_be_resolved_counts_as_outside_the_runs_folder(tmp_path, monkeypatch):
    inside = tmp_path / "run" / "autosave-000000010.pt"
    assert autosave._inside(inside, tmp_path)

    def unresolvable(self, *args, **kwargs):
        raise OSError("too many levels of symbolic links")

    monkeypatch.setattr(type(inside), "resolve", unresolvable)
    assert autosave._inside(inside, tmp_path) is False


def test_the_quality_rows_beside_the_autosaves_read_back_as_written(tmp_path):
    """A continued run's quality chart starts from the rows scored before the crash (written by the server)."""
    rows = [(100, 12.5, 3.2, 0.7), (200, 9.75, 4.1, 0.8)]
    autosave.write_quality(tmp_path, rows)
    assert json.loads((tmp_path / autosave.QUALITY_FILE).read_text()) == {"rows": [list(r) for r in rows]}
    assert autosave.read_quality(tmp_path) == rows
    assert autosave.read_quality(tmp_path / "no such run") == []
    (tmp_path / autosave.QUALITY_FILE).write_text("{not json")
    assert autosave.read_quality(tmp_path) == []  # damaged: the chart starts empty, nothing fails


def test_the_autosaver_counts_the_runs_own_seconds_keeps_one_file_at_least_and_says_what_the_cap_refused(tmp_path):
    """What a presenter meets: the next autosave comes every_s of *training* after the last one, a failed one too;
    keep=0 still keeps the newest file; the run's meta says when it was saved; a folder exactly at the cap still
    takes a save, one over it is refused with both sizes in MB, and the next good save clears the warning."""
    import time

    from gan.store.storage import StorageError, folder_bytes

    root = tmp_path / "runs"
    run_dir = root / "r"
    saver = Autosaver(run_dir, name="demo", every_s=30.0, keep=0, cap_bytes=3 * 2**20, root=root)
    assert saver.last_error == "" and not saver.due(29.9) and saver.due(30.0)
    saver.save({"step": 1, "active_seconds": 12.5})
    assert not saver.due(42.4) and saver.due(42.5)
    meta = json.loads((run_dir / autosave.RUN_FILE).read_text())
    assert meta["step"] == 1 and abs(meta["saved_at"] - time.time()) < 60
    saver.save({"step": 2})  # a state without its seconds counts from 0
    assert saver.due(30.0) and not saver.due(29.9)
    assert sorted(p.name for p in run_dir.glob("autosave-*.pt")) == ["autosave-000000002.pt"]
    filler = root / "filler.bin"
    filler.write_bytes(b"\0" * (3 * 2**20 - folder_bytes(root)))  # the folder now holds exactly the cap
    saver.save({"step": 3, "active_seconds": 40.0})  # at the cap, not over it
    with filler.open("ab") as f:
        f.write(b"\0" * (3 * 2**20 + 1 - folder_bytes(root)))  # one byte over
    with pytest.raises(StorageError):
        saver.save({"step": 4})  # a failed save without its seconds counts from 0 as well
    assert saver.due(30.0) and not saver.due(29.9)
    with pytest.raises(StorageError):
        saver.save({"step": 4, "active_seconds": 60.0})
    assert saver.last_error == (
        f"autosave of demo at step 4 failed (the runs folder {root} holds 3 MB, over its cap of 3 MB "
        "(GAN_LIVE_RUNS_MAX_MB): delete old runs there, or raise the cap); training goes on and the next autosave "
        "tries again in 30 s")
    assert not saver.due(89.9) and saver.due(90.0)  # the next try is every_s later, not at the next step
    filler.unlink()
    saver.save({"step": 5, "active_seconds": 90.0})
    assert saver.last_error == ""


def test_two_runs_started_in_the_same_second_get_numbered_folders(tmp_path, monkeypatch):
    import time

    strftime, moment = time.strftime, time.localtime(1_780_000_000)
    monkeypatch.setattr(autosave.time, "strftime", lambda fmt, *_: strftime(fmt, moment))
    stem = strftime("%Y%m%d-%H%M%S", moment) + "-demo"
    made = [autosave.new_run_dir(tmp_path, "demo").name for _ in range(3)]
    assert made == [stem, f"{stem}-2", f"{stem}-3"]
    assert stem == "20260528-" + stem[9:15] + "-demo" and stem[9:15].isdigit()


def test_refused_folders_before_good_runs_are_named_and_the_newest_interrupted_run_is_still_offered(tmp_path):
    """Folders sort by name, so a foreign run file, a half-valid one and a link (even to a real run inside the
    folder) can come before the real runs: each is named with why, and the search goes on past them; by
    default only the newest interrupted run is offered (each is loaded in full)."""
    import shutil
    import time

    run, _ = _interrupted_run(tmp_path / "runs")
    root = run.run_dir.parent  # the folder the app searches
    older = run.run_dir
    newer = shutil.copytree(older, root / "29991231-000000-copy")  # a second interrupted run, saved later
    for saved in newer.glob("autosave-*.pt"):
        os.utime(saved, (time.time() + 60, time.time() + 60))
    for name, meta in (("0a-foreign", {"format": "other/1", "clean_stop": False}),
                       ("0b-half", {"format": "gan-live-run/1", "clean_stop": "no"})):
        (root / name).mkdir()
        (root / name / "run.json").write_text(json.dumps(meta))
    os.symlink(newer, root / "0c-link")  # a link to a real run, inside the folder
    (root / "0-notes.txt").write_text("a presenter's notes: not a run, passed over in silence")
    found, notes = find_interrupted(root)
    assert [r.run_dir for r in found] == [newer]
    assert notes == [f"{root / '0a-foreign' / 'run.json'}: skipped (not a GAN Live run file)",
                     f"{root / '0b-half' / 'run.json'}: skipped (not a GAN Live run file)",
                     f"{root / '0c-link'}: refused, a link out of the runs folder"]
    assert [r.run_dir for r in find_interrupted(root, limit=2)[0]] == [newer, older]


# The two settings the Autosaver reads from the environment (tests/test_worker.py checks them through the app's
# registry too, but mutmut does not run that file): unset or blank is the default, a value is read as given, and
# a bad one is refused, naming the setting and the value. setting -> (Autosaver attribute, reader, unit, rule).
SETTINGS = {"GAN_LIVE_AUTOSAVE_S": ("every_s", autosave.every_s_from_env, 1.0, "a number of seconds > 0"),
            "GAN_LIVE_RUNS_MAX_MB": ("cap_bytes", autosave.cap_bytes_from_env, 2**20, "a whole number >= 1")}


@pytest.mark.parametrize("var, raw, value", [
    *(("GAN_LIVE_AUTOSAVE_S", raw, v) for raw, v in ((None, 30.0), ("", 30.0), ("  ", 30.0), ("0.5", 0.5),
                                                     (" 45 ", 45.0))),
    *(("GAN_LIVE_RUNS_MAX_MB", raw, v) for raw, v in ((None, 2048), ("", 2048), (" 64 ", 64), ("1", 1)))])
def test_the_autosavers_settings_come_from_the_environment_or_their_defaults(monkeypatch, tmp_path, var, raw, value):
    attribute, read, unit, _ = SETTINGS[var]
    if raw is None:
        monkeypatch.delenv(var, raising=False)
    else:
        monkeypatch.setenv(var, raw)
    assert read() == value * unit
    assert getattr(Autosaver(tmp_path, name="run"), attribute) == value * unit


@pytest.mark.parametrize("var, raw", [*(("GAN_LIVE_AUTOSAVE_S", raw) for raw in ("soon", "0", "-3", "nan")),
                                      *(("GAN_LIVE_RUNS_MAX_MB", raw) for raw in ("lots", "0", "-1", "1.5"))])
def test_a_bad_autosaver_setting_names_the_setting_and_the_value(monkeypatch, var, raw):
    _, read, _, rule = SETTINGS[var]
    monkeypatch.setenv(var, raw)
    with pytest.raises(ValueError) as err:
        read()
    assert str(err.value) == f"{var} must be {rule}, got {raw!r}"


def test_a_run_that_crashed_before_its_first_autosave_is_not_offered_and_hides_nothing(tmp_path):
    """A crash in the first 30 s leaves a run folder marked unclean with no autosave in it: nothing to continue.
    It must neither break the search (at the app's start) nor push the real interrupted run out of the offer."""
    run, _ = _interrupted_run(tmp_path / "runs")
    root = run.run_dir.parent
    for name in ("29991231-000000-early", "29991231-000001-early"):  # newer folders, sorted after the real run
        (root / name).mkdir()
        (root / name / "run.json").write_text(json.dumps({"format": "gan-live-run/1", "clean_stop": False}))
    found, notes = find_interrupted(root)
    assert [r.run_dir for r in found] == [run.run_dir]
    found, notes = find_interrupted(root, limit=3)
    assert [r.run_dir for r in found] == [run.run_dir]
    assert notes == [f"{root / '29991231-000000-early'}: no readable autosave",
                     f"{root / '29991231-000001-early'}: no readable autosave"]


def test_the_offer_goes_by_the_newest_readable_autosave_not_by_folder_name(tmp_path):
    """Two interrupted runs: the one saved last is offered first even when its folder sorts first; a run
    whose newer autosave is damaged is offered from the one before, naming the damaged file; a run whose
    only autosaves are damaged is passed over with a note, and the search goes on."""
    import shutil
    import time

    run, _ = _interrupted_run(tmp_path / "runs")
    root = run.run_dir.parent
    later = shutil.copytree(run.run_dir, root / "00000000-000000-later")  # sorts first, saved last
    (good,) = later.glob("autosave-*.pt")
    damaged = later / "autosave-999999999.pt"
    damaged.write_bytes(b"not a checkpoint")
    for path, ahead in ((good, 60), (damaged, 120)):
        os.utime(path, (time.time() + ahead, time.time() + ahead))
    broken = shutil.copytree(run.run_dir, root / "00000000-000001-broken")  # newest of all, nothing readable
    for path in broken.glob("autosave-*.pt"):
        path.write_bytes(b"garbage")
        os.utime(path, (time.time() + 300, time.time() + 300))
    found, notes = find_interrupted(root, limit=3)
    assert [r.run_dir for r in found] == [later, run.run_dir]
    assert found[0].file == good and found[0].saved_at == good.stat().st_mtime
    assert len(found[0].skipped) == 1 and found[0].skipped[0].startswith(f"{damaged}: ")
    assert found[1].skipped == () and found[1].file.parent == run.run_dir
    (broken_file,) = broken.glob("autosave-*.pt")
    assert notes == [f"{broken}: no readable autosave ({broken_file}: not a readable checkpoint (not a torch file, "
                     "or corrupt))", found[0].skipped[0]]


def test_a_run_that_fails_with_one_autosave_in_its_folder_is_offered_from_it(tmp_path, monkeypatch):
    """A run that failed soon after it started has a single autosave: the continue offer is that file (the offer's
    cache key reads the newest file's name and time; with one file there is no other to read)."""
    import gan.engine.trainer

    real, fail = gan.engine.trainer.gan_step, {"now": False}

    def flaky(*args, **kwargs):
        if fail["now"]:
            raise RuntimeError("injected fault in the training step")
        return real(*args, **kwargs)

    monkeypatch.setattr(gan.engine.trainer, "gan_step", flaky)
    monkeypatch.setenv("GAN_LIVE_AUTOSAVE_S", "3600")  # no timed autosave: only the pause's
    reg = RunRegistry(mode="thread", metrics_every=0, runs_root=tmp_path)
    t = reg.start(SMALL)
    assert t.wait_until(lambda t: t.step_count >= 3, timeout=60)
    t.pause()  # a pause autosaves
    assert t.wait_until(lambda t: t.state == RunState.PAUSED and t.autosave.saves == 1, timeout=60)
    step = t.step_count
    fail["now"] = True
    t.resume()
    assert t.wait_until(lambda t: t.state == RunState.FAILED, timeout=60)
    assert len(list(t.autosave.run_dir.glob("autosave-*.pt"))) == 1
    offer = reg.continue_offer()
    assert offer is not None and offer.step == step
    assert reg.continue_offer() is offer  # asked again on the next rerun: the same offer, read once
    reg.close()


def test_in_worker_mode_continue_builds_the_run_from_its_autosave_without_building_models_here(tmp_path, monkeypatch):
    """With a training worker, Continue builds the run in this process only as far as its config (device "auto":
    the worker picks), under the run's name, to resume from the autosave's state: no models nor optimisers here
    (the worker checks the state as it builds the run; tests/test_worker.py runs the real one). Then adopt hands it
    to the worker (tests/test_workshop.py)."""
    t, second = _interrupted_run(tmp_path)
    offer = second.continue_offer()
    adopted = []
    monkeypatch.setattr(RunRegistry, "adopt", lambda self, trainer, **kwargs: adopted.append(trainer) or trainer)
    monkeypatch.setattr(Trainer, "check_resume_state", lambda self, state: pytest.fail("checked in this process"))
    second.worker = object()  # what process mode holds
    offer.state["config"] = dict(offer.state["config"], device="cuda")  # as saved on a GPU machine
    run = second.continue_run(offer)
    assert adopted == [run] and run.name == t.name and run.G is None  # nothing built in this process
    assert run.config.to_dict() == dict(t.config.to_dict(), device="auto")
    assert (run.step_count, run.status().loss) == (offer.step, offer.state["loss"])  # the state it resumes from
    assert run.autosave.run_dir == offer.run_dir  # its autosaves go on in the same folder
