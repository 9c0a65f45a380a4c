"""Theory: why the lines sit at 0.693 (BCE) and 0.25 (MSE). Thin UI over gan.viz.theory; no training here."""

import math

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from gan.core.data import DataUnavailable, load_dataset
from gan.viz import theory
from gan.viz.look import CHART_CONFIG, FONT_SIZE, MARKER_COLOR

# BCE and MSE as two dark, colour-blind-safe colours that are neither player's (D blue, G vermillion): the
# default palette's pale orange MSE faded on a projector. The target is the dash: real solid, fake dashed.
LOSS_COLORS = alt.Scale(domain=["BCE", "MSE"], range=["#1B7837", "#762A83"])
LOSS_HEIGHT = 320


def projector(chart):
    """The dashboard's projector look (16 px dark axis labels, 19 px titles) on one of this page's charts."""
    chart = chart.properties(height=LOSS_HEIGHT) if not isinstance(chart, alt.LayerChart) else chart
    chart.config = CHART_CONFIG
    return chart


def clipped_curves(data, column: str, low: float, high: float, title: str, half_points):
    """Loss curves against D's output on a y range [low, high]: a curve that leaves it is cut at the edge (not
    flattened onto it) with its extreme value written there ("↑ 5.3"), so BCE's rise shows."""
    base = alt.Chart(data).encode(
        x=alt.X("d_output:Q", title="D's output p = D(x)",  # a tick per ~110 px: 26 ticks ran together
                axis=alt.Axis(tickCount={"expr": "ceil(width / 110)"}, labelOverlap="greedy", format=".2~f")),
        color=alt.Color("loss:N", scale=LOSS_COLORS, legend=alt.Legend(orient="top", title=None)),
        strokeDash=alt.StrokeDash("target:N", legend=alt.Legend(orient="top", title=None)))
    lines = base.mark_line(strokeWidth=3.5, clip=True).encode(
        y=alt.Y(f"{column}:Q", title=title, scale=alt.Scale(domain=[low, high])))
    points = alt.Chart(half_points).mark_point(size=110, filled=True, opacity=1).encode(
        x="d_output:Q", y=f"{column}:Q", color=alt.Color("loss:N", scale=LOSS_COLORS),
        tooltip=["loss", "target", alt.Tooltip(f"{column}:Q", format=".3f")])
    layers = [lines, points]
    out = theory.off_chart(data, column, low, high)
    if not out.empty:
        # beside the exit, on the side away from the curve (centred on it, the curve ran through the text)
        out = out.assign(at=out["d_output"] + np.where(out["d_output"] < 0.5, 0.05, -0.05))
        layers.append(alt.Chart(out).mark_text(fontSize=FONT_SIZE, fontWeight="bold", dy=12, baseline="middle",
                                               align="center").encode(
            x="at:Q", y=alt.Y("edge:Q"), text="text:N", color=alt.Color("loss:N", scale=LOSS_COLORS),
            tooltip=["loss", "target", alt.Tooltip("extreme:Q", title="furthest value", format=".3f")]))
    return alt.layer(*layers, height=LOSS_HEIGHT, config=CHART_CONFIG)

st.title("Theory: where 0.693 and 0.25 come from")
st.caption("Every number on this page is computed live by gan/viz/theory.py, through the same gan/losses "
           "functions that train the GAN. Move the sliders; nothing here touches the running training.")

# --- 1. entropy of a coin ---------------------------------------------------------------------------
st.header("1 · Entropy: how unsure is a coin?")
st.markdown("A coin that always lands heads holds no surprise: its entropy is 0. A fair coin is as "
            "unpredictable as a coin can be, so its entropy is largest — at $p = 0.5$.")
st.latex(r"H(p) = -\,p \ln p \;-\; (1-p)\ln(1-p), \qquad 0 \ln 0 := 0")
p = st.slider("Probability of heads p", 0.0, 1.0, 0.5, 0.01, key="entropy_p")
h = theory.coin_entropy(p)
col1, col2 = st.columns(2)
col1.metric("H(p) in nats", f"{h:.3f}")
col2.metric("Maximum, at p = 0.5", f"ln 2 = {math.log(2):.3f}")
curve = theory.entropy_curve()
marker = alt.Chart(pd.DataFrame({"p": [p], "entropy": [h]})).mark_point(size=160, filled=True, color="#D55E00",
                                                                         opacity=1).encode(x="p:Q", y="entropy:Q")
