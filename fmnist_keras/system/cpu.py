"""The CPU a result was measured on: its flags, the one AMX rule, and whether this process
uses the AMX tiles (timings differ up to 7x between our machines)."""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from pathlib import Path

# CPU flags that change which kernels run (and so timings, up to 7x between our machines).
KERNEL_FLAGS = {"avx2": "AVX2", "avx512f": "AVX-512F", "avx512_vnni": "VNNI", "avx512_bf16": "BF16"}

# Intel's AMX: the tile registers with their bfloat16 and int8 matrix instructions. Every CPU
# with AMX so far has all three, and "has AMX" means all three everywhere in fmnist_keras:
# oneDNN's bfloat16 training kernels use amx_bf16, XNNPACK's int8 kernels amx_int8.
AMX_FLAGS = frozenset({"amx_tile", "amx_bf16", "amx_int8"})


def has_amx(flags: set[str]) -> bool:
    """The one AMX rule, for `--precision auto` and for `fmnist bench`'s AMX note."""
    return set(flags) >= AMX_FLAGS


CPUINFO = Path("/proc/cpuinfo")


def _cpu_fields(cpuinfo: Path) -> dict[str, str]:
    """The first processor's entry of /proc/cpuinfo; empty where there is none (not Linux)."""
    fields: dict[str, str] = {}
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_flags(cpuinfo: Path = CPUINFO) -> set[str]:
    """The CPU's feature flags as Linux names them ("avx2", "amx_bf16", ...)."""
    return _flags(_cpu_fields(cpuinfo))


def _flags(fields: dict[str, str]) -> set[str]:
    return set(fields.get("flags", "").split())


# Linux x86-64: arch_prctl's syscall number, its "which AMX-like state may this process use"
# query, and the AMX tile data bit of the answer.
_SYS_ARCH_PRCTL, _ARCH_GET_XCOMP_PERM, _XFEATURE_XTILEDATA = 158, 0x1022, 18


def amx_in_use() -> bool:
    """Whether this process has asked Linux for the AMX tiles, which a library must do before
    it runs AMX kernels (XNNPACK and oneDNN do when the CPU has them). False off Linux x86-64."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return False
    mask = ctypes.c_uint64(0)
    # syscall() is variadic and reads longs: pass longs, not ctypes' default 32-bit ints.
    args = ctypes.c_long(_SYS_ARCH_PRCTL), ctypes.c_long(_ARCH_GET_XCOMP_PERM), ctypes.byref(mask)
    if ctypes.CDLL(None).syscall(*args) != 0:
        return False  # a kernel older than 5.16 has no AMX support
    return bool(mask.value >> _XFEATURE_XTILEDATA & 1)


def cpu_description(cpuinfo: Path = CPUINFO) -> str:
    """E.g. "AMD EPYC (family 25 model 17; AVX2 AVX-512F VNNI BF16), 2 cores": what a timing was measured on."""
    fields = _cpu_fields(cpuinfo)
    name = fields.get("model name", platform.processor() or platform.machine())
    flags = _flags(fields)  # one read of cpuinfo
    details = [f"family {fields['cpu family']} model {fields['model']}"] if "cpu family" in fields else []
    labels = [label for flag, label in KERNEL_FLAGS.items() if flag in flags] + (["AMX"] if has_amx(flags) else [])
    details.append(" ".join(labels) or "no AVX2")
    return f"{name} ({'; '.join(details)}), {os.cpu_count()} cores"
