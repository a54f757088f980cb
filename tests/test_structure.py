"""The package's structure: layers import one way, no import cycle, every artifact named once,
the committed config schema generated from the dataclasses."""
import ast
import re
from pathlib import Path

from infcop.schema import SCHEMA_PATH, schema_yaml

ROOT = Path(__file__).resolve().parents[1]
# Lower layers never import higher ones. Equal ranks may import each other (acyclically).
LAYERS = [
    ("infcop.config", "infcop.paths", "infcop.storage"),
    ("infcop.core", "infcop.provenance", "infcop.schema"),
    ("infcop.criteria", "infcop.records", "infcop.tracking"),
    ("infcop.methods",),
    ("infcop.spec",),
    ("infcop.engine",),
    ("infcop.study", "infcop.bench", "infcop.plan"),
    ("infcop.cli",),
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / "infcop").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: Path, name: str, module_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("infcop"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("infcop"))
    return found & set(_modules()) - {name}


def _rank(module: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer of tests/test_structure.py: place it")


def test_layers_import_one_way():
    wrong = []
    for name, path in _modules().items():
        if name == "infcop":
            continue
        for target in _imports(path, name, module_level_only=False):
            if target != "infcop" and _rank(target) > _rank(name):
                wrong.append(f"{name} (layer {_rank(name)}) imports {target} (layer {_rank(target)})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle():
    graph = {name: _imports(path, name, module_level_only=True) for name, path in _modules().items()}
    # a package's __init__ importing its own submodules is how discovery works, not a cycle
    graph = {n: {t for t in ts if not t.startswith(n + ".")} for n, ts in graph.items()}
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(trail + [node, nxt]))
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


ARTIFACTS = ("record.json", "levels.csv", "epochs.csv", "runs.csv", "stats.json", "summary.md", "summary.csv",
             "summary.tex", "comparisons.csv", "ablation.md", "init.pt", "rewind.pt", "final.pt", "wandb_id",
             "_diagnose", "checkpoints", "masks", "config.yaml", "claims.md", "claims.csv")


def test_every_artifact_name_is_spelled_once():
    """Only infcop/paths.py spells a results file name; the engine, analysis, CLI and rules ask it."""
    sources = [p for p in (ROOT / "infcop").rglob("*.py") if p.name != "paths.py"]
    sources += list((ROOT / "workflow").rglob("*.smk")) + [ROOT / "Snakefile"]
    found = []
    for path in sources:
        text = path.read_text()
        for name in ARTIFACTS:
            if re.search(rf"[\"'/]{re.escape(name)}[\"'/]", text):
                found.append(f"{path.relative_to(ROOT)}: {name}")
    assert not found, "artifact names outside infcop/paths.py:\n" + "\n".join(found)


def test_committed_schema_is_current():
    assert SCHEMA_PATH.read_text() == schema_yaml(), "run `infcop schema` and commit the result"
