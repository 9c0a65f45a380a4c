"""Simulated viewers (gan/tools/viewers/) against ONE real `streamlit run app.py` with a presenter token.

The presenter (?token=...) presses Start; three viewers without the token follow the run: the step
in their status line grows, their live panel refreshes on its timer, and a Pause reaches all of
them. A viewer without the token has no Start button. A viewer that drops its connection mid-run
leaves the server healthy and the others refreshing. Every wait polls the viewers' page models
with a timeout; nothing sleeps to synchronise. The tests share the server (one run) and each
brings the run back to "Running" itself, so they do not depend on their order. The last tests feed
hand-made ForwardMsgs to a viewer (page model, message cache, timers) and check the bench's helpers,
without a server.
"""

import asyncio
import os
import time
from pathlib import Path

import pytest

from gan.tools.bench import free_port, start_app_server, stop_app_server, wait_http
from gan.tools.viewers import Viewer, close_viewers, http_get, open_viewers, wait_all

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "viewers-test-token"
REFRESH_S = 1.0  # pages/train.py's default live-panel refresh
FIRST_RUN_S = 60.0  # the first page run imports torch and the data on a loaded 2-core machine


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    env = dict(os.environ, GAN_LIVE_MAX_RUNS="1", PYTHONPATH=str(ROOT), GAN_LIVE_TOKEN=TOKEN,
               GAN_LIVE_RUNS_DIR=str(tmp_path_factory.mktemp("runs")))
    proc = start_app_server(port, env, tmp_path_factory.mktemp("log") / "server.log")
    try:
        if not wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60):
            raise RuntimeError("streamlit did not answer on its health endpoint within 60 s")
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop_app_server(proc)  # the server's own process group: its worker goes with it


def run(coro, timeout: float = 90.0):
    """Run one test's coroutine with an upper bound, so a hang fails the test instead of the suite."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def state_is(*states: str):
    return lambda v: v.status() is not None and v.status().state in states


async def running_presenter(url: str) -> Viewer:
    """The presenter's tab, with the shared run brought to "Running" (Start, or Resume if paused)."""
    presenter = await Viewer(url, f"token={TOKEN}", name="presenter").connect(FIRST_RUN_S)
    try:
        assert await presenter.wait_until(lambda v: "Start" in v.buttons(), 30), \
            (presenter.alerts(), presenter.exceptions(), presenter.markdown(), presenter.stats.errors)
        status = presenter.status()
        if status is None or status.state in ("Stopped", "Failed"):
            await presenter.click("Start")
        elif status.state == "Paused":
            await presenter.click("Resume")
        assert await presenter.wait_until(
            lambda v: state_is("Running")(v) and v.status().step > 0, 60), presenter.status()
        return presenter
    except BaseException:
        await presenter.close()
        raise


def test_viewers_follow_the_presenters_run_and_see_pause(server):
    async def scenario():
        presenter = await running_presenter(server)
        viewers, failed = await open_viewers(server, 3, timeout=FIRST_RUN_S)
        try:
            assert not failed and len(viewers) == 3, failed
            for v in viewers:
                assert await v.wait_until(state_is("Running"), 30), (v.name, v.markdown(), v.stats.errors)
                # The live panel's timer came from the server's auto_rerun message, at the page's interval.
                assert REFRESH_S in v.timers().values(), v.timers()

            firsts = {v.name: v.status().step for v in viewers}
            t0 = time.monotonic()
            grew = await asyncio.gather(*(
                v.wait_until(lambda v, s=firsts[v.name]: v.status() is not None and v.status().step > s, 20)
                for v in viewers))
            assert all(grew), [(v.name, firsts[v.name], v.status()) for v in viewers]
            # Refreshes come on the timer: at least two completed fragment runs within a bounded window
            # (10 intervals: generous for a loaded CI machine, still far below "no timer at all").
            refreshed = await asyncio.gather(*(
                v.wait_until(lambda v: v.fragment_runs_between(t0, time.monotonic() + 1) >= 2, 10 * REFRESH_S)
                for v in viewers))
            assert all(refreshed), [(v.name, len(v.fragment_runs), v.stats) for v in viewers]
            assert all(v.stats.auto_reruns_sent >= 2 and not v.exceptions() for v in viewers)

            sent = await presenter.click("Pause")
            seconds = await wait_all(viewers, state_is("Paused"), 20, since=sent)
            assert seconds is not None, [(v.name, v.status()) for v in viewers]
            assert all(v.connected for v in viewers), [v.closed_reason for v in viewers]
            assert all(not v.stats.errors for v in viewers), [v.stats.errors for v in viewers]
        finally:
            await close_viewers([presenter, *viewers])

    run(scenario())


