"""Lab mode (gan.workshop.lab, gan.workshop.seat): seats, the pool's cap and queue, the presenter's rules, the
lab switch, and a killed server giving every participant's run back. In-process runs (mode="thread") with tiny
configs; the worker-process pool is exercised by tests/test_lab_server.py and the bench."""

import threading
import time

import pytest

from gan.core.config import Config
from gan.engine.control import poll_until
from gan.engine.status import RunState
from gan.workshop import lab as labmod
from gan.workshop.controller import Kind
from gan.workshop.lab import Away, Lab, LabError, Refusal, Rules, check_name, default_max_runs, slug
from gan.workshop.runs import RunRegistry
from gan.workshop.seat import SeatController

TINY = Config(model="mlp", width=16, batch_size=16, latent_dim=8, device="cpu", sample_every=5)
FORM = {"model": "mlp", "batch_size": 16, "latent_dim": 8, "seed": 0, "lr_g": "2e-4", "lr_d": "2e-4",
        "d_steps": 1, "loss": "bce", "dataset": "mnist5k"}


@pytest.fixture
def registry(tmp_path):
    reg = RunRegistry(max_runs=1, mode="thread", metrics_every=0, runs_root=tmp_path, torch_threads=0)
    yield reg
    reg.close(timeout=10.0)


@pytest.fixture
def lab(registry):
    lab = Lab(registry, max_runs=3, poll_s=0.05)  # the presenter's slot + 2 participants
    lab.open()
    yield lab
    lab.shutdown()


def ctl(lab, seat):
    return SeatController(lab, seat, base=TINY)


def live(run) -> bool:
    return run is not None and run.state in (RunState.LOADING, RunState.RUNNING, RunState.PAUSED)


def test_names_are_checked_and_markup_or_2000_characters_refused():
    assert check_name("  Ada   Lovelace ") == "Ada Lovelace"
    assert check_name("Zoë") == "Zoë" and check_name("李雷") == "李雷"
    for bad, why in (("<script>x</script>", "only"), ("x" * 2000, "2,000"), ("", "Type"), ("a\u202eb", "only")):
        with pytest.raises(LabError) as err:
            check_name(bad)
        assert err.value.refusal is Refusal.BAD_NAME and why in str(err.value)
    assert slug("Ada Lovelace") == slug("ada  lovelace") == "lab-ada-lovelace"  # the same name, the same seat
    assert slug("Zoë") != slug("Zoe") and slug("Zoë").startswith("lab-u")


def test_a_second_tab_with_the_same_name_is_told_and_offered_another(lab):
    seat = lab.join("Ada")
    assert lab.join("Ada", seat.key) == seat  # the address's key: a reload or a second device reattaches
    with pytest.raises(LabError) as err:
        lab.join("ada")  # same name, another person
    assert err.value.refusal is Refusal.NAME_TAKEN and err.value.suggestion == "ada-2"
    assert lab.join(err.value.suggestion).name == "ada-2"
    with pytest.raises(LabError) as err:
        lab.seat("Ada", "forged-key")
    assert err.value.refusal is Refusal.NOT_YOURS


def test_two_hundred_participants_joining_in_the_same_second_get_two_hundred_seats(lab):
    seats, errors = [], []

    def join(i):
        try:
            seats.append(lab.join(f"p{i}"))
        except LabError as exc:  # pragma: no cover - the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=join, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors and len({s.key for s in seats}) == 200 == len(lab.seats())
    again = Lab(lab.registry, max_runs=3)  # the seats are on disk: a restarted server knows every address
    assert {s.name for s in again.seats()} == {s.name for s in seats} and again.is_open


def test_the_cap_keeps_the_presenter_s_slot_and_queues_the_rest_in_order(lab, registry):
    a, b, c, d = (lab.join(n) for n in "abcd")
    assert ctl(lab, a).start(FORM).started and ctl(lab, b).start(FORM).started
    third = ctl(lab, c).start(FORM)
    assert third.kind is Kind.INFO and "number 1 in the queue" in third.text
    assert "number 2" in ctl(lab, d).start(FORM).text
    assert lab.place(c) == 1 and lab.place(d) == 2 and lab.run_of(c) is None
    presenter = registry.start(TINY)  # the presenter always gets its slot, whatever the participants hold
    assert registry.current() is presenter and live(presenter)
    assert registry.current() is not lab.run_of(a)  # a participant's run never becomes the presenter's
    assert ctl(lab, a).stop().ok
    # the freed slot is taken by the first in line (how fast: `python -m gan bench --parts lab`, lab_queue_start_s)
    assert poll_until(lambda: live(lab.run_of(c)), 10.0)
    assert lab.place(d) == 1 and lab.run_of(d) is None  # ...and the next moves up
    assert ctl(lab, d).stop().text == "You left the queue."
    assert lab.queue_length() == 0