st.altair_chart(alt.layer(alt.Chart(curve).mark_line(strokeWidth=3.5, color=MARKER_COLOR).encode(
    x=alt.X("p:Q", title="p (heads)"), y=alt.Y("entropy:Q", title="H(p) [nats]")), marker, height=LOSS_HEIGHT,
    config=CHART_CONFIG), width="stretch")

# --- 2. cross-entropy -----------------------------------------------------------------------------------
st.header("2 · Cross-entropy: surprise at being wrong")
st.markdown("Cross-entropy compares what the network predicts ($x$) with what is true ($y$). "
            "Nearly right costs little; confidently wrong costs a lot; an undecided 0.5 costs ln 2 "
            "whatever the target.")
st.latex(r"\mathrm{CE}(x, y) = -\big[\,y \ln x + (1-y)\ln(1-x)\,\big]")
c1, c2 = st.columns(2)
x_user = c1.slider("Your prediction x", 0.01, 0.99, 0.7, 0.01, key="ce_x")
y_user = c2.selectbox("Target y", (1.0, 0.0), key="ce_y")
pairs = (*theory.DEFAULT_PAIRS, (x_user, y_user))
table = theory.cross_entropy_table(pairs)
st.dataframe(table.style.format({"prediction": "{:.2f}", "target": "{:.1f}", "cross_entropy": "{:.3f}",
                                 "squared_error": "{:.3f}"}), hide_index=True, width="stretch")
st.caption("The last row is yours. Compare rows 1 and 2: 0.9 against target 1 costs 0.105, "
           "0.1 against target 1 costs 2.303 — twenty times more.")

st.subheader("Why D's ideal output is 0.5")
st.markdown("For a fixed G, the best D answers, for each image $x$, the share of real images among "
            "all images that look like $x$. When G has learned the data ($p_g = p_{data}$) that "
            "share is one half everywhere: D can only shrug.")
st.latex(r"D^*(x) = \frac{p_{data}(x)}{p_{data}(x) + p_g(x)} \;\xrightarrow{\;p_g = p_{data}\;}\; \tfrac12")
pg = st.slider("How common this image is under G, relative to the data (p_g / p_data)", 0.0, 3.0, 1.0, 0.05,
               key="dstar_ratio")
st.metric("D*(x)", f"{theory.optimal_discriminator(1.0, pg):.3f}")

# --- 3. the two equilibrium lines ----------------------------------------------------------------------
st.header("3 · The lines at 0.693 and 0.25")
eq = theory.equilibrium_table().set_index("key")
bce_half, mse_half = eq.loc["bce", "d_loss_at_half"], eq.loc["mse", "d_loss_at_half"]
st.markdown("At equilibrium D says 0.5 to every image. D's loss is the **mean** of its real term "
            "(target 1) and its fake term (target 0); both terms are equal at 0.5, so the mean is that value.")
st.latex(rf"\text{{BCE: }} -\ln 0.5 = \ln 2 \approx {bce_half:.3f}")
st.latex(rf"\text{{MSE: }} (0.5 - 1)^2 = (0.5 - 0)^2 = {mse_half:.2f}")
m1, m2 = st.columns(2)
m1.metric("BCE at D = 0.5 (from gan.core.losses)", f"{bce_half:.3f}")
m2.metric("MSE at D = 0.5 (from gan.core.losses)", f"{mse_half:.2f}")

curves = theory.loss_curves()
half = curves[np.isclose(curves["d_output"], 0.5)]
st.subheader("Loss against D's output")
# y up to 3: MSE (at most 1) stays readable; BCE's −ln p leaves the top and says how far it goes.
st.altair_chart(clipped_curves(curves, "value", 0, 3, "loss", half), width="stretch")

st.subheader("Gradients: how hard each loss pushes")
st.markdown("The slope tells D how hard to move. Against a real target BCE's slope is $-1/p$: it "
            "grows without bound as $p \\to 0$ (confidently wrong). MSE's slope $2(p-1)$ never exceeds 2. "
            "At the equilibrium point BCE pushes twice as hard as MSE.")
st.latex(r"\frac{\partial}{\partial p}\big[-\ln p\big] = -\frac1p = -2 \text{ at } p=\tfrac12"
         r"\qquad \frac{\partial}{\partial p}\big[(p-1)^2\big] = 2(p-1) = -1 \text{ at } p=\tfrac12")
