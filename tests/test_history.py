import time

import numpy as np
import pytest

from gan.core.step import SampleGrid
from gan.engine.history import History, SyncCursor


def fill(history, steps, switch_at=None):
    for i in range(1, steps + 1):
        loss = "mse" if switch_at and i >= switch_at else "bce"
        history.append(i, 0.7 + i * 1e-6, 0.6, 0.5, 0.4, 2e-4, 2e-4, loss, when=float(i))


def test_recent_steps_stay_at_full_resolution():
    h = History(recent=100, max_buckets=50)
    fill(h, 80)
    s = h.snapshot().scalars
    assert list(s.step) == list(range(1, 81))
    assert (s.steps_in_row == 1).all()


def test_history_stays_under_its_bound_and_still_covers_every_step():
    h = History(recent=200, max_buckets=100)
    fill(h, 50_000, switch_at=30_000)
    s = h.snapshot().scalars
    assert len(s) <= 200 + 100 + 1
    assert s.steps_in_row.sum() == 50_000  # nothing dropped, only folded
    assert s.step.iloc[-1] == 50_000 and s.step.iloc[0] < 1000
    assert (s.steps_in_row.tail(200) == 1).all()
    # No bucket spans the loss switch: every row before step 30000 is bce, every row after is mse.
    assert (s[s.step < 29_999].loss == "bce").all() and (s[s.step >= 30_000].loss == "mse").all()


