"""Train: the live dashboard. Widgets in, commands to the run out, one shared frame of text and chart
data per tick (gan.viz.liveview) drawn in the browser (pages/_livechart.py).

The run lives in the process-wide registry (pages/_shared.py) and trains in the worker process
(gan.engine.worker), so a reload, a second tab or a trip to the Samples page reattaches to it, and thirty
viewers cost the training nothing. Only the live panel reruns on a timer (st.fragment with run_every),
while the run is loading or running; otherwise a cheap 1 s watch notices a new run, a Resume, a Step
or a failure. After a crash the run's autosave is shown, and the presenter can Continue it.

Workshop controls (presets, slow motion, D-only/G-only steps, snapshots and branches, checkpoint
upload) sit in one collapsed "Workshop" expander under the buttons, so the projector shows charts.
With GAN_LIVE_TOKEN set, only the presenter's browser (?token=...) sees any control (gan.workshop.auth).
"""

import streamlit as st

from gan.engine.checkpoint import CheckpointError, trainer_from_checkpoint
from gan.engine.config import DATASETS, MODELS, Config, ConfigError
from gan.engine.losses import LOSSES
from gan.engine.remote import WorkerError
from gan.engine.trainer import LOADING, PAUSED, RUNNING
from gan.viz import theory
from gan.viz.liveview import BannerKind
from gan.workshop import snapshots
from gan.workshop.presets import PRESETS, get_preset, preset_config
from gan.workshop.runs import RunLimitError, read_upload
from pages._livechart import live_charts
from pages._shared import get_registry, get_store, live_view, no_run_notice, presenter_access, quality_view

DEFAULTS = Config()
REFRESH_CHOICES = (0.5, 1.0, 2.0, 5.0)  # seconds between live-panel refreshes
# Without a running run the page is only watched (2 s, no charts): another tab may press Resume or
# Step, or the presenter may start a run that every viewer who opened the URL early must then see.
WATCH_S = 1.0  # a Resume reaches a paused viewer within ~1 s; ~3 ms of server time per viewer and second
METRICS_REFRESH_S = 5.0  # quality is scored every few hundred steps: its panel needs no faster timer
FIELDS = ("dataset", "model", "batch_size", "latent_dim", "lr_g", "lr_d", "d_steps", "seed")
MAX_RATE_LIMIT = 200  # the slow-motion slider: 0 (full speed) or 1..200 steps/s

registry = get_registry()
ss = st.session_state
access = presenter_access()  # before any control: a viewer gets the charts only


# --- form state --------------------------------------------------------------------------------
def form_defaults() -> dict:
    return {"dataset": DEFAULTS.dataset, "model": DEFAULTS.model, "batch_size": DEFAULTS.batch_size,
            "latent_dim": DEFAULTS.latent_dim, "lr_g": f"{DEFAULTS.lr_g:g}", "lr_d": f"{DEFAULTS.lr_d:g}",
            "d_steps": DEFAULTS.d_steps, "seed": DEFAULTS.seed, "loss": DEFAULTS.loss}


def load_form(values: dict) -> None:
    for key, value in values.items():
        ss[key] = value


def save_form() -> None:
    # Widget values vanish from session_state when another page is shown; a plain key survives.
    ss["_form"] = {k: ss[k] for k in (*FIELDS, "loss") if k in ss}


def errors() -> dict:
    return ss.setdefault("_errors", {})


def parse_lr(field: str) -> float:
    text = str(ss[field]).strip()
    try:
        return float(text)
    except ValueError:
        raise ConfigError(field, f"must be a number such as 2e-4, got {text!r}") from None


def config_from_form() -> Config:
    return Config(dataset=ss.dataset, model=ss.model, batch_size=int(ss.batch_size), latent_dim=int(ss.latent_dim),
                  lr_g=parse_lr("lr_g"), lr_d=parse_lr("lr_d"), d_steps=int(ss.d_steps), seed=int(ss.seed),
                  loss=ss.loss or DEFAULTS.loss)


def attach(trainer) -> None:
    """A new browser session (reload, second tab) takes the run's settings into its widgets."""
    if trainer is None or ss.get("_attached") == trainer.name:
        return
    cfg, status = trainer.config, trainer.status()
    load_form({"dataset": cfg.dataset, "model": cfg.model, "batch_size": cfg.batch_size,
               "latent_dim": cfg.latent_dim, "lr_g": f"{status.lr_g:g}", "lr_d": f"{status.lr_d:g}",
               "d_steps": status.d_steps, "seed": cfg.seed, "loss": status.loss})
    ss["_attached"] = trainer.name
    errors().clear()