def test_a_viewer_without_the_token_has_no_start_button(server):
    async def scenario():
        viewer = await Viewer(server, name="no-token").connect(FIRST_RUN_S)
        wrong = await Viewer(server, "token=wrong", name="wrong-token").connect(FIRST_RUN_S)
        try:
            for v in (viewer, wrong):
                assert v.buttons() == {}, v.buttons()  # no Start, Pause, Stop, ... at all
                assert v.segmented() == []  # and no loss bar
                assert any("Read-only" in a or "not right" in a for a in v.alerts()), v.alerts()
        finally:
            await close_viewers([viewer, wrong])

    run(scenario())


def test_forged_presenter_clicks_from_a_viewer_change_nothing(server):
    """Widget ids are the same for every session, so a viewer can copy the presenter's: Stop, Reset, Pause
    and a loss switch sent by a viewer (hostile tokens, out of order: before its first page arrived, and
    again as a refresh of its live panel) must not touch the run, and the server must not fail."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    async def scenario():
        presenter = await running_presenter(server)
        viewers = []
        try:
            ids = {label: b.id for label, b in presenter.buttons().items()}
            assert {"Pause", "Stop", "Reset"} <= set(ids), ids
            loss_bar = presenter.segmented()[0]
            def loss_line(v: Viewer) -> str:  # "**BCE** loss · equilibrium: D 0.693 · G 0.693 · lr G ..."
                return next(m for m in v.markdown() if "equilibrium" in m).split("\n")[-1]

            details = loss_line(presenter)
            assert details.startswith("**"), details
            other = next(o for o in loss_bar.options if o.split()[0] not in details)
            forged = [WidgetState(id=ids[label], trigger_value=True) for label in ("Stop", "Reset", "Pause")]
            switch = WidgetState(id=loss_bar.id)
            switch.string_array_value.data.append(other)
            forged.append(switch)

            for query in (f"token={TOKEN}x", f"token={TOKEN.upper()}", f"token=%20{TOKEN[:-1]}", "token=&token="):
                viewer = Viewer(server, query, name=query)
                viewers.append(viewer)
                await viewer.connect(FIRST_RUN_S, wait_first_run=False)
                sent = await viewer.send_widget_states(forged)  # before the page it would need to see them
                assert await viewer.wait_until(lambda v, t=sent: any(r.finished_at > t for r in v.runs), 30)
                assert viewer.buttons() == {} and viewer.segmented() == [], (query, viewer.buttons())
                assert await viewer.wait_until(lambda v: len(v.fragment_runs) > 0, 30)  # its live panel refreshed
                sent = await viewer.send_widget_states(forged, fragment_id=viewer.fragment_runs[-1].fragment_ids[0])
                assert await viewer.wait_until(lambda v, t=sent: any(r.finished_at > t for r in v.runs), 30)
                assert not viewer.exceptions(), viewer.exceptions()

            step = presenter.status().step
            assert await presenter.wait_until(
                lambda v: state_is("Running")(v) and v.status().step > step, 30), presenter.status()
            assert loss_line(presenter) == details  # no loss switch reached the run
            health = await http_get(server + "_stcore/health", timeout=10)
            assert health.status == 200 and not presenter.exceptions()
        finally:
            await close_viewers([presenter, *viewers])

    run(scenario(), timeout=240)


def test_an_abrupt_disconnect_leaves_the_server_healthy(server):
    async def scenario():
        presenter = await running_presenter(server)
        viewers, failed = await open_viewers(server, 3, timeout=FIRST_RUN_S)
        try:
            assert not failed, failed
            dropped, others = viewers[0], viewers[1:]
            # Drop it while its live panel refreshes: mid-run for the server's script thread.
            assert await dropped.wait_until(lambda v: len(v.fragment_runs) >= 1, 15)
            await dropped.abort()
            assert not dropped.connected

            health = await http_get(server + "_stcore/health", timeout=10)
            assert health.status == 200, health
            t0 = time.monotonic()
            kept_up = await asyncio.gather(*(
                v.wait_until(lambda v: v.fragment_runs_between(t0, time.monotonic() + 1) >= 2, 10 * REFRESH_S)
                for v in others))
            assert all(kept_up), [(v.name, v.closed_reason, v.stats.errors) for v in others]
            assert all(v.connected for v in others)
            # A new tab still gets a page from the server.
            late = await Viewer(server, name="late").connect(FIRST_RUN_S)
            assert late.status() is not None
            await late.close()
        finally:
            await close_viewers([presenter, *viewers])

    run(scenario())


def test_viewers_of_a_replaced_run_follow_the_new_one_without_errors(server):
    """A stale session: tabs open on one run while the presenter resets it and starts another."""
    async def scenario():
        presenter = await running_presenter(server)
        viewers, failed = await open_viewers(server, 2, timeout=FIRST_RUN_S)
        try:
            assert not failed, failed
            assert all([await v.wait_until(lambda v: v.status() is not None and v.status().step > 150, 60)
                        for v in viewers])
            await presenter.click("Reset")
            t_reset = time.monotonic()
            assert await presenter.wait_until(lambda v: "Start" in v.buttons() and not v.buttons()["Start"].disabled,
                                              30), presenter.buttons()
            await presenter.click("Start")
            # Each viewer's page moves to the new run (its step count starts again) on its own timers.
            # (seen as the step going back below where the old run was: 150+ steps, ~6 s of training).
            fresh = await asyncio.gather(*(v.wait_until(
                lambda v: state_is("Running")(v) and any(t > t_reset and line.step < 150 for t, line in v.status_log),
                60) for v in viewers))
            assert all(fresh), [(v.name, v.status()) for v in viewers]
            assert all(not v.exceptions() and not v.stats.errors and v.connected for v in viewers), \
                [(v.exceptions(), v.stats.errors) for v in viewers]
        finally:
            await close_viewers([presenter, *viewers])

    run(scenario(), timeout=180)


# --- the protocol model and the bench helpers, offline (no server) ---------------------------------
def forward(kind: str, *, run: str = "run-1", fragments=(), path=(), **fields) -> bytes:
    """A serialized ForwardMsg of one kind, with the run identity the server attaches."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    msg = ForwardMsg()
    msg.metadata.run.script_run_id = run
    msg.metadata.run.fragment_ids.extend(fragments)
    msg.metadata.delta_path.extend(path)
    if kind == "new_session":
        msg.new_session.config.max_cached_message_age = 2
        msg.new_session.page_script_hash = "page-hash"
    elif kind == "markdown":
        msg.delta.new_element.markdown.body = fields["body"]
        msg.delta.fragment_id = fields.get("fragment", "")
        if "hash" in fields:
            msg.hash, msg.metadata.cacheable = fields["hash"], True
    elif kind == "button":
        msg.delta.new_element.button.id, msg.delta.new_element.button.label = fields["id"], fields["label"]
    elif kind == "ref_hash":
        msg.ref_hash = fields["hash"]
    elif kind == "script_finished":
        msg.script_finished = fields.get("status", ForwardMsg.FINISHED_SUCCESSFULLY)
    elif kind == "auto_rerun":
        msg.auto_rerun.interval, msg.auto_rerun.fragment_id = fields["interval"], fields["fragment"]
    return msg.SerializeToString()


