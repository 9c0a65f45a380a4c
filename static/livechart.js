// GAN Live charts, drawn in the browser. The payload comes from gan/viz/livechart.py (its docstring
// describes the shape); pages/_livechart.py mounts a tiny stub that imports this module and calls
// render() at every rerun of the fragment.
//
// Streamlit re-invokes the component with the same parentElement (a ShadowRoot) and keeps its DOM
// between reruns, so the Vega views live on the root element: a chart is embedded once per spec key,
// and later reruns only swap its named datasets (view.data(...).runAsync()), which redraws without
// recompiling the spec or rebuilding the SVG tree.

const VENDOR = ["vega.min.js", "vega-lite.min.js", "vega-embed.min.js"]; // UMD builds, in dependency order

// Counters for tests and curious presenters: embeds should stay flat while updates grow.
const stats = (window.__ganLive = window.__ganLive || { embeds: 0, updates: 0, renders: 0 });

function loadVega() {
  // Once per page, shared by every instance: plain <script> tags, so the UMD builds set window.vega,
  // window.vegaLite and window.vegaEmbed. Served by Streamlit's static serving, never a CDN.
  if (!window.__ganLiveVega) {
    window.__ganLiveVega = VENDOR.reduce((ready, file) => ready.then(() => new Promise((ok, fail) => {
      const s = document.createElement("script");
      s.src = new URL("vendor/" + file, import.meta.url).href;
      s.onload = ok;
      s.onerror = () => fail(new Error("could not load " + s.src));
      document.head.appendChild(s);
    })), Promise.resolve()).catch((err) => {
      window.__ganLiveVega = null; // let a later rerun try again
      throw err;
    });
  }
  return window.__ganLiveVega;
}

// {"cols": {field: [...]}, "melt"?: {"key", "value", "cols": {name: [...]}}} -> row objects
function rows(table) {
  const cols = table.cols || {};
  const fields = Object.keys(cols);
  const n = fields.length ? cols[fields[0]].length : 0;
  const row = (i) => {
    const r = {};
    for (const f of fields) r[f] = cols[f][i];
    return r;
  };
  const out = [];
  if (!table.melt) {
    for (let i = 0; i < n; i++) out.push(row(i));
    return out;
  }
  const { key, value } = table.melt;
  for (const [name, values] of Object.entries(table.melt.cols)) {
    for (let i = 0; i < n; i++) {
      const r = row(i);
      r[key] = name;
      r[value] = values[i];
      out.push(r);
    }
  }
  return out;
}

function el(tag, cls) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  return e;
}

// One cell per id, created once; its view (if any) survives layout changes.
function cellFor(state, id) {
  let cell = state.cells.get(id);
  if (!cell) {
    const box = el("div", "cell");
    const host = el("div", "host");
    const caption = el("div", "caption");
    box.append(host, caption);
    cell = { box, host, caption, view: null, key: null, sent: {}, src: null };
    state.cells.set(id, cell);
  }
  return cell;
}

function layout(root, state, payload) {
  const ids = payload.rows.map((row, r) => row.map((c, i) => c.chart || (c.image ? "image" : `text${r}-${i}`)));
  const sig = JSON.stringify([ids, payload.rows.map((row) => row.map((c) => c.w))]);
  if (sig === state.layout) return ids;
  state.layout = sig;
  const wanted = new Set(ids.flat());
  for (const [id, cell] of state.cells) {
    if (!wanted.has(id)) {
      if (cell.view) cell.view.finalize();
      if (cell.resize) cell.resize.disconnect();
      state.cells.delete(id);
    }
  }
  const frame = document.createDocumentFragment();
  payload.rows.forEach((row, r) => {
    const line = el("div", "row");
    row.forEach((c, i) => {
      const cell = cellFor(state, ids[r][i]);
      cell.box.style.flexGrow = c.w || 1;
      line.append(cell.box);
    });
    frame.append(line);
  });
  root.replaceChildren(frame); // moves existing cells (and their live views), no re-embed
  return ids;
}

