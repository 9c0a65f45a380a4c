"""`python -m gan bench` on a tiny setting: every key is in the JSON, parts can be chosen, bad input exits 2."""

import ast
import json
import shutil
from pathlib import Path

import pytest

from gan.tools import bench


def _run(capsys, argv):
    code = bench.main(argv)
    lines = capsys.readouterr().out.strip().splitlines()
    return code, lines


def test_bench_json_has_every_key(capsys, tmp_path):
    code, lines = _run(capsys, ["--quick", "--json", "--threads", "1", "--parts", "overhead,autosave,render,rss,score",
                                "--grid-dir", str(tmp_path)])
    result = json.loads(lines[-1])  # the last line is one JSON object
    assert code == 0, result["errors"]
    for key in bench.KEYS:
        assert key in result
    assert result["trainer_vs_bare"] > 0 and result["monitor_vs_trainer"] > 0
    assert set(result["render_ms"]) == {"1000", "1000000"} and all(v > 0 for v in result["render_ms"].values())
    assert isinstance(result["rss_growth_mb"], float)
    assert result["autosave_ms"] > 0 and 0 < result["autosave_cost"] < 1 and result["autosave_every_1s_vs_none"] > 0
    assert 1.0 <= result["score_120s"] <= 10.0 and 1.0 <= result["score_120s_textbook"] <= 10.0
    (seed,) = result["score_120s_seeds"]  # --quick: the first seed only; scored under both rulers
    assert seed["seed"] == 0 and 1.0 <= seed["score_b"] <= 10.0 and seed["fd_b"] > 0
    assert result["score_120s_worst"] == min(seed["score"], seed["score_b"])
    assert result["fd_120s_worst"] == max(seed["fd"], seed["fd_b"])
    assert result["dashboard_vs_headless"] is None and result["tab_heap_growth_mb"] is None  # not run
    assert (tmp_path / "grid_default_seed0_2s.png").read_bytes()[:4] == b"\x89PNG"
    table = "\n".join(lines[:-1])
    assert "trainer_vs_bare" in table and "render_ms[1000000]" in table


def test_bench_rejects_unknown_parts(capsys):
    assert bench.main(["--parts", "render,nonsense"]) == 2
    assert "nonsense" in capsys.readouterr().err


@pytest.mark.skipif(not Path(bench.CHROMIUM).exists() or not (bench.REPO / "app.py").exists()
                    or shutil.which("chromium") is None, reason="needs the app and /usr/bin/chromium")
def test_bench_browser_part_reads_the_live_app(capsys):
    code, lines = _run(capsys, ["--quick", "--json", "--threads", "1", "--parts", "browser"])
    result = json.loads(lines[-1])
    assert code == 0, result["errors"]
    assert result["steps_per_sec_with_viewer"] > 0 and result["steps_per_sec_no_viewer"] > 0
    assert result["dashboard_vs_headless"] > 0
    assert result["tab_heap_start_mb"] > 0 and isinstance(result["tab_heap_growth_mb"], float)


def test_bench_package_modules_are_small_and_say_what_they_own():
    # The project's rule for modules: at most ~300 lines, opened by a two-line docstring (what it owns,
    # what it must not touch). REPO is computed one folder deeper than before the split: check it lands.
    assert (bench.REPO / "gan" / "tools" / "bench" / "__init__.py").is_file()
    for path in sorted(Path(bench.__file__).parent.glob("*.py")):
        text = path.read_text()
        doc = ast.get_docstring(ast.parse(text), clean=False)
        assert len(text.splitlines()) <= 300, path.name
        assert doc is not None and len(doc.splitlines()) == 2 and "must not" in doc.lower(), path.name


def test_two_servers_gap_is_the_time_between_each_sides_first_showing_of_a_step():
    """bench part ray's step gap: per step, when either server's tabs first showed it (or a later step)."""
    from types import SimpleNamespace

    from gan.tools.bench.gaps import show_gaps
    from gan.tools.viewers.page import StatusLine

    def tab(*shown):  # a simulated tab's status log: (time, status line) per new line
        return SimpleNamespace(status_log=[(t, StatusLine("Running", step, "")) for t, step in shown])

    a = [tab((1.0, 10), (3.0, 30)), tab((2.0, 20), (3.4, 40)), tab((0.2, 5))]  # side a's tabs refresh in turn
    b = [tab((1.4, 10), (3.1, 30)), tab((0.3, 5), (2.9, 25))]  # side b never shows 20: 25 is its first past it
    gaps = show_gaps(a, b, t0=0.5, t1=3.5, now=5.0)
    assert gaps == pytest.approx({10: 0.4, 20: 0.9, 25: 0.1, 30: 0.1, 40: 1.6})  # 40: b has not shown it by now
    assert 5 not in gaps  # first shown before the window


