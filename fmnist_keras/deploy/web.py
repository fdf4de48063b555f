"""`fmnist export --target web`: a self-contained page that classifies pictures in the browser
with the MediaPipe file (MediaPipe Tasks for Web, WebAssembly on the CPU), proven in a real
headless Chromium through the page's own code before it is published.

The folder holds index.html, page.js, the pinned MediaPipe Tasks for Web bundle and its
WebAssembly, and the MediaPipe model file: copied to any static host, it works as it is, and
nothing is fetched from anywhere else. The check serves the folder on 127.0.0.1, blocks and
counts every request that leaves that origin, classifies the first BROWSER_IMAGES test images
with the page's own `classifyInput` and compares them with MediaPipe's Python ImageClassifier
on the same file, then gives the page's file input BIG_PICTURES test images as 280x280
dark-on-white PNGs (the page must invert and resize them) and reads `#top1`.
"""

from __future__ import annotations

# playwright and Pillow are imported inside the functions that need them: importing this module
# (and `fmnist --help`) stays fast.
import base64
import hashlib
import json
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from fmnist_keras import output_files as out
from fmnist_keras.contract import CLASS_NAMES, SIDE
from fmnist_keras.data.pictures import MAX_PIXELS
from fmnist_keras.deploy.mediapipe import classify
from fmnist_keras.system import optional
from fmnist_keras.system.static_server import serving

PAGE_SOURCE = Path(__file__).parent / "web_page"
BUNDLE = "vision_bundle.mjs"
# FilesetResolver.forVisionTasks loads one of these pairs (SIMD where the browser has it).
WASM_FILES = ("vision_wasm_internal.js", "vision_wasm_internal.wasm",
              "vision_wasm_nosimd_internal.js", "vision_wasm_nosimd_internal.wasm")  # fmt: skip
BROWSER_IMAGES = 1_000  # test images classified in the browser (about 2 s)
MIN_AGREEMENT = 0.999  # top-1 agreement with the Python ImageClassifier on the same file
BIG_PICTURES, MIN_BIG_RIGHT = 20, 19  # 280x280 dark-on-white pictures through the file input
BIG_SCALE = 10
LOAD_TIMEOUT_MS = 120_000


def stage_web(model_bytes: bytes, metadata: dict, staged: Path) -> Path:
    """Write the page's folder into `staged`; `metadata` is the model file's own (read_metadata)."""
    web = staged / out.WEB
    (web / "wasm").mkdir(parents=True)
    runtime = optional.tasks_vision_dir()
    shutil.copyfile(runtime / BUNDLE, web / BUNDLE)
    for name in WASM_FILES:
        shutil.copyfile(runtime / "wasm" / name, web / "wasm" / name)
    (web / out.MEDIAPIPE).write_bytes(model_bytes)
    shutil.copyfile(PAGE_SOURCE / "page.js", web / "page.js")
    config = {
        "side": SIDE,
        "maxPixels": MAX_PIXELS,
        "labels": list(CLASS_NAMES),
        "model": {"file": out.MEDIAPIPE, "name": metadata["name"], "version": metadata["version"],
                  "sha256": hashlib.sha256(model_bytes).hexdigest()},  # fmt: skip
    }
    page = (PAGE_SOURCE / "index.html").read_text().replace("{{CONFIG}}", json.dumps(config).replace("</", "<\\/"))
    (web / "index.html").write_text(page)
    return web