def test_a_participant_acts_on_their_own_run_only(lab, registry):
    a, b = lab.join("a"), lab.join("b")
    ra = ctl(lab, a).start(FORM).run
    rb = ctl(lab, b).start(FORM).run
    assert poll_until(lambda: ra.state == RunState.RUNNING and rb.state == RunState.RUNNING, 30)
    assert ctl(lab, a).pause().ok
    assert ra.state == RunState.PAUSED and rb.state == RunState.RUNNING
    forged = SeatController(lab, labmod.Seat("b", "not-b-s-key"), base=TINY)
    assert not forged.start(FORM).ok  # the seat's key is checked at Start
    notice = ctl(lab, a).save_snapshot("x")
    assert not notice.ok and "presenter" in notice.text
    ctl(lab, a).reset()
    assert lab.run_of(a) is None and rb.state == RunState.RUNNING and registry.current() is None


def test_fixed_knobs_win_at_start_and_cannot_be_changed_live(lab):
    lab.set_rules(Rules(fixed={"loss": "mse", "lr_d": 1e-3}))
    a = lab.join("a")
    run = ctl(lab, a).start({**FORM, "loss": "bce", "lr_d": "5e-4"}).run
    assert run.config.loss == "mse" and run.config.lr_d == 1e-3
    refused = ctl(lab, a).set_loss("bce")
    assert not refused.ok and "fixed by the presenter" in refused.text
    assert ctl(lab, a).set_lr("lr_g", "3e-4").ok  # what is not fixed stays the participant's
    with pytest.raises(ValueError, match="not a participant's setting"):
        Rules(fixed={"batch_size": 8})


def test_a_fixed_preset_starts_that_preset_with_the_participant_s_seed_and_its_plan(lab):
    lab.set_rules(Rules(fixed={"preset": "bce_rescue"}))
    run = ctl(lab, lab.join("a")).start({**FORM, "seed": 7, "loss": "mse"}).run
    assert run.config.loss == "minimax" and run.config.d_steps == 3 and run.config.seed == 7  # the preset's
    assert [(step, str(getattr(kind, "value", kind)), value) for step, kind, value in run.scheduled] == \
        [(1200, "loss", "bce")]  # its scheduled switch comes with it
    run.stop(10.0)


def test_a_bad_setting_is_refused_on_its_own_seat_only(lab):
    a, b = lab.join("a"), lab.join("b")
    bad = ctl(lab, a).start({**FORM, "lr_d": "fast"})
    assert not bad.ok and bad.field == "lr_d" and lab.run_of(a) is None  # said beside the field, nothing started
    rb = ctl(lab, b).start(FORM).run
    assert poll_until(lambda: rb.state == RunState.RUNNING, 30)


