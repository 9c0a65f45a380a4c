"""The packages of gan/ are layers: each imports only from the layers below it (or itself).

core (the maths: config, data, models, losses, the step, the coach) < engine (a run: history, control, the
threaded trainer, the Run protocol, the status) < store (checkpoints, autosaves, atomic writes) < worker (the
training process, its wire messages, the client and the server-side proxy) < quality < viz < workshop < tools.
An upward import, even inside a function, makes a lower layer depend on a higher one and fails here.
"""

import ast
from pathlib import Path

import pytest

GAN = Path(__file__).resolve().parents[1] / "gan"
LAYERS = ["core", "engine", "store", "worker", "quality", "viz", "workshop", "tools"]


def gan_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every `gan.…` import in a file, at any depth (function bodies and TYPE_CHECKING too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gan"):
            found += [(node.lineno, node.module)]
            if node.module == "gan" or node.module.count(".") == 1:  # from gan.engine import history
                found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("gan.")]
    return found


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_package_is_a_layer():
    packages = {p.name for p in GAN.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(LAYERS)


@pytest.mark.parametrize("layer", LAYERS)
def test_no_import_reaches_a_higher_layer(layer):
    upward = []
    for path in sorted((GAN / layer).rglob("*.py")):
        for line, module in gan_imports(path):
            target = layer_of(module)
            if target is not None and target > LAYERS.index(layer):
                upward.append(f"{path.relative_to(GAN.parent)}:{line} imports {module}")
    assert not upward, "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from gan.workshop import runs\n    import gan.viz.charts\n")
    assert [layer_of(m) for _, m in gan_imports(bad)] == [6, 6, 5]


# Modules that import gan modules inside functions, and why: each saves start-up time that was measured
# (docs/architecture.md, "Lazy imports"). Anywhere else an import sits at the top of its module.
LAZY = {
    "gan/core/config.py": "a Config is checked without torch: import 8 ms instead of 2.2 s",
    "gan/worker/process.py": "the spawned worker watches its parent before torch loads (2.7 s)",
    "gan/tools": "python -m gan --help in 0.24 s instead of 2.7 s; each bench part loads only what it runs",
}


def test_gan_imports_inside_functions_only_where_a_lazy_import_saves_start_up():
    lazy = []
    for path in sorted(GAN.rglob("*.py")):
        rel = str(path.relative_to(GAN.parent))
        if rel in LAZY or any(rel.startswith(k + "/") for k in LAZY):
            continue
        tree = ast.parse(path.read_text(), rel)
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lazy += [f"{rel}:{n.lineno}" for n in ast.walk(fn)
                         if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("gan")]
    assert not lazy, "\n".join(lazy)
