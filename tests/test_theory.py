"""gan/viz/theory.py maths (through gan.core.losses) and the Theory page rendered with AppTest."""

import math
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from gan.core.losses import LOSSES
from gan.viz import theory

LN2 = math.log(2)
PAGE = Path(__file__).resolve().parents[1] / "pages" / "theory.py"


def test_coin_entropy_peaks_at_half_with_ln2_and_is_zero_at_the_ends():
    curve = theory.entropy_curve(201)
    assert curve.loc[curve["entropy"].idxmax(), "p"] == pytest.approx(0.5)
    assert curve["entropy"].max() == pytest.approx(LN2)
    assert theory.coin_entropy(0.0) == 0.0 and theory.coin_entropy(1.0) == 0.0
    assert theory.coin_entropy(0.25) == pytest.approx(theory.coin_entropy(0.75))
    with pytest.raises(ValueError):
        theory.coin_entropy(1.5)


def test_cross_entropy_table_matches_the_source_rows():
    t = theory.cross_entropy_table().set_index(["prediction", "target"])
    assert t.loc[(0.9, 1.0), "cross_entropy"] == pytest.approx(-math.log(0.9))  # 0.105
    assert t.loc[(0.1, 1.0), "cross_entropy"] == pytest.approx(-math.log(0.1))  # 2.303
    assert t.loc[(0.9, 0.0), "cross_entropy"] == pytest.approx(-math.log(0.1))  # confidently wrong
    assert t.loc[(0.5, 1.0), "cross_entropy"] == pytest.approx(LN2)
    assert t.loc[(0.5, 0.0), "cross_entropy"] == pytest.approx(LN2)
    assert t.loc[(0.5, 1.0), "squared_error"] == pytest.approx(0.25)


def test_optimal_discriminator_is_half_when_g_matches_the_data():
    assert theory.optimal_discriminator(0.3, 0.3) == 0.5
    assert theory.optimal_discriminator(0.3, 0.0) == 1.0
    assert theory.optimal_discriminator(1.0, 3.0) == pytest.approx(0.25)


def test_equilibrium_table_recomputes_every_declared_value_from_the_registry():
    eq = theory.equilibrium_table().set_index("key")
    assert set(eq.index) == set(LOSSES)
    assert eq.loc["bce", "d_loss_at_half"] == pytest.approx(LN2)
    assert eq.loc["mse", "d_loss_at_half"] == pytest.approx(0.25)
    for key, row in eq.iterrows():
        if row["declared_d"] is not None and not np.isnan(row["declared_d"]):
            assert row["d_loss_at_half"] == pytest.approx(row["declared_d"]), key
            assert row["g_loss_at_half"] == pytest.approx(row["declared_g"]), key


def test_loss_terms_go_through_the_registry_and_match_the_closed_forms():
    for p in (0.1, 0.5, 0.8):
        assert theory.loss_term("bce", p, 1) == pytest.approx(-math.log(p))
        assert theory.loss_term("bce", p, 0) == pytest.approx(-math.log(1 - p))
        assert theory.loss_term("mse", p, 1) == pytest.approx((p - 1) ** 2)
        assert theory.loss_term("mse", p, 0) == pytest.approx(p ** 2)
    with pytest.raises(ValueError):
        theory.loss_term("hinge", 0.5, 1)


def test_autograd_slopes_at_half_and_bce_pushes_harder_far_from_target():
    assert theory.gradient_at_half("bce") == pytest.approx(
        {"d_output": 0.5, "value": LN2, "grad_output": -2.0, "grad_logit": -0.5})
    assert theory.gradient_at_half("mse") == pytest.approx(
        {"d_output": 0.5, "value": 0.25, "grad_output": -1.0, "grad_logit": -0.25})
    c = theory.loss_curves()
    real = c[c["target"].str.startswith("real")]
    bce, mse = real[real["loss"] == "BCE"], real[real["loss"] == "MSE"]
    p = bce["d_output"].to_numpy()
    np.testing.assert_allclose(bce["grad_output"], -1 / p, rtol=1e-6)
    np.testing.assert_allclose(mse["grad_output"], 2 * (p - 1), rtol=1e-6, atol=1e-9)
    far = p < 0.1  # confidently wrong about a real image
    assert (bce["grad_output"].abs().to_numpy()[far] > 5 * mse["grad_output"].abs().to_numpy()[far]).all()
    # Through the sigmoid MSE's slope fades at the wrong end while BCE's stays near -1.
    assert bce["grad_logit"].iloc[0] < -0.99 and abs(mse["grad_logit"].iloc[0]) < 0.02


