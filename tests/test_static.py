"""The house rules, checked: import layers, function length, ruff, mypy on core and io."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "srbio"

# who may import whom (design.md): a module of the key may import srbio modules starting
# with one of the listed prefixes (itself always included)
LAYERS = {
    "srbio.core": ("srbio.core",),
    "srbio.io": ("srbio.io",),
    "srbio.models": ("srbio.models",),
    "srbio.config": ("srbio.models.registry",),
    "srbio.provenance": ("srbio.__init__",),
    "srbio.train": ("srbio.core", "srbio.io", "srbio.models"),
    "srbio.inference": ("srbio.core", "srbio.io", "srbio.models"),
    "srbio.stages": ("srbio.core", "srbio.io", "srbio.models", "srbio.train", "srbio.inference",
                     "srbio.config", "srbio.provenance"),
    "srbio.cli": ("srbio.config", "srbio.stages", "srbio.models", "srbio.__init__"),
    "srbio.__main__": ("srbio.cli",),
    "srbio.napari": ("srbio.core", "srbio.io", "srbio.models", "srbio.config", "srbio.inference",
                     "srbio.stages"),
    "srbio.__init__": (),
}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 2 else parts)


def _imports(path: Path) -> set[str]:
    """Every srbio module ``path`` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= ({f"{node.module}.{a.name}" for a in node.names} if node.module == "srbio"
                      else {node.module})
    return {m.replace("srbio.__version__", "srbio.__init__") for m in found
            if m == "srbio" or m.startswith("srbio.")}


def test_every_module_imports_only_its_own_layer_or_below():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module(path)
        layer = next(k for k in sorted(LAYERS, key=len, reverse=True)
                     if module == k or module.startswith(k + "."))
        allowed = (layer, *LAYERS[layer])
        for imported in sorted(_imports(path)):
            if not any(imported == a or imported.startswith(a + ".") for a in allowed):
                violations.append(f"{module} imports {imported}")
    assert violations == []


def test_only_the_napari_plugin_imports_napari_or_qt():
    gui = ("napari", "npe2", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "superqt",
           "magicgui", "vispy")
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if _module(path).startswith("srbio.napari"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            found += [f"{_module(path)} imports {n}" for n in names if n.split(".")[0] in gui]
    assert found == []


def test_no_function_is_longer_than_60_lines():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > 60:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert long == []


def test_matplotlib_never_switches_the_backend_at_import():
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        assert "matplotlib.use(" not in text and "import matplotlib.pyplot" not in text, path


def _tool(name: str) -> str:
    exe = Path(sys.executable).with_name(name)
    found = str(exe) if exe.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def test_ruff_is_clean():
    r = subprocess.run([_tool("ruff"), "check", "srbio", "tests", "benchmarks"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_is_clean_on_core_and_io():
    r = subprocess.run([_tool("mypy"), "srbio/core", "srbio/io"], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
