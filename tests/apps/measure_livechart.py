"""Server CPU per fragment rerun: live charts (browser draws) vs st.altair_chart (server builds).

    python tests/apps/measure_livechart.py [--tabs 2] [--seconds 15] [--modes empty,live_pre,live,altair]

For each mode of tests/apps/livechart_app.py: one `streamlit run`, N headless Chromium tabs, a warm-up
until every tab has rerun twice, then the server process's CPU time (utime + stime from /proc) over a
window, divided by the fragment reruns counted in that window. Not a test: numbers depend on the machine.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def measure(mode: str, tabs: int, seconds: float, port: int) -> tuple[float, int]:
    from playwright.sync_api import sync_playwright

    counter = Path(tempfile.mkstemp(prefix="reruns-")[1])
    env = dict(os.environ, PYTHONPATH=str(ROOT), GAN_LIVE_RERUN_COUNTER=str(counter))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "tests/apps/livechart_app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false", "--server.enableStaticServing", "true"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "_stcore/health", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)  # polling interval
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
            pages = [browser.new_page(viewport={"width": 1300, "height": 1100}) for _ in range(tabs)]
            for page in pages:
                page.goto(f"{url}?charts={mode}")
            for page in pages:  # warm-up: caches filled, vega loaded, views embedded
                page.get_by_text("rerun 3").wait_for(timeout=60_000)
            runs0, cpu0 = counter.stat().st_size, cpu_seconds(proc.pid)
            pages[0].wait_for_timeout(seconds * 1000)  # the measuring window, not a synchronisation
            runs, cpu = counter.stat().st_size - runs0, cpu_seconds(proc.pid) - cpu0
            browser.close()
        return cpu, runs
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        counter.unlink()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tabs", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--modes", default="empty,live_pre,live,altair")
    ap.add_argument("--port", type=int, default=8599)
    args = ap.parse_args()
    for mode in args.modes.split(","):
        cpu, runs = measure(mode, args.tabs, args.seconds, args.port)
        print(f"{mode:11s} {runs:4d} reruns  {cpu:6.2f} s CPU  {1000 * cpu / max(runs, 1):6.1f} ms/rerun", flush=True)


if __name__ == "__main__":
    main()
