"""Train page layout: owns its widgets, their session_state and where each Notice shows; a click is one controller call.
Must not decide anything (gan.workshop.controller does) nor command a trainer or the registry itself.

The run lives in the process-wide registry (pages/_shared.py), so a reload or a second tab reattaches to it; the
live panel reruns on a timer only while a run loads or runs, else a cheap watch notices changes. What every viewer
sees (the live and quality panels, replay) is pages/_train_live.py's; this file holds the controls."""

import streamlit as st

from gan.core.config import DATASETS, FIELD_LABELS, MODELS, OWN
from gan.core.losses import LOSSES
from gan.engine.status import RunState
from gan.viz import theory
from gan.workshop import controller, form, snapshots
from gan.workshop.controller import Kind
from gan.workshop.form import FORM_FIELDS, form_from_config
from gan.workshop.presets import PRESETS
from pages._lab_tab import lab_tab
from pages._shared import get_lab, get_registry, get_store, presenter_access
from pages._train_live import live_panel, metrics_panel, replay_controls

REFRESH_CHOICES = (0.5, 1.0, 2.0, 5.0)  # seconds between live-panel refreshes
WATCH_S = 1.0  # no run moving: a cheap watch; a Resume reaches a paused viewer within ~1 s, ~3 ms per viewer-s
METRICS_REFRESH_S = 5.0  # quality is scored every few hundred steps: its panel needs no faster timer
SHOW = {Kind.SUCCESS: st.success, Kind.ERROR: st.error, Kind.INFO: st.info}

registry = get_registry()
ctl = controller.TrainController(registry, get_store())
ss = st.session_state
access = presenter_access()  # before any control: a viewer gets the charts only


# --- session state: the form, its errors, the notices ------------------------------------------------
def errors() -> dict:
    return ss.setdefault("_errors", {})


def attach(trainer) -> None:
    """A new browser session (reload, second tab) takes the run's settings into its widgets."""
    if trainer is None or ss.get("_attached") == trainer.name:
        return
    for key, value in form_from_config(trainer.config, trainer.status()).items():
        ss[key] = value
    ss["_attached"] = trainer.name
    errors().clear()


def beside(notice) -> None:  # an error that names a form field is shown beside it
    if notice.field:
        errors()[notice.field] = notice.field_text


def main_notice(notice, clear: bool = False) -> None:  # the error under the buttons, kept until cleared
    beside(notice)
    if clear or not notice.ok:
        ss["_notice"] = None if notice.ok else notice.text


# --- callbacks: they run before the page, so the page shows their result --------------------------------
def on_start() -> None:
    errors().clear()
    ss.pop("_ws_notice", None)
    notice = ctl.start({k: ss[k] for k in FORM_FIELDS if k in ss}, ss.max_rate)
    main_notice(notice, clear=True)
    if notice.started:
        ss["_attached"] = notice.run.name  # the form already holds its settings


def on_continue() -> None:
    errors().clear()
    notice = ctl.continue_run(ss.max_rate)
    main_notice(notice, clear=True)
    if notice.started:
        ss.pop("_attached", None)  # attach() loads its settings into the sidebar


def on_reset() -> None:
    ctl.reset()
    for key in ("_attached", "_notice", "_ws_notice", "_form"):
        ss.pop(key, None)
    ss.update(form_from_config(ctl.base))  # the default form again, not the last preset's settings
    errors().clear()


def on_field(field: str, action) -> None:
    errors().pop(field, None)
    beside(action(ss[field]))


def workshop(action, *args, where: str = "area") -> None:
    """A Workshop action. Its message is shown where the presenter is looking: a run it started closes the
    Workshop area (the charts come back into view) and is announced under the Start row; anything else stays
    in the area, or in the checkpoint popover for an upload (where: "area" or "upload")."""
    notice = action(*args)
    ss["_ws_notice"] = (notice.kind.value, notice.text, "main" if notice.started else where)
    if notice.started:
        ss["workshop_open"] = False
        ss.pop("_attached", None)  # attach() loads the new run's settings into the sidebar
        ss.pop("_notice", None)
        errors().clear()


