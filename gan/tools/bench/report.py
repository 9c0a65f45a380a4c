"""The table printed after a bench run: each key's value, its goal (GOALS) with ok/MISS, then the errors.
Must not measure anything or change the results; the JSON line is main()'s (in __init__.py)."""

GOALS = {"trainer_vs_bare": (">=", 0.95), "monitor_vs_trainer": (">=", 0.95), "dashboard_vs_headless": (">=", 0.85),
         "rss_growth_mb": ("<=", 50), "tab_heap_growth_mb": ("<=", 50), "score_120s": (">=", 7.0),
         "score_120s_worst": (">=", 7.5), "fd_120s_worst": ("<=", 10.0),
         "seconds_to_score_7": ("<=", 120), "soak_server_rss_growth_mb": ("<=", 50),
         "soak_worker_rss_growth_mb": ("<=", 50), "soak_log_errors": ("<=", 0),
         # issue 28, everyone trains (`--parts lab`)
         "lab_seconds_to_score_7_worst": ("<=", 180), "lab_presenter_vs_solo": (">=", 0.5), "lab_rss_mb": ("<=", 4096),
         "lab_sharing_efficiency": (">=", 0.85), "lab_room_refresh_median": (">=", 0.9),
         "lab_server_ms_per_refresh": ("<=", 6.0), "lab_pause_s": ("<=", 1.0), "lab_queue_start_s": ("<=", 2.0),
         "lab_stalled_rss_growth_mb": ("<=", 100), "lab_stalled_others_refresh_median": (">=", 0.9),
         # issue 29, past one machine (`--parts ray`)
         "ray_vs_process": (">=", 0.9), "ray_pause_to_last_viewer_s": ("<=", 1.5),
         "ray_two_servers_step_gap_s": ("<=", 1.0),
         "ray_two_servers_vs_one_viewer": (">=", 0.9), "ray_node_loss_recovery_s": ("<=", 60),
         "ray_node_loss_lost_s": ("<=", 30)}
LAB_ROWS = (
    ("lab_runs", "participant runs trained at once, beside the presenter's"),
    ("lab_seconds_to_score_7_worst", "the slowest of them: seconds from its Start to score 7 on the Room wall"),
    ("lab_presenter_vs_solo", "the presenter's steps/s with them / alone"),
    ("lab_rss_mb", "every app process together, summed PSS, MB"),
    ("lab_sharing_efficiency", "their images/s / one default run per core and nothing else (design per_core)"),
    ("lab_design_per_run_efficiency", "the same, one worker process per run"),
    ("lab_design_one_worker_efficiency", "the same, all runs in one worker process"),
    ("lab_batched_bound_vs_one_per_core", "batched bound: one model per core at 4x batch / one per core"),
    ("lab_room_refresh_median", "Room page refreshes per s, with the participants' tabs open"),
    ("lab_server_ms_per_refresh", "server CPU per tab refresh, ms"),
    ("lab_pause_s", "a participant's Pause -> their own tab shows it, s"),
    ("lab_queue_told_place", "queued participants shown their place"),
    ("lab_queue_start_s", "a Stop frees a slot -> the first in the queue shows its run, s"),
    ("lab_race_server_cores", "meanwhile: cores the server process used"),
    ("lab_race_workers_cores", "meanwhile: cores every training worker together used"),
    ("lab_stalled_rss_growth_mb", "server RSS growth while tabs stop reading, MB"),
    ("lab_rss_growth_before_mb_per_min", "server RSS growth with every tab reading, MB per minute (the room's own)"),
    ("lab_stalled_rss_growth_net_mb", "the stall's growth less that trend, MB"),
    ("lab_stalled_others_refresh_median", "the other tabs' refreshes per s meanwhile"),
    ("lab_stalled_recovered", "stalled tabs that refresh again once they read"),
)

