"""The wire details a tab must match: the pings before the socket, its path and subprotocols, the rerun BackMsg.
Must not hold state nor read or send on the socket (Viewer's job): it opens one and encodes messages."""

from __future__ import annotations

import time

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import ClientConnection, connect

from gan.tools.viewers.http import http_get

STREAM_PATH = "/_stcore/stream"
SUBPROTOCOL = "streamlit"
NO_XSRF_TOKEN = "PLACEHOLDER_AUTH_TOKEN"  # what the frontend sends when it has no _streamlit_xsrf cookie


async def open_stream(http_base: str, ws_url: str, deadline: float) -> ClientConnection:
    """Open a fresh tab's socket by ``deadline`` (time.monotonic()): first the connection manager's pings
    (health, host-config), then the websocket. Raises OSError, asyncio.TimeoutError or WebSocketException."""
    for path in ("/_stcore/health", "/_stcore/host-config"):
        await http_get(http_base + path, timeout=max(0.1, deadline - time.monotonic()))
    return await connect(
        ws_url, subprotocols=[SUBPROTOCOL, NO_XSRF_TOKEN],
        open_timeout=max(0.1, deadline - time.monotonic()),
        max_size=None,  # a browser accepts any message size; the server caps what it sends
        ping_interval=None,  # browsers never ping; they answer the server's pings (done for us)
        close_timeout=2.0)


def rerun_request(*, query: str, page_script_hash: str, page_url: str, fragment_id: str, auto: bool,
                  widget_states: list[WidgetState], cached_hashes: list[str], page_name: str = "") -> bytes:
    """The serialized ``BackMsg.rerun_script`` the frontend sends for one run request."""
    msg = BackMsg()
    cs = msg.rerun_script
    cs.query_string = query
    cs.page_script_hash = page_script_hash
    cs.page_name = page_name  # the URL path below the base ("" = "/"); the frontend sends it only on the first run
    if fragment_id:
        cs.fragment_id = fragment_id
    cs.is_auto_rerun = auto
    for state in widget_states:
        cs.widget_states.widgets.append(state)
    cs.cached_message_hashes.extend(cached_hashes)
    info = cs.context_info
    info.timezone, info.timezone_offset, info.locale = "UTC", 0, "en-US"
    info.url, info.is_embedded, info.color_scheme = page_url, False, "light"
    return msg.SerializeToString()
