"""Read a .tflite flatbuffer's op list and tensor types (LiteRT's generated schema, no interpreter)."""

from __future__ import annotations

# LiteRT is imported inside the functions that need it: importing this module (and `fmnist --help`) stays fast.
from dataclasses import dataclass


@dataclass(frozen=True)
class OpInfo:
    name: str  # builtin op name, or the custom code (e.g. "FlexConv2D")
    custom: bool
    input_types: tuple[str, ...]
    output_types: tuple[str, ...]
    reads_graph_input: bool
    writes_graph_output: bool


def _enum_names(cls) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def read_ops(model_bytes: bytes) -> list[OpInfo]:
    """Every operator of the main subgraph, in execution order."""
    from ai_edge_litert import schema_py_generated as schema

    builtin_names = _enum_names(schema.BuiltinOperator)
    type_names = _enum_names(schema.TensorType)
    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    graph = model.subgraphs[0]
    graph_inputs, graph_outputs = set(graph.inputs.tolist()), set(graph.outputs.tolist())
    ops = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        custom = builtin == schema.BuiltinOperator.CUSTOM
        name = code.customCode.decode() if custom and code.customCode else builtin_names.get(builtin, str(builtin))
        ins = [i for i in op.inputs.tolist() if i >= 0]
        outs = op.outputs.tolist()
        ops.append(
            OpInfo(
                name=name,
                custom=custom,
                input_types=tuple(type_names[graph.tensors[i].type] for i in ins),
                output_types=tuple(type_names[graph.tensors[i].type] for i in outs),
                reads_graph_input=bool(graph_inputs.intersection(ins)),
                writes_graph_output=bool(graph_outputs.intersection(outs)),
            )
        )
    return ops


def op_names(model_bytes: bytes) -> list[str]:
    return [op.name for op in read_ops(model_bytes)]