def test_a_crashed_worker_fails_only_its_own_runs_and_they_are_offered_to_continue(tmp_path, monkeypatch):
    """Process mode, two lab workers: killing the one that hosts Ada's run (the out-of-memory killer, a segfault)
    fails Ada's run with that cause and offers it back from its autosave; Bo's run, in the other worker, trains on."""
    import os
    import signal

    from gan.engine.status import FailureKind
    from gan.store.autosave import find_interrupted

    monkeypatch.setenv("GAN_LIVE_AUTOSAVE_S", "1")
    reg = RunRegistry(max_runs=1, mode="process", metrics_every=0, runs_root=tmp_path, torch_threads=1)
    lab = Lab(reg, max_runs=3, workers=2, poll_s=0.05)
    try:
        lab.open()
        ada, bo = lab.join("Ada"), lab.join("Bo")
        ra, rb = ctl(lab, ada).start(FORM).run, ctl(lab, bo).start(FORM).run
        assert poll_until(lambda: ra.step_count > 5 and rb.step_count > 5, 120)
        pids = lab.pool.pids()
        assert len(set(pids)) == 2  # one run in each worker: the least busy one takes the next run
        assert poll_until(lambda: list(ra.run_dir.glob("autosave-*.pt")), 30)
        os.kill(ra.client.pid, signal.SIGKILL)
        assert poll_until(lambda: ra.state == RunState.FAILED, 30)
        assert ra.status().failure == FailureKind.WORKER_DIED
        step = rb.step_count
        assert poll_until(lambda: rb.step_count > step + 5, 30) and rb.state == RunState.RUNNING
        assert lab.continue_offer(ada) is not None, (ra.status(), find_interrupted(reg.live_root, 5),
                                                     sorted(p.name for p in ra.run_dir.iterdir()))
        assert lab.continue_offer(bo) is None
        again = ctl(lab, ada).continue_run()
        assert again.ok and poll_until(lambda: lab.run_of(ada).state == RunState.RUNNING, 60)
    finally:
        for r in reg.live_runs():
            r.stop(10.0)
        lab.shutdown()
        reg.close(timeout=10.0)


def test_closing_the_lab_stops_and_saves_every_participant_run_and_says_so(lab, registry):
    seats = [lab.join(n) for n in "ab"]
    runs = [ctl(lab, s).start(FORM).run for s in seats]
    assert poll_until(lambda: all(r.step_count > 0 for r in runs), 30)
    presenter = registry.start(TINY)
    assert lab.close() == 2
    assert all(r.state == RunState.STOPPED for r in runs) and live(presenter)
    assert "stopped and saved" in lab.notice
    assert all(list(r.run_dir.glob("autosave-*.pt")) for r in runs)  # the last autosave of each
    with pytest.raises(LabError) as err:
        lab.join("c")
    assert err.value.refusal is Refusal.LAB_CLOSED
    assert lab.join("a", seats[0].key) == seats[0]  # their address still finds them (to read the notice)


def test_a_killed_server_gives_every_participant_run_back(tmp_path):
    reg = RunRegistry(max_runs=1, mode="thread", metrics_every=0, runs_root=tmp_path, torch_threads=0)
    lab = Lab(reg, max_runs=3, poll_s=0.05)
    lab.open()
    seats = [lab.join(n) for n in ("ada", "bo")]
    runs = [ctl(lab, s).start(FORM).run for s in seats]
    try:
        assert poll_until(lambda: all(r.step_count > 0 for r in runs), 30)
        for r in runs:
            r.pause("snapshot")
            r.autosave.save(r.state_dict())  # what the autosave timer writes; then the "server" dies
        steps = [r.step_count for r in runs]
    finally:
        for r in runs:
            r.stop(10.0, clean=False)  # a kill leaves no clean stop behind
        lab.shutdown()
    reg2 = RunRegistry(max_runs=1, mode="thread", metrics_every=0, runs_root=tmp_path, torch_threads=0)
    lab2 = Lab(reg2, max_runs=3, poll_s=0.05)
    try:
        assert lab2.is_open and reg2.current() is None  # the presenter is not offered a participant's run
        for seat, step in zip(seats, steps):
            again = lab2.join(seat.name, seat.key)
            assert lab2.continue_offer(again).step == step
            notice = ctl(lab2, again).continue_run()
            assert notice.ok and notice.run.step_count == step
    finally:
        lab2.shutdown()
        reg2.close(timeout=10.0)


def test_an_away_tab_s_run_pauses_when_the_rule_says_so_and_says_why(registry):
    lab = Lab(registry, max_runs=3, poll_s=0.05, away_s=0.3)
    lab.open(Rules(away=Away.KEEP))  # while both start, no tab refreshes: a start slower than away_s paused one (CI)
    try:
        a, b = lab.join("a"), lab.join("b")
        ra, rb = (ctl(lab, s).start(FORM).run for s in (a, b))
        assert poll_until(lambda: ra.state == RunState.RUNNING and rb.state == RunState.RUNNING, 30)
        lab.set_rules(Rules(away=Away.PAUSE))  # the presenter sets the rule now; both tabs silent since their start
        lab.touch(b)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and ra.state == RunState.RUNNING:
            lab.touch(b)  # b's tab keeps refreshing; a's laptop lid is closed
            time.sleep(0.05)  # stands for b's refresh timer, not a synchronisation
        assert lab.paused_while_away(a) and ra.status().reason == labmod.AWAY_REASON
        assert rb.state == RunState.RUNNING
        lab.touch(a)
        assert ctl(lab, a).pause_or_resume().ok and ra.state == RunState.RUNNING
    finally:
        lab.shutdown()


