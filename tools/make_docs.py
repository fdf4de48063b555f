"""Regenerate the README's pictures from the run in export/ (after `make demo`).

    python tools/make_docs.py [--run export] [--docs docs]

Writes docs/training_curves.png (from training_log.csv),
docs/evaluation_confusion.png (via `fmnist evaluate` on the test set) and, when
export/web exists, docs/web_page.png: the page in headless Chromium at 360x740
(a phone) and 1280x800, after a test image drawn as a 280x280 dark-on-white
picture was chosen through its file input.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

from fmnist_keras.system.figures import plot_training_curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("export"))
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    args = parser.parse_args()
    log = args.run / "training_log.csv"
    if not log.is_file():
        sys.exit(f"error: {log} does not exist; run `fmnist train` (or `make demo`) first")
    args.docs.mkdir(exist_ok=True)
    with log.open() as f:
        plot_training_curves(list(csv.DictReader(f)), args.docs / "training_curves.png")
    # fmnist evaluate prints its own one-line error; pass on its exit code, not a traceback.
    evaluate = [sys.executable, "-m", "fmnist_keras", "evaluate", str(args.run / "model.keras"),
                "--output", str(args.docs / "evaluation.json")]  # fmt: skip
    if (code := subprocess.run(evaluate).returncode) != 0:
        sys.exit(code)
    print(f"wrote {args.docs / 'training_curves.png'} and {args.docs / 'evaluation_confusion.png'}")
    if (args.run / "web" / "index.html").is_file():
        web_screenshots(args.run / "web", args.docs / "web_page.png")
        print(f"wrote {args.docs / 'web_page.png'}")


def web_screenshots(web: Path, target: Path) -> None:
    """The page at a phone's and a desktop's size, side by side, after choosing one picture."""
    import io
    import tempfile

    from PIL import Image

    from fmnist_keras.data.idx import load_data
    from fmnist_keras.deploy.web import big_picture, choose_picture, open_page

    shots = []
    with tempfile.TemporaryDirectory() as tmp:
        picture = big_picture(load_data().x_test[0], Path(tmp) / "boot.png")
        for width, height in ((360, 740), (1280, 800)):
            with open_page(web, viewport={"width": width, "height": height}) as (page, _):
                choose_picture(page, picture)
                shots.append(Image.open(io.BytesIO(page.screenshot(full_page=True))))
    gap = 24
    sheet = Image.new("RGB", (sum(s.width for s in shots) + gap, max(s.height for s in shots)), "white")
    sheet.paste(shots[0], (0, 0))
    sheet.paste(shots[1], (shots[0].width + gap, 0))
    sheet.save(target, optimize=True)


if __name__ == "__main__":
    main()
