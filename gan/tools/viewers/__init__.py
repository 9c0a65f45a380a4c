"""Simulated browser viewers: asyncio clients that speak Streamlit's websocket protocol like a tab.
Owns the package's public names (re-exported here); must not drive the app itself nor use Streamlit's runtime API.

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

Modules: viewer.py (Viewer: the connection and what it does per message), page.py (Page: the page model),
cache.py (the ForwardMsg cache), timers.py (auto-rerun timers), protocol.py (the wire details), http.py
(plain GETs, media), crowd.py (many viewers at once).
"""

# Re-exported: callers import these from gan.tools.viewers (bench, tests), as before the split.
from gan.tools.viewers.crowd import close_viewers, open_viewers, wait_all
from gan.tools.viewers.http import HttpResult, http_get
from gan.tools.viewers.page import Button, Page, ScriptRun, Segmented, StatusLine, initial_widget_state
from gan.tools.viewers.viewer import Viewer, ViewerStats

__all__ = [
    "Button", "HttpResult", "Page", "ScriptRun", "Segmented", "StatusLine", "Viewer", "ViewerStats",
    "close_viewers", "http_get", "initial_widget_state", "open_viewers", "wait_all",
]
