// The dicomrender viewer: studies, series (with thumbnails) and images, all through the server's
// QIDO-RS and WADO-RS rendered endpoints.  Plain JavaScript, no build step.
"use strict";
(function () {
  const API = "/dicomweb";
  const DEBOUNCE_MS = 60;
  // window.viewer: the state, readable by tests and from the browser console.
  const state = window.viewer = {
    study: null, series: null, slices: [], index: 0, window: null, preset: null, requests: [], pending: null,
  };
  const $ = (id) => document.getElementById(id);
  const img = $("image");

  function esc(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }
  function value(item, tag) {
    const element = item[tag];
    if (!element || !element.Value || !element.Value.length) return "";
    const v = element.Value[0];
    return v && typeof v === "object" ? (v.Alphabetic || "") : v;
  }
  function date(text) {
    return /^\d{8}$/.test(text) ? `${text.slice(0, 4)}-${text.slice(4, 6)}-${text.slice(6)}` : text;
  }
  function status(text) { $("status").textContent = text; }

  async function qido(path) {
    const response = await fetch(API + path, { headers: { Accept: "application/dicom+json" } });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  function select(list, li) {
    for (const other of list.children) other.classList.toggle("selected", other === li);
  }

  async function loadStudies() {
    const studies = await qido("/studies");
    const list = $("studies");
    list.innerHTML = "";
    for (const study of studies) {
      const li = document.createElement("li");
      li.dataset.study = value(study, "0020000D");
      const modalities = (study["00080061"] && study["00080061"].Value || []).join("/");
      li.innerHTML = `<div><div>${esc(value(study, "00100010") || "(no name)")} ${esc(value(study, "00100020"))}</div>` +
        `<div class="meta">${esc(date(value(study, "00080020")))} ${esc(value(study, "00081030"))} · ` +
        `${esc(modalities)} · ${esc(value(study, "00201208"))} images</div></div>`;
      li.addEventListener("click", () => openStudy(li.dataset.study, li));
      list.appendChild(li);
    }
    status(`${studies.length} studies`);
  }

  async function openStudy(uid, li) {
    select($("studies"), li);
    state.study = uid;
    const series = await qido(`/studies/${uid}/series`);
    const list = $("series");
    list.innerHTML = "";
    for (const item of series) {
      const seriesUid = value(item, "0020000E");
      const li = document.createElement("li");
      li.dataset.series = seriesUid;
      li.innerHTML = `<img class="thumb" alt="" src="${API}/studies/${uid}/series/${seriesUid}/thumbnail?accept=image/png">` +
        `<div><div>${esc(value(item, "00080060"))} ${esc(value(item, "00200011"))} ${esc(value(item, "0008103E"))}</div>` +
        `<div class="meta">${esc(value(item, "00201209"))} images</div></div>`;
      li.addEventListener("click", () => openSeries(uid, seriesUid, li));
      list.appendChild(li);
    }
    status(`${series.length} series`);
  }

  async function openSeries(study, series, li) {
    select($("series"), li);
    const instances = await qido(`/studies/${study}/series/${series}/instances?includefield=00281050,00281051`);
    const slices = [];
    for (const instance of instances) {
      const frames = Number(value(instance, "00280008")) || 1;
      const c = value(instance, "00281050"), w = value(instance, "00281051");
      const header = c !== "" && w !== "" ? [Number(c), Number(w)] : null;
      for (let f = 1; f <= frames; f++) {
        slices.push({ uid: value(instance, "00080018"), frame: frames > 1 ? f : null, header: header });
      }
    }
    Object.assign(state, { study: study, series: series, slices: slices, index: Math.floor((slices.length - 1) / 2),
                           window: null, preset: null });
    markPreset();
    show();
    $("stage").focus();
  }

  function imageUrl() {
    const slice = state.slices[state.index];
    let url = `${API}/studies/${state.study}/series/${state.series}/instances/${slice.uid}`;
    if (slice.frame) url += `/frames/${slice.frame}`;
    const query = ["accept=image/png"]; // lossless: the pixels the server rendered
    if (state.window) query.push(`window=${state.window[0]},${state.window[1]}`);
    else if (state.preset) query.push(`preset=${encodeURIComponent(state.preset)}`);
    return `${url}/rendered?${query.join("&")}`;
  }

  function show() {
    if (!state.slices.length) return;
    clearTimeout(state.pending);
    state.pending = null;
    const url = imageUrl();
    if (img.getAttribute("src") !== url) {
      state.requests.push(url);
      img.src = url;
    }
    const slice = state.slices[state.index];
    $("position").textContent = `${state.index + 1}/${state.slices.length}`;
    const w = state.window || (state.preset ? null : slice.header);
    $("window").textContent = w ? `C ${w[0]} W ${w[1]}` : (state.preset ? `preset ${state.preset}` : "");
  }

  function step(delta) {
    if (!state.slices.length) return;
    const index = Math.min(state.slices.length - 1, Math.max(0, state.index + delta));
    if (index !== state.index) {
      state.index = index;
      show();
    }
  }

  img.addEventListener("error", async () => {
    const src = img.getAttribute("src");
    if (!src) return;
    try {
      const response = await fetch(src);
      const body = await response.json();
      status(`error: ${body.detail || response.status}`);
    } catch (e) {
      status(`error loading ${src}`);
    }
  });
  img.addEventListener("load", () => status(""));

  // Mouse drag: horizontal = width, vertical = centre; requests debounced while dragging.
  let drag = null;
  $("stage").addEventListener("mousedown", (event) => {
    if (!state.slices.length) return;
    event.preventDefault();
    const slice = state.slices[state.index];
    const start = state.window || slice.header || [128, 256];
    drag = { x: event.clientX, y: event.clientY, c: start[0], w: start[1] };
  });
  window.addEventListener("mousemove", (event) => {
    if (!drag) return;
    const scale = Math.max(drag.w, 64) / 256;
    const w = Math.max(1, Math.round(drag.w + (event.clientX - drag.x) * scale));
    const c = Math.round(drag.c + (event.clientY - drag.y) * scale);
    state.window = [c, w];
    state.preset = null;
    markPreset();
    $("window").textContent = `C ${c} W ${w}`;
    clearTimeout(state.pending);
    state.pending = setTimeout(show, DEBOUNCE_MS);
  });
  window.addEventListener("mouseup", () => {
    if (!drag) return;
    drag = null;
    if (state.pending !== null) show();
  });

  $("stage").addEventListener("wheel", (event) => {
    event.preventDefault();
    step(event.deltaY > 0 ? 1 : -1);
  }, { passive: false });
  document.addEventListener("keydown", (event) => {
    const moves = { ArrowDown: 1, ArrowRight: 1, PageDown: 10, ArrowUp: -1, ArrowLeft: -1, PageUp: -10 };
    if (event.key in moves) {
      event.preventDefault();
      step(moves[event.key]);
    }
  });

  function markPreset() {
    for (const button of $("presets").children) button.classList.toggle("active", button.dataset.preset === state.preset);
  }

  async function loadPresets() {
    const response = await fetch("/api/presets");
    const presets = await response.json();
    for (const preset of presets) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.preset = preset.name;
      button.textContent = preset.name;
      button.title = preset.description;
      button.addEventListener("click", () => {
        state.preset = preset.name;
        state.window = null;
        markPreset();
        show();
      });
      $("presets").appendChild(button);
    }
  }
  $("reset").addEventListener("click", () => {
    state.preset = null;
    state.window = null;
    markPreset();
    show();
  });

  loadPresets().catch((e) => status(String(e)));
  loadStudies().catch((e) => status(String(e)));
}());
