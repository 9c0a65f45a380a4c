"""Presenter lock for workshops: with GAN_LIVE_TOKEN set, only the presenter's browser gets controls.
Must not import streamlit or store the token anywhere but the environment.

The presenter opens the app once with ``?token=<value>``; the browser session remembers it (a flag
in st.session_state, so page switches keep it). Everybody else sees the live dashboard read-only.
A wrong token unlocks nothing. With GAN_LIVE_TOKEN unset or empty, everyone has the controls, as
on a laptop of one's own.

Pure logic, no streamlit: the pages pass in the environment value, the query parameter and the
session flag, and store ``Access.remember`` back into the session.
"""

import hmac
import os
from dataclasses import dataclass

ENV_VAR = "GAN_LIVE_TOKEN"
QUERY_PARAM = "token"
SESSION_KEY = "gan_live_presenter"  # st.session_state key holding the remembered flag


@dataclass(frozen=True)
class Access:
    presenter: bool  # show and accept controls
    remember: bool  # value to store in st.session_state[SESSION_KEY]
    locked: bool  # a token is configured (so the page can say "read-only view")
    notice: str | None  # one line for the page, e.g. after a wrong token


def env_token(environ=None) -> str | None:
    """The configured token, or None when the lock is off (unset, empty or only whitespace)."""
    value = (environ if environ is not None else os.environ).get(ENV_VAR)
    value = value.strip() if isinstance(value, str) else None
    return value or None


def token_matches(expected: str, given) -> bool:
    """Constant-time comparison (hmac.compare_digest) of UTF-8 bytes; anything not a str is no match."""
    if not isinstance(given, str) or not isinstance(expected, str) or not expected:
        return False
    return hmac.compare_digest(expected.encode(), given.strip().encode())  # str.encode: UTF-8


def access(env_value: str | None, query_token, session_flag: bool = False) -> Access:
    """Decide what this browser session may do. ``query_token`` is st.query_params.get("token")."""
    expected = env_value.strip() if isinstance(env_value, str) else None
    if not expected:
        return Access(presenter=True, remember=bool(session_flag), locked=False, notice=None)
    if isinstance(query_token, list):  # a repeated ?token=a&token=b: take the last, like st.query_params
        query_token = query_token[-1] if query_token else None
    if query_token is not None and token_matches(expected, query_token):
        return Access(True, True, True, None)
    if session_flag is True:
        # Remembered from an earlier visit with the right token; a later wrong token neither unlocks
        # nor locks anything, so a typo in a second tab cannot lock the presenter out.
        return Access(True, True, True, None)
    notice = ("That presenter token is not right: this is the read-only view." if query_token not in (None, "")
              else "Read-only view: the presenter controls this session.")
    return Access(False, False, True, notice)


def token_for_address(env_value: str | None, query_token, granted: Access) -> str | None:
    """The token to put back into a presenter's address, or None to leave it as it is.

    Streamlit drops query parameters on a page switch; a presenter who then reloads would land as a viewer. A
    session that proved the token once gets it back in its address (it typed it there; nobody else sees it)."""
    expected = env_value.strip() if isinstance(env_value, str) else None
    if not expected or not granted.presenter or token_matches(expected, query_token):
        return None
    return expected