def test_the_page_model_reads_the_status_line_and_drops_what_a_run_did_not_redraw():
    v = Viewer("http://127.0.0.1:1/")
    running = forward("markdown", path=(0, 0), body="### Running · Step 1,234 · 5 steps/s")
    for raw in (forward("new_session"), running, forward("button", path=(0, 1), id="w-start", label="Start"),
                forward("script_finished")):
        v.handle_message(raw)
    assert v.status().state == "Running" and v.status().step == 1234
    assert v.buttons()["Start"].id == "w-start" and v.page_script_hash == "page-hash"
    # The next full run draws only the status line: the button is stale and goes, as in the frontend.
    paused = forward("markdown", run="run-2", path=(0, 0), body="### Paused · Step 1,300")
    for raw in (forward("new_session", run="run-2"), paused, forward("script_finished", run="run-2")):
        v.handle_message(raw)
    assert v.buttons() == {} and v.status().state == "Paused" and v.status().step == 1300
    assert [line.step for _, line in v.status_log] == [1234, 1300]


def test_cached_messages_are_declared_resolved_from_ref_hash_and_aged_out():
    v = Viewer("http://127.0.0.1:1/")
    v.handle_message(forward("new_session"))
    v.handle_message(forward("markdown", path=(0, 0), body="a big chart", hash="h1"))
    v.handle_message(forward("script_finished"))
    assert v.cached_hashes() == ["h1"]  # the next rerun tells the server we have it
    v.handle_message(forward("new_session", run="run-2"))
    v.handle_message(forward("ref_hash", run="run-2", path=(0, 0), hash="h1"))  # the server sends only the hash
    v.handle_message(forward("script_finished", run="run-2"))
    assert v.markdown() == ["a big chart"] and v.stats.cache_hits == 1
    for run in ("run-3", "run-4", "run-5"):  # unused for more than max_cached_message_age runs
        v.handle_message(forward("new_session", run=run))
        v.handle_message(forward("script_finished", run=run))
    assert v.cached_hashes() == []
    assert Viewer("http://127.0.0.1:1/", cache=False).cached_hashes() == []


