"""The page a tab shows (Page: elements by delta path, input widgets' values, finished runs; PageView: its queries).
Must not touch the network, timers or the message cache: it reads deltas and run ends handed to it, nothing more."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

# "#### Running · Step 1,234 · 57 steps/s · ..." (pages/train.py's live status line)
STATUS_RE = re.compile(r"^#{1,6}\s*(?P<state>[^·\n]+?)\s*·\s*Step\s+(?P<step>[\d,]+)")
FINISHED = ForwardMsg.ScriptFinishedStatus


# --- what a viewer observes ------------------------------------------------------------------
@dataclass(frozen=True)
class Button:
    id: str
    label: str
    disabled: bool
    fragment_id: str  # a button inside a fragment reruns only that fragment


@dataclass(frozen=True)
class Segmented:
    """st.segmented_control / st.pills (ButtonGroup proto); options are the labels the browser shows."""

    id: str
    label: str
    options: tuple[str, ...]
    disabled: bool
    fragment_id: str


@dataclass(frozen=True)
class StatusLine:
    state: str  # "Running", "Paused", ...
    step: int
    text: str


@dataclass(frozen=True)
class ScriptRun:
    """A script run that finished (full page or fragment), as script_finished reported it."""

    finished_at: float  # time.monotonic()
    script_run_id: str
    fragment_ids: tuple[str, ...]  # empty for a full run
    status: int  # ForwardMsg.ScriptFinishedStatus


@dataclass
class _Node:
    """One delta-path slot of the page: an element or a block."""

    kind: str  # "block", "markdown", "alert", "button", "button_group", "exception", "imgs", ...
    run_id: str
    fragment_id: str
    text: str = ""
    widget: Button | Segmented | None = None
    widget_id: str = ""  # any widget (input or button): its state is kept while it is on the page


def initial_widget_state(kind: str, proto) -> WidgetState | None:
    """The value the browser's widget manager reports for an input widget it has just drawn.

    The element's own value when the server set one (``set_value``), else its default; None for
    widgets without a value to report (buttons, uploaders) or without a default (index=None).
    The value types are those the frontend sends (seen in Chromium's frames for 1.67).
    """
    state = WidgetState(id=proto.id)
    if kind == "selectbox":
        if proto.set_value and proto.HasField("raw_value"):
            state.string_value = proto.raw_value
        elif proto.HasField("default") and 0 <= proto.default < len(proto.options):
            state.string_value = proto.options[proto.default]
        else:
            return None
    elif kind == "number_input":
        if proto.set_value and proto.HasField("value"):
            value = proto.value
        elif proto.HasField("default"):
            value = proto.default
        else:
            return None
        if proto.data_type == proto.INT:
            state.int_value = int(value)
        else:
            state.double_value = value
    elif kind in ("text_input", "text_area"):
        state.string_value = proto.value if proto.set_value and proto.HasField("value") else proto.default
    elif kind == "checkbox":
        state.bool_value = proto.value if proto.set_value else proto.default
    elif kind == "slider":
        values = list(proto.value) if proto.set_value else list(proto.default)
        if proto.options:  # st.select_slider: the shown labels of the chosen indices
            state.string_array_value.data.extend(proto.options[int(v)] for v in values if 0 <= v < len(proto.options))
        else:
            state.double_array_value.data.extend(values)
    elif kind == "button_group":
        if proto.set_value:
            state.string_array_value.data.extend(proto.raw_values)
        else:
            state.string_array_value.data.extend(proto.options[d].content for d in proto.default
                                                 if 0 <= d < len(proto.options))
    else:
        return None
    return state


class Page:
    """A tiny model of one tab's page: elements keyed by delta path, with the frontend's stale-node
    clearing at ``script_finished``, the input widgets' values, and the script runs that finished."""

    def __init__(self, keep_runs: int = 10_000):
        self.runs: list[ScriptRun] = []  # completed script runs, oldest first (bounded by keep_runs)
        # (time.monotonic(), status line) each time a finished run showed a new status line (bounded)
        self.status_log: list[tuple[float, StatusLine]] = []
        self._keep_runs = keep_runs
        self._nodes: dict[tuple[int, ...], _Node] = {}
        self._run_id = ""
        self._run_fragments: tuple[str, ...] = ()
        self._widget_values: dict[str, WidgetState] = {}  # values this tab has set (kept, like the browser)

    # -- what the server sends
    def start_run(self, run_id: str, fragment_ids: tuple[str, ...]) -> None:
        """new_session: the deltas that follow belong to this run (of these fragments; () = the full page)."""
        self._run_id = run_id
        self._run_fragments = fragment_ids

    def apply_delta(self, msg: ForwardMsg) -> list[str]:
        """Draw one delta ForwardMsg at its delta path; returns the image URLs it shows (for fetching)."""
        delta, path = msg.delta, tuple(msg.metadata.delta_path)
        which = delta.WhichOneof("type")
        if which == "add_block":
            self._nodes[path] = _Node("block", self._run_id, delta.fragment_id)
            return []
        if which != "new_element":
            return []  # new_transient, arrow_add_rows...: nothing the model reads
        previous = self._nodes.get(path)
        if previous is not None and previous.kind == "block":  # an element replacing a block drops its children
            n = len(path)
            for p in [p for p in self._nodes if len(p) > n and p[:n] == path]:
                del self._nodes[p]
        el = delta.new_element
        ek = el.WhichOneof("type") or ""
        node = _Node(ek, self._run_id, delta.fragment_id)
        images: list[str] = []
        if ek == "markdown":
            node.text = el.markdown.body
        elif ek == "alert":
            node.text = el.alert.body
        elif ek == "exception":
            node.text = f"{el.exception.type}: {el.exception.message}"
        elif ek == "button":
            b = el.button
            node.widget = Button(b.id, b.label, b.disabled, delta.fragment_id)
        elif ek == "button_group":
            g = el.button_group
            node.widget = Segmented(g.id, g.label, tuple(o.content for o in g.options), g.disabled,
                                    delta.fragment_id)
        elif ek == "imgs":
            images = [img.url for img in el.imgs.imgs]
        elif ek == "text_input":
            node.text = el.text_input.label  # found by its label (Viewer.fill)
        widget_id = getattr(getattr(el, ek), "id", "") if ek else ""
        if isinstance(widget_id, str) and widget_id:
            node.widget_id = widget_id
            proto = getattr(el, ek)
            # A widget new to this tab starts at its element's value; later the tab keeps its own value
            # unless the server sets one (set_value), as the frontend's widget manager does.
            if widget_id not in self._widget_values or getattr(proto, "set_value", False):
                state = initial_widget_state(ek, proto)
                if state is not None:
                    self._widget_values[widget_id] = state
        self._nodes[path] = node
        return images

    def finish_run(self, msg: ForwardMsg) -> ScriptRun:
        """script_finished: record the run; when it succeeded, drop what it did not redraw; log a new status line."""
        status = msg.script_finished
        run_id = msg.metadata.run.script_run_id or self._run_id
        fragments = tuple(msg.metadata.run.fragment_ids) if msg.metadata.HasField("run") else self._run_fragments
        run = ScriptRun(time.monotonic(), run_id, fragments, status)
        self.runs.append(run)
        if len(self.runs) > self._keep_runs:
            del self.runs[: len(self.runs) - self._keep_runs]
        if status in (FINISHED.FINISHED_SUCCESSFULLY, FINISHED.FINISHED_FRAGMENT_RUN_SUCCESSFULLY):
            # The frontend's clearStaleNodes: what this run did not redraw is gone (only inside the
            # fragments that ran, for a fragment run).
            if fragments:
                stale = [p for p, n in self._nodes.items() if n.fragment_id in fragments and n.run_id != run_id]
            else:
                stale = [p for p, n in self._nodes.items() if n.run_id != run_id]
            for p in stale:
                del self._nodes[p]
            # removeInactiveWidgetState: a widget no longer on the page stops being reported.
            on_page = {n.widget_id for n in self._nodes.values() if n.widget_id}
            for wid in [w for w in self._widget_values if w not in on_page]:
                del self._widget_values[wid]
        line = self.status()
        if line is not None and (not self.status_log or self.status_log[-1][1] != line):
            self.status_log.append((time.monotonic(), line))
            del self.status_log[: -self._keep_runs]
        return run

    # -- the input widgets' values (what a rerun request reports)
    def widget_states(self) -> list[WidgetState]:
        return list(self._widget_values.values())

    def set_widget_state(self, state: WidgetState) -> None:
        """The user changed a widget: the tab keeps this value and reports it with every rerun."""
        self._widget_values[state.id] = state

    # -- what the tab shows
    def _ordered(self) -> list[_Node]:
        return [self._nodes[p] for p in sorted(self._nodes)]

    def markdown(self) -> list[str]:
        """The markdown elements' text in page order."""
        return [n.text for n in self._ordered() if n.kind == "markdown"]

    def alerts(self) -> list[str]:
        return [n.text for n in self._ordered() if n.kind == "alert"]

    def exceptions(self) -> list[str]:
        """Exceptions the app showed on this page (a script error is a server error to the viewer)."""
        return [n.text for n in self._ordered() if n.kind == "exception"]

    def buttons(self) -> dict[str, Button]:
        """Buttons by label (the first one in page order when two share a label)."""
        out: dict[str, Button] = {}
        for n in self._ordered():
            if isinstance(n.widget, Button):
                out.setdefault(n.widget.label, n.widget)
        return out

    def text_input_id(self, label: str) -> str | None:
        """The widget id of the text input labelled ``label`` (the first in page order), None when not shown."""
        for n in self._ordered():
            if n.kind == "text_input" and n.text == label:
                return n.widget_id
        return None

    def segmented(self) -> list[Segmented]:
        return [n.widget for n in self._ordered() if isinstance(n.widget, Segmented)]

    def status(self) -> StatusLine | None:
        """The live status line ("#### Running · Step 1,234 · ..."), or None while there is none."""
        for text in self.markdown():
            m = STATUS_RE.match(text)
            if m:
                return StatusLine(m.group("state").strip(), int(m.group("step").replace(",", "")), text)
        return None

    @property
    def fragment_runs(self) -> list[ScriptRun]:
        return [r for r in self.runs if r.fragment_ids and r.status == FINISHED.FINISHED_FRAGMENT_RUN_SUCCESSFULLY]

    def fragment_runs_between(self, t0: float, t1: float) -> int:
        return sum(1 for r in self.fragment_runs if t0 <= r.finished_at < t1)


class PageView:
    """The page's answers asked of whatever holds it as ``self.page`` (a Viewer): callers ask the tab."""

    page: Page

    @property
    def runs(self) -> list[ScriptRun]:
        """Completed script runs, oldest first (bounded by keep_runs)."""
        return self.page.runs

    @property
    def status_log(self) -> list[tuple[float, StatusLine]]:
        """(time.monotonic(), status line) each time a finished run showed a new status line (bounded)."""
        return self.page.status_log

    def markdown(self) -> list[str]:
        return self.page.markdown()

    def alerts(self) -> list[str]:
        return self.page.alerts()

    def exceptions(self) -> list[str]:
        return self.page.exceptions()

    def buttons(self) -> dict[str, Button]:
        return self.page.buttons()

    def segmented(self) -> list[Segmented]:
        return self.page.segmented()

    def status(self) -> StatusLine | None:
        return self.page.status()

    @property
    def fragment_runs(self) -> list[ScriptRun]:
        return self.page.fragment_runs

    def fragment_runs_between(self, t0: float, t1: float) -> int:
        return self.page.fragment_runs_between(t0, t1)