@contextmanager
def open_page(web: Path, viewport: dict | None = None):
    """The page served on 127.0.0.1 in headless Chromium, its model loaded; yields (page, log):
    `log` collects requests that left the origin (blocked), failed responses and page errors."""
    from playwright.sync_api import sync_playwright

    log = {"outside": [], "failed": [], "errors": []}
    with serving(web) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(optional.chromium_path()),
            args=["--disable-background-networking", "--disable-component-update", "--disable-quic"],
        )
        try:
            page = browser.new_page(viewport=viewport or {"width": 1280, "height": 800})
            page.route("**/*", lambda route: _same_origin(route, url, log))
            page.on("response", lambda r: log["failed"].append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.on("pageerror", lambda error: log["errors"].append(str(error).splitlines()[0]))
            page.goto(url, timeout=LOAD_TIMEOUT_MS)
            page.wait_for_function("window.fmnist !== undefined", timeout=LOAD_TIMEOUT_MS)
            page.evaluate("window.fmnist.ready")
            yield page, log
        finally:
            browser.close()


def _same_origin(route, url: str, log: dict) -> None:
    if route.request.url.startswith(url):
        route.continue_()
    else:
        log["outside"].append(route.request.url)
        route.abort()


def verify_web(web: Path, model_bytes: bytes, ref) -> dict:
    """Run the staged page in Chromium against `ref` (an export.gate.Reference); its report row."""
    images, labels = ref.images[:BROWSER_IMAGES], ref.labels[:BROWSER_IMAGES]
    python = classify(model_bytes, images)["predicted"]
    big = [int(i) for i in np.flatnonzero(python == labels)[:BIG_PICTURES]]  # pictures the file gets right
    with tempfile.TemporaryDirectory() as tmp, open_page(web) as (page, log):
        browser = classify_in_page(page, images)
        pictures = [big_picture(images[i], Path(tmp) / f"test{i}.png") for i in big]
        answers = [choose_picture(page, path) for path in pictures]
        seen = {"browser": browser, "python": python, "version": page.context.browser.version,
                "big": [(a, CLASS_NAMES[labels[i]]) for a, i in zip(answers, big, strict=True)]}  # fmt: skip
    return _web_entry(web, seen, log)


def classify_in_page(page, images: np.ndarray) -> list[tuple[int, str, list[int]]]:
    """(index, categoryName, every class tied with it) of the top class of each image, by the
    page's own classifyInput."""
    payload = base64.b64encode(np.ascontiguousarray(images, dtype=np.uint8).tobytes()).decode()
    return [tuple(r) for r in page.evaluate(
        """([payload, side]) => {
            const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
            const results = [];
            for (let start = 0; start < bytes.length; start += side * side) {
                const all = window.fmnist.classifyInput(bytes.subarray(start, start + side * side));
                const tied = all.filter((c) => c.score === all[0].score).map((c) => c.index);
                results.push([all[0].index, all[0].name, tied]);
            }
            return results;
        }""",
        [payload, SIDE],
    )]  # fmt: skip


def choose_picture(page, path: Path) -> str:
    """Give the page's file input one picture, as a person would; the text of #top1 after it."""
    page.evaluate("document.getElementById('top1').textContent = ''")
    page.set_input_files("input[type=file]", str(path))
    page.wait_for_function("!['', '…'].includes(document.getElementById('top1').textContent)",
                           timeout=LOAD_TIMEOUT_MS)  # fmt: skip
    return page.inner_text("#top1")


def big_picture(image: np.ndarray, path: Path) -> Path:
    """A test image as a person's picture: dark item on white, BIG_SCALE times larger."""
    from PIL import Image

    grey = np.asarray(image, dtype=np.uint8).reshape(SIDE, SIDE)
    Image.fromarray(np.kron(255 - grey, np.ones((BIG_SCALE, BIG_SCALE), dtype=np.uint8))).save(path)
    return path


def _web_entry(web: Path, seen: dict, log: dict) -> dict:
    """The report row: what the browser saw (`seen`) against the Python client, and the page's log."""
    browser, big, python = seen["browser"], seen["big"], seen["python"]
    agreement = float(np.mean(np.asarray([index for index, _, _ in browser]) == python))
    # Where the file's uint8 probabilities tie, either class is its answer: the two runtimes
    # may break the tie differently (as TFLite Micro and LiteRT may; deploy/micro.py).
    same_or_tied = float(np.mean([p in tied for (_, _, tied), p in zip(browser, python, strict=True)]))
    wrong_names = sum(name != CLASS_NAMES[index] for index, name, _ in browser)
    big_right = sum(answer == truth for answer, truth in big)
    failures = [f"the page loaded with errors: {e}" for e in log["errors"][:3]]
    failures += [f"the page asked for {what}" for what in (log["outside"] + log["failed"])[:3]]
    if not same_or_tied >= MIN_AGREEMENT:
        failures.append(f"the page agrees with the Python ImageClassifier on {same_or_tied:.1%} of "
                        f"{len(browser):,} test images (ties counted), below {MIN_AGREEMENT:.1%}")  # fmt: skip
    if wrong_names:
        failures.append(f"{wrong_names:,} results in the page carry a category name that is not their class's")
    if big_right < MIN_BIG_RIGHT:
        failures.append(f"only {big_right} of {len(big)} dark-on-white {SIDE * BIG_SCALE}-pixel pictures came "
                        f"back as their class through the page's file input (at least {MIN_BIG_RIGHT} needed)")
    return {
        "name": f"{out.WEB}/index.html",
        "format": "web page",
        "runtime": f"MediaPipe Tasks for Web {optional.TASKS_VISION_VERSION} in Chromium {seen['version']}",
        "size_bytes": sum(f.stat().st_size for f in web.rglob("*") if f.is_file()),
        "browser_images": len(browser),
        "agreement_with_python": agreement,  # the same top class
        "agreement_with_python_or_tied": same_or_tied,  # ... or one tied with it in the file's output
        "named_results": len(browser) - wrong_names,
        "requests_outside_origin": len(log["outside"]),
        "big_pictures": {"right": big_right, "of": len(big), "side": SIDE * BIG_SCALE},
        "failures": failures,
    }
