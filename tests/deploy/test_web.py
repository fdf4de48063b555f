"""`--target web` and `fmnist serve`: the page, run in a real headless Chromium through its own code."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fmnist_keras import output_files as out
from fmnist_keras.cli import app
from fmnist_keras.contract import CLASS_NAMES, SIDE
from fmnist_keras.data.pictures import load_image
from fmnist_keras.deploy.web import BROWSER_IMAGES, MIN_AGREEMENT, open_page, verify_web
from fmnist_keras.export.gate import Reference
from fmnist_keras.system import optional

runner = CliRunner()
CHECKOUT = Path(__file__).resolve().parents[2]


@pytest.fixture
def web_export(demo_export):
    return demo_export[0]


@pytest.mark.slow
def test_the_web_export_is_verified_in_chromium_and_published_whole(web_export):
    report = json.loads((web_export / out.REPORT_JSON).read_text())
    web = report["web"]
    assert web["failures"] == [] and report["passed"]
    assert web["browser_images"] == BROWSER_IMAGES and web["named_results"] == BROWSER_IMAGES
    assert web["agreement_with_python_or_tied"] >= MIN_AGREEMENT
    assert web["requests_outside_origin"] == 0
    assert web["big_pictures"]["right"] >= 19 and web["big_pictures"]["side"] == 10 * SIDE
    assert "--target web" in report["command"] and "--target mediapipe" not in report["command"]
    folder = web_export / out.WEB
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert names == ["index.html", out.MEDIAPIPE, "page.js", "vision_bundle.mjs", "wasm/vision_wasm_internal.js",
                     "wasm/vision_wasm_internal.wasm", "wasm/vision_wasm_nosimd_internal.js",
                     "wasm/vision_wasm_nosimd_internal.wasm"]  # fmt: skip
    # The page's model is the very MediaPipe file the Python client verified.
    assert (folder / out.MEDIAPIPE).read_bytes() == (web_export / out.MEDIAPIPE).read_bytes()
    page = (folder / "index.html").read_text()
    assert len(re.findall(r'<input[^>]*type="?file', page)) == 1 and 'id="top1"' in page
    assert "http://" not in page and "https://" not in page  # nothing from elsewhere


def _pictures(fmnist, folder: Path) -> list[Path]:
    """Pictures as people have them: light and dark backgrounds, non-square, RGBA, a JPEG."""
    boot, shirt = fmnist.x_test[0], fmnist.x_test[1]
    big = np.kron(255 - boot, np.ones((9, 9), dtype=np.uint8))  # dark on white, 252x252
    pictures = {
        "dark_on_white.png": Image.fromarray(big),
        "light_on_black_wide.png": Image.fromarray(np.kron(shirt, np.ones((5, 11), dtype=np.uint8))),
        "tall_rgb.png": Image.fromarray(np.stack([big[:, 40:200], big[:, 40:200] // 2, big[:, 40:200]], -1)),
        "tiny.png": Image.fromarray(boot[5:20, 3:25]),
    }
    rgba = np.zeros((150, 90, 4), dtype=np.uint8)
    rgba[..., :3] = np.kron(255 - shirt, np.ones((6, 4), dtype=np.uint8))[:150, :90, None]
    rgba[..., 3] = np.linspace(0, 255, 90, dtype=np.uint8)[None, :]  # transparent to opaque, left to right
    pictures["rgba_fading.png"] = Image.fromarray(rgba, "RGBA")
    pictures["photo.jpg"] = Image.fromarray(np.stack([big, big, 255 - big // 3], -1))
    paths = []
    for name, image in pictures.items():
        image.save(folder / name, quality=95) if name.endswith(".jpg") else image.save(folder / name)
        paths.append(folder / name)
    return paths


@pytest.mark.slow
def test_the_page_prepares_pictures_as_predict_does(web_export, fmnist, tmp_path):
    # Pillow's arithmetic written again in JavaScript: within one grey level of Python on every
    # pixel (the browser's own decoder and canvas may round a semi-transparent or JPEG pixel
    # differently from Pillow's by one level).
    with open_page(web_export / out.WEB) as (page, _):
        for path in _pictures(fmnist, tmp_path):
            payload = list(path.read_bytes())
            seen = page.evaluate(
                "async (bytes) => Array.from((await window.fmnist.prepareBlob(new Blob([new Uint8Array(bytes)])))"
                ".input)",
                payload,
            )
            ours = np.asarray(seen, dtype=np.int16).reshape(SIDE, SIDE)
            python = load_image(path).astype(np.int16)
            assert np.abs(ours - python).max() <= 1, (path.name, np.abs(ours - python).max())


@pytest.mark.slow
def test_the_page_fits_a_phone_and_a_desktop_screen(web_export, tmp_path):
    picture = tmp_path / "boot.png"
    Image.fromarray(np.full((200, 120), 255, dtype=np.uint8)).save(picture)
    for width, height in ((360, 740), (1280, 800)):
        with open_page(web_export / out.WEB, viewport={"width": width, "height": height}) as (page, log):
            page.set_input_files("input[type=file]", str(picture))
            page.wait_for_function("document.getElementById('top1').textContent.length > 1")
            assert page.inner_text("#top1") in CLASS_NAMES
            assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
            assert page.is_visible("label[for=picture]") and page.is_visible("#seen")
            shot = page.screenshot(full_page=True)
            assert Image.open(io.BytesIO(shot)).size[0] == width
            assert log == {"outside": [], "failed": [], "errors": []}


@pytest.mark.slow
def test_a_page_that_calls_home_fails_the_check(web_export, fmnist, tmp_path):
    web = tmp_path / "web"
    subprocess.run(["cp", "-r", str(web_export / out.WEB), str(web)], check=True)
    page = web / "page.js"
    page.write_text(page.read_text() + '\nfetch("https://metrics.invalid/collect").catch(() => {});\n')
    labels = fmnist.y_test.astype(np.int64)
    ref = Reference(fmnist.x_test, labels, np.eye(10, dtype=np.float32)[labels], None)
    entry = verify_web(web, (web / out.MEDIAPIPE).read_bytes(), ref)
    assert entry["requests_outside_origin"] == 1
    assert any("the page asked for https://metrics.invalid/collect" in f for f in entry["failures"])


def test_the_pinned_web_runtime_is_the_one_package_json_installs():
    package = json.loads((CHECKOUT / "package.json").read_text())
    assert package["dependencies"]["@mediapipe/tasks-vision"] == optional.TASKS_VISION_VERSION


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"FMNIST_CHROMIUM": "/nonexistent/chromium"}, "--target web needs Chromium, which is not installed"),
        ({"FMNIST_TASKS_VISION": "OLD"}, "was verified with MediaPipe Tasks for Web 1.1.0, but 0.10.0 is installed"),
    ],
)
def test_a_missing_web_runtime_is_one_line_before_any_work(env, expected, tmp_path):
    if env.get("FMNIST_TASKS_VISION") == "OLD":
        (tmp_path / "package.json").write_text('{"version": "0.10.0"}')
        env = {"FMNIST_TASKS_VISION": str(tmp_path)}
    command = [sys.executable, "-m", "fmnist_keras", "export", "--model", str(tmp_path / "never-read.keras"),
               "--quantize", "int8", "--target", "web", "--output", str(tmp_path / "out")]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)
    assert time.monotonic() - started < 10
    assert done.returncode == 2 and expected in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_serve_serves_the_page_with_the_types_browsers_need_and_stops_on_ctrl_c(tmp_path):
    (tmp_path / "index.html").write_text("<!doctype html><p>hi</p>")
    (tmp_path / "page.js").write_text("export {};")
    (tmp_path / "wasm").mkdir()
    (tmp_path / "wasm" / "a.wasm").write_bytes(b"\0asm")
    server = subprocess.Popen([sys.executable, "-m", "fmnist_keras", "serve", str(tmp_path), "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        line = server.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        types = {name: urllib.request.urlopen(url + name).headers["Content-Type"]
                 for name in ("index.html", "page.js", "wasm/a.wasm")}  # fmt: skip
        assert types == {"index.html": "text/html", "page.js": "text/javascript", "wasm/a.wasm": "application/wasm"}
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url + "wasm/")  # no folder listings
    finally:
        server.send_signal(signal.SIGINT)
        stdout, stderr = server.communicate(timeout=10)
    assert server.returncode == 0 and "stopped" in stdout and stderr == ""


def test_serve_warns_for_an_address_others_can_reach_and_refuses_a_folder_without_a_page(tmp_path):
    result = runner.invoke(app, ["serve", str(tmp_path)])
    assert result.exit_code == 2 and "holds no index.html" in result.output
    (tmp_path / "index.html").write_text("<p>hi</p>")
    command = [sys.executable, "-m", "fmnist_keras", "serve", str(tmp_path), "--port", "0", "--host", "0.0.0.0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().startswith("warning: listening on 0.0.0.0")
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=10)