def test_auto_rerun_timers_follow_the_frontend_rules():
    async def scenario():
        v = Viewer("http://127.0.0.1:1/")
        v.handle_message(forward("auto_rerun", interval=1.0, fragment="f1"))
        v.handle_message(forward("auto_rerun", interval=5.0, fragment="f2"))  # one timer per fragment
        assert v.timers() == {"f1": 1.0, "f2": 5.0}
        v.handle_message(forward("auto_rerun", interval=2.0, fragment="f1"))  # new interval: new timer
        assert v.timers() == {"f1": 2.0, "f2": 5.0}
        v.handle_message(forward("new_session", fragments=("f1",)))  # a fragment run keeps the timers
        assert v.timers() == {"f1": 2.0, "f2": 5.0}
        v.handle_message(forward("new_session", run="run-2"))  # a full run clears them
        assert v.timers() == {}
        await v.close()

    run(scenario(), 10)


def test_bench_helpers_for_the_viewers_part():
    from gan.tools import bench
    from gan.tools.viewers import StatusLine

    def line(step):
        return StatusLine("Running", step, "")

    presenter, viewer = [(1.0, line(10)), (3.0, line(30))], [(0.5, line(5)), (5.0, line(60))]
    assert bench.steps_per_sec([presenter, viewer], 0.0, 6.0) == pytest.approx((60 - 5) / 4.5)
    assert bench.steps_per_sec([presenter], 2.0, 6.0) is None  # one sample is no rate
    assert bench.cpu_seconds(os.getpid()) > 0
    assert bench.build_parser().parse_args(["--viewers", "1,30"]).viewers == [1, 30]
    with pytest.raises(SystemExit):
        bench.build_parser().parse_args(["--viewers", "0"])