def workshop_notice(where: str) -> None:
    # Always one element, empty or not: a message that comes or goes must not shift the elements after it (the
    # browser would rebuild them, and an open popover would close over the very message it should show).
    slot = st.empty()
    notice = ss.get("_ws_notice")  # kept until the next workshop action, Start or Reset: reruns keep it
    if notice and notice[2] == where:
        with slot:
            SHOW[Kind(notice[0])](notice[1])


# --- page ----------------------------------------------------------------------------------------
trainer = registry.current()
status = trainer.status() if trainer is not None else None
state = status.state if status else "idle"
live = status is not None and status.is_live

for key, value in {**form_from_config(ctl.base), **ss.get("_form", {})}.items():
    ss.setdefault(key, value)
attach(trainer)
ss.setdefault("max_rate", 0)
ss.setdefault("preset", "default")
if access.presenter and "preset" in st.query_params and ss.get("_url_preset") != st.query_params["preset"]:
    ss["_url_preset"] = st.query_params["preset"]  # ?preset=NAME preselects it once (it does not start it)
    try:
        ss["preset"] = form.choose_preset(ss["_url_preset"])
    except ValueError as exc:  # names every preset; nothing else changes
        st.error(f"?preset= in the address: {exc}", icon=":material/error:")
if live:  # follow the run's loss and throttle, also when another tab changed them
    for key, value in form.followed_settings(status).items():
        ss[key] = value


def on_own_upload() -> None:
    errors().pop("data_path", None)
    upload = ss.get("own_upload")
    if upload is None:
        return
    result = ctl.use_own_images(upload)
    if result.notice.ok:
        ss["data_path"] = result.path
        ss["_own_preview"] = (result.path, result.preview_png, result.summary)
    else:  # the refused file replaces the earlier one: no preview of it, and Start must not train on it
        errors()["data_path"] = result.notice.text
        ss["data_path"] = ""
        ss.pop("_own_preview", None)


def own_images_field(live: bool) -> None:
    """Your images: the uploader, then 64 of them as the GAN will see them (28x28, white ink on black)."""
    st.file_uploader(f"Your images (.zip of PNG/JPEG, .npz or .idx; at most {controller.OWN_UPLOAD_MB} MB)",
                     type=[s.lstrip(".") for s in controller.OWN_SUFFIXES], key="own_upload",
                     max_upload_size=controller.OWN_UPLOAD_MB, on_change=on_own_upload, disabled=live,
                     help="Drawn on paper and photographed works: light backgrounds are inverted, the ink is "
                          "cropped and centred like MNIST's digits. At least 64 images.")
    if "data_path" in errors():
        st.error(errors()["data_path"], icon=":material/error:")
    preview = ss.get("_own_preview")
    if preview is not None and preview[0] == ss.get("data_path"):
        st.image(preview[1], output_format="PNG", width="stretch",
                 caption=f"64 of your images as the GAN sees them. {preview[2]}.")


def field(widget, label: str, key: str, **kwargs) -> None:
    widget(label, key=key, **kwargs)
    if key in errors():
        st.error(errors()[key], icon=":material/error:")


with st.sidebar:
    if access.presenter:
        st.header("Run settings")
        st.caption("Fixed when a run starts; the learning rates and D steps also change live.")
        field(st.selectbox, "Dataset", "dataset", options=DATASETS + (OWN,), disabled=live,
              format_func=lambda d: "your images (upload)" if d == OWN else d,
              help="mnist5k ships with the app and works offline; mnist downloads; fashion reads "
                   "/usr/share/datasets/fashion-mnist; your images: a .zip of PNG/JPEG, an .npz or an IDX file.")
        if ss.get("dataset") == OWN:
            own_images_field(live)
        field(st.selectbox, FIELD_LABELS["model"], "model", options=MODELS, disabled=live,
              help="auto: MLP on CPU, DCGAN on a GPU.")
        field(st.number_input, FIELD_LABELS["batch_size"], "batch_size", step=16, disabled=live)
        field(st.number_input, FIELD_LABELS["latent_dim"], "latent_dim", step=8, disabled=live)
        for lr in ("lr_g", "lr_d"):
            field(st.text_input, FIELD_LABELS[lr], lr, on_change=on_field, help="e.g. 2e-4; live",
                  args=(lr, lambda text, lr=lr: ctl.set_lr(lr, text)))
        field(st.number_input, FIELD_LABELS["d_steps"], "d_steps", step=1, on_change=on_field,
              args=("d_steps", lambda n: ctl.set_d_steps(n)), help="live")
        field(st.number_input, FIELD_LABELS["seed"], "seed", step=1, disabled=live)
        st.divider()
    refresh = st.select_slider("Refresh every (s)", REFRESH_CHOICES, value=1.0, key="refresh",
                               help="How often the live charts redraw. Slower leaves more CPU to training.")
