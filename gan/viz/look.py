"""The dashboard's projector look, shared by every chart: the players' colours, a large dark font, one config.
Must not build a chart or read a run; constants and the losses' display names only.

One colour means one player on every chart: D is blue, G is orange. D(real) shares D's blue (real data is D's
side of the game) and D(fake) = D(G(z)) shares G's orange (the fakes are G's images, and G wants that number
up) — two colours for the whole dashboard. gan/viz/charts.py, gan/viz/quality_charts.py and the pages draw with
these.
"""

import altair as alt

from gan.core.losses import LOSSES

# Okabe-Ito blue and vermillion: distinct for colour-blind viewers and on a washed-out projector.
D_COLOR = "#0072B2"
G_COLOR = "#D55E00"
MARKER_COLOR = "#333333"  # loss-switch markers and the 0.5 lines: neutral, dark for contrast
CURSOR_COLOR = "#8e44ad"  # the replay cursor: neither player's colour, nor the markers' grey

CHART_HEIGHT = 330  # Streamlit sizes the whole chart (title, legend, axes) to this
FONT_SIZE = 16  # axis labels and legends read from the back of a room
TEXT_COLOR = "#111111"  # dark labels: the default mid-grey fades on a projector


# One config for every chart. Built once: Altair deep-copies chart objects on every .configure_*()
# call and parses "field:Q" shorthands through a slow schema lookup, so gan/viz/charts.py assembles its
# charts from explicit channel objects in a single LayerChart(...) call (~10x cheaper per tick).
CHART_CONFIG = alt.Config(
    axis=alt.AxisConfig(labelFontSize=FONT_SIZE, titleFontSize=FONT_SIZE + 1, labelColor=TEXT_COLOR,
                        titleColor=TEXT_COLOR, gridOpacity=0.5, labelPadding=6, titlePadding=8),
    legend=alt.LegendConfig(labelFontSize=FONT_SIZE, labelColor=TEXT_COLOR, symbolSize=200, symbolStrokeWidth=4),
    # offset: the legend sits under the title now, so Streamlit's 26 px gap would be wasted height.
    title=alt.TitleConfig(fontSize=FONT_SIZE + 3, anchor="start", color=TEXT_COLOR, offset=8),
    view=alt.ViewConfig(strokeWidth=0),
    # Room above the title: Vega fits the title by its own text metrics, but glyphs from a fallback font (the
    # "↑" of "classifier score (↑, max 10)") stand taller, and a 5 px top cut them off in Chromium.
    padding={"top": 12, "left": 5, "right": 8, "bottom": 5},
)


def loss_label(name: str) -> str:
    """A loss as charts and captions name it ("bce" -> "BCE"); an unknown name as it is."""
    spec = LOSSES.get(name)
    return spec.label if spec else str(name)