def test_kl_closed_form_agrees_with_the_sampled_estimate_and_is_asymmetric():
    for args in ((1.0, 0.5, 0.0, 1.0), (0.0, 1.0, 0.0, 1.0), (-2.0, 2.0, 1.0, 0.7)):
        closed = theory.kl_gaussians(*args)
        est, se = theory.kl_monte_carlo(*args, n=20_000, seed=3)
        assert abs(est - closed) < 5 * se + 1e-9, (args, closed, est, se)
    assert theory.kl_gaussians(0, 1, 0, 1) == 0.0
    assert theory.kl_gaussians(1, 0.5, 0, 1) != pytest.approx(theory.kl_gaussians(0, 1, 1, 0.5))
    with pytest.raises(ValueError):
        theory.kl_gaussians(0, 0, 0, 1)


def test_nll_and_adversarial_examples_use_the_training_losses():
    nll = theory.nll_example([2.0, 0.5, -1.0], 0)
    assert nll["nll"] == pytest.approx(nll["torch_cross_entropy"])
    assert nll["probs"].sum() == pytest.approx(1.0)
    adv = theory.adversarial_table(0.5, 0.5).set_index("loss")
    assert adv.loc["BCE", "d_loss"] == pytest.approx(LN2) and adv.loc["MSE", "d_loss"] == pytest.approx(0.25)
    adv = theory.adversarial_table(0.9, 0.2).set_index("loss")
    v = theory.value_function(0.9, 0.2)
    assert adv.loc["BCE", "d_loss"] == pytest.approx(-v / 2)  # our D loss is the mean of the two terms


def test_reconstruction_mse_grows_with_noise():
    img = np.linspace(-1, 1, 784, dtype=np.float32).reshape(28, 28)
    assert theory.reconstruction_example(img, 0.0)["mse"] == 0.0
    assert theory.reconstruction_example(img, 0.1)["mse"] < theory.reconstruction_example(img, 0.5)["mse"]


# --- the page -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def page():
    at = AppTest.from_file(str(PAGE), default_timeout=60).run()
    return at


def _texts(at) -> str:
    parts = [e.value for e in at.latex] + [e.value for e in at.markdown] + [e.value for e in at.caption]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    return "\n".join(str(p) for p in parts)


def test_theory_page_renders_0693_and_025_with_charts_and_no_exception(page):
    assert not page.exception
    text = _texts(page)
    assert "0.693" in text and "0.25" in text
    assert any("0.693" in e.value for e in page.latex) and any("0.25" in e.value for e in page.latex)
    metrics = {m.label: m.value for m in page.metric}
    assert metrics["BCE at D = 0.5 (from gan.core.losses)"] == "0.693"
    assert metrics["MSE at D = 0.5 (from gan.core.losses)"] == "0.25"
    assert len(page.get("vega_lite_chart")) >= 5  # entropy, loss, slope, NLL bars, KL densities


def test_theory_page_widgets_drive_the_numbers(page):
    page.slider(key="entropy_p").set_value(1.0).run()
    assert not page.exception
    assert {m.label: m.value for m in page.metric}["H(p) in nats"] == "0.000"
    page.slider(key="kl_mu_q").set_value(0.0)
    page.slider(key="kl_sigma_q").set_value(1.0)
    page.run()
    assert {m.label: m.value for m in page.metric}["Closed form KL(q‖p)"] == "0.000"
    page.radio(key="grad_wrt").set_value(page.radio(key="grad_wrt").options[1]).run()
    assert not page.exception