RAY_ROWS = (
    ("ray_vs_process", "a run as a Ray actor / in today's worker process, steps/s (presenter's tab open)"),
    ("ray_process_steps_per_sec", "worker process: steps/s"),
    ("ray_actor_steps_per_sec", "Ray actor: steps/s"),
    ("ray_pause_to_last_viewer_s", "the presenter's Pause -> the last viewer shows it, s"),
    ("ray_viewers", "viewers connected"),
    ("ray_two_servers_step_gap_s", "two app servers: how far apart their copies of the run are at most, s"),
    ("ray_two_servers_step_gap_median_s", "the same, median (each tab's once-a-second refresh phase taken out)"),
    ("ray_two_servers_tab_gap_s", "the tabs of each server first show a step this far apart at most, s"),
    ("ray_two_servers_tab_gap_median_s", "the same, median (two tabs on ONE server differ by up to a refresh too)"),
    ("ray_tab_gap_one_server_s", "baseline: ONE server's tabs opened at two moments show a step this far apart, s"),
    ("ray_tab_gap_one_server_median_s", "the same, median"),
    ("ray_tab_gap_two_servers_s", "the same groups' sizes and moments, one group on each server, s"),
    ("ray_tab_gap_two_servers_median_s", "the same, median"),
    ("ray_tab_gap_opened_together_s", "tabs opened together, one group on each server: the second server's share, s"),
    ("ray_tab_gap_opened_together_median_s", "the same, median"),
    ("ray_two_servers_vs_one_viewer", "steps/s with both servers' viewers / with the presenter's tab alone"),
    ("ray_node_loss_recovery_s", "a node killed -> its run trains again on the other node, s"),
    ("ray_node_loss_lost_s", "training lost (newest autosave to the kill), s"),
    ("ray_process_rss_mb", "worker-process app: server + worker, summed PSS, MB"),
    ("ray_cluster_rss_mb", "Ray app: server + head + raylets + actor, summed PSS, MB"),
    ("ray_extra_rss_mb", "the Ray backend's extra memory, MB"),
)


def fmt(v) -> str:
    """A figure for the table and the log: — for None, 3 significant digits, thousands separated."""
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def _verdict(key, v) -> str:
    """'ok ' or 'MISS' against the key's goal in GOALS; empty without a goal or a value."""
    if key not in GOALS or v is None:
        return ""
    op, goal = GOALS[key]
    ok = v >= goal if op == ">=" else v <= goal
    return f"{'ok ' if ok else 'MISS'} (goal {op} {goal:g})"


