"""Pictures: chart specs, sample-grid images, animation, the Theory page's maths, the live chart payloads and
the shared per-tick render. Pure functions of engine/quality data; never trains, never imports streamlit."""
