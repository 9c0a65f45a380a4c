"""My run: in lab mode each participant trains their own GAN from this page (gan.workshop.lab owns the seats and
the pool, gan.workshop.seat the actions). Must not decide anything: layout, session keys and where notices show.

The participant's name and seat key live in the address (?me=NAME&key=KEY): a reload or a second device with
that address comes back to the same run; somebody else typing the same name is told it is taken. Widget keys start
with my_ so a session that also opens the Train page keeps both forms apart."""

import streamlit as st

from gan.core.config import FIELD_LABELS, MODELS
from gan.core.losses import LOSSES
from gan.engine.status import RunState
from gan.workshop import auth, form
from gan.workshop.controller import Kind
from gan.workshop.form import form_from_config
from gan.workshop.lab import AWAY_REASON, Away, LabError, Refusal
from gan.workshop.presets import PRESETS
from gan.workshop.seat import CUSTOM, SeatController, fixed_label
from pages._shared import get_lab, get_registry, get_store
from pages._train_live import live_panel, metrics_panel, replay_controls

SHOW = {Kind.SUCCESS: st.success, Kind.ERROR: st.error, Kind.INFO: st.info}
REFRESH_S = 1.0
WATCH_S = 1.0
OWNER = auth.Access(presenter=True, remember=False, locked=False, notice=None)  # a participant runs their own run
KNOB_KEYS = ("loss", "lr_g", "lr_d", "d_steps", "latent_dim", "model", "seed")

lab = get_lab()
registry = get_registry()
ss = st.session_state

st.header("My run", anchor=False)
if lab.notice and not lab.is_open:
    st.warning(lab.notice, icon=":material/door_front:")


def on_join() -> None:
    try:
        seat = lab.join(ss.get("my_name_input", ""))
    except LabError as exc:
        ss["_my_join_error"] = (str(exc), exc.suggestion)
        return
    ss.pop("_my_join_error", None)
    st.query_params["me"], st.query_params["key"] = seat.name, seat.key


def on_take(name: str) -> None:
    ss["my_name_input"] = name
    on_join()


def ask_name(reason: str = "") -> None:
    if reason:
        st.warning(reason, icon=":material/badge:")
    if not lab.is_open:
        if not lab.notice:
            st.info("The presenter has not opened the lab yet: watch the Train page meanwhile.",
                    icon=":material/hourglass_top:")
        st.stop()
    with st.form("my_join", border=False):
        st.text_input("Your name (shown under your samples on the Room wall)", key="my_name_input", max_chars=24,
                      placeholder="e.g. Ada")
        st.form_submit_button("Join", type="primary", on_click=on_join, icon=":material/login:")
    error = ss.get("_my_join_error")
    if error:
        st.error(error[0], icon=":material/error:")
        if error[1]:
            st.button(f"Take “{error[1]}” instead", key="my_take_suggestion", on_click=on_take, args=(error[1],))
    st.stop()


me, key = st.query_params.get("me"), st.query_params.get("key")
if not me or not key:
    ask_name()
try:
    seat = lab.seat(me, key)
except LabError as exc:
    if exc.refusal is Refusal.BAD_NAME:
        ask_name(f"The name in this address is not usable: {exc}")
    ask_name(f"{exc} Pick a name of your own." + (f" (“{exc.suggestion}” is free.)" if exc.suggestion else ""))

ctl = SeatController(lab, seat, get_store())
lab.touch(seat)
run = lab.run_of(seat)
status = run.status() if run is not None else None
state = status.state if status else "idle"
live = status is not None and status.is_live
fixed = lab.rules.fixed

# --- the form: the knobs the presenter left to the room -------------------------------------------------
if ss.get("_my_seat") != seat.name:  # a new tab or device: take the run's settings (or the defaults)
    values = form_from_config(run.config, status) if run is not None else form_from_config(ctl.base)
    for k in KNOB_KEYS:
        ss[f"my_{k}"] = values[k]
    ss["my_preset"] = CUSTOM
    ss["_my_seat"] = seat.name
for k, v in fixed.items():  # what the presenter fixed shows as fixed, with its value
    ss[f"my_{k}"] = f"{v:g}" if isinstance(v, float) else v
if live:
    ss["my_loss"] = form.followed_settings(status)["loss"]


def notice(n) -> None:
    ss["_my_notice"] = (n.kind.value, n.text)


def my_form() -> dict:
    return {k: ss[f"my_{k}"] for k in KNOB_KEYS} | {"dataset": "mnist5k"}


def on_start() -> None:
    notice(ctl.start(my_form(), preset=ss.get("my_preset", CUSTOM)))


def on_live(knob: str, action) -> None:
    notice(action(ss[f"my_{knob}"]))


def on_advice(changes) -> None:
    n = ctl.apply_advice(changes)
    notice(n)
    if n.ok:
        for k, v in form.advice_form(changes).items():
            if k in KNOB_KEYS:
                ss[f"my_{k}"] = v


