"""Projector screenshots of every page: `python -m gan.tools.screenshots [--out docs/screenshots/projector]`.

Starts `streamlit run app.py` (locked, with a presenter token) on a free port, trains the "textbook" preset for a
few hundred steps, saves a snapshot (so Compare has something to overlay), stops the run and then photographs
Train (the presenter's view), Samples, Compare and Theory at 1280x720 and 1920x1080 in Chromium, plus the Train
page with the Workshop area open. Each shot is the first screen (what the room sees without scrolling) and the
full page. Needs Playwright and Debian's /usr/bin/chromium (the test extras). The shots are looked at by a person:
issue 30 asked for the dashboard to read well projected.
"""

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

from gan.tools.bench import free_port, start_app_server, stop_app_server, wait_http
from gan.tools.bench.browser import CHROMIUM, CHROMIUM_ARGS

SIZES = ((1280, 720), (1920, 1080))
PAGES = ("train", "samples", "compare", "theory")
TOKEN = "screenshots"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gan.tools.screenshots", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/screenshots/projector", help="folder for the PNG files")
    p.add_argument("--steps", type=int, default=3000, help="steps of the textbook preset before the shots")
    args = p.parse_args(argv)
    from playwright.sync_api import expect, sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gan-live-shots-"))
    port = free_port()
    env = dict(os.environ, GAN_LIVE_TOKEN=TOKEN, GAN_LIVE_RUNS_DIR=str(work / "runs"), GAN_LIVE_METRICS_EVERY="100")
    server = start_app_server(port, env, work / "server.log")
    base = f"http://127.0.0.1:{port}/"
    try:
        if not wait_http(f"{base}_stcore/health", 120):
            print(f"error: the server did not start; see {work / 'server.log'}", file=sys.stderr)
            return 1
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.set_default_timeout(180_000)
            expect.set_options(timeout=180_000)
            page.goto(f"{base}?token={TOKEN}&preset=textbook")
            page.get_by_text("Workshop: presets").click()
            page.locator(".st-key-start_preset button").click()
            step = re.compile(r"Running · Step ([\d,]+)")
            expect(page.get_by_text(step)).to_be_visible()
            page.wait_for_function(  # the run's own counter, not a fixed wait
                f"() => {{ const m = document.body.innerText.match(/Running · Step ([\\d,]+)/);"
                f" return m && +m[1].replace(/,/g, '') >= {args.steps}; }}")
            page.get_by_text("Workshop: presets").click()
            page.get_by_role("tab", name="Snapshots and branches").click()
            page.locator(".st-key-snapshot_name input").fill("textbook-early")
            page.locator(".st-key-snapshot_name input").press("Enter")
            page.locator(".st-key-save_snapshot button").click()
            expect(page.get_by_text("Saved snapshot")).to_be_visible()
            page.get_by_text("Workshop: presets").click()
            page.locator(".st-key-stop button").click()
            expect(page.get_by_text(re.compile(r"Stopped · Step"))).to_be_visible()
            page.close()
            for width, height in SIZES:
                view = browser.new_page(viewport={"width": width, "height": height})
                view.set_default_timeout(120_000)
                for name in PAGES:
                    view.goto(f"{base}{'' if name == 'train' else name}?token={TOKEN}")
                    view.wait_for_load_state("networkidle")
                    view.wait_for_timeout(2500)  # not a synchronisation: the charts finish their layout
                    view.screenshot(path=str(out / f"{name}-{width}x{height}.png"))
                    if name == "train":
                        view.get_by_text("Workshop: presets").click()
                        view.wait_for_timeout(1000)
                        view.screenshot(path=str(out / f"train-workshop-{width}x{height}.png"))
                view.close()
            browser.close()
    finally:
        stop_app_server(server)
    print(f"screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