def test_the_default_cap_follows_cores_and_memory():
    assert default_max_runs(cores=2, available_mb=20_000) == 9  # the presenter + 4 per core
    assert default_max_runs(cores=16, available_mb=2_000) == 1 + 5  # memory-bound: half of 2 GB at 200 MB a run
    assert default_max_runs(cores=1, available_mb=100) == 2  # always the presenter and one participant


def test_a_cap_with_no_participant_slot_refuses_to_open_and_says_why(registry):
    lab = Lab(registry, max_runs=1)
    with pytest.raises(LabError) as err:
        lab.open()
    assert err.value.refusal is Refusal.NO_SLOTS and "GAN_LIVE_MAX_RUNS=1" in str(err.value)
    assert not lab.is_open


def test_gan_live_lab_with_no_slot_leaves_every_page_working_and_says_so(registry, monkeypatch):
    monkeypatch.setenv("GAN_LIVE_LAB", "1")
    monkeypatch.setenv("GAN_LIVE_MAX_RUNS", "1")
    lab = labmod.lab_from_env(registry)  # no exception: app.py builds it for every page
    assert not lab.is_open and "leaves no slot" in lab.notice


def test_the_share_address_is_the_lan_one_and_never_carries_a_query(monkeypatch):
    from gan.workshop import share

    monkeypatch.setattr(share, "lan_address", lambda: "192.168.1.20")
    assert share.share_url(8501, public="").url == "http://192.168.1.20:8501/my_run"
    assert share.share_url(8501, "/gan/", public="").url == "http://192.168.1.20:8501/gan/my_run"
    given = share.share_url(8501, public="https://room.example/?token=secret#x")
    assert given.url == "https://room.example/my_run" and "secret" not in given.url
    monkeypatch.setattr(share, "lan_address", lambda: None)
    offline = share.share_url(8501, public="")
    assert not offline.lan and offline.url.startswith("http://127.0.0.1:8501") and "only this machine" in offline.note
    png = share.qr_png("http://192.168.1.20:8501/my_run")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_room_frame_ranks_scores_times_the_race_and_keeps_waiting_places(lab, registry):
    from gan.viz.roomview import RoomView, sweep_chart

    a, b = lab.join("a"), lab.join("b")
    ra = ctl(lab, a).start({**FORM, "lr_d": "1e-3"}).run
    rb = ctl(lab, b).start(FORM).run
    assert poll_until(lambda: ra.step_count > 12 and rb.step_count > 12, 60)
    ctl(lab, lab.join("c")).start(FORM)  # queued: no slot

    class Monitor:  # what the room reads of a quality monitor: rows of (step, score, fd)
        def __init__(self, rows):
            import pandas as pd

            self.rows = pd.DataFrame(rows, columns=["step", "score", "fd"])

        def snapshot(self):
            return self

    monitors = {ra.name: Monitor([(5, 3.0, 90.0), (10, 7.5, 20.0)]), rb.name: Monitor([(5, 8.1, 12.0)])}
    frame = RoomView(min_interval=0).frame(lab.entries(), lambda run: monitors.get(run.name))
    assert list(frame.board["name"]) == ["b", "a"]  # best score first
    assert frame.board.loc[1, "time to 7 (s)"] is not None and frame.waiting == (("c", 1),)
    assert {t.name for t in frame.tiles} == {"a", "b"} and all(t.png for t in frame.tiles)
    assert "score 7.5" in next(t.caption for t in frame.tiles if t.name == "a")
    assert set(frame.sweep["lr_d"]) == {1e-3, 2e-4}
    spec = sweep_chart(frame.sweep, "lr_d").to_dict()
    assert spec["layer"][0]["encoding"]["x"]["scale"]["type"] == "log"
    with pytest.raises(ValueError):
        sweep_chart(frame.sweep, "batch_size")