# --- commands (widget callbacks: they run before the page, so the page shows their result) -------
def live_trainer():
    trainer = registry.current()
    return trainer if trainer is not None and trainer.state in (LOADING, RUNNING, PAUSED) else None


def on_start() -> None:
    errors().clear()
    ss.pop("_notice", None)
    ss.pop("_ws_notice", None)
    try:
        config = config_from_form()
    except ConfigError as exc:
        errors()[exc.field] = str(exc)
        ss["_notice"] = f"Not started: {exc}"
        return
    try:
        trainer = registry.start(config)
    except (RunLimitError, WorkerError) as exc:  # a worker that cannot start is a message, not a traceback
        ss["_notice"] = f"Not started: {exc}"
        return
    apply_max_rate(trainer)
    ss["_attached"] = trainer.name


def on_pause_resume() -> None:
    trainer = live_trainer()
    if trainer is None:
        return
    if trainer.state == PAUSED:
        trainer.resume()
    else:
        trainer.pause("paused from the dashboard")


def on_step(which: str = "both") -> None:
    """One manual step while paused: both networks, or D only / G only (gan.engine.trainer.Trainer.step)."""
    trainer = live_trainer()
    if trainer is None or trainer.state != PAUSED:
        return
    target, reason = trainer.step_count + 1, trainer.status().reason
    trainer.step(1, which=which)
    # Wait (briefly) for the step so the page that follows shows it and its caption; a NaN pause
    # (which ends the step without a report) also ends the wait.
    trainer.wait_until(lambda t: (t.last_manual_step or {}).get("step") == target or t.state != PAUSED
                       or t.status().reason != reason, timeout=10.0)


def on_stop() -> None:
    trainer = registry.current()
    if trainer is not None:
        trainer.stop(timeout=10.0)


def on_continue() -> None:
    """Continue the interrupted (or failed) run from its newest autosave, in its own folder."""
    errors().clear()
    ss.pop("_notice", None)
    try:
        trainer = registry.continue_run()
    except (ValueError, RunLimitError, WorkerError, OSError) as exc:  # CheckpointError is a ValueError
        ss["_notice"] = f"Not continued: {exc}"
        return
    apply_max_rate(trainer)
    ss.pop("_attached", None)  # attach() loads its settings into the sidebar


def on_reset() -> None:
    registry.reset(timeout=10.0)
    ss.pop("_attached", None)
    ss.pop("_notice", None)
    ss.pop("_ws_notice", None)
    errors().clear()


def on_loss() -> None:
    trainer = live_trainer()
    if trainer is not None and ss.loss:
        trainer.set_loss(ss.loss)  # applied at the next step boundary and recorded as an event


def on_lr(field: str) -> None:
    errors().pop(field, None)
    trainer = live_trainer()
    try:
        lr = parse_lr(field)
        Config(**{field: lr})  # the config's own range check, so the message names the field
        if trainer is not None:
            trainer.set_lr(**{field: lr})
    except ConfigError as exc:
        errors()[field] = str(exc)


def on_d_steps() -> None:
    errors().pop("d_steps", None)
    trainer = live_trainer()
    try:
        Config(d_steps=int(ss.d_steps))
        if trainer is not None:
            trainer.set_d_steps(int(ss.d_steps))
    except ConfigError as exc:
        errors()[exc.field] = str(exc)


# --- workshop commands ---------------------------------------------------------------------------
def workshop_notice(kind: str, text: str) -> None:
    ss["_ws_notice"] = (kind, text)  # shown in the Workshop area after the callback


def apply_max_rate(trainer) -> None:
    rate = int(ss.get("max_rate", 0) or 0)
    trainer.set_max_rate(None if rate == 0 else rate)


def on_max_rate() -> None:
    trainer = live_trainer()
    if trainer is not None:
        apply_max_rate(trainer)


def replace_live_run(launch):
    """Stop the live run (if any), then launch() a new one; the workshop buttons say they do this."""
    current = live_trainer()
    if current is not None:
        current.stop(timeout=10.0)
    trainer = launch()
    apply_max_rate(trainer)
    ss.pop("_attached", None)  # attach() loads the new run's settings into the sidebar
    ss.pop("_notice", None)
    errors().clear()
    return trainer