# Widget values vanish from session_state when another page is shown; a plain key survives.
ss["_form"] = {k: ss[k] for k in FORM_FIELDS if k in ss}


def workshop_area() -> None:
    """Presets, slow motion, D/G stepping, snapshots and branches, checkpoint upload: one expander, three tabs
    (each tab the full width: three columns side by side cut names and labels at 1400 px)."""
    with st.expander("Workshop: presets, slow motion, step D / G, snapshots", icon=":material/school:",
                     key="workshop_open", on_change="rerun"):  # closed again when a run starts from it
        workshop_notice("area")
        presets_tab, motion_tab, snap_tab, lab_panel = st.tabs(
            ["Failure-mode presets", "Slow motion and stepping", "Snapshots and branches", "Lab: everyone trains"],
            key="workshop_tab")
        with lab_panel:
            lab_tab(get_lab())
        with presets_tab:
            st.selectbox("Preset", list(PRESETS), key="preset", format_func=lambda k: PRESETS[k].label,
                         label_visibility="collapsed")
            st.caption(PRESETS[ss.preset].description)
            st.button("Stop run & start preset" if live else "Start preset", key="start_preset", type="primary",
                      on_click=lambda: workshop(ctl.start_preset, ss.preset, ss.max_rate), icon=":material/science:")
        with motion_tab:
            st.slider("Max steps/s (0 = full speed)", 0, form.MAX_RATE_LIMIT, key="max_rate",
                      on_change=lambda: ctl.set_max_rate(ss.max_rate),
                      help="Throttles the training so the room can follow each step.")
            with st.container(horizontal=True, gap="small"):  # wraps on a narrow screen instead of clipping
                for which, label in (("d", "Step D"), ("g", "Step G"), ("both", "Step both")):
                    st.button(label, key=f"step_{which}", on_click=lambda w=which: main_notice(ctl.step(w)),
                              disabled=state != RunState.PAUSED)
            if trainer is not None and trainer.last_manual_step:
                st.caption(theory.step_caption(trainer.last_manual_step))
            else:
                st.caption("Pause, then step D only, G only or both: the caption shows what one step changed.")
        with snap_tab:
            with st.container(horizontal=True, vertical_alignment="bottom"):
                st.text_input("Snapshot name", key="snapshot_name", placeholder="e.g. bce-step1200")
                st.button("Save snapshot", key="save_snapshot", disabled=trainer is None,
                          on_click=lambda: workshop(ctl.save_snapshot, ss.get("snapshot_name", "")),
                          icon=":material/bookmark_add:")
            names = ctl.store.names()
            if names:
                if ss.get("branch_from") not in names:
                    ss["branch_from"] = names[-1]
                with st.container(horizontal=True, vertical_alignment="bottom"):
                    st.selectbox("Branch from snapshot", names, key="branch_from")
                    st.selectbox("with the loss", list(LOSSES), key="branch_loss",
                                 format_func=lambda n: LOSSES[n].label)
                    st.text_input("and learning rate D", key="branch_lr_d", placeholder="the same",
                                  help="Optional: a new learning rate for D from the branch point on.")
                    st.button("Stop run & start branch" if live else "Start branch", key="start_branch",
                              on_click=lambda: workshop(ctl.branch, ss.get("branch_from"), ss.get("branch_loss"),
                                                        ss.get("branch_lr_d", ""), ss.max_rate),
                              icon=":material/call_split:")
            with st.popover("Load a checkpoint file", icon=":material/upload_file:"):
                st.file_uploader(f"GAN Live checkpoint (.pt, at most {snapshots.MAX_UPLOAD_MB} MB)",
                                 type=["pt", "pth", "ckpt"], key="ckpt_upload",
                                 max_upload_size=snapshots.MAX_UPLOAD_MB,
                                 help="Read with torch.load(weights_only=True) and validated; anything else is "
                                      "refused.")
                # Enabled once the server holds the file: a big upload takes a moment after its name shows,
                # and a click before that would only say "choose a file first".
                st.button("Load and continue", key="load_upload", icon=":material/upload:", width="stretch",
                          disabled=ss.get("ckpt_upload") is None,
                          on_click=lambda: workshop(ctl.load_upload, ss.get("ckpt_upload"), ss.max_rate,
                                                    where="upload"))
                workshop_notice("upload")  # a refusal beside the button pressed, not off-screen in the area


