"""The charts at projector sizes in a real browser: tests/apps/projector_app.py (the Train page's live panels on a
crowded run: loss switches 10 steps apart, two mode-collapse alarms close together) at 1280x720 and 1920x1080.

Checks what presenters met (issue 30): no marker label overprints another or the legend, the label width the
layout assumes (gan.viz.markers.label_width) is never narrower than the drawn text, and no chart title, axis
label or legend text is clipped by its chart. Skipped where there is no /usr/bin/chromium or no Playwright.
With GAN_LIVE_PROJECTOR_SHOTS=<folder> each size's screenshot is written there as charts-WxH.png
(docs/screenshots/projector/live-charts-crowded-WxH.png are copies).
"""

import os
from pathlib import Path

import pytest

from gan.tools.bench import free_port, start_app_server, stop_app_server, wait_http
from gan.viz import markers

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SIZES = [(1280, 720), (1920, 1080)]

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's /usr/bin/chromium")

# Every live chart's texts, in page pixels: [{title, svg, items: [{role, text, box}]}]. Vega's SVG puts each text in
# a group named by role (role-title, role-axis-label, role-legend-label, role-mark for the marker labels).
TEXTS = """() => [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)
  .flatMap(r => [...r.querySelectorAll('.host svg')]).map(svg => {
    const box = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
    const role = (t) => { const g = t.closest('[class*=role-]');
                          return g ? [...g.classList].find(c => c.startsWith('role-')) : ''; };
    return {svg: box(svg), host: box(svg.closest('.host')),
            title: [...svg.querySelectorAll('.role-title-text text')].map(t => t.textContent).join(' '),
            legend: [...svg.querySelectorAll('.role-legend')].map(box),
            items: [...svg.querySelectorAll('text')].filter(t => t.textContent.trim()).map(t => ({
              role: role(t), text: t.textContent, box: box(t)}))};
  })"""


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    port = free_port()
    proc = start_app_server(port, dict(os.environ, PYTHONPATH=str(ROOT)), tmp_path_factory.mktemp("log") / "log",
                            script="tests/apps/projector_app.py", extra=("--server.enableStaticServing", "true"))
    try:
        if not wait_http(f"http://127.0.0.1:{port}/_stcore/health", 90):
            raise RuntimeError("streamlit did not answer on its health endpoint within 90 s")
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop_app_server(proc)


@pytest.fixture(scope="module")
def browser(app_url):
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _intersect(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_labels_never_overprint_and_no_text_is_clipped(browser, app_url, size):
    width, height = size
    # A tall window so every chart is laid out at this width and on screen (Streamlit scrolls inside the page).
    page = browser.new_page(viewport={"width": width, "height": 1800})
    try:
        page.goto(app_url)
        page.wait_for_function("() => window.__ganLive && window.__ganLive.embeds >= 5", timeout=120_000)
        sync_api.expect(page.locator(".host svg").nth(4)).to_be_visible(timeout=60_000)
        page.wait_for_function(f"() => ({TEXTS})().every(c => c.items.length > 3)", timeout=60_000)
        found = page.evaluate(TEXTS)
        shots = os.environ.get("GAN_LIVE_PROJECTOR_SHOTS")
        if shots:
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=str(Path(shots) / f"charts-{width}x{height}.png"))
    finally:
        page.close()
    assert len(found) == 5  # loss, D outputs, histogram; score, coverage
    for chart in found:
        for item in chart["items"]:  # nothing drawn outside its chart: no clipped title, axis label or legend
            x0, y0, x1, y1 = item["box"]
            for frame in ("svg", "host"):  # the svg, and the cell that holds it (it clips what sticks out)
                sx0, sy0, sx1, sy1 = chart[frame]
                assert sx0 - 1 <= x0 and x1 <= sx1 + 1 and sy0 - 1 <= y0 and y1 <= sy1 + 1, (frame, chart["title"],
                                                                                             item, chart[frame])
    loss = next(c for c in found if c["title"].startswith("Loss"))
    labels = {}  # halo and text are two identical boxes: one label
    for item in loss["items"]:
        if item["role"] == "role-mark":
            labels[(item["text"], tuple(round(v) for v in item["box"]))] = item
    texts = sorted(t for t, _ in labels)
    assert texts == ["4 switches, now BCE", "mode collapse ×2"], texts  # one label per crowd, none dropped
    boxes = list(labels.values())
    for i, a in enumerate(boxes):
        assert a["box"][2] - a["box"][0] <= markers.label_width(a["text"]), a  # the layout's estimate holds
        for leg in loss["legend"]:
            assert not _intersect(a["box"], leg), (a, leg)
        for b in boxes[i + 1:]:
            assert not _intersect(a["box"], b["box"]), (a, b)
