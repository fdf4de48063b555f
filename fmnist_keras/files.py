"""Atomic file output: write to a temporary sibling, then rename into place."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fmnist_keras.errors import OutputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def ensure_writable_dir(path: Path) -> Path:
    """Create `path` if needed and prove we can write there, or raise OutputError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise OutputError(
            f"cannot write to output folder {path} ({exc.strerror or exc}); choose another with --output"
        ) from None
    return path


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` on success.

    The temporary name keeps the target's suffix because some writers (Keras)
    insist on it. On any error the temporary file is removed and `target` is
    left as it was.
    """
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=target.suffix)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; published files get the usual mode
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_json(target: Path, obj: object) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def staging_dir(parent: Path) -> Iterator[Path]:
    """A temporary folder inside `parent` (same file system, so renames are atomic)."""
    path = Path(tempfile.mkdtemp(dir=parent, prefix=".staging-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def publish(staged: Path, destination: Path, names: list[str]) -> None:
    """Move each staged file onto its final name; the last name is the completion marker."""
    for name in names:
        source = staged / name
        target = destination / name
        if source.is_dir():
            if target.exists():
                old = target.with_name(f".{name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
                os.replace(source, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(source, target)
        else:
            os.replace(source, target)
