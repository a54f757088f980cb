"""The package's structure: layers import one way, no import cycle, every artifact named once,
the committed config schema generated from the dataclasses."""

import ast
import re
from pathlib import Path

from infcop.foundations.schema import SCHEMA_PATH, schema_yaml

ROOT = Path(__file__).resolve().parents[1]
# Lower layers never import higher ones. Equal ranks may import each other (acyclically).
LAYERS = [
    ("infcop.foundations",),  # config, paths, storage, provenance, schema
    ("infcop.core",),  # data, models, masks, pruners, resets, training, flows, costs
    ("infcop.criteria",),  # stopping rules
    ("infcop.methods",),  # the registry, InfCoP and its ablations
    ("infcop.baselines",),  # the competing methods: the repository's top-level baselines/
    ("infcop.engine",),  # run specs, the dense and IMP loops, records, W&B
    ("infcop.study",),  # statistics, tables, figures, claims, frontier, bench, plan
    ("infcop.cli",),
]


# the package's folders, and the top-level folders pyproject.toml maps into it
PACKAGE_FOLDERS = {"infcop": ROOT / "infcop", "infcop.baselines": ROOT / "baselines"}


def _modules() -> dict[str, Path]:
    out = {}
    for package, folder in PACKAGE_FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            parts = (*package.split("."), *path.relative_to(folder).with_suffix("").parts)
            if package == "infcop" and parts[1] == "baselines":
                continue
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


def test_each_folder_is_one_layer():
    """The tree is the architecture: every module of a folder sits in that folder's layer, and the
    package root holds only the CLI."""
    for name, path in _modules().items():
        parts = name.split(".")
        if path.parent == ROOT / "infcop" and name not in ("infcop", "infcop.cli"):
            raise AssertionError(
                f"{name}: a module at the package root; put it in the folder of its layer"
            )
        if len(parts) > 2:
            assert _rank(name) == _rank(".".join(parts[:2])), name


def test_layers_import_one_way():
    wrong = []
    for name, path in _modules().items():
        if name == "infcop":
            continue
        for target in _imports(path, name, module_level_only=False):
            if target != "infcop" and _rank(target) > _rank(name):
                wrong.append(
                    f"{name} (layer {_rank(name)}) imports {target} (layer {_rank(target)})"
                )
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle():
    graph = {
        name: _imports(path, name, module_level_only=True) for name, path in _modules().items()
    }
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


ARTIFACTS = (
    "record.json",
    "levels.csv",
    "epochs.csv",
    "runs.csv",
    "stats.json",
    "summary.md",
    "summary.csv",
    "summary.tex",
    "comparisons.csv",
    "ablation.md",
    "init.pt",
    "rewind.pt",
    "final.pt",
    "wandb_id",
    "warmup_gradient.pt",
    "_diagnose",
    "checkpoints",
    "masks",
    "config.yaml",
    "claims.md",
    "claims.csv",
)


def test_every_artifact_name_is_spelled_once():
    """Only infcop/foundations/paths.py spells a results file name; the engine, analysis, CLI
    and rules ask it."""
    sources = [p for p in _modules().values() if p.name != "paths.py"]
    sources += list((ROOT / "workflow").rglob("*.smk")) + [
        ROOT / "Snakefile",
        ROOT / "workflow" / "Snakefile",
    ]
    found = []
    for path in sources:
        text = path.read_text()
        for name in ARTIFACTS:
            if re.search(rf"[\"'/]{re.escape(name)}[\"'/]", text):
                found.append(f"{path.relative_to(ROOT)}: {name}")
    assert not found, "artifact names outside infcop/foundations/paths.py:\n" + "\n".join(found)


def test_committed_schema_is_current():
    assert SCHEMA_PATH.read_text() == schema_yaml(), "run `infcop schema` and commit the result"