wrt = st.radio("Slope with respect to", ("D's output p", "D's logit l (what reaches D's weights)"),
               horizontal=True, key="grad_wrt")
gcol = "grad_output" if wrt.startswith("D's output") else "grad_logit"
st.altair_chart(clipped_curves(curves, gcol, -6, 6, "slope", half), width="stretch")
if gcol == "grad_logit":
    st.caption("Through the sigmoid, BCE's slope is σ(l) − 1: it stays near −1 when D is badly wrong. "
               "MSE's slope 2(σ(l) − 1)·σ(l)(1 − σ(l)) fades at both ends — a saturated D teaches little.")
g_bce, g_mse = theory.gradient_at_half("bce"), theory.gradient_at_half("mse")
st.caption(f"At p = 0.5, real target: BCE value {g_bce['value']:.3f}, slope {g_bce['grad_output']:.2f}; "
           f"MSE value {g_mse['value']:.2f}, slope {g_mse['grad_output']:.2f}.")

st.subheader("Why BCE rescues a stalled G, and MSE does not")
st.markdown("When D rejects every fake, $D(G(z)) \\to 0$. What G learns from is the slope of its loss "
            "with respect to D's logit $l$ (D ends in a logit; $D = \\sigma(l)$):")
st.latex(r"\text{minimax } \ln(1-\sigma(l)):\ |\partial_l| = \sigma(l) \to 0 \qquad"
         r"\text{BCE } -\ln\sigma(l):\ |\partial_l| = 1-\sigma(l) \to 1 \qquad"
         r"\text{MSE } (\sigma(l)-1)^2:\ |\partial_l| = 2(1-\sigma(l))\,\sigma(l) \to 0")
push = theory.g_push_table()
st.dataframe(push.pivot(index="d_fake", columns="label", values="push").sort_index(ascending=False)
             .rename_axis("D(fake)").round(3), width="stretch")
st.caption("Per sample, through gan.core.losses. MSE on D's sigmoid inherits the sigmoid's own flat tails, so it "
           "stalls like minimax; BCE's slope stays near 1. The Workshop presets “Rescue: the minimax stall, then "
           "BCE” and “Rescue attempt: the minimax stall, then MSE” show it on a real run (README: G's measured "
           "gradient after each switch).")

# --- 4. the catalogue -----------------------------------------------------------------------------------
st.header("4 · A catalogue of generative-model losses")
tab_nll, tab_rec, tab_kl, tab_adv = st.tabs(["Negative log-likelihood", "Reconstruction (MSE)",
                                             "KL divergence", "Adversarial"])
with tab_nll:
    st.markdown("Classification and likelihood models score the probability they gave the true class. "
                "PyTorch's `cross_entropy` is exactly this: softmax, then $-\\ln$ of the true class.")
    st.latex(r"\mathrm{NLL} = -\ln \frac{e^{z_y}}{\sum_k e^{z_k}}")
    z_true = st.slider("Logit of the true class (class 0)", -4.0, 6.0, 2.0, 0.1, key="nll_z")
    nll = theory.nll_example([z_true, 0.5, -1.0, 0.0], 0)
    n1, n2 = st.columns(2)
    n1.metric("NLL by hand", f"{nll['nll']:.3f}")
    n2.metric("F.cross_entropy", f"{nll['torch_cross_entropy']:.3f}")
    st.altair_chart(projector(alt.Chart(pd.DataFrame({"class": [str(i) for i in range(len(nll["probs"]))],
                                                    "probability": nll["probs"]})).mark_bar(color="#0072B2").encode(
        x=alt.X("class:N", axis=alt.Axis(labelAngle=0)), y=alt.Y("probability:Q").scale(domain=[0, 1]))),
        width="stretch")