def print_table(r: dict) -> None:
    """The results as a table on stdout (the JSON line, when asked for, follows it)."""
    rows = [
        ("trainer_vs_bare", "trainer thread / bare loop, steps/s"),
        ("monitor_vs_trainer", "with metrics monitor / without, steps/s"),
        ("autosave_ms", "one autosave of the default run (state, atomic write, fsync), ms"),
        ("autosave_cost", "that per 30 s of training: share of training time (goal <= 0.02)"),
        ("autosave_every_1s_vs_none", "steps/s with an autosave every 1 s (30x the real rate) / none"),
        ("dashboard_vs_headless", "app open in Chromium / no viewer, steps/s"),
        ("rss_growth_mb", f"RSS growth over {r.get('rss_steps', '?')} steps, MB"),
        ("tab_heap_growth_mb", f"tab JS heap growth over {r.get('heap_seconds', '?')} s, MB"),
        ("seconds_to_score_7", "default: seconds of CPU training to score 7"),
        ("score_120s", f"default: classifier score after {r.get('score_seconds', 120):g} s (ruler A, first seed)"),
        ("score_120s_worst", "default: lowest score over the seeds and both rulers"),
        ("fd_120s_worst", "default: highest Fréchet distance over the seeds and both rulers"),
        ("score_120s_textbook", f"textbook: classifier score after {r.get('score_seconds', 120):g} s"),
        ("ceiling_score", "real held-out images: classifier score"),
    ]
    print(f"{'key':<22} {'value':>10}  {'':<18} what")
    for key, what in rows:
        print(f"{key:<22} {fmt(r.get(key)):>10}  {_verdict(key, r.get(key)):<18} {what}")
    for f in r.get("score_120s_seeds") or []:
        print(f"{'score_120s[seed ' + str(f['seed']) + ']':<22} {f['step']:>10,}  {'steps':<18} "
              f"ruler A: score {f['score']:.2f}, FD {f['fd']:.1f} · "
              f"ruler B: score {f['score_b']:.2f}, FD {f['fd_b']:.1f}")
    for n, ms in (r.get("render_ms") or {}).items():
        ok = "ok " if ms <= 100 else "MISS"
        what = f"one shared frame (all live charts' data, grid, quality), history of {int(n):,} steps"
        print(f"{'render_ms[' + n + ']':<22} {ms:>10.1f}  {ok + ' (goal <= 100)':<18} {what}")
    for n, ms in (r.get("render_altair_ms") or {}).items():
        what = f"before: the same as Altair charts, per session, history of {int(n):,} steps"
        print(f"{'render_altair_ms[' + n + ']':<22} {ms:>10.1f}  {'':<18} {what}")
    for n in r.get("viewers_counts") or []:

        def v(name: str, n=n) -> str:
            return fmt(r.get(f"viewers_{n}_{name}"))

        cells = [f"train {v('train_ratio')}", f"refresh/s med {v('refresh_median')} min {v('refresh_min')}",
                 f"server {v('server_ms_per_refresh')} ms/refresh ({v('server_ms_per_extra_refresh')} per extra)",
                 f"pause->all {v('action_s')} s", f"loss->all {v('loss_s')} s", f"health {v('health_ms')} ms"]
        print(f"{'viewers[' + str(n) + ']':<22} " + " · ".join(cells))
    if r.get("viewers_start_s") is not None:
        print(f"{'viewers_start_s':<22} {fmt(r['viewers_start_s']):>10}  {'':<18} Start click -> the page shows the "
              f"new run (warm worker); Running after {fmt(r.get('viewers_start_running_s'))} s; first Start right "
              f"after the first page load: {fmt(r.get('viewers_start_cold_s'))} s")
        print(f"{'viewers_server_log_errors':<22} {fmt(r.get('viewers_server_log_errors')):>10}  {'':<18} "
              "tracebacks and ERROR lines in the server's log over the whole part")
    if r.get("lab_runs") is not None or r.get("lab_sharing_efficiency") is not None:
        for key, what in LAB_ROWS:
            print(f"{key:<22} {fmt(r.get(key)):>10}  {_verdict(key, r.get(key)):<18} {what}")
    if any(r.get(key) is not None for key, _ in RAY_ROWS):
        for key, what in RAY_ROWS:
            print(f"{key:<22} {fmt(r.get(key)):>10}  {_verdict(key, r.get(key)):<18} {what}")
    if r.get("soak_minutes") is not None:
        mins = f"{r['soak_minutes']:.1f} min, {r.get('soak_viewers')} viewers"
        for key, what in (("soak_server_rss_growth_mb", "server RSS growth after warm-up, MB"),
                          ("soak_worker_rss_growth_mb", "training worker RSS growth after warm-up, MB")):
            who = key.split("_")[1]
            print(f"{key:<22} {fmt(r.get(key)):>10}  {_verdict(key, r.get(key)):<18} {what} ({mins}; "
                  f"first {fmt(r.get(f'soak_{who}_rss_first_mb'))}, max {fmt(r.get(f'soak_{who}_rss_max_mb'))}, "
                  f"trend {fmt(r.get(f'soak_{who}_rss_trend_mb_per_h'))} MB/h)")
        print(f"{'soak_log_errors':<22} {fmt(r.get('soak_log_errors')):>10}  "
              f"{_verdict('soak_log_errors', r.get('soak_log_errors')):<18} "
              "tracebacks and ERROR lines in the server log")
        present, readable = r.get("soak_autosaves_present"), r.get("soak_autosaves_readable")
        ok = "" if present is None else ("ok " if readable == present else "MISS") + " (goal all)"
        print(f"{'soak_autosaves':<22} {fmt(r.get('soak_autosaves')):>10}  {ok:<18} autosave files seen; "
              f"{fmt(readable)} of {fmt(present)} left at the end load with gan.store.checkpoint")
        print(f"{'soak_steps':<22} {fmt(r.get('soak_steps')):>10}  {'':<18} "
              f"{fmt(r.get('soak_steps_per_sec'))} steps/s; viewers dropped {fmt(r.get('soak_viewers_dropped'))}, "
              f"viewer errors {fmt(r.get('soak_viewer_errors'))}, refresh/s per viewer min "
              f"{fmt(r.get('soak_refresh_min'))} (slowest 10 s: {fmt(r.get('soak_refresh_min_10s'))})")
    for part, err in r.get("errors", {}).items():
        print(f"error in {part}: {err}")
    print(f"total {r.get('total_seconds', 0):.0f} s; {r['machine']['note']}")
