"""bench part ray's gap maths: how far apart two groups of tabs show the run's steps, from their status logs.
Must not open connections, sleep or read the clock: every time comes from the logs or the caller."""

import bisect
import statistics


def first_shown(clients) -> list[tuple[float, int]]:
    """When these tabs together first showed each new highest step: [(time.monotonic(), step)], both rising."""
    seen = sorted((t, line.step) for c in clients for t, line in c.status_log)
    out: list[tuple[float, int]] = []
    for t, step in seen:
        if not out or step > out[-1][1]:
            out.append((t, step))
    return out


def _first_at_least(shown: list[tuple[float, int]], step: int) -> float | None:
    i = bisect.bisect_left([s for _, s in shown], step)
    return shown[i][0] if i < len(shown) else None


def _time_at(shown: list[tuple[float, int]], step: float) -> float | None:
    """When the side's shown step passed ``step``, interpolated between the two refreshes around it."""
    for (ta, sa), (tb, sb) in zip(shown, shown[1:]):
        if sa <= step <= sb:
            return ta + (tb - ta) * (step - sa) / (sb - sa)
    return None


def server_gaps(a, b, t0: float, t1: float) -> list[float]:
    """How far apart the two servers' copies of the run are, in seconds: for each new step a side's tabs showed
    within [t0, t1], when the other side's showings passed that step (interpolated between its refreshes).

    A tab shows its server's step as of its last refresh (once a second), so two tabs differ by up to a refresh
    even on ONE server; interpolating takes that phase out and leaves what the second server adds.
    """
    shown_a, shown_b = first_shown(a), first_shown(b)
    gaps = []
    for mine, other in ((shown_a, shown_b), (shown_b, shown_a)):
        for t, step in mine:
            at = _time_at(other, step) if t0 <= t <= t1 else None
            if at is not None:
                gaps.append(abs(t - at))
    return gaps


def show_gaps(a, b, t0: float, t1: float, now: float) -> dict[int, float]:
    """For each step either side's tabs first showed within [t0, t1]: how many seconds apart side ``a`` and side
    ``b`` first showed that step (or a later one). A side that has not shown it by ``now`` counts as ``now``."""
    shown_a, shown_b = first_shown(a), first_shown(b)
    gaps: dict[int, float] = {}
    for t, step in (*shown_a, *shown_b):
        if t0 <= t <= t1:
            ta, tb = _first_at_least(shown_a, step), _first_at_least(shown_b, step)
            gaps[step] = abs((now if ta is None else ta) - (now if tb is None else tb))
    return gaps


def tab_groups(old, new_a, new_b, t0: float, t1: float, now: float) -> dict[str, list[float]]:
    """The tabs' gap against its own baseline, in one window. ``old``: tabs of server A opened earlier; ``new_a``
    and ``new_b``: tabs of A and of B opened later on one arrival schedule. Groups of equal size, since more
    tabs per group see a step sooner: {"one_server": old vs new_a, "two_servers": old vs new_b,
    "opened_together": new_a vs new_b (what the second server itself adds)}."""
    k = min(len(old), len(new_a), len(new_b))
    if not k:
        return {"one_server": [], "two_servers": [], "opened_together": []}

    def even(group):  # k tabs taken evenly through a group opened in turn, so each keeps the group's spread
        return group[::max(1, len(group) // k)][:k]

    old, new_a, new_b = even(old), even(new_a), even(new_b)
    pairs = {"one_server": (old, new_a), "two_servers": (old, new_b), "opened_together": (new_a, new_b)}
    return {name: list(show_gaps(x, y, t0, t1, now).values()) for name, (x, y) in pairs.items()}


def widest_and_median(key: str, gaps: list[float]) -> dict:
    """{key_s: the widest gap, key_median_s: the median}; None for both when there are none."""
    return {f"{key}_s": max(gaps) if gaps else None, f"{key}_median_s": statistics.median(gaps) if gaps else None}


def refresh_hole(clients, t0: float, t1: float, period: float = 1.0) -> float:
    """The widest part of each refresh period in which none of these tabs finished a refresh, in [t0, t1]: near 0
    when their timers are spread over the second (a room that arrived over minutes), near ``period`` when they all
    refresh together (tabs opened at one moment), so that every new step waits for the group's next refresh."""
    phases = sorted(r.finished_at % period for c in clients for r in c.fragment_runs if t0 <= r.finished_at <= t1)
    if not phases:
        return period
    return max([b - a for a, b in zip(phases, phases[1:])] + [phases[0] + period - phases[-1]])
