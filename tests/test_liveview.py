"""The shared live frame (gan.viz.liveview.LiveView): one render for every tab, each tab's own step.

Every tab of a server shows the step of its own refresh, even when the charts come from a frame rendered
earlier; a render in progress holds up only the tabs that have nothing of this run and state to show. Before,
every tab waited for each render, so a server's tabs all saw a new step in one burst a second, and two app
servers' tabs showed a step up to 1.5 s apart (bench part ray).
"""

import threading
from types import SimpleNamespace

from gan.engine.history import History
from gan.engine.status import RunState, RunStatus
from gan.viz.liveview import LiveView


class GatedHistory(History):
    """A history whose snapshot (the render's first read) waits until the test lets it go."""

    def __init__(self):
        super().__init__(recent=50, max_buckets=20)
        self.entered, self.release = threading.Event(), threading.Event()
        self.gated = False

    def snapshot(self, with_grids: bool = True):
        if self.gated:
            self.entered.set()
            assert self.release.wait(30), "the test never let the render go"
        return super().snapshot(with_grids)


class Run:
    """What LiveView reads of a run: its name, status, history and config."""

    def __init__(self):
        self.name, self.step, self.state = "run-1", 0, RunState.RUNNING
        self.history = GatedHistory()
        self.config = SimpleNamespace(ema=0.0)

    def status(self) -> RunStatus:
        return RunStatus(name=self.name, state=self.state, step=self.step, steps_per_sec=20.0, device="cpu",
                         model="mlp", dataset="mnist5k", loss="bce", lr_g=2e-4, lr_d=2e-4, d_steps=1)

    def train(self, steps: int) -> None:
        for _ in range(steps):
            self.step += 1
            self.history.append(self.step, 0.7, 0.6, 0.5, 0.4, 2e-4, 2e-4, "bce", when=float(self.step))


def test_each_refresh_shows_the_runs_step_now_with_the_shared_charts():
    run, view = Run(), LiveView(min_interval=3600.0)  # no second render while the run streams
    run.train(10)
    first = view.frame(run)
    assert first.step == 10 and "Step 10 ·" in first.headline and first.charts is not None
    run.train(25)
    later = view.frame(run)
    assert later.step == 35 and "Step 35 ·" in later.headline
    assert later.charts is first.charts  # the charts: the shared render, not drawn again
    assert view.frame(run).charts is first.charts


def test_a_render_in_progress_holds_up_only_tabs_with_nothing_of_this_state_to_show():
    run, view = Run(), LiveView(min_interval=0.0)  # every new row asks for a render
    run.train(10)
    first = view.frame(run)
    run.train(5)
    run.history.gated = True
    rendering = threading.Thread(target=view.frame, args=(run,))
    rendering.start()
    try:
        assert run.history.entered.wait(30), "the first tab's render never started"
        # A second tab meanwhile: the frame it had, at the step of now, at once (the render is still held).
        run.train(3)
        other = view.frame(run)
        assert other.step == 18 and other.charts is first.charts and rendering.is_alive()
        # A Pause changes what the page must show: that tab waits for a render of its own and shows Paused.
        run.state = RunState.PAUSED
        paused: list = []
        waiting = threading.Thread(target=lambda: paused.append(view.frame(run)))
        waiting.start()
    finally:
        run.history.release.set()
        rendering.join(30)
    waiting.join(30)
    assert paused and paused[0].state == RunState.PAUSED and paused[0].headline.startswith("#### Paused · Step 18")
