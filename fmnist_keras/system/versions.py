"""Versions of the libraries that shape results, for reports, benchmarks and `fmnist info`."""

from __future__ import annotations

import platform
from importlib import metadata


def installed_version(dist: str) -> str | None:
    """The installed version of distribution `dist`, or None."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def library_versions() -> dict:
    return {
        "fmnist_keras": installed_version("fmnist-keras"),
        "python": platform.python_version(),
        "tensorflow": installed_version("tensorflow"),
        "keras": installed_version("keras"),
        "numpy": installed_version("numpy"),
        "ai_edge_litert": installed_version("ai-edge-litert"),
    }