def test_a_loss_switch_in_every_bucket_still_keeps_the_history_bounded_and_labels_rows_by_their_last_loss():
    """The one case where rows must mix losses: more switches than buckets. Each merged row then counts
    all its steps and carries the loss of its newest step; the recent rows stay exact."""
    h = History(recent=10, max_buckets=4)
    for i in range(1, 401):
        h.append(i, 0.7, 0.6, 0.5, 0.4, 2e-4, 2e-4, "bce" if (i // 3) % 2 == 0 else "mse", when=float(i))
    s = h.snapshot().scalars
    assert len(s) <= 10 + 4 + 1 and s.steps_in_row.sum() == 400
    assert set(s.loss) <= {"bce", "mse"}
    folded = s[s.steps_in_row > 1]
    last_loss = {i: "bce" if (i // 3) % 2 == 0 else "mse" for i in range(1, 401)}
    last_step = lambda row: round(row.step + (row.steps_in_row - 1) / 2)  # a row sits at its bucket's middle
    assert len(folded) > 0 and all(row.loss == last_loss[last_step(row)] for row in folded.itertuples())


def _folded(h, recent):
    """(n, first step, last step, loss) of each folded row, oldest first; checks the rows cover every step once."""
    s = h.snapshot(with_grids=False).scalars
    rows, last = [], -1
    for r in s.iloc[:max(0, len(s) - recent)].itertuples():
        first = round(r.step - (r.steps_in_row - 1) / 2)  # a row sits at its bucket's middle step
        assert first == last + 1, "buckets must cover every step once, in order"
        last = first + r.steps_in_row - 1
        # loss_d is the step number below: a bucket's mean/min/max are its middle/first/last step
        assert (r.loss_d, r.loss_d_min, r.loss_d_max) == ((first + last) / 2, first, last)
        rows.append((r.steps_in_row, first, last, r.loss))
    assert list(s.step.iloc[len(rows):]) == list(range(last + 1, last + 1 + len(s) - len(rows)))
    return rows


def test_old_steps_fold_into_buckets_that_double_pairwise_and_never_outgrow_the_doubled_size():
    """With room for 4 buckets, the 4 oldest steps stay single; the 5th merges neighbours pairwise (size 2),
    and so on. No bucket grows past twice the size before the merge (they used to snowball: 5 steps at size 2,
    20 at size 8), every step is in exactly one row, and a bucket's mean/min/max are its steps'."""
    h = History(recent=2, max_buckets=4)
    sizes = {}
    for i in range(0, 40):
        h.append(i, float(i), 0.0, 0.5, 0.5, 1e-3, 1e-3, "bce", when=float(i))
        folded = _folded(h, recent=2)
        assert len(folded) <= 4 + 1  # the buckets and the one being filled
        assert h.row_count() == len(folded) + min(i + 1, 2)  # what a snapshot will hold, without taking one
        sizes[i] = [n for n, *_ in folded]
    assert sizes[5] == [1, 1, 1, 1] and sizes[6] == [2, 2, 1]  # 5 buckets: merge, 3 left
    assert sizes[9] == [2, 2, 1, 2, 1]
    assert sizes[10] == [4, 3, 2] and sizes[17] == [4, 3, 2, 4, 3]
    assert sizes[18] == [7, 6, 4] and sizes[34] == [13, 12, 8] and sizes[39] == [13, 12, 8, 5]


def test_buckets_merge_only_within_one_loss_unless_every_bucket_is_a_switch():
    h = History(recent=2, max_buckets=4)
    loss = lambda i: "mse" if 4 <= i < 7 else "bce"  # one switch at step 4 and back at 7
    for i in range(0, 16):
        h.append(i, float(i), 0.0, 0.5, 0.5, 1e-3, 1e-3, loss(i), when=float(i))
    assert _folded(h, recent=2) == [(4, 0, 3, "bce"), (3, 4, 6, "mse"), (2, 7, 8, "bce"), (4, 9, 12, "bce"),
                                     (1, 13, 13, "bce")]
    for i in range(16, 19):  # the next merge: same-loss neighbours only, and only while they fit 8 steps
        h.append(i, float(i), 0.0, 0.5, 0.5, 1e-3, 1e-3, loss(i), when=float(i))
    assert _folded(h, recent=2) == [(4, 0, 3, "bce"), (3, 4, 6, "mse"), (6, 7, 12, "bce"), (4, 13, 16, "bce")]
    # a switch at every step: more switches than buckets, so neighbours merge across them (newest loss names it)
    h = History(recent=2, max_buckets=4)
    for i in range(0, 9):
        h.append(i, float(i), 0.0, 0.5, 0.5, 1e-3, 1e-3, "bce" if i % 2 == 0 else "mse", when=float(i))
    assert _folded(h, recent=2) == [(2, 0, 1, "mse"), (2, 2, 3, "mse"), (1, 4, 4, "bce"), (1, 5, 5, "mse"),
                                     (1, 6, 6, "bce")]
    h.append(9, 9.0, 0.0, 0.5, 0.5, 1e-3, 1e-3, "mse", when=9.0)  # now two same-loss neighbours fit one bucket:
    assert _folded(h, recent=2) == [(4, 0, 3, "mse"), (1, 4, 4, "bce"), (1, 5, 5, "mse"), (1, 6, 6, "bce"),
                                     (1, 7, 7, "mse")]  # they merge, and 4 buckets need no forced merge


def test_buckets_keep_min_and_max():
    h = History(recent=10, max_buckets=4)
    for i in range(1, 101):
        h.append(i, float(i), -float(i), 0.5, 0.5, 1e-3, 1e-3, "bce")
    s = h.snapshot().scalars
    old = s[s.steps_in_row > 1]
    assert len(old) > 0
    assert (old.loss_d_min < old.loss_d).all() and (old.loss_d < old.loss_d_max).all()
    assert s.loss_d_max.max() == 100.0 and s.loss_d_min.min() == 1.0


def test_snapshot_cost_does_not_grow_with_run_length():
    small, large = History(), History()
    fill(small, 5_000)
    fill(large, 100_000)
    assert small.row_count() <= 4001 and large.row_count() <= 4001

    def cost(h):
        t = time.perf_counter()
        for _ in range(5):
            h.snapshot()
        return time.perf_counter() - t

    # Row counts are bounded (asserted above); the timing check only guards against an O(steps) read.
    assert cost(large) < 5 * cost(small) + 0.05


def test_grid_timeline_is_bounded_and_keeps_first_and_newest():
    import numpy as np

    h = History(max_grids=10)
    for step in range(0, 1000, 10):
        h.add_grid(SampleGrid(step, "bce", np.zeros((4, 28, 28), np.uint8)))
    steps = [g.step for g in h.snapshot().grids]
    assert len(steps) <= 10 and steps[0] == 0 and steps[-1] == 990 and steps == sorted(steps)


def test_state_dict_round_trip_keeps_rows_events_and_grids():
    import numpy as np

    h = History(recent=50, max_buckets=20)
    fill(h, 500, switch_at=300)
    h.add_event(300, "loss", "bce → mse")
    h.add_grid(SampleGrid(500, "mse", np.full((4, 28, 28), 7, np.uint8)))
    h2 = History(recent=50, max_buckets=20)
    h2.load_state_dict(h.state_dict())
    a, b = h.snapshot(), h2.snapshot()
    assert b.total_steps == 500
    assert b.scalars.steps_in_row.sum() == 500
    assert b.scalars.loss_d.mean() == pytest.approx(a.scalars.loss_d.mean(), rel=1e-3)
    assert list(b.events.detail) == ["bce → mse"]
    assert b.grids[0].step == 500 and b.grids[0].images[0, 0, 0] == 7


def test_replay_points_keep_their_d_outputs_and_the_coach_s_reading_across_a_save():
    from gan.core.diagnosis import Condition, Diagnosis

    h = History()
    probs = (np.array([0.9, 0.8], np.float32), np.array([0.1, 0.2], np.float32))
    said = Diagnosis(Condition.D_WINNING, 100, "D is winning", "D(real) 0.85", "lower it", (("lr_d", 2e-4),))
    h.add_grid(SampleGrid(0, "bce", np.zeros((4, 28, 28), np.uint8)))  # the step-0 grid: nothing to replay yet
    h.add_grid(SampleGrid(100, "bce", np.ones((4, 28, 28), np.uint8), *probs, said))
    state = h.state_dict()
    import torch

    buffer = __import__("io").BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    h2 = History()
    h2.load_state_dict(torch.load(buffer, weights_only=True))  # plain values only: checkpoints load safely
    first, second = h2.snapshot().grids
    assert first.d_real_probs is None and first.diagnosis is None
    assert second.d_real_probs.tolist() == pytest.approx([0.9, 0.8])
    assert second.d_fake_probs.tolist() == pytest.approx([0.1, 0.2])
    assert second.diagnosis == said
    assert second.d_real_probs.dtype == second.d_fake_probs.dtype == np.float32  # as a live history keeps them
    # A checkpoint from before replay (no such keys) still loads, its grids without them.
    old = {k: v for k, v in state.items() if k not in ("grid_probs", "grid_diagnoses")}
    h3 = History()
    h3.load_state_dict(old)
    assert [g.diagnosis for g in h3.snapshot().grids] == [None, None]


def test_a_million_steps_of_replay_points_stay_far_under_200_mb():
    """One sample point every 100 steps for 1M steps: the timeline thins to max_grids, keeping the first and
    the newest, so replay covers the whole run at a fixed cost (grid, 32 + 32 D outputs, a Diagnosis)."""
    from gan.core.diagnosis import Condition, Diagnosis

    h = History()
    image = np.zeros((64, 28, 28), np.uint8)
    for step in range(0, 1_000_001, 100):
        probs = np.full(32, step % 7 / 7, np.float32)
        h.add_grid(SampleGrid(step, "bce", image.copy(), probs, probs.copy(),
                              Diagnosis(Condition.LEARNING, step, "Learning", "D(real) 0.55, D(fake) 0.47")))
    grids = h.snapshot().grids
    assert len(grids) <= h.max_grids and grids[0].step == 0 and grids[-1].step == 1_000_000
    gaps = np.diff([g.step for g in grids])
    assert gaps[:-1].min() == gaps[:-1].max() == 12_800  # evenly spaced: no stretch of the run left without one
    assert gaps[-1] <= 12_800 and len(grids) >= h.max_grids // 2  # the newest, and at least half the budget used
    kept = sum(g.images.nbytes + g.d_real_probs.nbytes + g.d_fake_probs.nbytes + 512 for g in grids)
    assert kept < 10 * 2**20  # ~6 MB, against the 200 MB allowed


# --- the mirror (the worker sends deltas, the server applies them) ------------------------------
def _row(h: History, step: int, loss: str = "bce") -> None:
    h.append(step, 0.6 + step * 1e-3, 0.7, 0.5, 0.5, 2e-4, 2e-4, loss, when=1000.0 + step)


def test_a_mirror_fed_deltas_reads_exactly_like_its_source():
    src, mirror = History(recent=50, max_buckets=20), History(recent=50, max_buckets=20)
    cursor = SyncCursor()
    delta, cursor = src.changes_since(cursor)
    assert delta is None  # first read: a full copy
    mirror.load_state_dict(src.state_dict())
    for step in range(1, 400):
        _row(src, step, "bce" if step < 150 else "mse")
        if step == 150:
            src.add_event(150, "loss", "bce → mse")
        if step % 40 == 0:
            src.add_grid(SampleGrid(step, "bce", np.full((64, 28, 28), step % 256, np.uint8)))
            src.set_probs(np.full(8, 0.25, np.float32), np.full(8, 0.75, np.float32), step)
        if step % 17 == 0:  # a tick every 17 steps: within `recent`, so always incremental
            delta, cursor = src.changes_since(cursor)
            assert delta is not None
            # a histogram is sent once, in the first tick after it changed, and never again
            assert (delta.probs is not None) == any(s % 40 == 0 for s in range(step - 16, step + 1))
            mirror.apply(delta)
            a, b = src.snapshot(), mirror.snapshot()  # after every tick, not only at the end
            assert a.scalars.equals(b.scalars) and a.events.equals(b.events)  # times included
            assert [g.step for g in a.grids] == [g.step for g in b.grids] and a.probs_step == b.probs_step
            assert src.row_count() == mirror.row_count() == len(a.scalars)
    delta, cursor = src.changes_since(cursor)
    mirror.apply(delta)
    a, b = src.snapshot(), mirror.snapshot()
    assert a.scalars.equals(b.scalars)
    assert a.events.equals(b.events)
    assert [g.step for g in a.grids] == [g.step for g in b.grids] and a.probs_step == b.probs_step == 360
    assert a.total_steps == b.total_steps == 399
    assert src.row_count() == len(a.scalars) and a.scalars.steps_in_row.iloc[0] > 1  # old rows are buckets by now


def test_a_mirror_gets_the_first_grid_at_step_0():
    src = History()
    _, cursor = src.changes_since(SyncCursor())  # read before any grid
    src.add_grid(SampleGrid(0, "bce", np.zeros((64, 28, 28), np.uint8)))  # the grid before any training
    delta, cursor = src.changes_since(cursor)
    assert [g.step for g in delta.grids] == [0]
    delta, _ = src.changes_since(cursor)
    assert delta.grids == [] and delta.probs is None  # nothing new, nothing resent


def test_a_mirror_that_fell_behind_or_a_reloaded_source_asks_for_a_full_copy():
    src = History(recent=10, max_buckets=20)
    for step in range(1, 6):
        _row(src, step)
    _, cursor = src.changes_since(SyncCursor())
    for step in range(6, 30):  # 24 steps > recent: some unseen rows were folded into buckets
        _row(src, step)
    delta, cursor = src.changes_since(cursor)
    assert delta is None
    delta, cursor = src.changes_since(cursor)
    assert delta is not None and delta.rows == []
    src.load_state_dict(src.state_dict())  # a reload (resume) starts a new generation
    delta, _ = src.changes_since(cursor)
    assert delta is None


def test_a_saved_history_loads_back_row_for_row_and_goes_on():
    h = History(recent=20, max_buckets=30)
    for i in range(1, 301):
        h.append(i, 0.7 + (i % 7) * 1e-2, 0.6 - (i % 5) * 1e-2, 0.5, 0.4, 2e-4 if i < 150 else 1e-3, 5e-4,
                 "bce" if i < 150 else "mse", when=1000.0 + i)
        if i % 100 == 0:
            h.add_grid(SampleGrid(i, "bce" if i < 150 else "mse", np.full((64, 28, 28), i % 256, np.uint8)))
    h.add_event(150, "loss", "bce → mse", when=1150.0)
    copy = History(recent=20, max_buckets=30)
    before = (copy.generation, copy.version)
    copy.load_state_dict(h.state_dict())
    a, b = h.snapshot(), copy.snapshot()
    assert a.scalars.equals(b.scalars)  # steps, means, min/max, learning rates, loss, time, steps_in_row
    assert a.events.equals(b.events) and a.total_steps == b.total_steps == 300
    assert [(g.step, g.loss) for g in b.grids] == [(100, "bce"), (200, "mse"), (300, "mse")]
    assert all(np.array_equal(x.images, y.images) for x, y in zip(a.grids, b.grids))
    assert copy.generation > before[0] and copy.version > before[1]  # a mirror of it must ask for a full copy
    copy.append(301, 0.5, 0.5, 0.5, 0.5, 1e-3, 5e-4, "mse", when=1301.0)
    after = copy.snapshot().scalars
    assert after.step.iloc[-1] == 301 and copy.snapshot().total_steps == 301
    assert after.steps_in_row.sum() == 301
    small = History(recent=20, max_buckets=4)  # a smaller bound than the file's: merged, nothing lost
    small.load_state_dict(h.state_dict())
    s = small.snapshot().scalars
    assert len(s) <= 20 + 4 and s.steps_in_row.sum() == 300 and set(s.loss) == {"bce", "mse"}
    assert list(s.step.tail(20)) == list(range(281, 301))  # the recent rows stay single steps
    roomy = History(recent=500, max_buckets=30)  # room for more recent rows than the file has: buckets stay buckets
    roomy.load_state_dict(h.state_dict())
    assert roomy.snapshot().scalars.equals(a.scalars) and roomy.row_count() == len(a.scalars)
    _, cursor = roomy.changes_since(SyncCursor())  # a mirror's first read after the load: a full copy
    roomy.append(301, 0.5, 0.5, 0.5, 0.5, 1e-3, 5e-4, "mse", when=1301.0)
    delta, _ = roomy.changes_since(cursor)  # ... then deltas again, from the loaded history on
    assert [r[0] for r in delta.rows] == [301]


def test_events_carry_now_or_their_given_time_and_an_empty_detail_by_default():
    h = History()
    before = time.time()
    h.add_event(5, "pause")
    after = time.time()
    h.add_event(6, "loss", "bce → mse", when=123.0)
    ev = h.snapshot().events
    assert list(ev.kind) == ["pause", "loss"] and list(ev.detail) == ["", "bce → mse"]
    assert before <= ev.time.iloc[0] <= after and ev.time.iloc[1] == 123.0


def test_every_event_and_every_load_shows_readers_a_version_and_generation_they_have_not_seen():
    """The dashboard caches its view by History.version (gan.viz.liveview) and a mirror takes a full copy
    when the generation changes: neither may repeat, or a reader keeps a stale view after a second load."""
    h = History(recent=10, max_buckets=20)
    fill(h, 30)
    versions, generations = [h.version], [h.generation]
    for i in range(3):
        h.add_event(30, "note", str(i))
        assert h.version > max(versions)
        versions.append(h.version)
        h.set_probs(np.full(8, 0.5, np.float32), np.full(8, 0.5, np.float32), 30)  # a new histogram
        assert h.version > max(versions)
        versions.append(h.version)
    state = h.state_dict()
    for _ in range(2):  # the same file loaded twice (continue, then continue again)
        h.load_state_dict(state)
        assert h.version > max(versions) and h.generation > max(generations)
        versions.append(h.version)
        generations.append(h.generation)


def test_a_mirror_gets_each_of_several_events_once():
    src, mirror = History(recent=50, max_buckets=20), History(recent=50, max_buckets=20)
    _, cursor = src.changes_since(SyncCursor())
    mirror.load_state_dict(src.state_dict())
    for step in range(1, 31):
        _row(src, step)
        if step % 5 == 0:
            src.add_event(step, "lr_g", f"change at {step}", when=2000.0 + step)
        if step % 10 == 0:
            delta, cursor = src.changes_since(cursor)
            mirror.apply(delta)
            assert list(mirror.snapshot().events.step) == list(range(5, step + 1, 5))
            assert src.snapshot().events.equals(mirror.snapshot().events)


def test_a_history_loaded_before_its_first_step_streams_every_row_to_a_mirror():
    """A run continued from a checkpoint saved before step 1 (no rows, no buckets): the worker's mirror must
    still get step 1."""
    src = History(recent=50, max_buckets=20)
    src.load_state_dict(History(recent=50, max_buckets=20).state_dict())
    mirror = History(recent=50, max_buckets=20)
    _, cursor = src.changes_since(SyncCursor())  # the mirror's first read: a full copy
    mirror.load_state_dict(src.state_dict())
    for step in range(1, 6):
        _row(src, step)
    delta, cursor = src.changes_since(cursor)
    mirror.apply(delta)
    assert list(mirror.snapshot().scalars.step) == [1, 2, 3, 4, 5]


def test_recent_rows_are_the_last_n_steps_oldest_first():
    """What the coach reads at each sample point: only the newest steps, not the whole recent window."""
    h = History(recent=50, max_buckets=20)
    fill(h, 30)
    assert [r[0] for r in h.recent_rows(5)] == [26, 27, 28, 29, 30]
    assert [r[0] for r in h.recent_rows(100)] == list(range(1, 31))
    assert h.recent_rows(0) == []
