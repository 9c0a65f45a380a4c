"""Real-browser tests: ONE `streamlit run app.py` (with a presenter token) driven by Playwright on
Debian's Chromium.

The presenter (?token=...): Start, the step number grows, the charts and the sample grid appear, a
click on MSE shows its equilibrium 0.25, a reload reattaches to the same still-advancing run, Stop
ends it. A viewer without the token (or with a wrong one) sees that run but no Start button. The
Theory page renders 0.693 and 0.25. Skipped where there is no /usr/bin/chromium or no Playwright.
Screenshots go to this session's pytest temporary folder (screenshots/), or to the folder of
GAN_LIVE_SCREENSHOT (a .png path) when set. The tests share the server and run in file order.
"""

import os
import re
import signal
import time
from pathlib import Path

import pytest

from gan.tools import procs
from gan.tools.bench import free_port, start_app_server, stop_app_server, wait_http
from gan.tools.bench.browser import CHROMIUM

ROOT = Path(__file__).resolve().parents[1]
STEP = re.compile(r"Step ([\d,]+)")
TOKEN = "browser-test-token"

sync_api = pytest.importorskip("playwright.sync_api")
from browsing import open_popover, script_idle  # noqa: E402 (after the skip: it imports playwright)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's /usr/bin/chromium")


class ServerURL(str):
    """The app's base URL, carrying the server's pid (a test kills its training worker)."""

    pid: int
    runs: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    runs = tmp_path_factory.mktemp("runs")
    env = dict(os.environ, GAN_LIVE_MAX_RUNS="1", PYTHONPATH=str(ROOT), GAN_LIVE_TOKEN=TOKEN,
               GAN_LIVE_RUNS_DIR=str(runs), GAN_LIVE_AUTOSAVE_S="2",  # autosave every 2 s of training, not 30
               GAN_LIVE_TRAINER="process")  # the product's default: training in the worker process
    proc = start_app_server(port, env, runs / "server.log")
    try:
        if not wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60):
            raise RuntimeError("streamlit did not answer on its health endpoint within 60 s")
        url = ServerURL(f"http://127.0.0.1:{port}/")
        url.pid, url.runs = proc.pid, runs
        yield url
    finally:
        stop_app_server(proc)  # the server's own process group: its worker goes with it


@pytest.fixture(scope="module")
def screenshot(tmp_path_factory) -> Path:
    """Where the dashboard's screenshot goes (the others beside it): GAN_LIVE_SCREENSHOT, or this session's own
    temporary folder, never a fixed shared path that two test sessions on one machine would overwrite."""
    chosen = os.environ.get("GAN_LIVE_SCREENSHOT")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots") / "dashboard.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})  # its own cookies: a new session
    page = context.new_page()
    page.set_default_timeout(60_000)
    sync_api.expect.set_options(timeout=60_000)  # the first page load imports torch
    try:
        yield page
    finally:
        context.close()


def button(page, key: str):
    """A dashboard button by its widget key (Streamlit marks the container with st-key-<key>)."""
    return page.locator(f".st-key-{key} button")


def step_number(page) -> int:
    """The step from the status line ("Running · Step 1,234 · ..."); -1 while there is none."""
    status = page.get_by_text(STEP).first
    if status.count() == 0:
        return -1
    match = STEP.search(status.inner_text())
    return int(match.group(1).replace(",", "")) if match else -1


