// The page's one code path: a picture -> the model's grey input -> MediaPipe's ImageClassifier.
//
// The preparation is `fmnist predict`'s (fmnist_keras/data/pictures.py), in Pillow's own integer
// arithmetic so that both give the same pixels: alpha composited onto white, grayscale
// (ITU-R BT.601 luma), inverted when the border is light, fitted into the input square keeping
// the aspect ratio (Pillow's BOX resampling) and centred on black. Nothing leaves the page:
// the model, the runtime and its WebAssembly come from this page's own folder.

import { FilesetResolver, ImageClassifier } from "./vision_bundle.mjs";

const config = JSON.parse(document.getElementById("fmnist-config").textContent);
const SIDE = config.side; // the model's input side (fmnist_keras/contract.py)
const MAX_PIXELS = config.maxPixels; // larger pictures are refused unread, as in `fmnist predict`

// --- Pillow's arithmetic --------------------------------------------------------------------

// Image.alpha_composite onto opaque white (AlphaComposite.c, 7 bits of precision).
function overWhite(value, alpha) {
  if (alpha === 0) return 255;
  const coef1 = alpha * 128; // alpha*255*255*128 / (255*255), exact
  const coef2 = 255 * 128 - coef1;
  const tmp = value * coef1 + 255 * coef2 + (0x80 << 7);
  return Math.floor((Math.floor(tmp / 256) + tmp) / 256) >> 7;
}

// Image.convert("L"): (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
function luma(r, g, b) {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >>> 16;
}

// Python's round(): halves go to the even neighbour.
function roundHalfEven(x) {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

const PRECISION_BITS = 32 - 8 - 2; // Resample.c, 8 bits per channel
const ONE = 2 ** PRECISION_BITS;

// precompute_coeffs + normalize_coeffs_8bpc for the box filter (support 0.5).
function boxCoefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1.0);
  const support = 0.5 * filterScale;
  const kSize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * kSize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    const weights = [];
    let total = 0.0;
    for (let x = 0; x < xmax; x++) {
      const t = (x + xmin - center + 0.5) / filterScale;
      const w = t > -0.5 && t <= 0.5 ? 1.0 : 0.0;
      weights.push(w);
      total += w;
    }
    for (let x = 0; x < xmax; x++) {
      const k = total !== 0.0 ? weights[x] / total : weights[x];
      kk[xx * kSize + x] = Math.trunc(k < 0 ? -0.5 + k * ONE : 0.5 + k * ONE);
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { kSize, bounds, kk };
}

function clip8(sum) {
  if (sum >= ONE * 256) return 255;
  if (sum <= 0) return 0;
  return Math.floor(sum / ONE);
}

// Image.resize(size, Image.Resampling.BOX) of one 8-bit channel: horizontal pass, then vertical.
function resizeBox(grey, width, height, outWidth, outHeight) {
  let src = grey;
  let w = width;
  if (outWidth !== width) {
    const { kSize, bounds, kk } = boxCoefficients(width, outWidth);
    const tmp = new Uint8Array(outWidth * height);
    for (let y = 0; y < height; y++) {
      for (let xx = 0; xx < outWidth; xx++) {
        const xmin = bounds[2 * xx], xmax = bounds[2 * xx + 1];
        let sum = ONE / 2;
        for (let x = 0; x < xmax; x++) sum += src[y * w + x + xmin] * kk[xx * kSize + x];
        tmp[y * outWidth + xx] = clip8(sum);
      }
    }
    src = tmp;
    w = outWidth;
  }
  if (outHeight === height) return src;
  const { kSize, bounds, kk } = boxCoefficients(height, outHeight);
  const out = new Uint8Array(w * outHeight);
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = bounds[2 * yy], ymax = bounds[2 * yy + 1];
    for (let x = 0; x < w; x++) {
      let sum = ONE / 2;
      for (let y = 0; y < ymax; y++) sum += src[(y + ymin) * w + x] * kk[yy * kSize + y];
      out[yy * w + x] = clip8(sum);
    }
  }
  return out;
}

// --- The preparation ------------------------------------------------------------------------

async function decode(blob) {
  // EXIF orientation applied (a phone photo upright), no colour-space conversion (Pillow does none).
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: "from-image", colorSpaceConversion: "none",
                                             premultiplyAlpha: "none" });
  } catch {
    throw new Error("this file is not a picture the browser can read (try a JPEG or PNG)");
  }
  const { width, height } = bitmap;
  if (width * height > MAX_PIXELS) {
    bitmap.close();
    throw new Error(`${width}x${height} is over ${MAX_PIXELS / 1e6} megapixels; choose a smaller picture`);
  }
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  return { rgba: context.getImageData(0, 0, width, height).data, width, height };
}