if access.presenter:
    # The loss bar and the five buttons on one row (it wraps on a narrow screen): two rows kept the charts below
    # the fold of a 1280x720 projector.
    # Only Start has an icon: without theirs the other four fit beside the loss bar at 1280 px, sidebar open.
    with st.container(horizontal=True, vertical_alignment="bottom", gap="small", key="control_row"):
        st.segmented_control("Loss", list(LOSSES), key="loss", required=True,
                             on_change=lambda: ctl.set_loss(ss.loss), format_func=lambda name: LOSSES[name].label,
                             help="Switches the running training at once; the charts mark the switch.")
        st.button("Start", key="start", type="primary", on_click=on_start, disabled=live,
                  icon=":material/play_arrow:")
        st.button("Resume" if state == RunState.PAUSED else "Pause", key="pause_resume",
                  on_click=lambda: main_notice(ctl.pause_or_resume()),
                  disabled=state not in (RunState.RUNNING, RunState.PAUSED))
        st.button("Step", key="step", on_click=lambda: main_notice(ctl.step()), disabled=state != RunState.PAUSED,
                  help="One D and one G update while paused.")
        st.button("Stop", key="stop", on_click=lambda: main_notice(ctl.stop()), disabled=not live)
        st.button("Reset", key="reset", on_click=on_reset, disabled=trainer is None,
                  help="Stop and forget the run: back to an empty dashboard.")
    workshop_notice("main")  # a run started from the Workshop area, which closed itself
    workshop_area()
    offer = registry.continue_offer()
    if offer is not None and not live:
        st.button(f"Continue run “{offer.name}” from step {offer.step:,} (saved {offer.saved_clock})",
                  key="continue_run", type="primary", on_click=on_continue, icon=":material/history:",
                  help="Picks up the autosave: same weights, optimisers, random state, history and quality curve.")
    for note in registry.storage_notes:
        st.warning(f"Runs folder: {note}", icon=":material/folder_off:")
if ss.get("_notice"):
    st.error(ss["_notice"], icon=":material/block:")
if get_lab().notice and not get_lab().is_open:  # the presenter closed the lab: every tab says so
    st.info(get_lab().notice, icon=":material/door_front:")


def on_advice(changes) -> None:
    """The coach's action as the presenter saw it (not whatever the coach says by the time of the click)."""
    notice = ctl.apply_advice(changes)
    main_notice(notice, clear=True)
    if notice.ok:
        for key, value in form.advice_form(changes).items():
            ss[key] = value
    ss["_coach_applied"] = True  # the fragment reruns the whole page: the sidebar and notice show it


replay_controls(trainer, registry)

# Timers: the full panel only while something moves (and this session is not replaying); otherwise a cheap
# watch (WATCH_S) reruns the page when the run changes (Resume or Step from another tab, a new run, a failure).
run_every = refresh if state in (RunState.LOADING, RunState.RUNNING) and not ss.get("replay") else None
st.fragment(live_panel, run_every=run_every)(state, registry, access, on_advice)
st.fragment(metrics_panel, run_every=METRICS_REFRESH_S if state in (RunState.LOADING, RunState.RUNNING)
            and not ss.get("replay") else None)(registry)

if state not in (RunState.LOADING, RunState.RUNNING):
    def watch(seen: tuple) -> None:
        t = registry.current()
        if (None if t is None else (t.name, t.state, t.step_count)) != seen:
            st.rerun()

    st.fragment(watch, run_every=WATCH_S)(None if trainer is None else (trainer.name, state, status.step))