def wait_step_above(page, floor: int, timeout_s: float = 60.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        step = step_number(page)
        if step > floor:
            return step
        page.wait_for_timeout(200)  # the poll interval of this bounded loop; the step decides
    raise AssertionError(f"the step did not pass {floor} within {timeout_s:.0f} s (last seen {step_number(page)})")


def test_dashboard_in_a_real_browser(server, page, screenshot):
    page.goto(f"{server}?token={TOKEN}")  # the presenter's link
    start = button(page, "start")
    sync_api.expect(start).to_be_enabled()
    start.click()

    first = wait_step_above(page, 0)
    later = wait_step_above(page, first)  # the number grows while the page only refreshes
    assert later > first
    # The three charts (drawn in the browser by the live-chart component) and the sample grid appear.
    sync_api.expect(page.locator(".host svg").nth(2)).to_be_visible()
    sync_api.expect(page.locator(".host img").first).to_be_visible()

    page.locator(".st-key-loss").get_by_role("radio", name=re.compile("^MSE")).click()
    sync_api.expect(page.get_by_text("equilibrium: D 0.25 · G 0.25").first).to_be_visible()
    wait_step_above(page, step_number(page))
    page.screenshot(path=str(screenshot), full_page=True)

    before_reload = step_number(page)
    page.reload()  # the URL keeps ?token=, so the controls come back
    after_reload = wait_step_above(page, before_reload)  # same run: the count did not restart
    wait_step_above(page, after_reload)  # and it is still advancing
    sync_api.expect(page.get_by_text("equilibrium: D 0.25 · G 0.25").first).to_be_visible()
    sync_api.expect(button(page, "start")).to_be_disabled()

    button(page, "stop").click()
    sync_api.expect(page.get_by_text(re.compile(r"Stopped · Step"))).to_be_visible()
    stopped_at = step_number(page)
    # A stopped run stays put: a fresh render of the page (after the reload, an event, not a fixed wait) shows
    # the same step. A run still training would be hundreds of steps further by then.
    page.reload()
    sync_api.expect(page.get_by_text(re.compile(r"Stopped · Step"))).to_be_visible()
    assert step_number(page) == stopped_at


HIST_BARS = "() => { const s = [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)" \
            ".flatMap(r => [...r.querySelectorAll('.host svg')]).find(s => s.textContent.includes('D outputs on'));" \
            " return s ? [...s.querySelectorAll('.mark-rect path')].map(p => p.getAttribute('d')).join('|') : null; }"
REPLAY_GRID = re.compile(r"Replay: samples from fixed noise at step ([\d,]+)")


def replayed_step(page) -> int:
    text = page.get_by_text(REPLAY_GRID).first.inner_text()
    return int(REPLAY_GRID.search(text).group(1).replace(",", ""))


def test_replay_drags_the_grid_the_histogram_and_the_coach_back_together(server, page, screenshot):
    """Replay: dragging the scrubber moves the sample grid, the batch histogram and the coach to the same
    earlier step, with a cursor on the line charts; Live returns to the run as it is now."""
    page.goto(f"{server}?token={TOKEN}&preset=textbook")  # the MLP pair: 350 steps in seconds, not a minute
    page.get_by_text("Workshop: presets").click()
    page.locator(".st-key-start_preset button").click()
    sync_api.expect(page.locator(".st-key-start_preset button")).to_be_hidden()  # the area folds itself
    wait_step_above(page, 350, timeout_s=180)  # four sample points or more (one every 100 steps)
    button(page, "stop").click()
    sync_api.expect(page.get_by_text(re.compile(r"Stopped · Step"))).to_be_visible()

    page.locator(".st-key-replay label").click()
    sync_api.expect(page.get_by_text(re.compile(r"Replay · Step [\d,]+ of"))).to_be_visible()
    sync_api.expect(page.get_by_text(REPLAY_GRID)).to_be_visible()
    last = replayed_step(page)
    assert last >= 300
    page.wait_for_function(f"() => ({HIST_BARS})() !== null")
    bars = page.evaluate(HIST_BARS)

    # Drag the scrubber's thumb to 40 % of its track: an earlier sample point, with its own batch of D outputs.
    slider = page.locator(".st-key-replay_step")  # Streamlit's react-aria slider: a track holding the thumb
    track = slider.locator("div[data-rac][data-orientation=horizontal][style*='touch-action']").bounding_box()
    thumb = slider.locator("div[data-rac][style*='translate']")
    box = thumb.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + 0.4 * track["width"], box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    sync_api.expect(page.get_by_text(re.compile(r"Replay · Step [\d,]+ of"))).to_be_visible()
    deadline = time.monotonic() + 60
    while replayed_step(page) == last and time.monotonic() < deadline:
        page.wait_for_timeout(200)  # the poll interval of this bounded loop; the replayed step decides
    earlier = replayed_step(page)
    assert 0 < earlier < last and earlier % 100 == 0
    sync_api.expect(page.get_by_text(f"Replay: histogram of the batch at step {earlier:,}")).to_be_visible()
    page.wait_for_function(f"bars => ({HIST_BARS})() !== bars", arg=bars)  # the histogram redrew
    assert page.get_by_text(re.compile(r"Coach · ")).count() >= 1  # the coach's reading at that step
    page.screenshot(path=str(screenshot.with_name("replay.png")), full_page=True)

    button(page, "replay_live").click()
    sync_api.expect(page.get_by_text(re.compile(r"Stopped · Step"))).to_be_visible()
    sync_api.expect(page.get_by_text(REPLAY_GRID)).to_have_count(0)  # the live grid again
    sync_api.expect(page.get_by_text(re.compile(r"^Samples from fixed noise at step"))).to_be_visible()


def test_your_images_upload_with_a_preview_and_train(server, page, tmp_path, screenshot):
    """The presenter picks "your images", uploads a .zip of photographed doodles, sees 64 of them as the GAN will,
    and Start trains on them (in the worker process)."""
    from test_own_images import write_zip

    from gan.core.data import load_dataset

    real = load_dataset("mnist5k").images[::50][:100]
    digits = ((real.squeeze(1).numpy() + 1) * 127.5).round().astype("uint8")
    path = write_zip(tmp_path / "doodles.zip", digits, 80)
    page.goto(f"{server}?token={TOKEN}")
    sync_api.expect(button(page, "start")).to_be_enabled()
    page.locator(".st-key-dataset").click()
    page.get_by_role("option", name="your images (upload)").click()
    page.locator(".st-key-own_upload input[type=file]").set_input_files(str(path))
    sync_api.expect(page.get_by_text(re.compile(r"64 of your images as the GAN sees them\. 80 images from "
                                                r"doodles\.zip; 80 inverted"))).to_be_visible()
    button(page, "start").click()
    sync_api.expect(page.get_by_text(re.compile(r"Running · Step [\d,]+ · .* · your images"))).to_be_visible()
    wait_step_above(page, 100)  # the charts are up by then (docs/own_images.png)
    page.screenshot(path=str(screenshot.with_name("own_images.png")), full_page=False)
    button(page, "stop").click()
    sync_api.expect(page.get_by_text(re.compile(r"Stopped · Step"))).to_be_visible()


def test_the_presenter_keeps_the_controls_after_a_page_switch_and_a_reload(server, page):
    """Streamlit drops ?token= from the address on a page switch; the page puts it back, so a reload mid-workshop
    does not turn the presenter into a viewer."""
    page.goto(f"{server}?token={TOKEN}")
    sync_api.expect(button(page, "start")).to_be_visible()
    page.get_by_role("link", name="Samples", exact=True).click()
    page.wait_for_url(re.compile(r"/samples\?(.*&)?token="), timeout=30_000)
    page.get_by_role("link", name="Train", exact=True).click()
    page.wait_for_url(re.compile(rf":\d+/\?(.*&)?token={TOKEN}"), timeout=30_000)  # the Train page's address
    page.reload()
    sync_api.expect(button(page, "start")).to_be_visible()
    sync_api.expect(page.get_by_text("Read-only view")).to_have_count(0)


@pytest.mark.parametrize("query", ["", "?token=wrong"])
def test_viewers_without_the_token_see_the_run_but_no_controls(server, page, query):
    page.goto(f"{server}{query}")
    notice = "not right" if query else "Read-only view"
    sync_api.expect(page.get_by_text(notice)).to_be_visible()
    sync_api.expect(page.get_by_text(STEP).first).to_be_visible()  # the run of the test above
    assert button(page, "start").count() == 0 and button(page, "stop").count() == 0
    assert page.get_by_text("Workshop: presets").count() == 0

    page.goto(f"{server}?token={TOKEN}")  # the same browser session, now with the right token
    sync_api.expect(button(page, "start")).to_be_enabled()


def test_several_tabs_follow_the_presenter(server, browser):
    """A small room: the presenter and three viewer tabs. Each tab's step advances and its charts draw;
    the presenter's Pause and loss switch reach every tab; no tab loads anything from outside."""
    contexts = [browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(4)]
    try:
        tabs = [c.new_page() for c in contexts]
        outside = []
        for tab in tabs:
            tab.set_default_timeout(60_000)
            tab.on("request", lambda r: outside.append(r.url) if r.url.startswith(("http", "ws"))
                   and not r.url.startswith(server.rstrip("/")) else None)
        presenter, viewers = tabs[0], tabs[1:]
        presenter.goto(f"{server}?token={TOKEN}")
        for tab in viewers:
            tab.goto(server)
        if button(presenter, "start").is_enabled():  # the run of an earlier test may have been stopped
            button(presenter, "start").click()
        else:
            button(presenter, "stop").click()
            sync_api.expect(button(presenter, "start")).to_be_enabled()
            button(presenter, "start").click()
        for tab in viewers:
            first = wait_step_above(tab, 0)
            wait_step_above(tab, first)  # each tab's own refresh timer advances it
            sync_api.expect(tab.locator(".host svg").nth(2)).to_be_visible()
        button(presenter, "pause_resume").click()
        for tab in viewers:
            sync_api.expect(tab.get_by_text(re.compile(r"Paused · Step"))).to_be_visible(timeout=15_000)
        button(presenter, "pause_resume").click()  # Resume
        presenter.locator(".st-key-loss").get_by_role("radio", name=re.compile("^Hinge")).click()
        for tab in viewers:
            sync_api.expect(tab.get_by_text("equilibrium: D 1 · G 0").first).to_be_visible(timeout=15_000)
        assert not outside, outside[:5]
    finally:
        for c in contexts:
            c.close()


def test_a_killed_worker_shows_its_cause_on_every_tab(server, browser):
    """kill -9 of the training process mid-run: each open tab says so (with the cause) within seconds,
    the charts stay, and the presenter can start again."""
    contexts = [browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(3)]
    try:
        tabs = [c.new_page() for c in contexts]
        presenter, viewers = tabs[0], tabs[1:]
        presenter.goto(f"{server}?token={TOKEN}")
        for tab in viewers:
            tab.goto(server)
        if not button(presenter, "start").is_enabled():
            button(presenter, "stop").click()
            sync_api.expect(button(presenter, "start")).to_be_enabled()
        folders = set(server.runs.glob("live/*"))  # the earlier tests' runs
        button(presenter, "start").click()
        for tab in tabs:
            wait_step_above(tab, 0)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not [
                f for f in server.runs.glob("live/*/autosave-*.pt") if f.parent not in folders]:
            time.sleep(0.2)  # polling the runs folder for this run's first autosave (2 s of training)
        worker = procs.training_worker_pid(server.pid)
        assert worker is not None, procs.children(server.pid)
        os.kill(worker, signal.SIGKILL)
        t0 = time.monotonic()
        for tab in tabs:
            sync_api.expect(tab.get_by_text(re.compile("training process was killed by SIGKILL"))).to_be_visible(
                timeout=15_000)
        assert time.monotonic() - t0 < 15
        sync_api.expect(tabs[1].locator(".host svg").nth(2)).to_be_visible()  # what the run did stays
        assert button(tabs[1], "continue_run").count() == 0  # a viewer gets no Continue
        cont = presenter.get_by_role("button", name=re.compile(r"^Continue run"))
        sync_api.expect(cont).to_be_visible()  # the presenter does
        saved = int(re.search(r"from step ([\d,]+)", cont.inner_text()).group(1).replace(",", ""))
        cont.click()  # a fresh worker (spawned now: seconds) continues from the last autosave
        running = presenter.get_by_text(re.compile(r"Running · Step"))
        sync_api.expect(running).to_be_visible(timeout=60_000)
        assert step_number(presenter) >= saved  # it goes on from the autosave, not from 0
    finally:
        for c in contexts:
            c.close()


def test_theory_page_renders_the_equilibrium_values(server, page):
    page.goto(f"{server}theory")
    sync_api.expect(page.get_by_role("heading", name=re.compile("where 0.693 and 0.25 come from"))).to_be_visible()
    sync_api.expect(page.get_by_text("0.693").first).to_be_visible()
    sync_api.expect(page.get_by_text("0.25").first).to_be_visible()
    sync_api.expect(page.locator(".stVegaLiteChart canvas, .stVegaLiteChart svg").first).to_be_visible()


# Every widget key that acts on the run or the files: none may ever be on a viewer's page.
PRESENTER_KEYS = ("start", "stop", "pause_resume", "step", "reset", "loss", "start_preset", "save_snapshot",
                  "ckpt_upload", "load_upload", "continue_run", "compare_upload", "compare_add",
                  "compare_delete", "checkpoint_download", "start_branch")
PAGES = {  # page -> an element drawn after every presenter control of that page: its run has got that far
    "Train": lambda p: p.get_by_text(STEP).first,
    "Samples": lambda p: p.locator(".st-key-interp_t"),
    "Compare": lambda p: p.locator("[data-testid='stDataFrame']"),
    "Theory": lambda p: p.locator(".st-key-entropy_p"),  # no presenter controls on this page at all
}


def test_a_viewer_clicking_through_every_page_and_reloading_never_gets_a_control(server, browser, tmp_path):
    """Hostile tokens in the URL, each page of the navigation, reloads: not one presenter control, while the
    presenter, on the same pages, has them (so the check cannot pass on a page that did not draw)."""
    from gan.core.config import Config
    from gan.engine.status import RunState
    from gan.engine.trainer import Trainer
    from gan.workshop.snapshots import SnapshotStore

    t = Trainer(Config(model="mlp", width=32, batch_size=16, device="cpu"), name="snap")
    t.start(stop_at_step=2)  # pauses there
    assert t.wait_until(lambda t: t.step_count >= 2 and t.state == RunState.PAUSED, timeout=60)
    SnapshotStore(server.runs / "snapshots").save("a-snapshot", t)
    t.stop()  # Compare then offers Delete to the presenter

    def shown_keys(page) -> list[str]:
        return [k for k in PRESENTER_KEYS if page.locator(f".st-key-{k}").count()]

    contexts = [browser.new_context(viewport={"width": 1400, "height": 900}) for _ in range(2)]
    try:
        presenter, viewer = (c.new_page() for c in contexts)
        for tab in (presenter, viewer):
            tab.set_default_timeout(60_000)
        sync_api.expect.set_options(timeout=60_000)
        presenter.goto(f"{server}?token={TOKEN}")
        if button(presenter, "start").is_enabled():
            button(presenter, "start").click()  # a live run: the Train page draws its whole panel
        wait_step_above(presenter, 0)
        # Two hostile URLs click through every page here; tests/test_viewers.py sends more (upper case, empty,
        # a space in front) over real websockets, and the test above the empty and the wrong token.
        for query in (f"?token={TOKEN}x", f"?token=wrong&token={TOKEN[:-1]}&preset=mode_collapse"):
            viewer.goto(f"{server}{query}")
            for name, drawn in PAGES.items():
                viewer.get_by_role("link", name=name, exact=True).click()
                sync_api.expect(drawn(viewer)).to_be_visible()
                assert shown_keys(viewer) == [], (query, name)
                assert viewer.get_by_text("Run settings").count() == 0
                assert viewer.locator("input[type=file]").count() == 0
            viewer.get_by_role("link", name="Train", exact=True).click()
            sync_api.expect(PAGES["Train"](viewer)).to_be_visible()
            viewer.reload()  # the URL now has no token: still nothing
            sync_api.expect(PAGES["Train"](viewer)).to_be_visible()
            assert shown_keys(viewer) == [], (query, "reload")
        # The control: on the same pages the presenter does get them.
        presenter.get_by_role("link", name="Compare", exact=True).click()
        sync_api.expect(presenter.get_by_text("Delete a snapshot")).to_be_visible()
        assert "compare_upload" in shown_keys(presenter)
        presenter.get_by_role("link", name="Samples", exact=True).click()
        sync_api.expect(presenter.locator(".st-key-checkpoint_download")).to_be_visible()
        presenter.get_by_role("link", name="Train", exact=True).click()
        sync_api.expect(button(presenter, "stop")).to_be_visible()
        assert {"stop", "pause_resume", "loss", "reset"} <= set(shown_keys(presenter))
    finally:
        for c in contexts:
            c.close()


# Text cut by its box: an element that clips (overflow hidden/clip, or an ellipsis) whose text is wider than it is;
# a selectbox shows its value in an <input role=combobox>, which clips too.
# Charts (svg/canvas/img/iframe) are checked by tests/test_projector.py; here every label, button, tab and value.
CUT_TEXT = """() => [...document.querySelectorAll('[data-testid=stMain] *, [data-testid=stSidebar] *')]
  .filter(e => e.getClientRects().length && (e.textContent.trim() || e.getAttribute('role') === 'combobox')
               && e.textContent.length < 300
               && !e.querySelector('svg text, canvas, img, iframe') && e.closest('.host') === null
               && e.closest('.katex-mathml') === null && e.clientWidth > 1)  // screen-reader-only copies
  .filter(e => { const s = getComputedStyle(e);
                 return s.textOverflow === 'ellipsis' || ['hidden', 'clip'].includes(s.overflowX); })
  .filter(e => e.scrollWidth > e.clientWidth + 1)
  .map(e => ({text: (e.textContent.trim() || e.value).slice(0, 80), scroll: e.scrollWidth, client: e.clientWidth,
              cls: e.className.toString().slice(0, 60)}))"""


def cut_text_settled(page, timeout_s: float = 15.0) -> list:
    """CUT_TEXT once the page's layout has settled: polled until two readings 0.25 s apart find nothing cut, or the
    time is up (then the last cut found). A page under load lays out in steps (a column measured before its final
    width), and a label cut for a moment is not cut; one that stays cut fails."""
    deadline, clean = time.monotonic() + timeout_s, 0
    while True:
        cut = page.evaluate(CUT_TEXT)
        clean = 0 if cut else clean + 1
        if clean == 2 or time.monotonic() > deadline:
            return cut
        page.wait_for_timeout(250)  # the poll interval of this bounded loop


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)], ids=["1280x720", "1920x1080"])
def test_no_label_on_the_train_page_is_cut_at_projector_sizes(server, browser, size, tmp_path):
    """Issue 30: at both projector sizes, with a live run, a snapshot to branch from and the Workshop area open
    on each of its tabs, no label, button, tab, value or caption of the Train page is cut, nor of Samples, Compare
    and Theory; and a refused checkpoint upload says so beside its button, on screen."""
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        sync_api.expect.set_options(timeout=60_000)
        page.goto(f"{server}?token={TOKEN}")
        sync_api.expect(button(page, "start")).to_be_visible()
        if button(page, "start").is_enabled():
            button(page, "start").click()
        wait_step_above(page, 0)
        sync_api.expect(page.locator(".st-key-replay")).to_be_visible()
        page.get_by_text("Workshop: presets").click()
        page.get_by_role("tab", name="Snapshots and branches").click()
        page.locator(".st-key-snapshot_name input").fill(f"projector-{size[0]}")
        page.locator(".st-key-snapshot_name input").press("Enter")
        button(page, "save_snapshot").click()
        sync_api.expect(page.get_by_text(f"projector-{size[0]}").first).to_be_visible()
        for tab in ("Failure-mode presets", "Slow motion and stepping", "Snapshots and branches"):
            page.get_by_role("tab", name=tab).click()
            sync_api.expect(page.get_by_role("tab", name=tab)).to_have_attribute("aria-selected", "true")
            assert cut_text_settled(page) == [], tab
        sync_api.expect(page.locator(".st-key-branch_from")).to_be_visible()  # the branch row was measured too
        for name, drawn in PAGES.items():  # and every other page, as the presenter sees it
            if name == "Train":
                continue
            page.get_by_role("link", name=name, exact=True).click()
            sync_api.expect(drawn(page)).to_be_visible()
            assert cut_text_settled(page) == [], name
        page.get_by_role("link", name="Train", exact=True).click()
        sync_api.expect(page.get_by_text("Workshop: presets")).to_be_visible()
        script_idle(page)  # the Train page's run has sent all its elements
        page.get_by_text("Workshop: presets").click()
        page.get_by_role("tab", name="Snapshots and branches").click()

        bad = tmp_path / "notes.pt"
        bad.write_bytes(b"just some text")
        open_popover(page, "Load a checkpoint file", ".st-key-ckpt_upload input[type=file]")
        page.locator(".st-key-ckpt_upload input[type=file]").set_input_files(str(bad))
        sync_api.expect(button(page, "load_upload")).to_be_enabled()
        button(page, "load_upload").click()
        refusal = page.get_by_text("Checkpoint refused: notes.pt")
        sync_api.expect(refusal).to_be_visible()
        sync_api.expect(refusal).to_be_in_viewport()  # beside the button pressed: no scrolling to find it
    finally:
        context.close()
