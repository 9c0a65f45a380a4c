"""Simulated browser viewers: an asyncio client that speaks Streamlit's websocket protocol like a tab.

A workshop is one presenter and 30-100 viewers on the same URL. To measure what N viewers cost we
need N clients that make the server do exactly the work N browser tabs make it do, without N
Chromiums on a 2-core laptop. This client reproduces what Streamlit 1.67's frontend does
(read from its bundled JS and the server in streamlit/web/server/starlette/):

* before the socket, ``GET /_stcore/health`` and ``/_stcore/host-config`` (the connection manager's
  ping), then ``ws://HOST:PORT/_stcore/stream`` with subprotocols ``["streamlit", <xsrf cookie or
  "PLACEHOLDER_AUTH_TOKEN">]`` (the server selects the first entry; the second only matters for
  auth cookies; a third would name a session to reconnect to, which a fresh tab does not have);
* one ``BackMsg.rerun_script`` per run request, carrying the query string (``token=...`` for the
  presenter), the page script hash (empty on the first run: the default page; then the page that
  ``navigation`` named, else ``new_session``'s), the widget states, the context info and **the
  hashes of the ForwardMsgs it has cached**: the server (1.67 has no server-side message cache)
  replaces a cacheable message (a ``new_element`` delta of at least
  ``global.minCachedMessageSize``, 10 kB) by a ``ref_hash`` only when the client listed its hash.
  The cache ages out entries like the frontend's ForwardMsgCache (``max_cached_message_age``
  script runs since last use). ``cache=False`` declares no cache, so the server sends every
  message in full;
* ``auto_rerun`` (interval, fragment id) starts a ``setInterval``-style timer per fragment that
  sends a fragment rerun (``fragment_id`` set, ``is_auto_rerun`` true) every interval, whether or
  not the previous fragment run has finished (the browser does not wait either). An auto_rerun
  with the interval already running for that fragment changes nothing; a full-run ``new_session``
  and ``stop_auto_rerun`` clear timers, as in the frontend;
* images are fetched over HTTP once per new ``/media/...`` URL, as a browser does.

The client keeps a tiny model of the page (markdown text, alerts, buttons, segmented controls,
exceptions) keyed by delta path, with the frontend's stale-node clearing at ``script_finished``,
and counts completed fragment runs with their times. Like the browser's widget manager it holds
a value for every input widget on the page (initialised from the element, replaced when the server
sets one, dropped when the widget leaves the page) and sends them all with every rerun, auto-reruns
included; a click adds a one-shot trigger. Checked against headless Chromium's frames: the same
widget states, fragment ids, page hash and cached hashes, and the same 1 s timer phase.

Only Streamlit's generated protobuf modules are used, never its runtime API. Every wait is bounded,
a failure in one viewer (disconnect, server error, bad message) is recorded on that viewer and
never propagates to the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

STREAM_PATH = "/_stcore/stream"
SUBPROTOCOL = "streamlit"
NO_XSRF_TOKEN = "PLACEHOLDER_AUTH_TOKEN"  # what the frontend sends when it has no _streamlit_xsrf cookie
# "### Running · Step 1,234 · 57 steps/s · ..." (pages/train.py's live status line)
STATUS_RE = re.compile(r"^#{1,6}\s*(?P<state>[^·\n]+?)\s*·\s*Step\s+(?P<step>[\d,]+)")
FINISHED = ForwardMsg.ScriptFinishedStatus
DEFAULT_TIMEOUT = 30.0


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
class ViewerStats:
    messages: int = 0
    bytes_received: int = 0
    reruns_sent: int = 0
    auto_reruns_sent: int = 0
    cache_hits: int = 0  # ref_hash messages answered from our cache
    media_fetches: int = 0
    errors: list[str] = field(default_factory=list)  # protocol or transport problems, newest last


@dataclass(frozen=True)
class HttpResult:
    status: int
    size: int
    seconds: float


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


# --- a tiny HTTP client (the browser's plain GETs) -----------------------------------------------
async def http_get(url: str, timeout: float = 10.0) -> HttpResult:
    """GET url (http only) over a fresh connection; status 0 when it failed or timed out."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    t0 = time.monotonic()
    writer = None
    try:
        deadline = t0 + timeout
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        await asyncio.wait_for(writer.drain(), max(0.01, deadline - time.monotonic()))
        # Connection: close, so EOF ends the response
        data = await asyncio.wait_for(reader.read(), max(0.01, deadline - time.monotonic()))
        status_line = data.split(b"\r\n", 1)[0].split()
        status = int(status_line[1]) if len(status_line) >= 2 and status_line[1].isdigit() else 0
        return HttpResult(status, len(data), time.monotonic() - t0)
    except (OSError, asyncio.TimeoutError):
        return HttpResult(0, 0, time.monotonic() - t0)
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):  # the peer may already be gone
                await asyncio.wait_for(writer.wait_closed(), 1.0)