def on_start_preset() -> None:
    preset = get_preset(ss.preset)
    try:
        config = preset_config(preset.name)  # validated before the live run is stopped
        trainer = replace_live_run(lambda: registry.start(config, actions=preset.plan()))
    except (RunLimitError, ConfigError, ValueError) as exc:
        workshop_notice("error", f"Preset not started: {exc}")
        return
    later = "; then " + ", ".join(f"{a.kind} → {a.value} at step {a.at_step:,}" for a in preset.actions) \
        if preset.actions else ""
    workshop_notice("success", f"Started {trainer.name} with preset “{preset.label}”{later}.")


def on_save_snapshot() -> None:
    trainer = registry.current()
    if trainer is None:
        workshop_notice("error", "No run to save yet: start one first.")
        return
    try:
        name = snapshots.check_name(ss.get("snapshot_name", ""))
        get_store().save(name, trainer, metrics=registry.quality_columns(trainer))
    except (ValueError, FileExistsError, RuntimeError, OSError) as exc:
        workshop_notice("error", f"Not saved: {exc}")
        return
    workshop_notice("success", f"Saved snapshot {name!r} at step {trainer.step_count:,}. "
                    "Branch it below, or overlay it on the Compare page.")


def on_branch() -> None:
    source, loss = ss.get("branch_from"), ss.get("branch_loss")
    text = str(ss.get("branch_lr_d", "")).strip()
    try:
        lr_d = float(text) if text else None
    except ValueError:
        workshop_notice("error", f"Not branched: lr_d must be a number such as 2e-4, got {text!r}")
        return
    try:
        # Built (and validated) before the live run is stopped: a bad setting stops nothing.
        branch = get_store().branch(source, loss=loss, lr_d=lr_d, run_name=f"{source}-{loss}")
        trainer = replace_live_run(lambda: registry.adopt(branch))
    except (ValueError, KeyError, RunLimitError, OSError) as exc:  # CheckpointError is a ValueError
        workshop_notice("error", f"Not branched: {exc}")
        return
    workshop_notice("success", f"Started {trainer.name}: {source} continued with loss {loss}"
                    + (f", lr D {lr_d:g}" if lr_d else "") + ".")


def on_load_upload() -> None:
    upload = ss.get("ckpt_upload")
    if upload is None:
        workshop_notice("error", "Choose a checkpoint file first.")
        return
    try:
        upload.seek(0)
        state = read_upload(upload)  # size cap, weights_only load, validated against its own config
        stem = upload.name.rsplit(".", 1)[0]
        name = stem if snapshots.NAME_RE.match(stem) else "upload"
        loaded = trainer_from_checkpoint(state, name=name)
        trainer = replace_live_run(lambda: registry.adopt(loaded))
    except (CheckpointError, ValueError, RunLimitError, OSError) as exc:
        workshop_notice("error", f"Checkpoint refused: {exc}")
        return
    workshop_notice("success", f"Loaded {upload.name}: {trainer.name} continues from step {state['step']:,}.")


# --- page ----------------------------------------------------------------------------------------
trainer = registry.current()
status = trainer.status() if trainer is not None else None
state = status.state if status else "idle"
live = status is not None and status.is_live

for key, value in {**form_defaults(), **ss.get("_form", {})}.items():
    ss.setdefault(key, value)
attach(trainer)
ss.setdefault("max_rate", 0)
ss.setdefault("preset", "default")
if access.presenter and "preset" in st.query_params and ss.get("_url_preset") != st.query_params["preset"]:
    ss["_url_preset"] = st.query_params["preset"]  # ?preset=NAME preselects it once (it does not start it)
    try:
        ss["preset"] = get_preset(ss["_url_preset"]).name
    except ValueError as exc:  # names every preset; nothing else changes
        st.error(f"?preset= in the address: {exc}", icon=":material/error:")
if live:  # follow the run's loss and throttle, also when another tab changed them
    ss["loss"] = dict(status.pending).get("loss", status.loss)  # a switch not applied yet: show it, not the old
    ss["max_rate"] = min(MAX_RATE_LIMIT, int(status.max_rate or 0))


def field_error(field: str) -> None:
    if field in errors():
        st.error(errors()[field], icon=":material/error:")