async function drawChart(cell, entry, data) {
  if (cell.key !== entry.key) {
    // A new spec (first time, or the alarm turned the coverage bars red): embed from scratch.
    if (cell.view) cell.view.finalize();
    if (cell.resize) cell.resize.disconnect();
    const spec = structuredClone(entry.spec);
    spec.datasets = { ...(spec.datasets || {}) };
    for (const [name, table] of Object.entries(data)) spec.datasets[name] = rows(table);
    cell.host.replaceChildren();
    const result = await window.vegaEmbed(cell.host, spec, { actions: false, renderer: "svg" });
    if (cell.closed) {
      // Streamlit replaced this element while Vega drew it (a cold first load, when the fragment's timer fires
      // before the page's first run ends): cleanup() has run, so release the view here, or it would leak.
      result.view.finalize();
      cell.host.replaceChildren();
      return;
    }
    cell.view = result.view;
    cell.key = entry.key;
    cell.sent = {};
    for (const [name, table] of Object.entries(data)) cell.sent[name] = JSON.stringify(table);
    // Vega-Lite's "container" width follows window resizes only; the column can change width
    // without one (sidebar, wrapping), so follow the host element instead.
    cell.resize = new ResizeObserver(() => {
      const w = cell.host.clientWidth;
      if (cell.view && w > 0 && w !== cell.view.width()) cell.view.width(w).runAsync();
    });
    cell.resize.observe(cell.host);
    if (cell.host.isConnected) stats.embeds++; // not one for an element already replaced (cleanup releases it)
    return;
  }
  let changed = false;
  for (const [name, table] of Object.entries(data)) {
    const text = JSON.stringify(table);
    if (cell.sent[name] === text) continue; // e.g. the switches, or everything while paused
    cell.sent[name] = text;
    cell.view.data(name, rows(table));
    changed = true;
  }
  if (changed) {
    await cell.view.runAsync();
    stats.updates++;
  }
}

async function apply(root, state, payload) {
  const ids = layout(root, state, payload);
  const pending = [];
  payload.rows.forEach((row, r) => row.forEach((c, i) => {
    const cell = state.cells.get(ids[r][i]);
    cell.caption.textContent = c.caption || c.text || "";
    cell.caption.classList.toggle("alert", !!c.alert);
    if (c.image !== undefined && c.image !== cell.src) {
      // Only a new grid is decoded again; the data URL is compared, not re-set, at every rerun.
      cell.src = c.image;
      let img = cell.host.querySelector("img");
      if (!img) cell.host.append((img = el("img")));
      img.src = c.image;
      img.alt = c.caption || "samples";
    }
    if (c.chart) {
      pending.push(drawChart(cell, payload.specs[c.chart], c.data || {}).catch((err) => {
        console.error("GAN Live chart", c.chart, err);
        cell.caption.textContent = "Chart error: " + err.message;
      }));
    }
  }));
  await Promise.all(pending);
}

export function render(component) {
  const { data, parentElement } = component;
  const text = typeof data === "string" ? data : new TextDecoder().decode(data);
  const root = parentElement.querySelector(".gl-root");
  const state = root.__ganLive || (root.__ganLive = { cells: new Map(), layout: null, latest: null, chain: null });
  stats.renders++;
  state.latest = JSON.parse(text);
  // One update at a time per instance; a rerun that lands during an embed is folded into the next
  // pass, which always draws the latest payload (stale ones are skipped, never queued up).
  if (!state.chain) {
    state.chain = loadVega()
      .then(async () => {
        let drawn;
        while (drawn !== state.latest) {
          drawn = state.latest;
          await apply(root, state, drawn);
        }
      })
      .catch((err) => {
        console.error("GAN Live charts", err);
        root.textContent = "The live charts could not load (" + err.message + "). Is server.enableStaticServing on?";
        state.layout = null;
      })
      .finally(() => {
        state.chain = null;
      });
  }
}

export function cleanup(parentElement) {
  const root = parentElement.querySelector(".gl-root");
  const state = root && root.__ganLive;
  if (!state) return;
  for (const cell of state.cells.values()) {
    cell.closed = true; // an embed still in flight releases its view when it lands (drawChart)
    if (cell.view) cell.view.finalize();
    if (cell.resize) cell.resize.disconnect();
  }
  delete root.__ganLive;
}
