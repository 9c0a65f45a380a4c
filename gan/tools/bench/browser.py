"""The browser part: the real app in headless Chromium via Playwright (dashboard_vs_headless, tab heap growth).
Must not touch the user's runs folder (it uses a temporary one) nor leave the server running."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from gan.tools.bench.common import REPO
from gan.tools.bench.server import free_port, wait_http

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
STEP_RE = re.compile(r"Step\s+([\d,]+)")


def read_step(page, timeout: float = 60.0, above: int = -1) -> int | None:
    """The largest 'Step N' on the page, polled until one above ``above`` appears."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = [int(m.replace(",", "")) for m in STEP_RE.findall(page.inner_text("body"))]
        except Exception:  # noqa: BLE001 — page mid-rerender; poll again
            found = []
        if found and max(found) > above:
            return max(found)
        page.wait_for_timeout(200)
    return None


def must_read_step(page, what: str, timeout: float = 60.0, above: int = -1) -> int:
    """read_step, or a RuntimeError that quotes what the page says instead. ``above``: a window ends at the first
    step the page shows past its start (a page that has not refreshed yet, on a loaded machine, shows the same step:
    --quick's 6-s window once measured 0 steps/s beside the test suite's other worker)."""
    step = read_step(page, timeout, above)
    if step is None:
        try:
            text = " ".join(page.inner_text("body").split())[:300]
        except Exception as exc:  # noqa: BLE001 — only for the error message
            text = f"(page unreadable: {exc})"
        raise RuntimeError(f"no 'Step N' on the page {what}; the page says: {text}")
    return step


def heap_mb(cdp) -> float:
    """The tab's JS heap in use after a garbage collection, MB (DevTools protocol)."""
    cdp.send("HeapProfiler.collectGarbage")
    return cdp.send("Runtime.getHeapUsage")["usedSize"] / 2**20


def part_browser(args) -> dict:
    """dashboard_vs_headless and tab_heap_growth_mb: the real app (streamlit run app.py) in headless
    Chromium driven by Playwright; JS heap via the DevTools protocol."""
    from playwright.sync_api import sync_playwright

    if not (REPO / "app.py").is_file():
        raise RuntimeError("app.py is not in the tree yet")
    port = free_port()
    token = os.urandom(8).hex()  # the presenter lock (gan/workshop/auth.py): the bench is the presenter
    runs = tempfile.mkdtemp(prefix="gan-live-bench-browser-")  # its autosaves, not in the user's runs folder
    env = dict(os.environ, PYTHONUNBUFFERED="1", GAN_LIVE_TOKEN=token, GAN_LIVE_RUNS_DIR=runs)
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
           "--server.headless", "true", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
    server = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        if not wait_http(url + "_stcore/health", 60):
            raise RuntimeError("the app did not answer on its health endpoint within 60 s")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}?token={token}", wait_until="domcontentloaded")
            page.get_by_role("button", name=re.compile(r"^\W*Start")).first.click(timeout=60_000)
            if read_step(page, 120) is None:
                raise RuntimeError("no 'Step N' appeared on the page after pressing Start")
            page.wait_for_timeout(args.browser_warmup * 1000)  # settle: first charts, JIT, caches
            cdp = page.context.new_cdp_session(page)
            cdp.send("HeapProfiler.enable")
            heap0, step0, t0 = heap_mb(cdp), must_read_step(page, 'after warm-up'), time.monotonic()
            page.wait_for_timeout(args.heap_seconds * 1000)
            step1, t1 = must_read_step(page, 'after the heap window', above=step0), time.monotonic()
            heap1 = heap_mb(cdp)
            viewer_rate = (step1 - step0) / (t1 - t0)
            page.close()  # no viewer: the session ends, the run goes on in the server
            time.sleep(args.headless_seconds)  # nothing to poll: we measure what happens without us
            page = browser.new_page()
            page.goto(url, wait_until="domcontentloaded")
            step2, t2 = must_read_step(page, 'after reopening it', 120, above=step1), time.monotonic()
            headless_rate = (step2 - step1) / (t2 - t1)  # includes the reload: slightly pessimistic
            browser.close()
        return {"dashboard_vs_headless": viewer_rate / headless_rate, "tab_heap_growth_mb": heap1 - heap0,
                "tab_heap_start_mb": heap0, "tab_heap_end_mb": heap1, "heap_seconds": args.heap_seconds,
                "steps_per_sec_with_viewer": viewer_rate, "steps_per_sec_no_viewer": headless_rate}
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(runs, ignore_errors=True)