with st.sidebar:
    if access.presenter:
        st.header("Run settings")
        st.caption("Fixed when a run starts; the learning rates and D steps also change live.")
        st.selectbox("Dataset", DATASETS, key="dataset", disabled=live,
                     help="mnist5k ships with the app and works offline; mnist downloads; fashion reads "
                          "/usr/share/datasets/fashion-mnist.")
        field_error("dataset")
        st.selectbox("Model", MODELS, key="model", disabled=live, help="auto: MLP on CPU, DCGAN on a GPU.")
        field_error("model")
        st.number_input("Batch size", step=16, key="batch_size", disabled=live)
        field_error("batch_size")
        st.number_input("Latent size (z)", step=8, key="latent_dim", disabled=live)
        field_error("latent_dim")
        st.text_input("Learning rate G", key="lr_g", on_change=on_lr, args=("lr_g",), help="e.g. 2e-4; live")
        field_error("lr_g")
        st.text_input("Learning rate D", key="lr_d", on_change=on_lr, args=("lr_d",), help="e.g. 2e-4; live")
        field_error("lr_d")
        st.number_input("D steps per G step", step=1, key="d_steps", on_change=on_d_steps, help="live")
        field_error("d_steps")
        st.number_input("Seed", step=1, key="seed", disabled=live)
        field_error("seed")
        st.divider()
    refresh = st.select_slider("Refresh every (s)", REFRESH_CHOICES, value=1.0, key="refresh",
                               help="How often the live charts redraw. Slower leaves more CPU to training.")
save_form()

def workshop_area() -> None:
    """Presets, slow motion, D/G stepping, snapshots and branches, checkpoint upload: one expander."""
    with st.expander("Workshop: presets, slow motion, step D / G, snapshots", icon=":material/school:",
                     expanded=False):  # the browser keeps it open across reruns once opened
        # Kept until the next workshop action, Start or Reset: a rerun (the live panel reruns the page
        # when the run's state changes) must not swallow it.
        notice = ss.get("_ws_notice")
        if notice:
            (st.success if notice[0] == "success" else st.error)(notice[1])
        presets_col, motion_col, snap_col = st.columns([7, 9, 7], gap="medium")
        with presets_col:
            st.markdown("**Failure-mode presets**")
            st.selectbox("Preset", list(PRESETS), key="preset", format_func=lambda k: PRESETS[k].label,
                         label_visibility="collapsed")
            st.caption(PRESETS[ss.preset].description)
            st.button("Stop run & start preset" if live else "Start preset", key="start_preset", type="primary",
                      on_click=on_start_preset, icon=":material/science:", width="stretch")
        with motion_col:
            st.markdown("**Slow motion and stepping**")
            st.slider("Max steps/s (0 = full speed)", 0, MAX_RATE_LIMIT, key="max_rate", on_change=on_max_rate,
                      help="Throttles the training so the room can follow each step.")
            paused = state == PAUSED
            with st.container(horizontal=True, gap="small"):  # wraps on a narrow screen instead of clipping
                for which, label in (("d", "Step D"), ("g", "Step G"), ("both", "Step both")):
                    st.button(label, key=f"step_{which}", on_click=on_step, args=(which,), disabled=not paused)
            if trainer is not None and trainer.last_manual_step:
                st.caption(theory.step_caption(trainer.last_manual_step))
            else:
                st.caption("Pause, then step D only, G only or both: the caption shows what one step changed.")
        with snap_col:
            st.markdown("**Snapshots and branches**")
            st.text_input("Snapshot name", key="snapshot_name", placeholder="e.g. bce-step1200",
                          label_visibility="collapsed")
            st.button("Save snapshot", key="save_snapshot", on_click=on_save_snapshot, disabled=trainer is None,
                      icon=":material/bookmark_add:", width="stretch")
            names = get_store().names()
            if names:
                branch_cols = st.columns([3, 2, 2])
                if ss.get("branch_from") not in names:
                    ss["branch_from"] = names[-1]
                branch_cols[0].selectbox("Branch from", names, key="branch_from")
                branch_cols[1].selectbox("with loss", list(LOSSES), key="branch_loss",
                                         format_func=lambda n: LOSSES[n].label)
                branch_cols[2].text_input("lr D (optional)", key="branch_lr_d", placeholder="same")
                st.button("Stop run & start branch" if live else "Start branch", key="start_branch",
                          on_click=on_branch, icon=":material/call_split:", width="stretch")
            with st.popover("Load a checkpoint file", icon=":material/upload_file:", width="stretch"):
                st.file_uploader(f"GAN Live checkpoint (.pt, at most {snapshots.MAX_UPLOAD_MB} MB)",
                                 type=["pt", "pth", "ckpt"], key="ckpt_upload",
                                 max_upload_size=snapshots.MAX_UPLOAD_MB,
                                 help="Read with torch.load(weights_only=True) and validated; anything else is "
                                      "refused.")
                st.button("Load and continue", key="load_upload", on_click=on_load_upload,
                          icon=":material/upload:", width="stretch")