with st.sidebar:
    st.subheader(f"{seat.name}'s settings")
    st.caption("Bookmark this page's address: it brings you back to your run, on any device. "
               + (f"Fixed by the presenter: {', '.join(fixed_label(k) for k in fixed)}." if fixed else ""))
    st.selectbox("Preset", [CUSTOM, *PRESETS], key="my_preset", disabled=live or "preset" in fixed,
                 format_func=lambda p: "My own settings" if p == CUSTOM else PRESETS[p].label)
    own = ss.get("my_preset") == CUSTOM
    st.selectbox(FIELD_LABELS["model"], MODELS, key="my_model", disabled=live or not own or "model" in fixed)
    st.number_input(FIELD_LABELS["latent_dim"], key="my_latent_dim", step=8, min_value=1, max_value=1024,
                    disabled=live or not own or "latent_dim" in fixed)
    for lr in ("lr_g", "lr_d"):
        st.text_input(FIELD_LABELS[lr], key=f"my_{lr}", disabled=lr in fixed or (not own and not live),
                      on_change=on_live, args=(lr, lambda text, lr=lr: ctl.set_lr(lr, text)), help="e.g. 2e-4; live")
    st.number_input(FIELD_LABELS["d_steps"], key="my_d_steps", step=1, min_value=1, max_value=10,
                    disabled="d_steps" in fixed or (not own and not live),
                    on_change=on_live, args=("d_steps", ctl.set_d_steps), help="live")
    st.number_input(FIELD_LABELS["seed"], key="my_seed", step=1, disabled=live or "seed" in fixed)

with st.container(horizontal=True, vertical_alignment="bottom", gap="small", key="my_controls"):
    st.segmented_control("Loss", list(LOSSES), key="my_loss", required=True, disabled="loss" in fixed,
                         format_func=lambda n: LOSSES[n].label, on_change=lambda: notice(ctl.set_loss(ss.my_loss)))
    waiting = lab.place(seat) is not None
    st.button("Start", key="my_start", type="primary", on_click=on_start, disabled=live or waiting or not lab.is_open,
              icon=":material/play_arrow:")
    st.button("Resume" if state == RunState.PAUSED else "Pause", key="my_pause",
              on_click=lambda: notice(ctl.pause_or_resume()),
              disabled=state not in (RunState.RUNNING, RunState.PAUSED))
    st.button("Step", key="my_step", on_click=lambda: notice(ctl.step()), disabled=state != RunState.PAUSED)
    st.button("Stop", key="my_stop", on_click=lambda: notice(ctl.stop()), disabled=not (live or waiting))
    st.button("Reset", key="my_reset", on_click=lambda: notice(ctl.reset()), disabled=run is None)

place = lab.place(seat)
if place is not None:
    st.info(f"All {lab.participant_slots} training slots are busy: you are number **{place}** in the queue. "
            "Your run starts by itself when a slot frees.", icon=":material/group:")
if status is not None and status.reason == AWAY_REASON:
    st.warning("Your run paused while this tab was away (the presenter's rule for the room): press Resume.",
               icon=":material/bedtime:")
elif lab.rules.away is Away.PAUSE and live:
    st.caption("The presenter's rule: a run pauses when its tab is away for a minute.")
offer = lab.continue_offer(seat) if not live and lab.is_open else None
if offer is not None:
    st.button(f"Continue your run from step {offer.step:,} (saved {offer.saved_clock})", key="my_continue",
              type="primary", icon=":material/history:", on_click=lambda: notice(ctl.continue_run()))
shown = ss.get("_my_notice")
if shown:
    SHOW[Kind(shown[0])](shown[1])


def pick():
    return lab.run_of(seat)


def my_live_panel(*args) -> None:
    lab.touch(seat)  # each refresh says this tab is still here (the presenter's away rule)
    live_panel(*args)


replay_controls(run, registry, pick)
moving = state in (RunState.LOADING, RunState.RUNNING) and not ss.get("replay")
st.fragment(my_live_panel, run_every=REFRESH_S if moving else None)(
    state, registry, OWNER, on_advice, pick, "Press **Start** to train your own GAN.")
st.fragment(metrics_panel, run_every=5.0 if moving else None)(registry, pick)

if not moving:
    def watch(seen: tuple) -> None:
        lab.touch(seat)
        r = lab.run_of(seat)
        if (None if r is None else (r.name, r.state, r.step_count), lab.place(seat), lab.is_open,
                lab.notice) != seen:
            st.rerun()

    # lab.notice too: closing the lab stops every run first and says so after, and a rerun in between (this
    # run stopped) drew no notice (the presenter's "closed the lab" never reached an open tab; seen in CI)
    st.fragment(watch, run_every=WATCH_S)(
        (None if run is None else (run.name, state, status.step), lab.place(seat), lab.is_open, lab.notice))
