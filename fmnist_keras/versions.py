"""Versions of the libraries that shape results, for reports and `fmnist info`."""

from __future__ import annotations

import platform
from importlib import metadata


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def library_versions() -> dict:
    return {
        "fmnist_keras": _version("fmnist-keras"),
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow"),
        "keras": _version("keras"),
        "numpy": _version("numpy"),
        "ai_edge_litert": _version("ai-edge-litert"),
    }
