"""The optional runtimes: what each enables, which version we verified, how to install it.

An option that needs one calls `require()` before any work starts, so a missing or
unverified runtime is one line with the command that installs it (exit 2), never a
traceback after minutes of conversion. `fmnist info` lists them all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fmnist_keras.compat.mediapipe import CHECKED_ON as MEDIAPIPE_VERSION
from fmnist_keras.errors import MissingRuntime
from fmnist_keras.system.versions import installed_version

TASKS_VISION_VERSION = "1.1.0"  # MediaPipe Tasks for Web; package.json pins the same
PLAYWRIGHT_VERSION = "1.65.3"  # drives the browser check of --target web; pyproject's web extra pins it
CHROMIUM_MAJOR = "156"  # the Chromium the web page was verified in (Debian's package)
TORCH_VERSION = "2.13.0"  # the article's PyTorch loop (make bench); pyproject's bench extra pins it
CHROMIUM_ENV, TASKS_VISION_ENV = "FMNIST_CHROMIUM", "FMNIST_TASKS_VISION"
_CHECKOUT = Path(__file__).resolve().parents[2]  # the source checkout, for `pip install -e .`


def chromium_path() -> Path | None:
    """$FMNIST_CHROMIUM, else Debian's /usr/bin/chromium, else chromium on PATH."""
    named = os.environ.get(CHROMIUM_ENV) or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    found = named or shutil.which("chromium") or shutil.which("chromium-browser")
    return Path(found) if found and Path(found).exists() else None


def _chromium_version() -> str | None:
    path = chromium_path()
    if path is None:
        return None
    try:
        done = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    words = [w for w in done.stdout.split() if w[:1].isdigit()]
    return words[0] if done.returncode == 0 and words else None


def tasks_vision_dir() -> Path | None:
    """The @mediapipe/tasks-vision package: $FMNIST_TASKS_VISION, else node_modules/ in the current
    folder, else in the fmnist-keras checkout (where `make setup` runs npm ci)."""
    candidates = [os.environ.get(TASKS_VISION_ENV)] if os.environ.get(TASKS_VISION_ENV) else []
    package = "node_modules/@mediapipe/tasks-vision"
    candidates += [Path.cwd() / package, _CHECKOUT / package]
    for candidate in map(Path, candidates):
        if (candidate / "package.json").is_file():
            return candidate
    return None


def _tasks_vision_version() -> str | None:
    folder = tasks_vision_dir()
    try:
        return json.loads((folder / "package.json").read_text()).get("version") if folder else None
    except (OSError, ValueError):
        return None


def cxx_compiler() -> str | None:
    """The C++ compiler that checks the TensorFlow Lite Micro C array: c++, g++ or clang++."""
    return shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")


def _compiler_version() -> str | None:
    """The compiler's name and version, e.g. "c++ 12.2.0"."""
    compiler = cxx_compiler()
    if compiler is None:
        return None
    try:
        done = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = done.stdout.splitlines()[0].split() if done.returncode == 0 and done.stdout else []
    return f"{Path(compiler).name} {first[-1] if first else ''}".strip()


@dataclass(frozen=True)
class Runtime:
    name: str
    enables: str  # what `fmnist info` says it is for
    install: str  # the exact command that installs the verified version
    version: Callable[[], str | None]  # the installed version, None when missing
    verified: str | None = None  # the version we verified; another one is refused (prefix match)

    def problem(self, needed_by: str) -> str | None:
        """Why `needed_by` cannot run with what is installed; None when it can."""
        found = self.version()
        if found is None:
            return f"{needed_by} needs {self.name}, which is not installed; install it with `{self.install}`"
        if self.verified and not found.startswith(self.verified):
            return (f"{needed_by} was verified with {self.name} {self.verified}, but {found} is installed; "
                    f"install the verified one with `{self.install}`")  # fmt: skip
        return None


RUNTIMES = {
    "mediapipe": Runtime("mediapipe", "--target mediapipe and web (MediaPipe's ImageClassifier verifies the file)",
                         f"pip install mediapipe=={MEDIAPIPE_VERSION}", lambda: installed_version("mediapipe"),
                         MEDIAPIPE_VERSION),
    "tasks-vision": Runtime("MediaPipe Tasks for Web", "--target web (the page's runtime, copied into export/web)",
                            f"npm install @mediapipe/tasks-vision@{TASKS_VISION_VERSION}", _tasks_vision_version,
                            TASKS_VISION_VERSION),
    "playwright": Runtime("playwright", "--target web (drives the page's check in Chromium)",
                          f"pip install playwright=={PLAYWRIGHT_VERSION}", lambda: installed_version("playwright"),
                          PLAYWRIGHT_VERSION),
    "chromium": Runtime("Chromium", "--target web (runs the page's check; set FMNIST_CHROMIUM to use another)",
                        "sudo apt-get install chromium", _chromium_version, CHROMIUM_MAJOR),
    "c++": Runtime("a C++ compiler", "--quantize int8 (compiles the TensorFlow Lite Micro C array)",
                   "sudo apt-get install g++", _compiler_version),
    "torch": Runtime("torch", "make bench (the article's PyTorch loop, the speed reference)",
                     f"pip install torch=={TORCH_VERSION}", lambda: installed_version("torch"), TORCH_VERSION),
}  # fmt: skip


def require(needs: list[tuple[str, str]]) -> None:
    """Raise MissingRuntime (one line, exit 2) for the first (runtime, needed by) that is missing."""
    for name, needed_by in needs:
        problem = RUNTIMES[name].problem(needed_by)
        if problem:
            raise MissingRuntime(problem)


def describe() -> list[str]:
    """One line per optional runtime: name, version or "not installed", what it enables."""
    return [f"{r.name:<24} {r.version() or 'not installed':<16} {r.enables}" for r in RUNTIMES.values()]