function greyOf(rgba, width, height) {
  const grey = new Uint8Array(width * height);
  for (let i = 0; i < grey.length; i++) {
    const a = rgba[4 * i + 3];
    const [r, g, b] = a === 255 ? [rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]]
      : [overWhite(rgba[4 * i], a), overWhite(rgba[4 * i + 1], a), overWhite(rgba[4 * i + 2], a)];
    grey[i] = luma(r, g, b);
  }
  return grey;
}

// Dark-on-light picture? The mean of the outermost ring of pixels, as data/pictures.py judges it.
function lightBorder(grey, width, height) {
  let sum = 0, count = 0;
  for (let x = 0; x < width; x++) { sum += grey[x] + grey[(height - 1) * width + x]; count += 2; }
  for (let y = 0; y < height; y++) { sum += grey[y * width] + grey[y * width + width - 1]; count += 2; }
  return sum / count > 127.5;
}

function fitToInput(grey, width, height) {
  const scale = SIDE / Math.max(height, width);
  const outWidth = Math.max(1, roundHalfEven(width * scale));
  const outHeight = Math.max(1, roundHalfEven(height * scale));
  const resized = resizeBox(grey, width, height, outWidth, outHeight);
  const input = new Uint8Array(SIDE * SIDE); // black
  const top = Math.floor((SIDE - outHeight) / 2), left = Math.floor((SIDE - outWidth) / 2);
  for (let y = 0; y < outHeight; y++) {
    for (let x = 0; x < outWidth; x++) input[(top + y) * SIDE + left + x] = resized[y * outWidth + x];
  }
  return input;
}

// A picture file -> the model's grey input (SIDE*SIDE bytes), as `fmnist predict` prepares it.
export async function prepareBlob(blob) {
  const { rgba, width, height } = await decode(blob);
  let grey = greyOf(rgba, width, height);
  const inverted = lightBorder(grey, width, height);
  if (inverted) grey = grey.map((v) => 255 - v);
  return { input: fitToInput(grey, width, height), inverted, width, height };
}

// --- The model ------------------------------------------------------------------------------

let classifier;

export const ready = (async () => {
  const files = await FilesetResolver.forVisionTasks("./wasm");
  const model = new Uint8Array(await (await fetch(`./${config.model.file}`)).arrayBuffer());
  classifier = await ImageClassifier.createFromOptions(files, {
    baseOptions: { modelAssetBuffer: model, delegate: "CPU" },
    maxResults: config.labels.length,
  });
})();

// The model's grey input -> every class, most probable first: [{index, name, score}].
export function classifyInput(input) {
  const rgba = new Uint8ClampedArray(SIDE * SIDE * 4);
  for (let i = 0; i < input.length; i++) {
    rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = input[i];
    rgba[4 * i + 3] = 255;
  }
  const result = classifier.classify(new ImageData(rgba, SIDE, SIDE));
  return result.classifications[0].categories.map((c) => ({ index: c.index, name: c.categoryName, score: c.score }));
}

// --- The page -------------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

function show(input, categories) {
  const seen = $("seen").getContext("2d");
  const pixels = seen.createImageData(SIDE, SIDE);
  for (let i = 0; i < input.length; i++) {
    pixels.data[4 * i] = pixels.data[4 * i + 1] = pixels.data[4 * i + 2] = input[i];
    pixels.data[4 * i + 3] = 255;
  }
  seen.putImageData(pixels, 0, 0);
  $("top3").replaceChildren(...categories.slice(0, 3).map((c) => {
    const item = document.createElement("li");
    const percent = (100 * c.score).toFixed(1);
    item.innerHTML = `<div class="row"><span></span><span>${percent} %</span></div>`
      + `<div class="bar" style="width: ${Math.max(1, 100 * c.score)}%"></div>`;
    item.querySelector("span").textContent = c.name;
    return item;
  }));
  $("top1").textContent = categories[0].name;
}

async function choose(file) {
  if (!file) return;
  $("status").textContent = "Classifying…";
  $("status").classList.remove("error");
  $("top1").textContent = "…";
  const preview = $("preview");
  URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.style.display = "block";
  try {
    const prepared = await prepareBlob(file);
    await ready;
    show(prepared.input, classifyInput(prepared.input));
    $("status").textContent = `${prepared.width}×${prepared.height} picture`
      + (prepared.inverted ? ", inverted (light background)" : "") + `, fitted into ${SIDE}×${SIDE}.`;
  } catch (error) {
    $("top1").textContent = "?";
    $("status").textContent = error.message;
    $("status").classList.add("error");
  }
}

$("picture").addEventListener("change", (event) => choose(event.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  choose(event.dataTransfer.files[0]);
});

ready.then(() => {
  const m = config.model;
  $("model").textContent = `${m.name}, version ${m.version}, ${m.file} (SHA-256 ${m.sha256.slice(0, 12)}…)`;
}, (error) => {
  $("model").textContent = `The model could not be loaded: ${error.message || error}`;
  $("model").classList.add("error");
});

// For scripts and for fmnist's own browser check: the very functions the page runs.
window.fmnist = { ready, prepareBlob, classifyInput, config };
