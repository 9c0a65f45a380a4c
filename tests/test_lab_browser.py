"""Lab mode in real Chromium (Playwright, Debian's /usr/bin/chromium): three participants, each in a browser
context of their own, open My run FIRST on a fresh server (as after scanning the QR code), join by name and
train; one more person trying a taken name is told and offered another; the presenter's Room page shows every
participant's grid and name, spotlights one and stops one; then the presenter turns the lab off on the Train page
and every participant's tab says their run was stopped and saved. Skipped without Chromium or Playwright."""

import os
import re
from pathlib import Path

import pytest

from gan.tools.bench import free_port, start_app_server, stop_app_server, wait_http
from gan.tools.bench.browser import CHROMIUM

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "lab-browser-token"
LOAD_MS = 90_000  # the first page of a fresh server imports torch and spawns the workers on a loaded 2-core box

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's /usr/bin/chromium")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    runs = tmp_path_factory.mktemp("runs")
    env = dict(os.environ, PYTHONPATH=str(ROOT), GAN_LIVE_TOKEN=TOKEN, GAN_LIVE_LAB="1", GAN_LIVE_MAX_RUNS="4",
               GAN_LIVE_METRICS_EVERY="0", GAN_LIVE_RUNS_DIR=str(runs), GAN_LIVE_LAB_WORKERS="1")
    proc = start_app_server(port, env, runs / "server.log")
    try:
        if not wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60):
            raise RuntimeError("streamlit did not answer on its health endpoint within 60 s")
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop_app_server(proc)


def status(page) -> str:
    return page.get_by_text(re.compile(r"^(Loading|Running|Paused|Stopped|Failed)\b")).first.inner_text(
        timeout=LOAD_MS)


def pick(room, name: str) -> None:
    """Choose a participant's run on the Room page (one pill per participant)."""
    room.get_by_role("radiogroup", name="Act on the run of").get_by_role("radio", name=name, exact=True).click(
        timeout=LOAD_MS)
    sync_api.expect(room.get_by_role("button", name="Spotlight", exact=True)).to_be_enabled(timeout=30_000)


def test_three_participants_the_room_and_the_lab_switch(server, browser, tmp_path):
    expect = sync_api.expect
    contexts = [browser.new_context(viewport={"width": 1280, "height": 800}) for _ in range(5)]
    try:
        people = {}
        for name, ctx in zip(("Ada", "Bo", "Cy"), contexts):
            page = ctx.new_page()
            page.goto(server + "my_run")  # the first request of a fresh server names a page: app.py still runs
            page.get_by_label("Your name").fill(name, timeout=LOAD_MS)
            page.get_by_role("button", name="Join").click()
            expect(page).to_have_url(re.compile(rf"me={name}&key=[\w-]"), timeout=30_000)
            # app.py's menu, not Streamlit's list of every file in pages/ (helpers included)
            expect(page.get_by_role("link", name="Room")).to_be_visible()
            expect(page.get_by_text("shared", exact=True)).to_have_count(0)
            people[name] = page
        for page in people.values():
            page.get_by_role("button", name="Start").click()
        addresses = {}
        for name, page in people.items():
            expect(page.get_by_text(re.compile(r"^Running · Step [1-9]"))).to_be_visible(timeout=LOAD_MS)
            addresses[name] = page.url
            page.goto("about:blank")  # two cores: three tabs drawing charts every second starve the Room's tab

        # Somebody else typing a taken name is told, and offered a free one.
        late = contexts[3].new_page()
        late.goto(server + "my_run")
        late.get_by_label("Your name").fill("ada", timeout=LOAD_MS)
        late.get_by_role("button", name="Join").click()
        expect(late.get_by_text("“Ada” is taken.")).to_be_visible(timeout=30_000)
        late.get_by_role("button", name="Take “ada-2” instead").click()
        expect(late).to_have_url(re.compile(r"me=ada-2&key="), timeout=30_000)

        # The presenter's Room: a tile per participant with its name; spotlight Bo, stop Cy.
        room = contexts[4].new_page()
        room.goto(server + f"room?token={TOKEN}")
        for name in people:
            expect(room.get_by_text(name, exact=True).first).to_be_visible(timeout=LOAD_MS)
        expect(room.locator("[data-testid='stImage'] img")).to_have_count(4, timeout=60_000)  # 3 grids + QR
        room.screenshot(path=str(tmp_path / "room.png"), full_page=True)
        pick(room, "Bo")
        room.get_by_role("button", name="Spotlight", exact=True).click()
        expect(room.get_by_text("Spotlight: Bo")).to_be_visible(timeout=30_000)
        expect(room.get_by_text(re.compile(r"^Running · Step"))).to_be_visible(timeout=30_000)
        pick(room, "Cy")
        room.get_by_role("button", name="Stop", exact=True).click()
        # Their addresses bring them back (a closed lid, a reload): Cy's run stopped, Ada's trains on.
        people["Cy"].goto(addresses["Cy"])
        expect(people["Cy"].get_by_text(re.compile(r"^Stopped · Step"))).to_be_visible(timeout=LOAD_MS)
        people["Ada"].goto(addresses["Ada"])
        expect(people["Ada"].get_by_text(re.compile(r"^Running · Step"))).to_be_visible(timeout=LOAD_MS)
        people["Cy"].goto("about:blank")

        # Lab off, from the Train page's Workshop area: every participant's run stops, saved, and they are told.
        room.goto(server + f"?token={TOKEN}")
        room.get_by_text("Workshop: presets").click()
        room.get_by_role("tab", name="Lab: everyone trains").click()
        room.get_by_text("Lab mode: every participant trains").click()
        for name in ("Ada", "Bo"):  # Ada's tab was open all along; Bo's comes back to the notice
            if name == "Bo":
                people[name].goto(addresses[name])
            expect(people[name].get_by_text(re.compile(r"The presenter closed the lab at .*stopped and saved"))
                   ).to_be_visible(timeout=LOAD_MS)
    finally:
        for ctx in contexts:
            ctx.close()