def test_two_servers_copy_gap_takes_out_each_tabs_refresh_phase():
    """A run at 10 steps/s; server b's copy 0.3 s behind a's; a's tabs refresh on the second, b's on the half second.
    The tabs first show each step 0.5 s apart (their refresh phase), though b's copy lags by 0.3 s: server_gaps
    says 0.3."""
    from types import SimpleNamespace

    from gan.tools.bench.gaps import server_gaps, show_gaps
    from gan.tools.viewers.page import StatusLine

    def tab(times, lag):
        return SimpleNamespace(status_log=[(t, StatusLine("Running", round(10 * (t - lag)), "")) for t in times])

    a = [tab([float(t) for t in range(1, 12)], lag=0.0)]
    b = [tab([t + 0.5 for t in range(1, 12)], lag=0.3)]
    gaps = server_gaps(a, b, t0=2.0, t1=10.0)
    assert len(gaps) >= 14 and max(gaps) == pytest.approx(0.3, abs=0.02) and min(gaps) == pytest.approx(0.3, abs=0.02)
    tabs = show_gaps(a, b, 2.0, 10.0, now=12.0)  # the tabs' own figure keeps the phase
    assert list(tabs.values()) == pytest.approx([0.5] * len(tabs)) and len(tabs) >= 14


def test_tab_groups_compare_two_servers_with_one_server_and_with_tabs_opened_together():
    """A run at 10 steps/s, both servers' copies current. The first server's old tabs refresh on the second; its
    new tabs and the second server's, opened together, on the half second. Old vs new shows each step 0.5 s apart
    on one server as on two; new vs new, the same phase on two servers, 0."""
    from types import SimpleNamespace

    from gan.tools.bench.gaps import tab_groups
    from gan.tools.viewers.page import StatusLine

    def tab(phase):
        return SimpleNamespace(status_log=[(t + phase, StatusLine("Running", round(10 * (t + phase)), ""))
                                           for t in range(1, 12)])

    old, new_a, new_b = [tab(0.0), tab(0.0)], [tab(0.5)], [tab(0.5), tab(0.5)]
    groups = tab_groups(old, new_a, new_b, t0=2.0, t1=10.0, now=12.0)
    assert groups["one_server"] and groups["one_server"] == pytest.approx([0.5] * len(groups["one_server"]))
    assert groups["two_servers"] == pytest.approx(groups["one_server"])
    assert groups["opened_together"] and max(groups["opened_together"]) == pytest.approx(0.0)
    assert tab_groups(old, [], new_b, 2.0, 10.0, 12.0) == {"one_server": [], "two_servers": [], "opened_together": []}


def test_a_terminated_bench_stops_the_app_server_it_started():
    """`timeout` or a CI runner ends a bench with SIGTERM: the server it started (a process group of its own, which
    nothing else would stop) goes with it."""
    import contextlib
    import os
    import signal
    import subprocess
    import sys
    import time

    from gan.tools import procs

    bench_proc = subprocess.Popen([sys.executable, "-m", "gan", "bench", "--parts", "soak", "--minutes", "1"],
                                  cwd=bench.REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    servers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not servers and time.monotonic() < deadline and bench_proc.poll() is None:
            servers = [p for p in procs.descendants(bench_proc.pid) if "streamlit" in procs.cmdline(p)]
            time.sleep(0.1)  # polling for the server's process to appear, bounded by the deadline
        assert servers, "the bench never started its app server"
        bench_proc.send_signal(signal.SIGTERM)
        assert bench_proc.wait(timeout=60) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 30
        while any(procs.alive(p) for p in servers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(procs.alive(p) for p in servers), "the app server outlived the bench"
    finally:
        bench_proc.kill()
        bench_proc.wait(timeout=30)
        for pid in servers:  # a failed check leaves nothing behind either (each server leads its own group)
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
