"""One simulated browser tab (Viewer): its connection, rerun requests, the read loop, what it does per message.
Must not model the page (page.py), cache messages (cache.py), run timers (timers.py): it holds and drives them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, WebSocketException

from gan.tools.viewers.cache import MessageCache
from gan.tools.viewers.http import HttpResult, MediaFetcher
from gan.tools.viewers.page import FINISHED, Page, PageView, Segmented
from gan.tools.viewers.protocol import STREAM_PATH, open_stream, rerun_request
from gan.tools.viewers.timers import AutoRerunTimers

DEFAULT_TIMEOUT = 30.0


@dataclass
class ViewerStats:
    messages: int = 0
    bytes_received: int = 0
    reruns_sent: int = 0
    auto_reruns_sent: int = 0
    cache_hits: int = 0  # ref_hash messages answered from our cache
    media_fetches: int = 0
    errors: list[str] = field(default_factory=list)  # protocol or transport problems, newest last


class Viewer(PageView):
    """One simulated browser tab on a Streamlit app (the protocol it speaks: the package's docstring).

    ``base_url`` is the app's address, e.g. ``http://127.0.0.1:8501/``; ``query`` the tab's query
    string without "?" (``"token=..."`` for the presenter). Use ``await viewer.connect()`` then read
    ``status()``, ``markdown()``, ``buttons()``, ``fragment_runs``; ``click()``/``select()`` act;
    ``close()`` (clean) or ``abort()`` (dropped connection) end it. The page queries (markdown(), status(),
    runs, ...) are PageView's answers from ``self.page``.
    """

    def __init__(self, base_url: str, query: str = "", *, name: str = "viewer", cache: bool = True,
                 fetch_media: bool = True, keep_runs: int = 10_000, page: str = ""):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must look like http://host:port/, got {base_url!r}")
        self.name = name
        self.query = query.lstrip("?")
        self.http_base = f"{parts.scheme}://{parts.netloc}"
        self.ws_url = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}{STREAM_PATH}"
        self.page_name = page.strip("/")  # a page's url path ("my_run"), as a tab opened at that address asks
        self.page_url = f"{self.http_base}/{self.page_name}" + (f"?{self.query}" if self.query else "")
        self.cache_enabled = cache
        self.fetch_media = fetch_media
        self.stats = ViewerStats()
        self.session_id = ""
        self.page_script_hash = ""  # "" on the first run: the server picks the default page
        self.page = Page(keep_runs)  # what the tab shows, and the script runs that finished
        self.closed_reason: str | None = None  # set once the connection is over
        self._ws: ClientConnection | None = None
        self._reader_task: asyncio.Task | None = None
        self._timers = AutoRerunTimers(name, lambda fid: self._send_rerun(fragment_id=fid, auto=True),
                                       lambda: self.closed_reason is None)
        self._cache = MessageCache()
        self._media = MediaFetcher(self.http_base, self._media_fetched)
        self._changed = asyncio.Event()
        self._reading = asyncio.Event()  # cleared by stall(): a sleeping laptop's tab reads and sends nothing
        self._reading.set()
        self._keep_sending = False

    # -- lifecycle
    async def connect(self, timeout: float = DEFAULT_TIMEOUT, wait_first_run: bool = True) -> Viewer:
        """Open the tab: health/host-config pings, the websocket, the first rerun request.

        With ``wait_first_run`` it returns once the first full script run has finished. Raises
        TimeoutError or ConnectionError when that does not happen within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        try:
            self._ws = await open_stream(self.http_base, self.ws_url, deadline)
        except (OSError, asyncio.TimeoutError, WebSocketException) as exc:
            self.closed_reason = f"connect failed: {type(exc).__name__}: {exc}"
            raise ConnectionError(f"{self.name}: {self.closed_reason}") from exc
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

    def cached_hashes(self) -> list[str]:
        """The message hashes the next rerun request will declare as cached."""
        return self._cache.hashes() if self.cache_enabled else []

    def timers(self) -> dict[str, float]:
        """The auto-rerun timers running now: fragment id -> interval in seconds."""
        return self._timers.intervals()

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
        self.page.set_widget_state(state)
        return await self._send_rerun(fragment_id=seg.fragment_id)

    def stall(self, keep_sending: bool = False) -> None:
        """Stop reading the websocket (the connection stays open; resume_reading() wakes it). A laptop lid
        closed also stops the tab's timers; ``keep_sending``: they go on firing, as from a tab on a link that
        sends but cannot receive (the harder case for the server: it runs each rerun and cannot deliver it)."""
        self._keep_sending = keep_sending
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    @property
    def stalled(self) -> bool:
        return not self._reading.is_set()

    async def fill(self, label: str, text: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Type ``text`` into the text input labelled ``label`` (kept as the widget's value, sent with the next
        rerun, as a browser's form sends it with its submit button)."""
        if not await self.wait_until(lambda v: v.page.text_input_id(label) is not None, timeout):
            raise TimeoutError(f"{self.name}: no text input {label!r} within {timeout:.0f} s")
        state = WidgetState(id=self.page.text_input_id(label))
        state.string_value = text
        self.page.set_widget_state(state)

    async def send_widget_states(self, states: list[WidgetState], fragment_id: str = "") -> float:
        """Send a rerun that reports ``states`` as well, whatever this tab shows: what a hostile or stale
        client can send (another session's widget ids, values out of order). Returns the send time."""
        return await self._send_rerun(fragment_id=fragment_id, extra=list(states))

    # -- protocol: sending
    async def _send_rerun(self, fragment_id: str = "", auto: bool = False,
                          extra: list[WidgetState] | None = None) -> float:
        if self._ws is None or self.closed_reason is not None:
            raise ConnectionError(f"{self.name}: not connected ({self.closed_reason})")
        if auto and self.stalled and not self._keep_sending:
            return time.monotonic()  # a frozen tab's timers do not fire
        payload = rerun_request(query=self.query, page_script_hash=self.page_script_hash, page_url=self.page_url,
                                page_name="" if self.page_script_hash else self.page_name,
                                fragment_id=fragment_id, auto=auto, cached_hashes=self.cached_hashes(),
                                widget_states=[*self.page.widget_states(), *(extra or [])])
        try:
            await self._ws.send(payload)
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
                if not self._reading.is_set():
                    await self._reading.wait()  # stalled: the socket's buffers fill, as a sleeping tab's do
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
            self._timers.stop_all()
            self._notify()

    def handle_message(self, raw: bytes) -> None:
        """Apply one serialized ForwardMsg as if it had just arrived (the reader calls this; tests may too)."""
        msg = ForwardMsg()
        msg.ParseFromString(raw)
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":
            msg = self._cache.resolve(msg)
            self.stats.cache_hits += 1
            kind = msg.WhichOneof("type")
        elif msg.metadata.cacheable and msg.hash and self.cache_enabled:
            self._cache.remember(msg.hash, raw, msg.delta.fragment_id if kind == "delta" else "")
        if kind == "new_session":
            ns = msg.new_session
            self.session_id = ns.initialize.session_id or self.session_id
            if ns.page_script_hash:
                self.page_script_hash = ns.page_script_hash
            if ns.config.max_cached_message_age:
                self._cache.max_age = ns.config.max_cached_message_age
            self.page.start_run(msg.metadata.run.script_run_id, tuple(msg.metadata.run.fragment_ids))
            if not msg.metadata.run.fragment_ids:
                self._timers.stop_all()  # a full run re-declares its timers (frontend: cleanupAutoReruns)
        elif kind == "delta":
            for url in self.page.apply_delta(msg):
                if self.fetch_media:
                    self._media.fetch(url)
        elif kind == "script_finished":
            run = self.page.finish_run(msg)
            if run.status != FINISHED.FINISHED_EARLY_FOR_RERUN:
                self._cache.age(run.fragment_ids)
        elif kind == "auto_rerun":
            fid, interval = msg.auto_rerun.fragment_id, msg.auto_rerun.interval
            if not fid or interval <= 0:
                self._error(f"ignored auto_rerun without a fragment id or interval ({fid!r}, {interval})")
            else:
                self._timers.start(fid, interval)
        elif kind == "stop_auto_rerun":
            for fid in msg.stop_auto_rerun.fragment_ids:
                self._timers.stop(fid)
        elif kind == "navigation" and msg.navigation.page_script_hash:
            # st.navigation: the page actually shown (new_session named the main script); the
            # frontend reruns with this one from now on.
            self.page_script_hash = msg.navigation.page_script_hash
        elif kind == "page_info_changed":
            # st.query_params set by the page (My run's ?me=&key=): the browser's address changes, and every
            # later rerun carries the new query, as the frontend's does.
            self.query = msg.page_info_changed.query_string
            self.page_url = f"{self.http_base}/{self.page_name}" + (f"?{self.query}" if self.query else "")
        elif kind == "page_not_found":
            self._error(f"page not found: {msg.page_not_found.page_name!r}")
        elif kind == "session_event" and msg.session_event.WhichOneof("type") == "script_compilation_exception":
            self._error(f"script compilation error: {msg.session_event.script_compilation_exception.message}")
        # session_status_changed, page_config_changed, navigation, logo, ...:
        # nothing the simulated tab needs to draw or answer.

    def _media_fetched(self, url: str, result: HttpResult) -> None:
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
        self._timers.stop_all()

    async def _finish_reader(self, timeout: float) -> None:
        task = self._reader_task
        if task is not None and not task.done():
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), timeout)
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._media.cancel_all()
