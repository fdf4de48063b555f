"""The package's shape: imports run down the stages, never up, and the input contract is
written in one place. Read from the source (ast), so a new uphill import fails here."""

import ast
import io
import tokenize
from pathlib import Path

import fmnist_keras

PACKAGE = Path(fmnist_keras.__file__).parent

# Stages, lowest first. A module may import its own stage or a lower one, never a higher one.
STAGES = [
    # shared by every stage: errors, configs, the contract, metrics, file names, the machine, compat
    {"errors", "config", "contract", "metrics", "output_files", "system", "compat", "__init__"},
    {"data"},
    {"model"},
    {"runtimes"},
    {"training"},
    {"export"},
    {"deploy"},
    {"commands"},
    {"cli", "__main__"},
]


def _stage(module: str) -> int:
    """Stage of 'fmnist_keras.a.b' (by its first part below the package)."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for rank, names in enumerate(STAGES):
        if top in names:
            return rank
    raise AssertionError(f"{module} belongs to no stage: add it to STAGES in {__file__}")


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def _imports(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fmnist_keras"):
            found += [node.module] if node.module != "fmnist_keras" else [f"fmnist_keras.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("fmnist_keras")]
    return found


def _sources():
    return sorted(PACKAGE.rglob("*.py"))


def test_imports_only_run_down_the_stages():
    uphill = []
    for path in _sources():
        name = _module_name(path)
        for imported in _imports(ast.parse(path.read_text())):
            if imported == "fmnist_keras.__version__":
                continue
            if _stage(imported) > _stage(name):
                uphill.append(f"{name} imports {imported}")
    assert not uphill, "imports that run up the stages:\n" + "\n".join(uphill)


def test_the_check_sees_an_uphill_import():
    tree = ast.parse("from fmnist_keras.commands.export import export_and_validate")
    assert _stage(_imports(tree)[0]) > _stage("fmnist_keras.training.loop")


def test_the_image_side_is_written_only_in_the_contract():
    # Code, not prose: a 28 in a docstring or comment is a description, not a rule.
    found = []
    for path in _sources():
        if path.name == "contract.py" and path.parent == PACKAGE:
            continue
        for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            if token.type == tokenize.NUMBER and token.string == "28":
                found.append(f"{path.relative_to(PACKAGE)}:{token.start[0]}")
    assert not found, "the literal 28 outside fmnist_keras/contract.py: " + ", ".join(found)


def test_every_package_says_what_it_owns():
    for init in PACKAGE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 40, f"{init.relative_to(PACKAGE.parent)} needs a docstring saying what it owns"


def _code_lines(node: ast.FunctionDef) -> int:
    """A function's lines without its docstring."""
    first = node.body[0]
    doc = first.end_lineno - first.lineno + 1 if isinstance(first, ast.Expr) and isinstance(
        getattr(first, "value", None), ast.Constant) and isinstance(first.value.value, str) else 0  # fmt: skip
    return node.end_lineno - node.lineno + 1 - doc


def test_library_functions_are_short_and_take_few_values():
    # The CLI is left out: its commands are typer option declarations.
    too_big = []
    for path in _sources():
        if path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            args = [a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)]
            values = len([a for a in args if a not in ("self", "cls")])
            if _code_lines(node) > 40 or values > 5:
                too_big.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}: "
                               f"{_code_lines(node)} lines, {values} values")  # fmt: skip
    assert not too_big, "over 40 lines or more than 5 values (take a dataclass):\n" + "\n".join(too_big)


# Modules whose import pulls in TensorFlow or Keras: imported inside functions, like the libraries.
HEAVY_MODULES = {"fmnist_keras.data.tf_datasets", "fmnist_keras.model.fused_batchnorm"}


def test_imports_inside_functions_are_heavy_ones_and_say_why():
    # Only heavy libraries (and our two modules that import TensorFlow) may be imported inside a
    # function, and each such module says why once. The CLI imports its commands lazily.
    problems = []
    for path in _sources():
        if path.name == "cli.py":
            continue
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        inner = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in top]
        for node in inner:
            module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            if module.startswith("fmnist_keras") and module not in HEAVY_MODULES:
                problems.append(f"{path.relative_to(PACKAGE)}:{node.lineno} imports {module} inside a function")
        if inner and "imported inside the functions that need" not in path.read_text():
            problems.append(f"{path.relative_to(PACKAGE)} imports inside functions without saying why")
    assert not problems, "\n".join(problems)
