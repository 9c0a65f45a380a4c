"""The live charts component: browser-side drawing of gan/viz/livechart.py's payloads.

Streamlit resends a component's html, css and js strings with every rerun, so they stay tiny: the
js is a stub that imports static/livechart.js (served by server.enableStaticServing, cached by the
browser, versioned by its hash so an updated app never runs a stale copy), and that module loads
the vendored Vega builds from static/vendor/ once per page. Nothing is fetched from the internet.
"""

import hashlib
import json
from pathlib import Path

import streamlit as st

MODULE = Path(__file__).resolve().parents[1] / "static" / "livechart.js"


def _module_url() -> str:
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    version = hashlib.sha1(MODULE.read_bytes()).hexdigest()[:10]
    return f"{'/' + base if base else ''}/app/static/livechart.js?v={version}"


# The stub returns a cleanup that Streamlit calls when the element goes away (not at reruns): it
# releases the Vega views. The import is resolved against the page, not the stub's own blob URL.
JS = "const url = new URL(" + json.dumps(_module_url()) + """, location.href).href;
export default function (component) {
  const mod = import(url);
  mod.then((m) => m.render(component));
  return () => mod.then((m) => m.cleanup(component.parentElement));
}
"""

# Rows of cells sized like st.columns (flex-grow = the cell's weight), stacked one per line below
# 640 px as st.columns stack; captions in st.caption's style but darker (st.caption's 60% grey fades on a
# projector), alerts in st.error's colours.
CSS = """.gl-root{display:flex;flex-direction:column;gap:1rem}
.row{display:flex;gap:1rem}
.cell{flex:1 1 0;min-width:0}
@media (max-width:640px){.row{flex-direction:column}.row>.cell{flex:none!important}}
.host img{width:100%;image-rendering:pixelated;display:block}
.caption{font-size:.9em;color:#3d3f48;margin-top:.25rem}
.caption:empty{display:none}
.caption.alert{color:#7d353b;background:#ffecec;padding:.75rem 1rem;border-radius:.5rem}"""

_component = st.components.v2.component("gan_live_charts", html='<div class="gl-root"></div>', css=CSS, js=JS)


def live_charts(payload: str, *, key: str, height="content"):
    """Mount (or update) the charts for one payload from gan.viz.livechart; one stable key per panel.

    The payload goes as UTF-8 bytes: Streamlit passes bytes through as they are, where a str would be
    JSON-escaped once more on the server and parsed twice in the browser.
    """
    return _component(data=payload.encode(), key=key, height=height)