with tab_rec:
    st.markdown("Autoencoders score how well they rebuild their input: the mean squared error between "
                "the image $x$ and its reconstruction $\\hat x$. Here the 'reconstruction' is a real "
                "MNIST digit with noise added; the MSE grows like the noise variance.")
    st.latex(r"L_{rec} = \frac1n \sum_i \lVert x_i - \hat x_i \rVert^2")
    noise = st.slider("Noise standard deviation", 0.0, 1.0, 0.3, 0.05, key="rec_noise")

    @st.cache_resource(show_spinner="Loading a real digit from mnist5k…")
    def _one_digit() -> np.ndarray:
        return load_dataset("mnist5k").images[1234, 0].numpy()  # (28, 28) in [-1, 1], a real digit

    try:
        digit = _one_digit()
    except (DataUnavailable, ImportError, OSError) as exc:  # render the page even without the data
        st.warning(f"No real digit available for this example ({exc}).")
    else:
        rec = theory.reconstruction_example(digit, noise)
        r1, r2, r3 = st.columns(3)
        r1.image((digit + 1) / 2, caption="x (real digit)", width=140, clamp=True)
        r2.image((rec["reconstruction"] + 1) / 2, caption="x̂ (noisy copy)", width=140, clamp=True)
        r3.metric("MSE", f"{rec['mse']:.3f}", help=f"noise variance σ² = {noise ** 2:.3f}")

with tab_kl:
    st.markdown("KL divergence measures the extra surprise of describing samples of $q$ with the "
                "code of $p$. It is never negative, zero only when $q = p$, and not symmetric. VAEs "
                "use it to keep their latent codes close to $\\mathcal N(0, 1)$.")
    st.latex(r"D_{KL}(q\,\|\,p) = \ln\frac{\sigma_p}{\sigma_q} + \frac{\sigma_q^2 + (\mu_q-\mu_p)^2}{2\sigma_p^2}"
             r" - \frac12 \;\approx\; \frac1N\sum_{x_i\sim q} \big[\ln q(x_i) - \ln p(x_i)\big]")
    k1, k2 = st.columns(2)
    mu_q = k1.slider("μ_q", -3.0, 3.0, 1.0, 0.1, key="kl_mu_q")
    sigma_q = k1.slider("σ_q", 0.2, 3.0, 0.5, 0.1, key="kl_sigma_q")
    mu_p = k2.slider("μ_p", -3.0, 3.0, 0.0, 0.1, key="kl_mu_p")
    sigma_p = k2.slider("σ_p", 0.2, 3.0, 1.0, 0.1, key="kl_sigma_p")
    closed = theory.kl_gaussians(mu_q, sigma_q, mu_p, sigma_p)
    estimate, stderr = theory.kl_monte_carlo(mu_q, sigma_q, mu_p, sigma_p)
    reverse = theory.kl_gaussians(mu_p, sigma_p, mu_q, sigma_q)
    e1, e2, e3 = st.columns(3)
    e1.metric("Closed form KL(q‖p)", f"{closed:.3f}")
    e2.metric("Sampled estimate (20,000 draws)", f"{estimate:.3f} ± {stderr:.3f}")
    e3.metric("KL(p‖q), the other way", f"{reverse:.3f}")
    st.altair_chart(projector(alt.Chart(theory.gaussian_densities(mu_q, sigma_q, mu_p, sigma_p)).mark_area(
        opacity=0.5, line={"strokeWidth": 3}).encode(
        x="x:Q", y="density:Q",
        color=alt.Color("distribution:N", scale=alt.Scale(domain=["q", "p"], range=LOSS_COLORS.range),
                                                legend=alt.Legend(orient="top", title=None)))), width="stretch")

with tab_adv:
    st.markdown("The GAN's loss is a game. D wants $D(x) \\to 1$ on real images and $D(G(z)) \\to 0$ "
                "on fakes; G wants its fakes called real. Set what D says and read every loss of "
                "the registry — these are the functions the trainer calls.")
    st.latex(r"\min_G \max_D \; V(D,G) = \mathbb E_{x}\big[\ln D(x)\big] + \mathbb E_{z}\big[\ln(1 - D(G(z)))\big]")
    st.caption("Our D's BCE loss is the MEAN of its two terms (−V/2), so it sits at ln 2 ≈ 0.693 at equilibrium, "
               "not at 2 ln 2 ≈ 1.386 as when the two terms are summed.")
    a1, a2 = st.columns(2)
    d_real = a1.slider("D(x) on real images", 0.01, 0.99, 0.5, 0.01, key="adv_real")
    d_fake = a2.slider("D(G(z)) on fakes", 0.01, 0.99, 0.5, 0.01, key="adv_fake")
    st.dataframe(theory.adversarial_table(d_real, d_fake).style.format(precision=3, na_rep="none"),
                 hide_index=True, width="stretch")
    st.metric("V(D, G) for these outputs", f"{theory.value_function(d_real, d_fake):.3f}")
