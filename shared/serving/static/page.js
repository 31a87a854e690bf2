// The serve page: choose or drop images, see each one's top classes as bars, from the server (POST /predict) or
// from the model's ONNX run in this page by onnxruntime-web. Both decode and resize as training does (Pillow's
// bilinear resize with antialiasing, reimplemented below), so both give the same answer. The pixels are exact for
// images at the model's size and for resizes along one axis; along both, Pillow 13 sometimes runs the vertical
// pass first, and the 8-bit rounding between the passes can then move a pixel by 1.
// Test hooks: results go in #predictions, one .prediction per image with data-image (the file's name), one .row per
// class with data-label and data-probability.

const TOP = 5;
const $ = (id) => document.getElementById(id);
let config = null;
let session = null;  // the browser runtime's onnxruntime-web session, made on first use

function token() { return sessionStorage.getItem("cnnlab-token") || ""; }
function headers() { return token() ? { Authorization: `Bearer ${token()}` } : {}; }

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  if (response.status === 401) {
    $("token-box").hidden = false;
    throw new Error("this server needs its token: type it in the Token box, then choose the images again");
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (ignored) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function loadConfig() {
  config = await (await api("/page/config")).json();
  $("model").textContent = `${config.name}, served by cnnlab_${config.framework} in ${config.runtime}: ` +
    `${config.classes.length} classes, ${config.image_size} px input. ${config.description}`;
  const browser = $("runtime").querySelector('option[value="browser"]');
  const reason = !config.onnx ? `no ONNX file: ${config.no_onnx}` : config.browser_runtime;
  if (reason) {
    browser.disabled = true;
    browser.textContent = `browser: unavailable (${reason})`;
    $("runtime-note").textContent = reason;
  }
}

// --- Decoding, as shared.data.image_folder.decode_image does it -------------------------------------------------
// Pillow's Image.resize(BILINEAR) on RGB: a separable triangle filter widened by the scale (antialiasing), its
// weights in 22-bit fixed point, the horizontal pass first and rounded to 8 bits, then the vertical pass.
const PRECISION_BITS = 22;

function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1.0);
  const support = 1.0 * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const weights = new Float64Array(outSize * ksize);
  const bounds = new Int32Array(outSize * 2);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let total = 0.0;
    const row = new Float64Array(xmax);
    for (let x = 0; x < xmax; x++) {
      const distance = Math.abs((x + xmin - center + 0.5) / filterScale);
      row[x] = distance < 1.0 ? 1.0 - distance : 0.0;
      total += row[x];
    }
    for (let x = 0; x < xmax; x++) {
      const value = total !== 0.0 ? row[x] / total : row[x];
      weights[xx * ksize + x] = value < 0 ? Math.trunc(-0.5 + value * (1 << PRECISION_BITS))
                                          : Math.trunc(0.5 + value * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, weights, bounds };
}

function clip8(sum) { return Math.min(255, Math.max(0, Math.floor(sum / (1 << PRECISION_BITS)))); }

function pillowResize(rgba, width, height, size) {
  const horizontal = coefficients(width, size);
  const vertical = coefficients(height, size);
  const first = vertical.bounds[0];
  const last = vertical.bounds[size * 2 - 2] + vertical.bounds[size * 2 - 1];
  let source = rgba, sourceWidth = width, rowOffset = 0, rows = height, channels = 4;
  if (size !== width) {  // the horizontal pass, over the rows the vertical pass will read
    rows = last - first;
    const temp = new Uint8Array(size * rows * 3);
    for (let y = 0; y < rows; y++) {
      for (let xx = 0; xx < size; xx++) {
        const xmin = horizontal.bounds[xx * 2], xmax = horizontal.bounds[xx * 2 + 1];
        for (let c = 0; c < 3; c++) {
          let sum = 1 << (PRECISION_BITS - 1);
          for (let x = 0; x < xmax; x++) {
            sum += rgba[((y + first) * width + x + xmin) * 4 + c] * horizontal.weights[xx * horizontal.ksize + x];
          }
          temp[(y * size + xx) * 3 + c] = clip8(sum);
        }
      }
    }
    source = temp; sourceWidth = size; rowOffset = first; channels = 3;
  }
  const out = new Float32Array(size * size * 3);
  for (let yy = 0; yy < size; yy++) {
    const ymin = vertical.bounds[yy * 2] - rowOffset, ymax = vertical.bounds[yy * 2 + 1];
    for (let xx = 0; xx < size; xx++) {
      for (let c = 0; c < 3; c++) {
        if (size === height) {  // Pillow skips a pass whose size does not change
          out[(yy * size + xx) * 3 + c] = source[(yy * sourceWidth + xx) * channels + c];
          continue;
        }
        let sum = 1 << (PRECISION_BITS - 1);
        for (let y = 0; y < ymax; y++) {
          sum += source[((y + ymin) * sourceWidth + xx) * channels + c] * vertical.weights[yy * vertical.ksize + y];
        }
        out[(yy * size + xx) * 3 + c] = clip8(sum);
      }
    }
  }
  return out;
}

