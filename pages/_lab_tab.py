"""The Train page's Workshop tab "Lab: everyone trains": the presenter's switch, the room's rules and the Share
panel. A helper of pages/train.py (the underscore: not a page); gan.workshop.lab decides, this lays out."""

import streamlit as st

from gan.workshop import auth
from gan.workshop.lab import KNOBS, Away, LabError, Rules
from gan.workshop.seat import fixed_label
from pages._shared import share_panel

ss = st.session_state


def fixed_values(keys) -> dict:
    """The presenter's current form values for the knobs they fix (the Train page's form keys)."""
    values = {}
    for k in keys:
        if k == "preset":
            values[k] = ss.get("preset", "default")
        elif k in ("lr_g", "lr_d"):
            try:
                values[k] = float(ss.get(k))
            except (TypeError, ValueError):
                continue  # a bad value in the form: not fixed (its own error shows beside the field)
        elif k in ss:
            values[k] = ss[k]
    return values


def rules() -> Rules:
    return Rules(fixed=fixed_values(ss.get("lab_fixed", [])),
                 away=Away.PAUSE if ss.get("lab_away_pause") else Away.KEEP)


def lab_tab(lab) -> None:
    def on_switch() -> None:
        if ss.get("lab_on"):
            try:
                lab.open(rules())
            except LabError as exc:
                ss["_lab_error"] = str(exc)
        else:
            lab.close()

    ss["lab_on"] = lab.is_open
    st.toggle("Lab mode: every participant trains their own GAN", key="lab_on", on_change=on_switch,
              help="Adds My run (each participant's own run) and Room (the wall of every run) to the menu.")
    cap = (f"{lab.participant_slots} participant runs at once"
           + (" (chosen from this machine's cores and memory; GAN_LIVE_MAX_RUNS overrides)" if lab.cap_from_machine
              else " (the Ray cluster's slots; GAN_LIVE_MAX_RUNS overrides)" if lab.cap_from_cluster
              else " (GAN_LIVE_MAX_RUNS)") + ", one slot kept for your run; more wait in a queue, in order.")
    st.caption(cap)
    if ss.get("_lab_error"):
        st.error(ss.pop("_lab_error"), icon=":material/block:")
    if lab.notice and not lab.is_open:
        st.caption(lab.notice)
    if not lab.is_open:
        return
    ss.setdefault("lab_fixed", [k for k in lab.rules.fixed])
    ss.setdefault("lab_away_pause", lab.rules.away is Away.PAUSE)
    with st.container(horizontal=True, vertical_alignment="bottom"):
        st.multiselect("Fix for the room (your current values)", list(KNOBS), key="lab_fixed",
                       format_func=fixed_label, on_change=lambda: lab.set_rules(rules()),
                       help="Fixed knobs show greyed out on every My run page, with your value.")
        st.toggle("Pause a run whose tab is away for a minute", key="lab_away_pause",
                  on_change=lambda: lab.set_rules(rules()))
    if lab.rules.fixed:
        st.caption("Fixed: " + ", ".join(f"{fixed_label(k)} = {v:g}" if isinstance(v, float) else
                                        f"{fixed_label(k)} = {v}" for k, v in lab.rules.fixed.items()))
    if auth.env_token() is None:
        st.warning("No presenter token is set: every participant can also press the buttons of this page. Start "
                   "the server with GAN_LIVE_TOKEN=<secret> and open it with ?token=<secret>.",
                   icon=":material/lock_open:")
    share_panel(150, "Project the Room page: it shows this code too.")