# --- the viewer ----------------------------------------------------------------------------------
class Viewer:
    """One simulated browser tab on a Streamlit app.

    ``base_url`` is the app's address, e.g. ``http://127.0.0.1:8501/``; ``query`` the tab's query
    string without "?" (``"token=..."`` for the presenter). Use ``await viewer.connect()`` then read
    ``status()``, ``markdown()``, ``buttons()``, ``fragment_runs``; ``click()``/``select()`` act;
    ``close()`` (clean) or ``abort()`` (dropped connection) end it.
    """

    def __init__(self, base_url: str, query: str = "", *, name: str = "viewer", cache: bool = True,
                 fetch_media: bool = True, keep_runs: int = 10_000):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must look like http://host:port/, got {base_url!r}")
        self.name = name
        self.query = query.lstrip("?")
        self.http_base = f"{parts.scheme}://{parts.netloc}"
        self.ws_url = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}{STREAM_PATH}"
        self.page_url = f"{self.http_base}/" + (f"?{self.query}" if self.query else "")
        self.cache_enabled = cache
        self.fetch_media = fetch_media
        self.stats = ViewerStats()
        self.session_id = ""
        self.page_script_hash = ""  # "" on the first run: the server picks the default page
        self.runs: list[ScriptRun] = []  # completed script runs, oldest first (bounded by keep_runs)
        # (time.monotonic(), status line) each time a finished run showed a new status line (bounded)
        self.status_log: list[tuple[float, StatusLine]] = []
        self.closed_reason: str | None = None  # set once the connection is over
        self.connected_at: float | None = None
        self._keep_runs = keep_runs
        self._ws: ClientConnection | None = None
        self._reader_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()  # media fetches: kept referenced until done
        self._timers: dict[str, tuple[float, asyncio.Task]] = {}  # fragment id -> (interval, task)
        self._nodes: dict[tuple[int, ...], _Node] = {}
        self._run_id = ""
        self._run_fragments: tuple[str, ...] = ()
        self._widget_values: dict[str, WidgetState] = {}  # values this tab has set (kept, like the browser)
        self._cache: dict[str, list] = {}  # hash -> [encoded ForwardMsg, run count at last use, fragment id]
        self._cache_runs = 0
        self._max_cache_age = 2  # NewSession.config.max_cached_message_age (Streamlit's default)
        self._media_seen: set[str] = set()
        self._changed = asyncio.Event()

    # -- lifecycle
    async def connect(self, timeout: float = DEFAULT_TIMEOUT, wait_first_run: bool = True) -> Viewer:
        """Open the tab: health/host-config pings, the websocket, the first rerun request.

        With ``wait_first_run`` it returns once the first full script run has finished. Raises
        TimeoutError or ConnectionError when that does not happen within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        for path in ("/_stcore/health", "/_stcore/host-config"):
            await http_get(self.http_base + path, timeout=max(0.1, deadline - time.monotonic()))
        try:
            self._ws = await connect(
                self.ws_url, subprotocols=[SUBPROTOCOL, NO_XSRF_TOKEN],
                open_timeout=max(0.1, deadline - time.monotonic()),
                max_size=None,  # a browser accepts any message size; the server caps what it sends
                ping_interval=None,  # browsers never ping; they answer the server's pings (done for us)
                close_timeout=2.0)
        except (OSError, asyncio.TimeoutError, WebSocketException) as exc:
            self.closed_reason = f"connect failed: {type(exc).__name__}: {exc}"
            raise ConnectionError(f"{self.name}: {self.closed_reason}") from exc
        self.connected_at = time.monotonic()
        self._reader_task = asyncio.create_task(self._read_loop(), name=f"{self.name}-reader")
        await self._send_rerun()
        if wait_first_run and not await self.wait_until(lambda v: any(not r.fragment_ids for r in v.runs),
                                                        max(0.1, deadline - time.monotonic())):
            if self.closed_reason:
                raise ConnectionError(f"{self.name}: {self.closed_reason}")
            raise TimeoutError(f"{self.name}: the first script run did not finish within {timeout:.0f} s")
        return self

    async def close(self, timeout: float = 5.0) -> None:
        """Close like a tab being closed: timers stop, a close frame, the reader ends. Never raises."""
        self._mark_closed("closed by the client")  # first: the reader then sees our close as ours
        if self._ws is not None:
            with contextlib.suppress(Exception):  # closing an already broken socket is fine
                await asyncio.wait_for(self._ws.close(), timeout)
        await self._finish_reader(timeout)

    async def abort(self) -> None:
        """Drop the TCP connection without a close frame (a laptop lid shut, Wi-Fi gone)."""
        self._mark_closed("aborted by the client")
        if self._ws is not None and self._ws.transport is not None:
            self._ws.transport.abort()
        await self._finish_reader(5.0)

    @property
    def connected(self) -> bool:
        return self._ws is not None and self.closed_reason is None

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

    def segmented(self) -> list[Segmented]:
        return [n.widget for n in self._ordered() if isinstance(n.widget, Segmented)]

    def status(self) -> StatusLine | None:
        """The live status line ("### Running · Step 1,234 · ..."), or None while there is none."""
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

    def cached_hashes(self) -> list[str]:
        """The message hashes the next rerun request will declare as cached."""
        return list(self._cache) if self.cache_enabled else []

    def timers(self) -> dict[str, float]:
        """The auto-rerun timers running now: fragment id -> interval in seconds."""
        return {fid: interval for fid, (interval, _) in self._timers.items()}

    async def wait_until(self, predicate: Callable[[Viewer], bool], timeout: float) -> bool:
        """Wait (bounded) until predicate(self) holds; re-checked after every message. False on timeout
        or when the connection ends first."""
        deadline = time.monotonic() + timeout
        while True:
            event = self._changed  # grab before testing, so a change in between wakes us
            if predicate(self):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closed_reason is not None:
                return False
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    # -- acting like a user
    async def click(self, label: str, timeout: float = DEFAULT_TIMEOUT) -> float:
        """Click the button with this label once it is shown and enabled; returns the send time."""
        if not await self.wait_until(lambda v: label in v.buttons() and not v.buttons()[label].disabled, timeout):
            shown = {k: ("disabled" if b.disabled else "enabled") for k, b in self.buttons().items()}
            raise TimeoutError(f"{self.name}: no enabled button {label!r} within {timeout:.0f} s; buttons: {shown}")
        button = self.buttons()[label]
        trigger = WidgetState(id=button.id, trigger_value=True)  # one-shot: not kept for later reruns
        return await self._send_rerun(fragment_id=button.fragment_id, extra=[trigger])

    async def select(self, option: str, control: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> float:
        """Pick ``option`` in a segmented control (the one labelled ``control``, else the first that offers it)."""
        def find(v: Viewer) -> Segmented | None:
            for s in v.segmented():
                if option in s.options and not s.disabled and (control is None or s.label == control):
                    return s
            return None

        if not await self.wait_until(lambda v: find(v) is not None, timeout):
            raise TimeoutError(f"{self.name}: no segmented control offering {option!r} within {timeout:.0f} s")
        seg = find(self)
        state = WidgetState(id=seg.id)
        state.string_array_value.data.append(option)  # the value the browser sends: the shown label
        self._widget_values[seg.id] = state
        return await self._send_rerun(fragment_id=seg.fragment_id)

    # -- protocol: sending
    async def _send_rerun(self, fragment_id: str = "", auto: bool = False,
                          extra: list[WidgetState] | None = None) -> float:
        if self._ws is None or self.closed_reason is not None:
            raise ConnectionError(f"{self.name}: not connected ({self.closed_reason})")
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query
        cs.page_script_hash = self.page_script_hash
        cs.page_name = ""  # the URL path below the base ("" = "/"); the frontend sends it only on the first run
        if fragment_id:
            cs.fragment_id = fragment_id
        cs.is_auto_rerun = auto
        for state in [*self._widget_values.values(), *(extra or [])]:
            cs.widget_states.widgets.append(state)
        cs.cached_message_hashes.extend(self.cached_hashes())
        info = cs.context_info
        info.timezone, info.timezone_offset, info.locale = "UTC", 0, "en-US"
        info.url, info.is_embedded, info.color_scheme = self.page_url, False, "light"
        try:
            await self._ws.send(msg.SerializeToString())
        except (ConnectionClosed, OSError) as exc:
            self._mark_closed(f"send failed: {type(exc).__name__}: {exc}")
            raise ConnectionError(f"{self.name}: {self.closed_reason}") from exc
        self.stats.reruns_sent += 1
        self.stats.auto_reruns_sent += auto
        return time.monotonic()

    # -- protocol: receiving
    async def _read_loop(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                if isinstance(raw, str):  # Streamlit only sends binary protobufs
                    self._error(f"unexpected text frame: {raw[:80]!r}")
                    continue
                self.stats.messages += 1
                self.stats.bytes_received += len(raw)
                try:
                    self.handle_message(raw)
                except Exception as exc:  # noqa: BLE001 — one bad message must not end the tab's model
                    self._error(f"could not handle a message: {type(exc).__name__}: {exc}")
                self._notify()
            self._mark_closed(f"server closed the connection (code {self._ws.close_code})")
        except ConnectionClosed as exc:
            self._mark_closed(f"connection lost: {exc}")
        except asyncio.CancelledError:
            self._mark_closed("reader cancelled")
            raise
        except Exception as exc:  # noqa: BLE001 — recorded on this viewer; the others go on
            self._error(f"reader failed: {type(exc).__name__}: {exc}")
            self._mark_closed(f"reader failed: {exc}")
        finally:
            self._stop_timers()
            self._notify()

    def handle_message(self, raw: bytes) -> None:
        """Apply one serialized ForwardMsg as if it had just arrived (the reader calls this; tests may too)."""
        msg = ForwardMsg()
        msg.ParseFromString(raw)
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":
            msg = self._from_cache(msg)
            kind = msg.WhichOneof("type")
        elif msg.metadata.cacheable and msg.hash and self.cache_enabled and msg.hash not in self._cache:
            fragment = msg.delta.fragment_id if kind == "delta" else ""
            self._cache[msg.hash] = [raw, self._cache_runs, fragment]
        if kind == "new_session":
            self._on_new_session(msg)
        elif kind == "delta":
            self._on_delta(msg)
        elif kind == "script_finished":
            self._on_script_finished(msg)
        elif kind == "auto_rerun":
            self._on_auto_rerun(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fid in msg.stop_auto_rerun.fragment_ids:
                self._stop_timer(fid)
        elif kind == "navigation" and msg.navigation.page_script_hash:
            # st.navigation: the page actually shown (new_session named the main script); the
            # frontend reruns with this one from now on.
            self.page_script_hash = msg.navigation.page_script_hash
        elif kind == "page_not_found":
            self._error(f"page not found: {msg.page_not_found.page_name!r}")
        elif kind == "session_event" and msg.session_event.WhichOneof("type") == "script_compilation_exception":
            self._error(f"script compilation error: {msg.session_event.script_compilation_exception.message}")
        # session_status_changed, page_info_changed, page_config_changed, navigation, logo, ...:
        # nothing the simulated tab needs to draw or answer.

    def _from_cache(self, ref: ForwardMsg) -> ForwardMsg:
        entry = self._cache.get(ref.ref_hash)
        if entry is None:  # the frontend raises too: the server referred to a message we never declared
            raise KeyError(f"cached ForwardMsg miss for hash {ref.ref_hash}")
        entry[1] = self._cache_runs  # a hit renews the entry, as getCachedMessage(hash, true) does
        msg = ForwardMsg()
        msg.ParseFromString(entry[0])
        msg.metadata.CopyFrom(ref.metadata)  # the reference carries this run's delta path
        self.stats.cache_hits += 1
        return msg

    def _on_new_session(self, msg: ForwardMsg) -> None:
        ns = msg.new_session
        self.session_id = ns.initialize.session_id or self.session_id
        if ns.page_script_hash:
            self.page_script_hash = ns.page_script_hash
        if ns.config.max_cached_message_age:
            self._max_cache_age = ns.config.max_cached_message_age
        self._run_id = msg.metadata.run.script_run_id
        self._run_fragments = tuple(msg.metadata.run.fragment_ids)
        if not self._run_fragments:
            self._stop_timers()  # a full run re-declares its timers (frontend: cleanupAutoReruns)

    def _on_delta(self, msg: ForwardMsg) -> None:
        delta, path = msg.delta, tuple(msg.metadata.delta_path)
        which = delta.WhichOneof("type")
        if which == "add_block":
            self._nodes[path] = _Node("block", self._run_id, delta.fragment_id)
            return
        if which != "new_element":
            return  # new_transient, arrow_add_rows...: nothing the model reads
        previous = self._nodes.get(path)
        if previous is not None and previous.kind == "block":  # an element replacing a block drops its children
            n = len(path)
            for p in [p for p in self._nodes if len(p) > n and p[:n] == path]:
                del self._nodes[p]
        el = delta.new_element
        ek = el.WhichOneof("type") or ""
        node = _Node(ek, self._run_id, delta.fragment_id)
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
        elif ek == "imgs" and self.fetch_media:
            for img in el.imgs.imgs:
                self._maybe_fetch(img.url)
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

    def _on_script_finished(self, msg: ForwardMsg) -> None:
        status = msg.script_finished
        run_id = msg.metadata.run.script_run_id or self._run_id
        fragments = tuple(msg.metadata.run.fragment_ids) if msg.metadata.HasField("run") else self._run_fragments
        self.runs.append(ScriptRun(time.monotonic(), run_id, fragments, status))
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
        if status != FINISHED.FINISHED_EARLY_FOR_RERUN:
            self._age_cache(fragments)
        line = self.status()
        if line is not None and (not self.status_log or self.status_log[-1][1] != line):
            self.status_log.append((time.monotonic(), line))
            del self.status_log[: -self._keep_runs]

    def _age_cache(self, fragments: tuple[str, ...]) -> None:
        """ForwardMsgCache.incrementRunCount: drop entries unused for more than max age runs; a fragment
        run only ages the entries of the fragments that ran."""
        self._cache_runs += 1
        for h, (_, last_used, fragment) in list(self._cache.items()):
            if fragments and (not fragment or fragment not in fragments):
                continue
            if self._cache_runs - last_used > self._max_cache_age:
                del self._cache[h]

    # -- auto-rerun timers (the frontend's handleAutoRerun / setInterval)
    def _on_auto_rerun(self, fragment_id: str, interval: float) -> None:
        if not fragment_id or interval <= 0:
            self._error(f"ignored auto_rerun without a fragment id or interval ({fragment_id!r}, {interval})")
            return
        current = self._timers.get(fragment_id)
        if current is not None and current[0] == interval:
            return  # same interval: the running timer keeps its phase
        self._stop_timer(fragment_id)
        task = asyncio.create_task(self._timer_loop(fragment_id, interval), name=f"{self.name}-timer")
        self._timers[fragment_id] = (interval, task)

    async def _timer_loop(self, fragment_id: str, interval: float) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + interval  # setInterval: first tick one interval after the setup
        while self.closed_reason is None:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            try:
                await self._send_rerun(fragment_id=fragment_id, auto=True)
            except ConnectionError:
                return
            # A late tick fires once, then the timer keeps its period (no burst of missed ticks).
            next_at = max(next_at + interval, loop.time())

    def _stop_timer(self, fragment_id: str) -> None:
        entry = self._timers.pop(fragment_id, None)
        if entry is not None:
            entry[1].cancel()

    def _stop_timers(self) -> None:
        for fid in list(self._timers):
            self._stop_timer(fid)

    # -- media
    def _maybe_fetch(self, url: str) -> None:
        if not url or url in self._media_seen or url.startswith("data:"):
            return
        if len(self._media_seen) > 1000:  # bounded: a long run produces many grid URLs
            self._media_seen.clear()
        self._media_seen.add(url)
        full = url if url.startswith("http") else self.http_base + (url if url.startswith("/") else "/" + url)
        task = asyncio.create_task(self._fetch(full))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fetch(self, url: str) -> None:
        result = await http_get(url, timeout=10.0)
        self.stats.media_fetches += 1
        if result.status != 200:
            self._error(f"GET {url} -> {result.status or 'failed'}")

    # -- bookkeeping
    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def _error(self, text: str) -> None:
        self.stats.errors.append(text)
        del self.stats.errors[:-50]  # bounded

    def _mark_closed(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        self._stop_timers()

    async def _finish_reader(self, timeout: float) -> None:
        task = self._reader_task
        if task is not None and not task.done():
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), timeout)
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for t in list(self._tasks):
            t.cancel()


# --- many viewers ----------------------------------------------------------------------------------
async def open_viewers(base_url: str, n: int, query: str = "", *, prefix: str = "viewer",
                       concurrency: int = 20, timeout: float = 60.0, **kwargs) -> tuple[list[Viewer], list[str]]:
    """Connect n viewers (at most ``concurrency`` handshakes at once, like a room arriving); returns
    the connected ones and one line per viewer that failed (those are already closed)."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(i: int) -> Viewer:
        viewer = Viewer(base_url, query, name=f"{prefix}-{i}", **kwargs)
        async with gate:
            try:
                return await viewer.connect(timeout=timeout)
            except BaseException:
                await viewer.close(2.0)
                raise

    results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    ok = [r for r in results if isinstance(r, Viewer)]
    failed = [f"{type(r).__name__}: {r}" for r in results if not isinstance(r, Viewer)]
    return ok, failed


async def close_viewers(viewers: list[Viewer], timeout: float = 10.0) -> None:
    """Close them all concurrently; bounded, never raises."""
    if viewers:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*(v.close(timeout) for v in viewers), return_exceptions=True),
                                   timeout + 5.0)


async def wait_all(viewers: list[Viewer], predicate: Callable[[Viewer], bool], timeout: float,
                   since: float | None = None) -> float | None:
    """Seconds from ``since`` (default: now) until every still-connected viewer satisfies predicate,
    i.e. until the last one does; None on timeout.

    A viewer that disconnects while waiting no longer counts; its closed_reason says why.
    """
    t0 = time.monotonic() if since is None else since
    done_at: list[float] = []

    async def one(v: Viewer) -> bool:
        ok = await v.wait_until(predicate, timeout)
        done_at.append(time.monotonic())
        return ok or not v.connected

    results = await asyncio.gather(*(one(v) for v in viewers))
    return max(done_at, default=t0) - t0 if all(results) else None
