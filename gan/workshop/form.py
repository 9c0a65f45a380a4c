"""Owns the one mapping between the Train page's form and a Config: its fields, parsing typed values with the
Config's own checks (ConfigError names the field), the widgets that follow a live run, the slow-motion slider.
Must not touch streamlit or a run: values in, values or a ConfigError out."""

import dataclasses
from collections.abc import Mapping

from gan.core.config import OWN, Config, ConfigError
from gan.workshop.presets import get_preset

FORM_FIELDS = ("dataset", "model", "batch_size", "latent_dim", "lr_g", "lr_d", "d_steps", "seed", "loss", "data_path")
INT_FIELDS = ("batch_size", "latent_dim", "d_steps", "seed")
LR_FIELDS = ("lr_g", "lr_d")
MAX_RATE_LIMIT = 200  # the slow-motion slider: 0 (full speed) or 1..200 steps/s


# --- the one Config <-> form mapping ---------------------------------------------------------------
def form_from_config(config: Config, status=None) -> dict:
    """The form's values for a config; a run's status (RunStatus) overrides the live ones (lr, D steps, loss)."""
    live = status if status is not None else config
    return {"dataset": config.dataset, "model": config.model, "batch_size": config.batch_size,
            "latent_dim": config.latent_dim, "lr_g": f"{live.lr_g:g}", "lr_d": f"{live.lr_d:g}",
            "d_steps": live.d_steps, "seed": config.seed, "loss": live.loss, "data_path": config.data_path}


def config_from_form(form: Mapping, base: Config | None = None) -> Config:
    """The Config a form describes, on top of ``base`` (fields the form lacks, e.g. width and device); a bad
    value raises ConfigError naming its field, so nothing starts and the page can show it beside it."""
    base = base or Config()
    form = {**form_from_config(base), **{k: v for k, v in form.items() if k in FORM_FIELDS}}
    values = {"dataset": form["dataset"], "model": form["model"], "loss": form["loss"] or base.loss,
              "data_path": str(form.get("data_path") or "") if form["dataset"] == OWN else ""}
    values.update({f: parse_int(f, form[f]) for f in INT_FIELDS})
    values.update({f: parse_lr(f, form[f]) for f in LR_FIELDS})
    return dataclasses.replace(base, **values)


def parse_lr(field: str, text) -> float:
    """A learning rate typed into a text box ("2e-4"), range-checked like the Config; ConfigError names field."""
    text = str(text).strip()
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(field, f"must be a number such as 2e-4, got {text!r}") from None
    Config(**{field: value})  # the config's own range check, so the message names the field
    return value


def parse_int(field: str, value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(field, f"must be a whole number, got {value!r}") from None


def followed_settings(status) -> dict:
    """The widgets that follow a live run, also when another tab changed it: its loss and throttle."""
    return {"loss": dict(status.pending).get("loss", status.loss),  # a switch not applied yet: show it
            "max_rate": min(MAX_RATE_LIMIT, int(status.max_rate or 0))}


def advice_form(changes) -> dict:
    """The form's values after a coach action (Diagnosis.changes), so the sidebar shows what now runs."""
    return {k: f"{v:g}" if k in LR_FIELDS else v for k, v in changes if k in FORM_FIELDS}


def choose_preset(name: str) -> str:
    """A preset's name as given in the address (?preset=); ValueError lists them all for an unknown one."""
    return get_preset(str(name).strip()).name


def throttle(rate) -> float | None:
    """The slider's value as Trainer.set_max_rate takes it: 0 is full speed (None), else 1..MAX_RATE_LIMIT."""
    rate = parse_int("max_rate", rate or 0)
    if not 0 <= rate <= MAX_RATE_LIMIT:
        raise ConfigError("max_rate", f"must be 0 (full speed) to {MAX_RATE_LIMIT} steps/s, got {rate}")
    return None if rate == 0 else float(rate)
