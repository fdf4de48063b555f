"""What a deployable .tflite may contain: builtin ops only, batch 1, integer all through."""

from __future__ import annotations

from fmnist_keras.runtimes.tflite_file import read_ops

_DYNAMIC_BATCH_OPS = {"SHAPE", "STRIDED_SLICE", "PACK"}
_INTEGER_TYPES = {"INT8", "UINT8", "INT16", "INT32"}


def deployability_problems(model_bytes: bytes, *, full_integer: bool) -> list[str]:
    """Reasons this flatbuffer must not ship; empty when it may."""
    problems = []
    ops = read_ops(model_bytes)
    for op in ops:
        if op.custom:
            kind = "Flex (SELECT_TF_OPS)" if op.name.startswith("Flex") else "custom"
            problems.append(f"{kind} op {op.name} does not run on LiteRT mobile or microcontroller runtimes")
    dynamic = sorted(_DYNAMIC_BATCH_OPS.intersection(op.name for op in ops))
    if dynamic:
        problems.append(f"ops {', '.join(dynamic)} from a dynamic batch dimension")
    if full_integer:
        for op in ops:
            if op.name == "QUANTIZE" and (op.reads_graph_input or op.writes_graph_output):
                continue  # input/output conversion at the edges
            if op.name == "DEQUANTIZE" and op.writes_graph_output:
                continue
            floats = [t for t in op.input_types + op.output_types if t not in _INTEGER_TYPES]
            if floats or op.name in ("QUANTIZE", "DEQUANTIZE"):
                problems.append(
                    f"{op.name} computes in {'/'.join(sorted(set(floats))) or 'mixed precision'} inside an int8 model"
                )
    return problems
