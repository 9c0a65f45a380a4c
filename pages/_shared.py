"""Process-wide objects shared by every page, tab and reload, and the presenter lock.

Why a module of its own: st.cache_resource keys a cache by the decorated function's module and
qualified name, so each shared object must be defined in exactly ONE importable place; a copy of a
getter in each page would give each page its own registry (and two trainings on one laptop), or
its own snapshot store. It lives in pages/ beside the pages that use it; app.py builds the page
list with st.navigation, so Streamlit does not treat this file as a page (the underscore marks it
as a helper).
"""

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from gan.viz.liveview import LiveView
from gan.viz.qualityview import QualityView
from gan.workshop import auth, snapshots
from gan.workshop.lab import Lab, lab_from_env
from gan.workshop.runs import RunRegistry
from gan.workshop.share import qr_png, share_url


def _leave_pages_folder_mode() -> None:
    """Streamlit runs a pages/ file ALONE (its old folder-based navigation, app.py skipped) while no session of a
    fresh server has yet called st.navigation: a participant scanning the QR code of /my_run first, or every tab
    reconnecting after a restart, got a page without app.py's menu and a sidebar listing helper modules. The flag
    is Streamlit's own (st.navigation clears it the same way, streamlit/commands/navigation.py); clearing it and
    rerunning sends this first run through app.py. Pinned Streamlit (1.67): tests/test_lab_server.py checks it."""
    if getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        st.rerun()


@st.cache_resource(show_spinner=False, on_release=lambda registry: registry.close())
def get_registry() -> RunRegistry:
    # One per server process: it spawns the training worker process at once (GAN_LIVE_TRAINER=process),
    # so the first Start finds it warm. The trainers never call st.*; pages only send commands.
    return RunRegistry()


@st.cache_resource(show_spinner=False)
def live_view(run_name: str = "") -> LiveView:
    # One render per tick and run, shared by every session watching that run (gan.viz.liveview): a lab's
    # participants each watch their own, and one shared view would render again at every other tab's refresh.
    return LiveView()


@st.cache_resource(show_spinner=False)
def quality_view(run_name: str = "") -> QualityView:
    return QualityView()


@st.cache_resource(show_spinner=False, on_release=lambda lab: lab.shutdown())
def get_lab() -> Lab:
    """The server's lab (gan.workshop.lab) over the one registry: closed unless GAN_LIVE_LAB=1 or it was open
    before a restart."""
    return lab_from_env(get_registry())


@st.cache_resource(show_spinner=False)
def snapshot_store(root: str) -> snapshots.SnapshotStore:
    return snapshots.SnapshotStore(root)  # one per server process and directory: shared by every browser


def get_store() -> snapshots.SnapshotStore:
    """The snapshot store of GAN_LIVE_RUNS_DIR (read per call, so tests can point it elsewhere)."""
    return snapshot_store(str(snapshots.runs_dir() / "snapshots"))


def reference_classifier(trainer):
    """The reference classifier of gan.quality.classifier for ``trainer``'s run, trained on THAT run's dataset
    (trainer.data: loaded from the run's own config, its data path included), never a dataset looked up by name
    with default settings, which for "own" would read whatever folder the server runs in. NoClasses (of
    gan.quality.classifier) for your own images, which have none; NotLoaded before the run has its images."""
    from gan.quality.classifier import NotLoaded

    data = trainer.data
    if data is None:  # a page asks only once there is a grid, so the run has loaded: a rare race, said plainly
        raise NotLoaded("the run has not loaded its images yet")
    return _reference_for((data.name, data.source, len(data)), data)


@st.cache_resource(show_spinner="Loading the reference classifier…")
def _reference_for(key: tuple, _dataset):
    """One classifier per dataset for the server process (trained once and cached on disk); ``key`` names the
    dataset (the underscore keeps Streamlit from hashing its 60,000 images at every rerun)."""
    from gan.quality.classifier import load_reference

    return load_reference(_dataset)


def presenter_access() -> auth.Access:
    """The presenter lock (gan.workshop.auth) for this browser session; shows its one-line notice, if any.

    With GAN_LIVE_TOKEN set, only a session that opened the app with ?token=<value> gets controls;
    the flag is kept in st.session_state so switching pages keeps it, and the token is put back into the
    address (a page switch drops it), so a reload of the presenter's tab still has the controls.
    """
    given = st.query_params.get(auth.QUERY_PARAM)
    access = auth.access(auth.env_token(), given, st.session_state.get(auth.SESSION_KEY, False))
    st.session_state[auth.SESSION_KEY] = access.remember
    restore = auth.token_for_address(auth.env_token(), given, access)
    if restore is not None:
        st.query_params[auth.QUERY_PARAM] = restore
    if access.notice:
        st.info(access.notice, icon=":material/lock:")
    return access


WAITING = "Waiting for the presenter to start a run."  # what a viewer sees on every page before a run


def no_run_notice(access: auth.Access, presenter_text: str) -> None:
    """Before any run: the presenter reads what to do; a viewer, who has no controls, reads that they wait."""
    if access.presenter:
        st.info(presenter_text, icon=":material/info:")
    else:
        st.info(WAITING, icon=":material/hourglass_top:")


@st.cache_data(show_spinner=False, max_entries=4)
def _share_qr(url: str) -> bytes:
    return qr_png(url)


def share_panel(qr_width: int = 180, note: str = "") -> None:
    """The address the room opens to join the lab, and its QR code (gan.workshop.share: never the token)."""
    share = share_url(int(st.get_option("server.port") or 8501), st.get_option("server.baseUrlPath") or "")
    left, right = st.columns([1, 3], vertical_alignment="center")
    left.image(_share_qr(share.url), width=qr_width)
    right.markdown(f"#### Join: `{share.url}`")
    right.caption("Open it on your laptop or phone, type your name, press Start. "
                  + (share.note or "Same Wi-Fi as this machine.") + (f" {note}" if note else ""))


# Last, after every name above is defined: st.rerun() raises out of this import, and a second session importing
# this module at the same moment (a fresh server's first tabs) waits on the import lock and is then handed the
# module object as it stood when the exception left it. Called at the top, that object had no get_lab yet
# ("cannot import name 'get_lab' from 'pages._shared'", seen under load); here it is complete.
_leave_pages_folder_mode()
