"""Room: what the presenter projects in lab mode. Every participant's latest samples with their name, a leaderboard,
and the room's own sweep (score against the setting each one chose); the presenter can spotlight, save or stop a
run. Must not decide anything: gan.viz.roomview builds the frame (once a second for every tab), gan.workshop.lab
acts."""

import streamlit as st

from gan.viz.roomview import SETTINGS, RoomView
from gan.workshop import auth, snapshots
from pages._shared import get_lab, get_registry, get_store, presenter_access, share_panel
from pages._train_live import live_panel, metrics_panel

REFRESH_S = 1.0
BOARD_S = 5.0
WATCHER = auth.Access(presenter=False, remember=False, locked=True, notice=None)
PER_ROW = 5  # tiles per row: 5 grids of 6x6 digits stay readable from the back of a room at 1280 px

lab = get_lab()
registry = get_registry()
access = presenter_access()
ss = st.session_state


@st.cache_resource(show_spinner=False)
def room_view() -> RoomView:
    return RoomView()  # one frame a second for every tab on this page


if not lab.is_open:
    st.header("Room", anchor=False)
    st.info(lab.notice or "The lab is closed: the presenter opens it in the Train page's Workshop area "
            "(Lab: everyone trains).", icon=":material/groups:")
    st.stop()

if access.presenter:
    with st.expander("Share: how the room joins", expanded=not lab.seats(), icon=":material/qr_code_2:"):
        share_panel()


def wall() -> None:
    """The grids, every second: what the room watches."""
    frame = room_view().frame(lab.entries(), registry.monitor)
    live = sum(1 for t in frame.tiles if t.state in ("loading", "running", "paused"))
    st.markdown(f"### Room · {live} of {lab.participant_slots} training"
                + (f" · {len(frame.waiting)} waiting" if frame.waiting else ""))
    if not frame.tiles:
        st.caption("No participant has started yet.")
    for i in range(0, len(frame.tiles), PER_ROW):
        cols = st.columns(PER_ROW)
        for col, tile in zip(cols, frame.tiles[i:i + PER_ROW]):
            with col:
                if tile.png is not None:
                    st.image(tile.png, width="stretch")
                st.markdown(f"**{tile.name}**  \n{tile.caption}")
    if frame.waiting:
        st.caption("Waiting: " + ", ".join(f"{place}. {name}" for name, place in sorted(frame.waiting,
                                                                                      key=lambda w: w[1])))


def board() -> None:
    """The leaderboard and the sweep: scores change every few hundred steps, so every few seconds is enough, and
    the wall's one-second refresh stays light."""
    frame = room_view().frame(lab.entries(), registry.monitor)
    if frame.board.empty:
        return
    left, right = st.columns([3, 2])
    left.dataframe(frame.board, hide_index=True, width="stretch",
                   column_config={"score": st.column_config.NumberColumn(format="%.2f"),
                                  "FD": st.column_config.NumberColumn(format="%.1f")})
    right.vega_lite_chart(frame.specs[ss.get("room_setting", "lr_d")], width="stretch")


st.fragment(wall, run_every=REFRESH_S)()
st.fragment(board, run_every=BOARD_S)()
st.selectbox("The sweep's setting", list(SETTINGS), key="room_setting", format_func=SETTINGS.get, width=260)

if access.presenter:
    names = [e.run.name for e in lab.entries() if e.run is not None]
    labels = {e.run.name: e.name for e in lab.entries() if e.run is not None}
    if names:
        with st.container(horizontal=True, vertical_alignment="bottom", key="room_tools"):
            # Pills, not a select box: the wall's refresh every second closed an open drop-down under the pointer.
            st.pills("Act on the run of", names, key="room_pick", format_func=labels.get)

            def on_spotlight() -> None:
                ss["room_spotlight"] = ss.get("room_pick")

            def on_save() -> None:
                run = registry.get(ss.get("room_pick"))
                name = f"{labels.get(run.name, run.name)}-step{run.step_count}".replace(" ", "-")
                try:
                    name = snapshots.check_name("".join(c for c in name if c.isalnum() or c in "-_"))
                    get_store().save(name, run, metrics=registry.quality_columns(run))
                    ss["_room_notice"] = ("success", f"Saved snapshot {name!r}: overlay it on the Compare page.")
                except (ValueError, FileExistsError, RuntimeError, OSError) as exc:
                    ss["_room_notice"] = ("error", f"Not saved: {exc}")

            def on_stop() -> None:
                try:
                    lab.stop_run(ss.get("room_pick"))
                    ss["_room_notice"] = ("success", f"Stopped {labels.get(ss.get('room_pick'))}'s run.")
                except (ValueError, RuntimeError) as exc:
                    ss["_room_notice"] = ("error", f"Not stopped: {exc}")

            none = not ss.get("room_pick")
            st.button("Spotlight", key="room_spotlight_btn", on_click=on_spotlight, icon=":material/highlight:",
                      disabled=none)
            st.button("Save to Compare", key="room_save", on_click=on_save, icon=":material/bookmark_add:",
                      disabled=none)
            st.button("Stop", key="room_stop", on_click=on_stop, icon=":material/stop:", disabled=none)
            if ss.get("room_spotlight"):
                st.button("Close spotlight", key="room_unspot", on_click=lambda: ss.pop("room_spotlight", None))
        shown = ss.get("_room_notice")
        if shown:
            (st.success if shown[0] == "success" else st.error)(shown[1])
        spot = ss.get("room_spotlight")
        if spot and registry.get(spot) is not None:
            st.subheader(f"Spotlight: {labels.get(spot, spot)}", anchor=False)

            def pick():
                return registry.get(spot)

            run = pick()
            # Watched, not steered: the coach's Apply belongs to the participant, on their own page.
            st.fragment(live_panel, run_every=REFRESH_S)(run.state, registry, WATCHER, lambda changes: None, pick)
            st.fragment(metrics_panel, run_every=5.0)(registry, pick)