async function pixels(file) {
  // EXIF orientation applied (as ImageOps.exif_transpose does), no colour management (Pillow applies none)
  const bitmap = await createImageBitmap(file, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  const rgba = context.getImageData(0, 0, bitmap.width, bitmap.height).data;
  return pillowResize(rgba, bitmap.width, bitmap.height, config.image_size);
}

// --- The two runtimes -----------------------------------------------------------------------------------------
async function predictOnServer(files) {
  const form = new FormData();
  for (const file of files) form.append("images", file, file.name);
  return (await api(`/predict?top=${TOP}`, { method: "POST", body: form })).json();
}

async function browserSession() {
  if (session) return session;
  const ort = await import("/ort/ort.wasm.min.mjs");
  ort.env.wasm.wasmPaths = "/ort/";
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  const model = await (await api(config.onnx)).arrayBuffer();
  session = { ort, run: await ort.InferenceSession.create(model, { executionProviders: ["wasm"] }) };
  return session;
}

function softmaxTop(logits) {
  const max = Math.max(...logits);
  const exps = logits.map((value) => Math.exp(value - max));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((value, index) => ({ label: config.classes[index], index, probability: value / total }))
    .sort((a, b) => b.probability - a.probability || a.index - b.index).slice(0, TOP);
}

async function predictInBrowser(files) {
  const { ort, run } = await browserSession();
  const size = config.image_size, classes = config.classes.length;
  const batch = new Float32Array(files.length * size * size * 3);
  for (let i = 0; i < files.length; i++) batch.set(await pixels(files[i]), i * size * size * 3);
  const input = new ort.Tensor("float32", batch, [files.length, size, size, 3]);
  const output = (await run.run({ [run.inputNames[0]]: input }))[run.outputNames[0]].data;
  return files.map((file, i) => ({ image: file.name, top: softmaxTop(Array.from(output.slice(i * classes,
                                                                                      (i + 1) * classes))) }));
}

// --- Showing the answers --------------------------------------------------------------------------------------
function show(files, records, milliseconds, where) {
  const list = $("predictions");
  list.replaceChildren();
  records.forEach((record, i) => {
    const card = document.createElement("article");
    card.className = "prediction";
    card.dataset.image = record.image;
    const image = document.createElement("img");
    image.src = URL.createObjectURL(files[i]);
    image.alt = record.image;
    const body = document.createElement("div");
    const title = document.createElement("h2");
    title.textContent = record.image;
    body.append(title);
    for (const entry of record.top) {
      const row = document.createElement("div");
      row.className = "row";
      row.dataset.label = entry.label;
      row.dataset.probability = String(entry.probability);
      const label = document.createElement("span");
      label.textContent = entry.label;
      const bar = document.createElement("div");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.style.width = `${(100 * entry.probability).toFixed(1)}%`;
      bar.append(fill);
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = `${(100 * entry.probability).toFixed(1)}%`;
      row.append(label, bar, value);
      body.append(row);
    }
    card.append(image, body);
    list.append(card);
  });
  status(`${records.length} image${records.length === 1 ? "" : "s"} in ${milliseconds.toFixed(0)} ms, by ${where}`);
  list.dataset.runtime = $("runtime").value;
}

async function classify(files) {
  if (!files.length) return;
  const inBrowser = $("runtime").value === "browser";
  status(`classifying ${files.length} image${files.length === 1 ? "" : "s"}…`);
  const started = performance.now();
  try {
    const records = inBrowser ? await predictInBrowser(files) : await predictOnServer(files);
    const where = inBrowser ? `${config.name} (ONNX) in this browser, onnxruntime-web` :
      `${config.name} on the server, cnnlab_${config.framework} in ${config.runtime}`;
    show(files, records, performance.now() - started, where);
  } catch (error) {
    status(error.message, true);
  }
}

let lastFiles = [];
$("files").addEventListener("change", (event) => {
  lastFiles = [...event.target.files];
  event.target.value = "";  // choosing the same files again is a new choice
  classify(lastFiles);
});
$("runtime").addEventListener("change", () => classify(lastFiles));  // the same images, on the other runtime
$("token").addEventListener("change", (event) => {
  sessionStorage.setItem("cnnlab-token", event.target.value);
  loadConfig().then(() => status("token accepted")).catch((error) => status(error.message, true));
});
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  lastFiles = [...event.dataTransfer.files].filter((file) => file.type.startsWith("image/"));
  classify(lastFiles);
});
loadConfig().catch((error) => status(error.message, true));
