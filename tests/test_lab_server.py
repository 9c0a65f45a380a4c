"""Lab mode on ONE real `streamlit run app.py` (GAN_LIVE_LAB=1, a presenter token), driven by simulated tabs
(gan/tools/viewers/): participants join on My run by name, the address keeps their seat, a second person with
the same name is told and offered another, a forged address or forged widget ids touch nobody else's run, the
queue tells its place, and the presenter's Room page shows the wall. Every wait polls with a timeout."""

import asyncio
import os
from pathlib import Path

import pytest

from gan.tools.bench import free_port, start_app_server, stop_app_server, wait_http
from gan.tools.bench.lab import NAME_LABEL, tiles
from gan.tools.viewers import Viewer, close_viewers

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "lab-test-token"
FIRST_RUN_S = 90.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    # Two participant slots (the cap counts the presenter's); a quality score every 20 steps.
    env = dict(os.environ, PYTHONPATH=str(ROOT), GAN_LIVE_TOKEN=TOKEN, GAN_LIVE_LAB="1", GAN_LIVE_MAX_RUNS="3",
               GAN_LIVE_METRICS_EVERY="0", GAN_LIVE_RUNS_DIR=str(tmp_path_factory.mktemp("runs")))
    log = tmp_path_factory.mktemp("log") / "server.log"
    proc = start_app_server(port, env, log)
    try:
        if not wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60):
            raise RuntimeError("streamlit did not answer on its health endpoint within 60 s")
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop_app_server(proc)
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, text[-3000:]


def run(coro, timeout: float = 240.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def state_is(*states):
    return lambda v: v.status() is not None and v.status().state in states


async def join(url: str, name: str) -> Viewer:
    tab = await Viewer(url, page="my_run", name=name).connect(FIRST_RUN_S)
    await tab.fill(NAME_LABEL, name, 30)
    await tab.click("Join", 30)
    assert await tab.wait_until(lambda v: "Start" in v.buttons(), 30), (tab.alerts(), tab.exceptions())
    return tab


def test_participants_train_their_own_runs_and_the_room_shows_them(server):
    async def scenario():
        tabs = []
        try:
            ada, bo = await join(server, "Ada"), await join(server, "Bo")
            tabs += [ada, bo]
            assert "me=Ada" in ada.query and "key=" in ada.query  # the seat lives in the address
            for tab in (ada, bo):
                await tab.click("Start", 30)
            assert await ada.wait_until(lambda v: state_is("Running")(v) and v.status().step > 0, 120), ada.alerts()
            assert await bo.wait_until(state_is("Running"), 120), bo.alerts()

            # A reload (a new tab with the same address) is the same run; the name alone is not.
            again = await Viewer(server, ada.query, page="my_run", name="ada-reload").connect(FIRST_RUN_S)
            tabs.append(again)
            assert await again.wait_until(state_is("Running", "Paused"), 30), again.markdown()
            other = await join(server, "Cy")
            tabs.append(other)
            intruder = await Viewer(server, "me=Ada", page="my_run", name="intruder").connect(FIRST_RUN_S)
            tabs.append(intruder)
            await intruder.fill(NAME_LABEL, "ada")
            await intruder.click("Join")
            assert await intruder.wait_until(lambda v: any("taken" in a for a in v.alerts()), 30), intruder.alerts()
            assert "Take “ada-2” instead" in intruder.buttons()

            # Cy is third: both participant slots are busy, so Cy waits and is told where.
            await other.click("Start", 30)
            assert await other.wait_until(lambda v: any("number **1** in the queue" in a for a in v.alerts()), 30)

            # Forged: Bo's name without Bo's key, with the Stop of My run pressed: Bo's run goes on.
            forger = await Viewer(server, "me=Bo&key=guess", page="my_run", name="forger").connect(FIRST_RUN_S)
            tabs.append(forger)
            stop_id = bo.buttons()["Stop"].id
            from streamlit.proto.WidgetStates_pb2 import WidgetState

            await forger.send_widget_states([WidgetState(id=stop_id, trigger_value=True)])
            assert await forger.wait_until(lambda v: any("does not hold the seat" in a for a in v.alerts()), 30)
            assert not await bo.wait_until(state_is("Stopped"), 3)  # bounded: it must NOT happen
            assert state_is("Running")(bo)

            # Ada pauses her own run: her tab shows it, Bo's does not change.
            await ada.click("Pause")
            assert await ada.wait_until(state_is("Paused"), 10)
            assert state_is("Running")(bo)

            # The presenter's Room: every seat's tile, Cy waiting; the Share panel's address has no token.
            room = await Viewer(server, f"token={TOKEN}", page="room", name="room").connect(FIRST_RUN_S)
            tabs.append(room)
            assert await room.wait_until(lambda v: {"Ada", "Bo"} <= set(tiles(v)), 30), room.markdown()
            assert any("Waiting: 1. Cy" in m for m in room.markdown())
            join_line = next(m for m in room.markdown() if m.startswith("#### Join:"))
            assert "/my_run" in join_line and TOKEN not in join_line and "token" not in join_line

            # Bo stops: the slot frees and Cy, first in the queue, starts by himself.
            await bo.click("Stop")
            assert await other.wait_until(state_is("Loading", "Running"), 30), other.alerts()
        finally:
            await close_viewers(tabs)

    run(scenario())


def test_a_participant_without_the_token_gets_no_presenter_controls_on_room_or_train(server):
    async def scenario():
        tab = await Viewer(server, page="room", name="peek").connect(FIRST_RUN_S)
        train = await Viewer(server, name="peek-train").connect(FIRST_RUN_S)
        try:
            assert await tab.wait_until(lambda v: any(m.startswith("### Room") for m in v.markdown()), 30)
            assert not {"Spotlight", "Stop", "Save to Compare"} & set(tab.buttons())
            assert not any(m.startswith("#### Join:") for m in tab.markdown())  # the Share panel is the presenter's
            assert "Start" not in train.buttons()
        finally:
            await close_viewers([tab, train])

    run(scenario(), 120)
