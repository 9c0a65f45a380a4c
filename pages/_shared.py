"""The one process-wide RunRegistry, shared by every page, tab and reload.

Why a module of its own: st.cache_resource keys a cache by the decorated function's module and
qualified name, so the registry must be defined in exactly ONE importable place; a copy of this
function in each page would give each page its own registry (and two trainings on one laptop).
It lives in pages/ beside the pages that use it; app.py builds the page list with st.navigation,
so Streamlit does not treat this file as a page (the underscore marks it as a helper).
"""

import streamlit as st

from gan.runs import RunRegistry


@st.cache_resource(show_spinner=False)
def get_registry() -> RunRegistry:
    # One per server process. The trainers' threads never call st.*; pages only send commands.
    return RunRegistry()
