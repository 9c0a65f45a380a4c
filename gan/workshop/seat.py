"""Owns a participant's actions on My run: the Train page's controller bound to one seat of the lab.
Must not touch streamlit or another seat's run: every action reaches only ``lab.run_of(seat)``, so a forged widget
id or a second tab can never act on somebody else's run (the seat is checked by its key first)."""

from collections.abc import Mapping

from gan.core.config import FIELD_LABELS, Config, ConfigError
from gan.worker.client import WorkerError
from gan.workshop.controller import Kind, Notice, TrainController
from gan.workshop.form import config_from_form, throttle
from gan.workshop.lab import Lab, LabError, Seat
from gan.workshop.presets import PRESETS, preset_config
from gan.workshop.runs import RunLimitError

CUSTOM = "custom"  # the preset box's "my own settings"


def _error(text: str, run=None, exc: ConfigError | None = None) -> Notice:
    return Notice(Kind.ERROR, text, run, field=exc.field if exc else None, field_text=exc.plain if exc else "")


def _info(text: str, run=None) -> Notice:
    return Notice(Kind.INFO, text, run)


def fixed_label(knob: str) -> str:
    return "Preset" if knob == "preset" else FIELD_LABELS.get(knob, knob)


class SeatController(TrainController):
    """Start / Pause / Step / Stop / Reset and the live knobs of one participant's run, within the room's rules."""

    def __init__(self, lab: Lab, seat: Seat, store=None, base: Config | None = None):
        super().__init__(lab.registry, store, base)
        self.lab, self.seat = lab, seat

    def current(self):
        return self.lab.run_of(self.seat)

    def start(self, form: Mapping, max_rate=0, preset: str = CUSTOM) -> Notice:
        """Start this participant's run from their form (the presenter's fixed knobs win), or queue it."""
        fixed = self.lab.rules.fixed
        preset = fixed.get("preset", preset) or CUSTOM
        try:
            form = {**form, **{k: (f"{v:g}" if isinstance(v, float) else v) for k, v in fixed.items()
                               if k != "preset"}}
            config = config_from_form(form, self.base)
            actions = ()
            if preset != CUSTOM:
                if preset not in PRESETS:
                    raise ConfigError("preset", f"unknown preset {preset!r}")
                config = preset_config(preset, seed=config.seed, device=config.device)
                actions = tuple(PRESETS[preset].plan())
            config = self.lab.fixed(config)
            throttle(max_rate)
            run, place = self.lab.request(self.seat, config, actions)
        except ConfigError as exc:
            return _error(f"Not started: {exc.plain}", exc=exc)
        except (LabError, RunLimitError, WorkerError, ValueError) as exc:
            return _error(f"Not started: {exc}")
        if run is None:
            return _info(f"All {self.lab.participant_slots} training slots are busy: you are number {place} in the "
                         "queue. Your run starts by itself when a slot frees; keep this tab open or come back.")
        return self._launched(run, max_rate, f"Started your run ({run.name}).")

    def stop(self) -> Notice:
        waiting = self.lab.place(self.seat) is not None
        self.lab.cancel(self.seat)
        notice = super().stop()
        if waiting and self.current() is None:
            return _info("You left the queue.")
        return notice

    def reset(self) -> Notice:
        self.lab.reset(self.seat)
        return _info("Reset: your run is gone (its autosaves stay in the runs folder).")

    def continue_run(self, max_rate=0) -> Notice:
        try:
            throttle(max_rate)
            run = self.lab.continue_run(self.seat)
        except (ValueError, LabError, RunLimitError, WorkerError, OSError) as exc:
            return _error(f"Not continued: {exc}")
        return self._launched(run, max_rate, f"Continued your run from step {run.step_count:,}.")

    # the live knobs: refused when the presenter fixed them for the room
    def _refuse_fixed(self, knob: str) -> Notice | None:
        if knob in self.lab.rules.fixed:
            return _error(f"{fixed_label(knob)} is fixed by the presenter for the whole room.", self.live())
        return None

    def set_loss(self, loss: str) -> Notice:
        return self._refuse_fixed("loss") or super().set_loss(loss)

    def set_lr(self, field: str, text) -> Notice:
        return self._refuse_fixed(field) or super().set_lr(field, text)

    def set_d_steps(self, value) -> Notice:
        return self._refuse_fixed("d_steps") or super().set_d_steps(value)

    def apply_advice(self, changes) -> Notice:
        for kind, _ in changes:
            refusal = self._refuse_fixed(str(kind.value if hasattr(kind, "value") else kind))
            if refusal is not None:
                return refusal
        return super().apply_advice(changes)

    # the presenter's tools are not a participant's
    def _not_here(self, *_, **__) -> Notice:
        return _error("Only the presenter can do that.")

    start_preset = branch = load_upload = save_snapshot = use_own_images = _not_here

