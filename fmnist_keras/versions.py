"""Versions of the libraries and the CPU that shape results, for reports, benchmarks and `fmnist info`."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

# CPU flags that change which kernels run (and so timings, up to 7x between our machines).
KERNEL_FLAGS = {"avx2": "AVX2", "avx512f": "AVX-512F", "avx512_vnni": "VNNI", "avx512_bf16": "BF16", "amx_tile": "AMX"}


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


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """E.g. "AMD EPYC (family 25 model 17; AVX2 AVX-512F VNNI BF16), 2 cores": what a timing was measured on."""
    fields: dict[str, str] = {}
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())  # the first processor's entry
    name = fields.get("model name", platform.processor() or platform.machine())
    flags = set(fields.get("flags", "").split())
    details = [f"family {fields['cpu family']} model {fields['model']}"] if "cpu family" in fields else []
    details.append(" ".join(label for flag, label in KERNEL_FLAGS.items() if flag in flags) or "no AVX2")
    return f"{name} ({'; '.join(details)}), {os.cpu_count()} cores"
