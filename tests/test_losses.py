import dataclasses
import math

import pytest
import torch

from gan.core.losses import LOSSES, format_equilibrium, get_loss

ZERO = torch.zeros(256)  # logit 0 <=> D outputs 0.5 for every image


def test_registry_has_the_four_losses_with_labels_starting_with_their_name():
    assert set(LOSSES) == {"bce", "mse", "hinge", "minimax"}
    for name, spec in LOSSES.items():
        assert spec.name == name
        assert spec.label.lower().startswith(name)


@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_at_logit_zero_equals_its_declared_equilibrium(name):
    spec = LOSSES[name]
    d = spec.d_loss(real_logits=ZERO, fake_logits=ZERO).item()
    g = spec.g_loss(fake_logits=ZERO).item()
    assert d == pytest.approx(spec.equilibrium_d, abs=1e-6)
    assert g == pytest.approx(spec.equilibrium_g, abs=1e-6)


def test_equilibrium_values_follow_the_formulas():
    # BCE: -ln 0.5 for each term; D's loss is the mean of its real and fake terms.
    assert LOSSES["bce"].equilibrium_d == pytest.approx(-math.log(0.5))
    assert LOSSES["bce"].equilibrium_g == pytest.approx(0.693147, abs=1e-6)
    # MSE without the 1/2 factor: (0.5 - 1)^2 = (0.5 - 0)^2 = 0.25.
    assert LOSSES["mse"].equilibrium_d == pytest.approx((0.5 - 1) ** 2) == (0.5 - 0) ** 2
    assert LOSSES["mse"].equilibrium_g == pytest.approx(0.25)
    # Hinge: D = mean(relu(1 - 0), relu(1 + 0)) = 1; G = -0 = 0.
    assert (LOSSES["hinge"].equilibrium_d, LOSSES["hinge"].equilibrium_g) == (1.0, 0.0)
    # Minimax G minimises ln(1 - 0.5) = -ln 2.
    assert LOSSES["minimax"].equilibrium_g == pytest.approx(math.log(0.5))


def test_bce_matches_torch_reference_and_is_the_mean_of_the_two_terms():
    real, fake = torch.randn(32), torch.randn(32)
    bce = torch.nn.BCEWithLogitsLoss()
    expected = 0.5 * (bce(real, torch.ones(32)) + bce(fake, torch.zeros(32)))
    assert LOSSES["bce"].d_loss(real_logits=real, fake_logits=fake).item() == pytest.approx(expected.item(), rel=1e-6)
    assert LOSSES["bce"].g_loss(fake_logits=fake).item() == pytest.approx(bce(fake, torch.ones(32)).item(), rel=1e-6)


def test_mse_works_on_probabilities_without_half_factor():
    real, fake = torch.randn(32), torch.randn(32)
    pr, pf = torch.sigmoid(real), torch.sigmoid(fake)
    expected = 0.5 * (((pr - 1) ** 2).mean() + (pf ** 2).mean())
    assert LOSSES["mse"].d_loss(real_logits=real, fake_logits=fake).item() == pytest.approx(expected.item(), rel=1e-6)


def test_minimax_g_gradient_vanishes_when_d_rejects_fakes_but_bce_does_not():
    confident_fake = torch.full((8,), -8.0, requires_grad=True)  # D(G(z)) ≈ 0.0003
    LOSSES["minimax"].g_loss(fake_logits=confident_fake).backward()
    saturating = confident_fake.grad.abs().mean().item()
    confident_fake.grad = None
    LOSSES["bce"].g_loss(fake_logits=confident_fake).backward()
    non_saturating = confident_fake.grad.abs().mean().item()
    assert saturating < 1e-3 < non_saturating


def test_losses_take_keywords_only():
    with pytest.raises(TypeError):
        LOSSES["bce"].d_loss(ZERO, ZERO)


def test_unknown_loss_and_equilibrium_text():
    with pytest.raises(ValueError) as err:
        get_loss("wgan")
    assert str(err.value) == f"unknown loss 'wgan'; choose one of {', '.join(LOSSES)}"
    assert ", " in str(err.value) and len(LOSSES) > 1
    assert format_equilibrium(LOSSES["mse"]) == "equilibrium: D 0.25 · G 0.25"
    assert format_equilibrium(LOSSES["bce"]) == "equilibrium: D 0.693 · G 0.693"
    # every loss declares its equilibrium or none; one that declares none (a future loss) says so
    none_for_g = dataclasses.replace(LOSSES["bce"], equilibrium_g=None)
    assert format_equilibrium(none_for_g) == "equilibrium: D 0.693 · G none"


@pytest.mark.parametrize("logit", [-3.0, -0.7, 1.5])
def test_each_g_loss_pushes_the_right_way_by_the_formula_away_from_zero(logit):
    """dL_G/dl per sample, against the formula, where a sign flip would not hide (at l = 0 it can)."""
    s = torch.sigmoid(torch.tensor(logit)).item()
    expected = {"bce": s - 1.0,  # -ln σ(l)
                "mse": 2 * (s - 1.0) * s * (1 - s),  # (σ(l) - 1)²
                "hinge": -1.0,  # -l
                "minimax": -s}  # ln(1 - σ(l))
    for name, slope in expected.items():
        fake = torch.tensor([logit], requires_grad=True)
        LOSSES[name].g_loss(fake_logits=fake).backward()
        assert fake.grad.item() == pytest.approx(slope, rel=1e-5, abs=1e-7), name
        assert fake.grad.item() < 0, f"{name}: G must push D's logit on fakes up"


@pytest.mark.parametrize("logit", [-3.0, -0.7, 1.5])
def test_each_d_loss_pushes_real_logits_up_and_fake_logits_down_by_the_formula(logit):
    """dL_D/dl for one real and one fake sample (the mean of the two terms gives each a ½), away from 0."""
    s = torch.sigmoid(torch.tensor(logit)).item()
    real_slope = {"bce": 0.5 * (s - 1.0),  # ½ · -ln σ(l)
                  "mse": 0.5 * 2 * (s - 1.0) * s * (1 - s),  # ½ · (σ(l) - 1)²
                  "hinge": -0.5 if logit < 1.0 else 0.0}  # ½ · relu(1 - l)
    fake_slope = {"bce": 0.5 * s,  # ½ · -ln(1 - σ(l))
                  "mse": 0.5 * 2 * s * s * (1 - s),  # ½ · σ(l)²
                  "hinge": 0.5 if logit > -1.0 else 0.0}  # ½ · relu(1 + l)
    for name in real_slope:
        real = torch.tensor([logit], requires_grad=True)
        fake = torch.tensor([logit], requires_grad=True)
        LOSSES[name].d_loss(real_logits=real, fake_logits=fake).backward()
        assert real.grad.item() == pytest.approx(real_slope[name], rel=1e-5, abs=1e-7), name
        assert fake.grad.item() == pytest.approx(fake_slope[name], rel=1e-5, abs=1e-7), name
        assert real.grad.item() <= 0 <= fake.grad.item(), f"{name}: D must call reals real and fakes fake"


def test_hinge_d_loss_is_zero_beyond_the_margin_and_grows_inside_it():
    confident = LOSSES["hinge"].d_loss(real_logits=torch.full((4,), 2.0), fake_logits=torch.full((4,), -2.0))
    wrong = LOSSES["hinge"].d_loss(real_logits=torch.full((4,), -1.0), fake_logits=torch.full((4,), 1.0))
    assert confident.item() == 0.0  # both terms past the margin of 1
    assert wrong.item() == pytest.approx(2.0)  # ½ · (relu(1 + 1) + relu(1 + 1))