if access.presenter:
    st.segmented_control("Loss", list(LOSSES), key="loss", required=True, on_change=on_loss,
                         format_func=lambda name: LOSSES[name].label,
                         help="Switches the running training at once; the charts mark the switch.")

    buttons = st.columns(5)
    buttons[0].button("Start", key="start", type="primary", on_click=on_start, disabled=live, width="stretch",
                      icon=":material/play_arrow:")
    buttons[1].button("Resume" if state == PAUSED else "Pause", key="pause_resume", on_click=on_pause_resume,
                      disabled=state not in (RUNNING, PAUSED), width="stretch",
                      icon=":material/play_circle:" if state == PAUSED else ":material/pause:")
    buttons[2].button("Step", key="step", on_click=on_step, disabled=state != PAUSED, width="stretch",
                      help="One D and one G update while paused.", icon=":material/skip_next:")
    buttons[3].button("Stop", key="stop", on_click=on_stop, disabled=not live, width="stretch",
                      icon=":material/stop:")
    buttons[4].button("Reset", key="reset", on_click=on_reset, disabled=trainer is None, width="stretch",
                      help="Stop and forget the run: back to an empty dashboard.", icon=":material/restart_alt:")
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


BANNER = {BannerKind.INFO: st.info, BannerKind.WARNING: st.warning, BannerKind.ERROR: st.error}


def live_panel(seen_state: str) -> None:
    """The live status, banners, charts and sample grid: one shared LiveFrame (gan.viz.liveview) per tick.

    Thirty viewers rerun this every second; each only lays out the frame that the first of them (or the
    tick before) rendered, and the charts are drawn in each browser (pages/_livechart.py).
    """
    trainer = registry.current()
    if trainer is None:
        no_run_notice(access, "No run yet. Pick the settings on the left and press **Start**.")
        return
    frame = live_view().frame(trainer)
    if frame.state != seen_state:
        st.rerun()  # the buttons and the refresh timer depend on the state: redraw the whole page
    st.markdown(f"{frame.headline}\n\n{frame.details}")  # one element: every element costs each refresh
    for banner in frame.banners:
        BANNER[banner.kind](banner.text, icon=banner.icon)
    if frame.charts is None:
        st.caption("The charts appear after the first step.")
    else:
        live_charts(frame.charts, key="live_charts")


def metrics_panel() -> None:
    """Classifier score over steps against the real-data ceiling, class coverage and the collapse alarm."""
    trainer = registry.current()
    monitor = registry.monitor(trainer)
    if monitor is None:
        return
    frame = quality_view().frame(trainer.name, monitor)  # shared: rebuilt once per evaluation
    st.markdown("#### Quality, scored by a reference classifier trained on real digits")
    if frame.failed:
        st.warning(frame.message, icon=":material/warning:")
    elif frame.charts is None:
        st.caption(frame.message)
    else:
        live_charts(frame.charts, key="quality_charts")
        st.caption(frame.message)
        if frame.alarm_firing:
            st.error(frame.alarm, icon=":material/warning:")
        else:
            st.caption(frame.alarm)


# Timers: the full panel only while something moves; otherwise a cheap watch (WATCH_S) reruns the
# page when the run changes (Resume or Step from another tab, a new run, a failure).
run_every = refresh if state in (LOADING, RUNNING) else None
st.fragment(live_panel, run_every=run_every)(state)
st.fragment(metrics_panel, run_every=METRICS_REFRESH_S if state in (LOADING, RUNNING) else None)()

if state not in (LOADING, RUNNING):
    def watch(seen: tuple) -> None:
        t = registry.current()
        if (None if t is None else (t.name, t.state, t.step_count)) != seen:
            st.rerun()

    st.fragment(watch, run_every=WATCH_S)(None if trainer is None else (trainer.name, state, status.step))
