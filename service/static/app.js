// Chest X-ray classifier page: an example client of the public API (GET /models, POST /explain).
// Plain JavaScript, no build step, no external resources. NOT for diagnostic use.
"use strict";

(() => {
  const DEFAULT_CLASSES = ["covid", "normal", "pneumonia"];
  const FALLBACK_DISCLAIMER =
    "Research software. NOT a medical device and NOT for diagnostic use: the output must not be " +
    "used to diagnose, treat or triage any patient.";

  const byId = (id) => document.getElementById(id);
  const el = {
    file: byId("file"),
    drop: byId("drop"),
    fileName: byId("file-name"),
    viewer: byId("viewer"),
    placeholder: byId("viewer-placeholder"),
    base: byId("base"),
    heat: byId("heat"),
    spinner: byId("spinner"),
    spinnerText: byId("spinner-text"),
    viewerNote: byId("viewer-note"),
    controls: byId("controls"),
    showHeat: byId("show-heat"),
    opacity: byId("opacity"),
    opacityValue: byId("opacity-value"),
    target: byId("target"),
    results: byId("results"),
    status: byId("status"),
    error: byId("error"),
    errorTitle: byId("error-title"),
    errorDetail: byId("error-detail"),
    errorKept: byId("error-kept"),
    label: byId("label"),
    bars: byId("bars"),
    metaTarget: byId("meta-target"),
    metaModel: byId("meta-model"),
    metaInput: byId("meta-input"),
    metaTime: byId("meta-time"),
    modelInfo: byId("model-info"),
    modelSelect: byId("model-select"),
    modelChoice: byId("model"),
    download: byId("download"),
    keyForm: byId("key-form"),
    keyWhy: byId("key-why"),
    keyInput: byId("api-key"),
  };

  const state = {
    classes: DEFAULT_CLASSES.slice(),
    model: null, // {name, version} from GET /models or the last response
    models: [], // GET /models: every served model ({name, version, classes, default, ...})
    chosen: null, // the model name sent with each request (the selector), null: the default
    disclaimer: FALLBACK_DISCLAIMER,
    // The analysis on screen: {file, base, result, heat: canvas}. base is {url, img, fromServer,
    // recovered}: the browser's own decoding of the file, or (DICOM) a picture from the API.
    current: null,
    seq: 0, // increases with every request; answers to older requests are ignored
    controller: null,
    busy: false,
    awaitingKey: null, // {file, target}: the analysis to repeat once a key is entered
  };

  // ---- API key --------------------------------------------------------------------------------
  // Only when the service answers 401: the key lives in this tab's sessionStorage (gone when the
  // tab closes, never in localStorage or a cookie) and goes out as the Bearer header.

  const KEY_STORAGE = "cxr-api-key";

  function storedKey() {
    try {
      return sessionStorage.getItem(KEY_STORAGE);
    } catch {
      return null; // storage disabled: ask again each time
    }
  }

  function authHeaders() {
    const key = storedKey();
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  function askForKey(rejected) {
    if (rejected) {
      try {
        sessionStorage.removeItem(KEY_STORAGE);
      } catch {
        // nothing stored
      }
    }
    el.keyWhy.textContent = rejected
      ? "The service did not accept this API key. Enter another one."
      : "This service needs an API key.";
    el.keyForm.hidden = false;
    el.keyInput.focus();
  }

  // ---- helpers ------------------------------------------------------------------------------

  const percent = (p) => `${(p * 100).toFixed(1)}%`;

  function loadImage(src) {
    const img = new Image();
    img.src = src;
    return img.decode().then(() => {
      if (!img.naturalWidth) throw new Error("empty image");
      return img;
    });
  }

  /** The browser's own decoding of the file, or null (DICOM, or a type it cannot show). */
  async function previewOf(file) {
    const url = URL.createObjectURL(file);
    try {
      return { url, img: await loadImage(url), fromServer: false };
    } catch {
      URL.revokeObjectURL(url);
      return null;
    }
  }

  function releaseBase(base) {
    if (base && !base.fromServer && base.url.startsWith("blob:")) URL.revokeObjectURL(base.url);
  }

  /** MATLAB/OpenCV "jet" colour map for v in 0..1, as [r, g, b] 0..255. */
  function jet(v) {
    const channel = (x) => Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * v - x))));
    return [channel(3), channel(2), channel(1)];
  }
  const JET = Array.from({ length: 256 }, (_, i) => jet(i / 255));

  function pixelsOf(img) {
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(img, 0, 0);
    return { canvas, ctx, pixels: ctx.getImageData(0, 0, canvas.width, canvas.height) };
  }

  /** The API's 8-bit gray heatmap PNG -> {gray: values 0..255, canvas: the colour heatmap}. */
  async function decodeHeatmap(pngBase64) {
    const img = await loadImage(`data:image/png;base64,${pngBase64}`);
    const { canvas, ctx, pixels } = pixelsOf(img);
    const data = pixels.data;
    const gray = new Uint8Array(data.length / 4);
    for (let i = 0, p = 0; i < data.length; i += 4, p += 1) {
      gray[p] = data[i];
      const [r, g, b] = JET[data[i]];
      data[i] = r;
      data[i + 1] = g;
      data[i + 2] = b;
      data[i + 3] = 255;
    }
    ctx.putImageData(pixels, 0, 0);
    return { gray, canvas };
  }

  /**
   * The plain gray picture behind the API's overlay, for files the browser cannot show (DICOM).
   * The overlay is (1 - a) * gray + a * jet(heatmap) per channel, with the service's blend
   * weight a: channel differences cancel the gray and give a, then each channel gives the gray.
   * Returns null when the overlay is not such a blend (then the overlay itself is shown).
   */
  function recoverPlain(overlayImg, heatGray) {
    const { canvas, ctx, pixels } = pixelsOf(overlayImg);
    const o = pixels.data;
    if (o.length / 4 !== heatGray.length) return null;
    let num = 0;
    let den = 0;
    for (let p = 0, i = 0; p < heatGray.length; p += 1, i += 4) {
      const j = JET[heatGray[p]];
      const jrb = j[0] - j[2];
      const jgb = j[1] - j[2];
      num += (o[i] - o[i + 2]) * jrb + (o[i + 1] - o[i + 2]) * jgb;
      den += jrb * jrb + jgb * jgb;
    }
    const a = den > 0 ? num / den : NaN;
    if (!(a >= -0.01 && a < 0.95)) return null;
    const alpha = Math.max(0, a);
    let residual = 0;
    for (let p = 0, i = 0; p < heatGray.length; p += 1, i += 4) {
      const j = JET[heatGray[p]];
      const r = (o[i] - alpha * j[0]) / (1 - alpha);
      const g = (o[i + 1] - alpha * j[1]) / (1 - alpha);
      const b = (o[i + 2] - alpha * j[2]) / (1 - alpha);
      const value = (r + g + b) / 3;
      residual += Math.max(Math.abs(r - value), Math.abs(g - value), Math.abs(b - value));
      o[i] = o[i + 1] = o[i + 2] = value; // the clamped array rounds and clips
      o[i + 3] = 255;
    }
    if (residual / heatGray.length > 4) return null;
    ctx.putImageData(pixels, 0, 0);
    return canvas.toDataURL("image/png");
  }

  /** For a file the browser cannot show: the plain picture recovered from the API's PNGs. */
  async function baseFromServer(gradcam, heatGray) {
    const overlayUrl = `data:image/png;base64,${gradcam.overlay_png_base64}`;
    const overlay = await loadImage(overlayUrl);
    const plainUrl = recoverPlain(overlay, heatGray);
    if (plainUrl) {
      return { url: plainUrl, img: await loadImage(plainUrl), fromServer: true, recovered: true };
    }
    return { url: overlayUrl, img: overlay, fromServer: true, recovered: false };
  }

  const PLAIN_ERRORS = {
    unsupported_media_type: "This file is not a chest X-ray image we can read",
    invalid_image: "This image file is damaged or incomplete",
    unsuitable_image: "This image is not one the model is made for (a frontal chest X-ray)",
    not_a_chest_xray: "This does not look like a frontal chest X-ray, so it was not classified",
    image_too_complex: "This image needs too much memory to decode",
    decode_timeout: "This image took too long to decode",
    empty_upload: "This file is empty",
    payload_too_large: "This file is too large to upload",
    image_too_large: "This image has too many pixels",
    invalid_request: "The service did not accept the request",
    unauthorized: "This service needs a valid API key; enter it above",
    forbidden: "This API key is not allowed to do this",
    request_timeout: "The upload took too long",
    not_ready: "The model is still loading; please try again in a few seconds",
    overloaded: "The service is busy; please try again in a moment",
  };

  function describeError(status, body) {
    const code = body && body.error && body.error.code;
    const detail = (body && body.error && body.error.message) || "";
    let plain = PLAIN_ERRORS[code];
    if (!plain) {
      if (status === 413) plain = PLAIN_ERRORS.payload_too_large;
      else if (status === 415) plain = PLAIN_ERRORS.unsupported_media_type;
      else if (status === 422) plain = "The service could not process this file";
      else if (status === 503) plain = "The service is not available right now; please try again";
      else if (status >= 500) plain = "The service had an internal problem";
      else plain = "The request failed";
    }
    return { title: `${plain} (${status}).`, detail };
  }

  // ---- rendering ----------------------------------------------------------------------------

  function setStatus(text) {
    el.status.textContent = text;
  }

  /** The error takes the status line's place, so the results below do not move. */
  function showError(title, detail) {
    el.errorTitle.textContent = title;
    el.errorDetail.textContent = detail ? `Details: ${detail}` : "";
    el.errorKept.textContent = state.current
      ? `The result for ${state.current.file.name} is still shown.`
      : "";
    el.status.hidden = true;
    el.error.hidden = false;
  }

  function hideError() {
    el.error.hidden = true;
    el.status.hidden = false;
    el.errorTitle.textContent = "";
    el.errorDetail.textContent = "";
    el.errorKept.textContent = "";
  }

  function setBusy(busy, text) {
    state.busy = busy;
    el.spinner.hidden = !busy;
    el.spinnerText.textContent = text || "Analysing…";
    el.viewer.setAttribute("aria-busy", String(busy));
    el.results.classList.toggle("stale", busy && state.current !== null);
    el.target.disabled = busy || state.current === null;
    el.modelChoice.disabled = busy;
    el.download.disabled = busy || state.current === null;
  }

  function buildClassControls(classes) {
    const same =
      classes.length === state.classes.length && classes.every((c, i) => c === state.classes[i]);
    if (same && el.bars.children.length) return;
    state.classes = classes.slice();
    el.bars.replaceChildren();
    el.target.replaceChildren();
    for (const name of classes) {
      const li = document.createElement("li");
      li.dataset.class = name;
      const head = document.createElement("div");
      head.className = "bar-head";
      const label = document.createElement("span");
      label.className = "bar-name";
      label.id = `bar-name-${name}`;
      label.textContent = name;
      const value = document.createElement("span");
      value.className = "bar-value";
      value.textContent = "—";
      head.append(label, value);
      const track = document.createElement("div");
      track.className = "bar-track";
      track.setAttribute("role", "progressbar");
      track.setAttribute("aria-labelledby", label.id);
      track.setAttribute("aria-valuemin", "0");
      track.setAttribute("aria-valuemax", "100");
      const fill = document.createElement("div");
      fill.className = "bar-fill";
      track.append(fill);
      li.append(head, track);
      el.bars.append(li);

      const option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      el.target.append(option);
    }
  }

  function showModel(model) {
    if (!model) return;
    state.model = model;
    el.modelInfo.textContent = `${model.name} ${model.version}`;
  }

  function applyOpacity() {
    const value = Number(el.opacity.value) / 100;
    el.opacityValue.textContent = `${el.opacity.value}%`;
    el.heat.style.opacity = el.showHeat.checked ? String(value) : "0";
  }

  function drawHeat(source) {
    el.heat.width = source.width;
    el.heat.height = source.height;
    el.heat.getContext("2d").drawImage(source, 0, 0);
  }

  function showBase(base, name) {
    el.base.src = base.url;
    el.base.alt = base.fromServer && !base.recovered
      ? `Server rendering of ${name} with its Grad-CAM overlay`
      : `Chest X-ray ${name}`;
    el.base.hidden = false;
    el.placeholder.hidden = true;
  }

  /** Draw the analysis in ``state.current`` (also restores it after a failed request). */
  function render() {
    const cur = state.current;
    el.controls.disabled = cur === null;
    if (cur === null) {
      el.base.hidden = true;
      el.heat.hidden = true;
      el.placeholder.hidden = false;
      el.fileName.textContent = "No file chosen.";
      return;
    }
    const r = cur.result;
    el.fileName.textContent = `File: ${cur.file.name}`;
    showBase(cur.base, cur.file.name);
    drawHeat(cur.heat);
    el.heat.hidden = false;
    el.heat.setAttribute("aria-label", `Grad-CAM heatmap for the class ${r.gradcam.target}`);
    applyOpacity();
    el.viewerNote.textContent = !cur.base.fromServer
      ? ""
      : cur.base.recovered
        ? "Your browser cannot display this file type (e.g. DICOM) itself: the picture is " +
          "recovered from the service's Grad-CAM overlay, at the heatmap's resolution."
        : "Your browser cannot display this file type (e.g. DICOM) itself: the picture is the " +
          "service's overlay, which already has the heatmap blended in.";

    buildClassControls(Object.keys(r.probabilities));
    const top = r.label;
    for (const li of el.bars.children) {
      const p = r.probabilities[li.dataset.class] ?? 0;
      li.querySelector(".bar-value").textContent = percent(p);
      li.querySelector(".bar-fill").style.width = `${(p * 100).toFixed(2)}%`;
      const track = li.querySelector(".bar-track");
      track.setAttribute("aria-valuenow", (p * 100).toFixed(1));
      track.setAttribute("aria-valuetext", percent(p));
      li.classList.toggle("is-top", li.dataset.class === top);
    }
    el.label.textContent = r.label;
    el.target.value = r.gradcam.target;
    el.metaTarget.textContent = `${r.gradcam.target} (layer ${r.gradcam.layer})`;
    el.metaModel.textContent = `${r.model.name} ${r.model.version}`;
    el.metaInput.textContent =
      `${r.input.format.toUpperCase()}, ${r.input.width} × ${r.input.height} px`;
    el.metaTime.textContent =
      `${Math.round(r.timing_ms.total)} ms (model ${Math.round(r.timing_ms.inference)} ms)`;
    showModel(r.model);
    if (modelNamed(r.model.name)) {
      state.chosen = r.model.name; // a failed switch goes back with the result on screen
      el.modelChoice.value = r.model.name;
    }
    if (r.disclaimer) state.disclaimer = r.disclaimer; // used in the report
  }

  // ---- the API --------------------------------------------------------------------------------

  function modelNamed(name) {
    return state.models.find((m) => m.name === name) || null;
  }

  /** The selector: one option per served model (shown only when there is a choice). */
  function buildModelChoice(models, chosen) {
    el.modelChoice.replaceChildren();
    for (const m of models) {
      const option = document.createElement("option");
      option.value = m.name;
      option.textContent = `${m.name} ${m.version} (${m.classes.join(" / ")})`;
      el.modelChoice.append(option);
    }
    el.modelChoice.value = chosen;
    el.modelSelect.hidden = models.length < 2;
  }

  async function loadModelInfo() {
    try {
      const response = await fetch("models", { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`GET /models answered ${response.status}`);
      const info = await response.json();
      state.models = info.models;
      if (!state.chosen) state.chosen = info.default;
      buildModelChoice(info.models, state.chosen);
      const chosen = modelNamed(state.chosen);
      if (!state.current && chosen) {
        showModel({ name: chosen.name, version: chosen.version });
        buildClassControls(chosen.classes);
      }
      if (!info.models.every((m) => m.ready)) {
        if (!state.current) el.modelInfo.textContent += " (loading…)";
        setTimeout(loadModelInfo, 2000);
      }
    } catch {
      if (!state.current) el.modelInfo.textContent = "service not reachable; retrying…";
      setTimeout(loadModelInfo, 5000);
    }
  }

  /** Another model: its classes become the heatmap's choices; the image on screen is analysed
   * again by it (top class). */
  function chooseModel(name) {
    const chosen = modelNamed(name);
    if (!chosen || name === state.chosen) return;
    state.chosen = name;
    if (state.current) {
      analyse(state.current.file, null);
    } else {
      showModel({ name: chosen.name, version: chosen.version });
      buildClassControls(chosen.classes);
    }
  }

  /**
   * POST /explain for ``file`` (a new upload when ``target`` is null, else the file on screen
   * with another Grad-CAM target). The page state changes only when the answer is good.
   */
  async function analyse(file, target) {
    const seq = ++state.seq;
    if (state.controller) state.controller.abort();
    const controller = new AbortController();
    state.controller = controller;
    hideError();
    const what = target ? `Computing the heatmap for ${target}…` : `Analysing ${file.name}…`;
    setBusy(true, target ? "Computing heatmap…" : "Analysing…");
    setStatus(what);

    let preview = null;
    if (!target) {
      el.fileName.textContent = `File: ${file.name} (analysing…)`;
      preview = await previewOf(file);
      if (seq !== state.seq) return releaseBase(preview);
      if (preview) {
        showBase(preview, file.name);
        el.heat.hidden = true; // the old heatmap does not belong to the new image
      }
    }

    const form = new FormData();
    form.append("file", file, file.name || "upload");
    if (target) form.append("target", target);
    if (state.chosen) form.append("model", state.chosen);

    let response;
    let body = null;
    try {
      response = await fetch("explain", {
        method: "POST",
        body: form,
        headers: { Accept: "application/json", ...authHeaders() },
        signal: controller.signal,
      });
      body = await response.json().catch(() => null);
    } catch (err) {
      if (seq !== state.seq) return releaseBase(preview);
      return fail(
        { title: "Could not reach the service; check the connection and try again.", detail: "" },
        preview,
      );
    }
    if (seq !== state.seq) return releaseBase(preview);
    if (response.status === 401) {
      const hadKey = storedKey() !== null;
      state.awaitingKey = { file, target };
      fail(describeError(response.status, body), preview);
      return askForKey(hadKey);
    }
    if (!response.ok || !body || !body.gradcam) {
      return fail(describeError(response.status, body), preview);
    }

    let heat;
    let base = preview || (target && state.current ? state.current.base : null);
    try {
      const decoded = await decodeHeatmap(body.gradcam.heatmap_png_base64);
      heat = decoded.canvas;
      if (!base) base = await baseFromServer(body.gradcam, decoded.gray);
    } catch {
      if (seq !== state.seq) return releaseBase(preview);
      return fail({ title: "The service's answer could not be displayed.", detail: "" }, preview);
    }
    if (seq !== state.seq) return releaseBase(preview);

    if (state.current && state.current.base !== base) releaseBase(state.current.base);
    state.current = { file, base, result: body, heat };
    setBusy(false);
    render();
    const topShare = percent(body.probabilities[body.label]);
    setStatus(
      target
        ? `The heatmap now explains ${body.gradcam.target}.`
        : `Done: ${file.name}, top label ${body.label} (${topShare}).`,
    );
  }

  function fail(message, preview) {
    releaseBase(preview);
    setBusy(false);
    render(); // back to the analysis that was on screen before
    setStatus(state.current ? "" : "Choose a chest X-ray to start.");
    showError(message.title, message.detail);
  }

  // ---- report ---------------------------------------------------------------------------------

  function wrapLines(ctx, text, maxWidth) {
    const lines = [];
    let line = "";
    for (const word of text.split(/\s+/)) {
      const attempt = line ? `${line} ${word}` : word;
      if (ctx.measureText(attempt).width > maxWidth && line) {
        lines.push(line);
        line = word;
      } else {
        line = attempt;
      }
    }
    if (line) lines.push(line);
    return lines;
  }

  function wrapText(ctx, text, x, y, maxWidth, lineHeight) {
    for (const line of wrapLines(ctx, text, maxWidth)) {
      ctx.fillText(line, x, y);
      y += lineHeight;
    }
    return y;
  }

  function fitInto(ctx, source, w, h, x, y, boxW, boxH) {
    const scale = Math.min(boxW / w, boxH / h);
    const dw = w * scale;
    const dh = h * scale;
    const dx = x + (boxW - dw) / 2;
    const dy = y + (boxH - dh) / 2;
    ctx.drawImage(source, dx, dy, dw, dh);
    return [dx, dy, dw, dh];
  }

  function timestamp(date) {
    const pad = (n) => String(n).padStart(2, "0");
    const offset = -date.getTimezoneOffset();
    const sign = offset >= 0 ? "+" : "-";
    const tz = `UTC${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
    const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
    const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
    const compact = `${day.replaceAll("-", "")}-${time.replaceAll(":", "")}`;
    return { text: `${day} ${time} (${tz})`, compact };
  }

  function buildReport(cur, date) {
    const r = cur.result;
    const W = 1200;
    const P = 40;
    const box = (W - 3 * P) / 2;
    const font = (size, weight = 400) => `${weight} ${size}px system-ui, "DejaVu Sans", sans-serif`;
    const canvas = document.createElement("canvas");
    canvas.width = W;
    canvas.height = 1240;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, W, canvas.height);

    // Warning band.
    ctx.fillStyle = "#fff4d6";
    ctx.fillRect(0, 0, W, 56);
    ctx.fillStyle = "#d99a00";
    ctx.fillRect(0, 54, W, 3);
    ctx.fillStyle = "#1b2430";
    ctx.font = font(22, 700);
    ctx.textAlign = "center";
    ctx.fillText("NOT A MEDICAL DEVICE. NOT FOR DIAGNOSTIC USE.", W / 2, 36);
    ctx.textAlign = "left";

    ctx.font = font(28, 700);
    ctx.fillText("Chest X-ray classifier with Grad-CAM: research report", P, 104);
    ctx.font = font(17);
    ctx.fillStyle = "#5a6472";
    ctx.fillText(`${cur.file.name}  ·  ${date.text}`, P, 134);

    // Images: plain (or the server's rendering) and the overlay as on screen.
    const top = 160;
    const opacity = Number(el.opacity.value) / 100;
    const img = cur.base.img;
    // Landscape images get a shorter box (less black); portrait ones the full square.
    const boxH = Math.min(box, Math.round((box * img.naturalHeight) / img.naturalWidth));
    ctx.fillStyle = "#111111";
    ctx.fillRect(P, top, box, boxH);
    ctx.fillRect(2 * P + box, top, box, boxH);
    fitInto(ctx, img, img.naturalWidth, img.naturalHeight, P, top, box, boxH);
    const [dx, dy, dw, dh] =
      fitInto(ctx, img, img.naturalWidth, img.naturalHeight, 2 * P + box, top, box, boxH);
    ctx.globalAlpha = opacity;
    ctx.drawImage(cur.heat, dx, dy, dw, dh);
    ctx.globalAlpha = 1;
    ctx.fillStyle = "#1b2430";
    ctx.font = font(17, 600);
    const y0 = top + boxH + 28;
    const caption = !cur.base.fromServer
      ? "Image"
      : cur.base.recovered
        ? "Image (recovered from the service's overlay)"
        : "Image (the service's overlay)";
    ctx.fillText(caption, P, y0);
    const heatCaption =
      `Grad-CAM for "${r.gradcam.target}" (${r.gradcam.layer}), opacity ${Math.round(opacity * 100)}%`;
    ctx.fillText(heatCaption, 2 * P + box, y0);

    // Label and probabilities (left), model and input (right).
    let y = y0 + 56;
    ctx.font = font(20);
    ctx.fillText("Top label:", P, y);
    ctx.font = font(30, 700);
    ctx.fillText(r.label, P + 110, y + 2);
    y += 40;
    const barW = box - 170;
    for (const name of Object.keys(r.probabilities)) {
      const p = r.probabilities[name];
      ctx.font = font(19, name === r.label ? 700 : 400);
      ctx.fillStyle = "#1b2430";
      ctx.fillText(name, P, y + 16);
      ctx.fillStyle = "#e7ebf0";
      ctx.fillRect(P + 120, y, barW, 20);
      ctx.fillStyle = name === r.label ? "#1f5fbf" : "#6c8ebf";
      ctx.fillRect(P + 120, y, barW * p, 20);
      ctx.fillStyle = "#1b2430";
      ctx.fillText(percent(p), P + 130 + barW, y + 16);
      y += 36;
    }

    let ry = y0 + 56;
    const rx = 2 * P + box;
    const rows = [
      ["Model", `${r.model.name} ${r.model.version}`],
      ["Input", `${r.input.format.toUpperCase()}, ${r.input.width} × ${r.input.height} px`],
      ["Date", date.text],
      ["Produced by", `${location.origin}/explain`],
    ];
    for (const [key, value] of rows) {
      ctx.font = font(17);
      ctx.fillStyle = "#5a6472";
      ctx.fillText(key, rx, ry);
      ctx.font = font(17, 600);
      ctx.fillStyle = "#1b2430";
      ry = wrapText(ctx, value, rx + 120, ry, box - 120, 24) + 6;
    }

    // Disclaimer box.
    const by = Math.max(y, ry) + 24;
    ctx.font = font(18);
    const lines = wrapLines(ctx, state.disclaimer, W - 2 * P - 40).length;
    const bh = 52 + lines * 26;
    ctx.fillStyle = "#fdecec";
    ctx.fillRect(P, by, W - 2 * P, bh);
    ctx.strokeStyle = "#c62828";
    ctx.lineWidth = 3;
    ctx.strokeRect(P, by, W - 2 * P, bh);
    ctx.fillStyle = "#8e1b1b";
    ctx.font = font(19, 700);
    ctx.fillText("Not for diagnosis", P + 20, by + 32);
    ctx.fillStyle = "#1b2430";
    ctx.font = font(18);
    wrapText(ctx, state.disclaimer, P + 20, by + 62, W - 2 * P - 40, 26);

    // Trim the canvas to its content.
    const height = by + bh + P;
    const trimmed = document.createElement("canvas");
    trimmed.width = W;
    trimmed.height = height;
    trimmed.getContext("2d").drawImage(canvas, 0, 0);
    return trimmed;
  }

  function downloadReport() {
    const cur = state.current;
    if (!cur) return;
    const date = timestamp(new Date());
    const canvas = buildReport(cur, date);
    const stem = (cur.file.name || "xray").replace(/\.[^.]*$/, "").replace(/[^\w.-]+/g, "_");
    canvas.toBlob((blob) => {
      if (!blob) {
        showError("The report could not be created in this browser.", "");
        return;
      }
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = `cxr-report-${stem}-${date.compact}.png`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
      setStatus("Report saved as a PNG.");
    }, "image/png");
  }

  // ---- events ---------------------------------------------------------------------------------

  function startFile(file) {
    if (file) analyse(file, null);
  }

  el.file.addEventListener("change", () => {
    startFile(el.file.files[0]);
    el.file.value = ""; // choosing the same file again still triggers a change
  });

  const hasFiles = (event) =>
    event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files");
  let dragDepth = 0;
  document.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth += 1;
    el.drop.classList.add("dragging");
  });
  document.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) el.drop.classList.remove("dragging");
  });
  document.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("drop", (event) => {
    event.preventDefault(); // never let the browser navigate to a dropped file
    dragDepth = 0;
    el.drop.classList.remove("dragging");
    const files = event.dataTransfer && event.dataTransfer.files;
    if (files && files.length) startFile(files[0]);
  });
  document.addEventListener("paste", (event) => {
    const files = event.clipboardData && event.clipboardData.files;
    if (files && files.length) {
      event.preventDefault();
      startFile(files[0]);
    }
  });

  el.opacity.addEventListener("input", applyOpacity);
  el.showHeat.addEventListener("change", applyOpacity);
  el.target.addEventListener("change", () => {
    if (state.current && el.target.value !== state.current.result.gradcam.target) {
      analyse(state.current.file, el.target.value);
    }
  });
  el.download.addEventListener("click", downloadReport);
  el.modelChoice.addEventListener("change", () => chooseModel(el.modelChoice.value));
  el.keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = el.keyInput.value.trim();
    if (!key) return;
    try {
      sessionStorage.setItem(KEY_STORAGE, key);
    } catch {
      return showError("This browser does not allow storing the key for this tab.", "");
    }
    el.keyInput.value = "";
    el.keyForm.hidden = true;
    const pending = state.awaitingKey;
    state.awaitingKey = null;
    if (pending) analyse(pending.file, pending.target);
  });

  buildClassControls(DEFAULT_CLASSES);
  applyOpacity();
  render();
  loadModelInfo();
})();
