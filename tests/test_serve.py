"""`python -m gan serve` (gan/tools/serve.py): the README's run command. A presenter who follows it gets a locked
app and two links; the room's link gives no controls (issue 30: `streamlit run app.py` alone gave every browser
Start and Stop). The real test starts the command itself, reads the links it prints, opens both in Chromium, and
stops it with Ctrl-C (SIGINT to its process group), after which no process of it is left.
"""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gan.engine.control import poll_until
from gan.tools import serve
from gan.tools.bench import free_port, wait_http
from gan.tools.bench.server import wait_group_gone

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"


def test_the_token_comes_from_the_flag_then_the_environment_then_a_fresh_one():
    assert serve.choose_token(" mine ", {"GAN_LIVE_TOKEN": "env"}) == "mine"
    assert serve.choose_token(None, {"GAN_LIVE_TOKEN": " env "}) == "env"
    fresh = {serve.choose_token(None, {}) for _ in range(3)} | {serve.choose_token("", {"GAN_LIVE_TOKEN": " "})}
    assert len(fresh) == 4 and all(re.fullmatch(r"[\w-]{16}", t) for t in fresh)  # never an empty lock
    assert serve.links("10.0.0.5", 8501, "abc") == {"presenter": "http://10.0.0.5:8501/?token=abc",
                                                    "everyone": "http://10.0.0.5:8501/"}
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", serve.lan_address())  # 127.0.0.1 on a machine with no network
    cmd = serve.streamlit_command(8502, "0.0.0.0")
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("app.py")
    assert cmd[cmd.index("--server.address") + 1] == "0.0.0.0" and cmd[cmd.index("--server.port") + 1] == "8502"


@pytest.mark.parametrize("argv, says", [(["--port", "70000"], "--port must be 1-65535"),
                                        (["--prot", "1"], "unrecognized arguments")])
def test_bad_flags_are_one_line_and_start_nothing(argv, says):
    out = subprocess.run([sys.executable, "-m", "gan", "serve", *argv], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and says in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Presenter" not in out.stdout


def test_serve_prints_two_links_the_room_gets_no_controls_and_ctrl_c_stops_everything(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian's /usr/bin/chromium")
    port, log = free_port(), tmp_path / "serve.log"
    env = dict(os.environ, GAN_LIVE_RUNS_DIR=str(tmp_path / "runs"), GAN_LIVE_TOKEN="")  # no lock set beforehand
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gan", "serve", "--local", "--port", str(port)], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert poll_until(lambda: "Everyone else" in log.read_text(), 60, 0.2), log.read_text()
        text = log.read_text()
        presenter = re.search(r"Presenter .*:\s+(http://127\.0\.0\.1:\d+/\?token=[\w-]+)", text).group(1)
        everyone = re.search(r"Everyone else .*:\s+(http://127\.0\.0\.1:\d+/)\s", text).group(1)
        assert presenter.startswith(everyone) and f":{port}/" in everyone
        assert wait_http(f"{everyone}_stcore/health", 90), log.read_text()
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox",
                                                                         "--disable-gpu"])
            try:
                room = browser.new_context().new_page()
                room.goto(everyone, timeout=120_000)
                sync_api.expect(room.get_by_text("Read-only view")).to_be_visible(timeout=120_000)
                assert room.locator(".st-key-start").count() == 0
                lead = browser.new_context().new_page()
                lead.goto(presenter, timeout=120_000)
                sync_api.expect(lead.locator(".st-key-start button")).to_be_visible(timeout=120_000)
            finally:
                browser.close()
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the presenter's terminal reaches the whole group
        assert proc.wait(60) in (0, 130, -signal.SIGINT), log.read_text()
        assert wait_group_gone(proc.pid, 30), "a process of the server (its training worker?) outlived Ctrl-C"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_a_sigterm_to_serve_alone_stops_the_server_it_started(tmp_path):
    """`kill PID`, systemd or `docker stop` signal the serve process only, not its group: the streamlit server it
    started, and whatever that started, must stop with it."""
    port, log = free_port(), tmp_path / "serve.log"
    env = dict(os.environ, GAN_LIVE_RUNS_DIR=str(tmp_path / "runs"), GAN_LIVE_TOKEN="t0ken-for-this-test")
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gan", "serve", "--local", "--port", str(port)], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert wait_http(f"http://127.0.0.1:{port}/_stcore/health", 90), log.read_text()
        proc.send_signal(signal.SIGTERM)  # this process alone: no Ctrl-C reaches the server
        proc.wait(60)
        assert wait_group_gone(proc.pid, 30), f"the server outlived its serve process\n{log.read_text()[-2000:]}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
