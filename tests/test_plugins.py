"""Methods and criteria from outside the package: `study.plugins` files and folders, a study
directory's own baselines/, and installed packages' entry points (docs/extending.md)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.kill_resume import without_wall_clock
from infcop.criteria import CRITERIA, SOURCES
from infcop.engine.imp import run_imp
from infcop.engine.spec import run_hash
from infcop.foundations.config import ConfigError, canonical, dense_hash, short_hash
from infcop.methods import METHODS, load_methods
from infcop.methods import registry

REPO = Path(__file__).resolve().parents[1]
LTH = (REPO / "baselines" / "lth.py").read_text()

CRITERION = '''
from infcop.criteria import Criterion, register_criterion


@register_criterion
class Never(Criterion):
    name, key, reason, label = "{name}", "{name}_value", "{name}", "never fires"

    def measure(self, ctx, val_acc):
        return 0.0

    def fires_at(self, value, threshold):
        return False
'''


@pytest.fixture
def isolated():
    """What a test registers or loads is forgotten afterwards: later tests see the shipped ones."""
    load_methods()  # the built-in ones, imported once per process, stay
    saved = [(d, dict(d)) for d in (METHODS, CRITERIA, SOURCES)]
    loaded = set(registry._LOADED)
    yield
    for registry_dict, content in saved:
        registry_dict.clear()
        registry_dict.update(content)
    registry._LOADED.clear()
    registry._LOADED.update(loaded)


def _lth_copy(path: Path, name: str) -> Path:
    """baselines/lth.py registering under another name."""
    code = LTH.replace('register_method("lth"', f'register_method("{name}"')
    path.write_text(code.replace("def lth(", f"def {name}("))
    return path


def test_a_plugin_method_runs_as_the_built_in_one(make_cfg, tmp_path, monkeypatch, isolated):
    """The same method from a study.plugins file (relative to the working directory) computes the
    same record as the built-in one; only its name, and so its hash, differ."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    _lth_copy(tmp_path / "mine" / "lth_copy.py", "lth_copy")
    cfg = make_cfg(
        "study.plugins=[mine]", "study.methods=[infcop_if, lth_copy]", "pruning.levels=1"
    )
    assert METHODS["lth_copy"].source == str(Path("mine") / "lth_copy.py")
    assert METHODS["lth_copy"].role == METHODS["lth"].role
    plugin, built_in = run_imp(cfg, "lth_copy", 0).to_json(), run_imp(cfg, "lth", 0).to_json()
    differ = ("method", "base_method", "config_hash")
    assert without_wall_clock(plugin, differ) == without_wall_clock(built_in, differ)
    # the hash recipe, spelled out: dense identity, pruning, stopping, method name, hyperparameters
    recipe = short_hash(
        dense_hash(cfg),
        canonical(cfg.pruning),
        canonical(cfg.stopping),
        "method=lth_copy",
        canonical(METHODS["lth_copy"].params()),
    )
    assert plugin["config_hash"] == run_hash(cfg, "lth_copy") == recipe != built_in["config_hash"]


def test_study_plugins_key_is_not_hashed(make_cfg, tmp_path, monkeypatch, isolated):
    monkeypatch.chdir(tmp_path)
    _lth_copy(tmp_path / "p.py", "lth_p")
    assert run_hash(make_cfg("study.plugins=[p.py]"), "lth") == run_hash(make_cfg(), "lth")


def test_a_study_directory_baselines_folder_is_loaded(tmp_path, monkeypatch, isolated):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "baselines").mkdir()
    _lth_copy(tmp_path / "baselines" / "study_lth.py", "study_lth")
    (tmp_path / "baselines" / "_helper.py").write_text("raise RuntimeError('not a plugin')\n")
    (tmp_path / "baselines" / "_template.py.example").write_text(LTH)
    (tmp_path / "baselines" / "crit.py").write_text(CRITERION.format(name="never"))
    load_methods()
    assert METHODS["study_lth"].source == str(Path("baselines") / "study_lth.py")
    assert SOURCES["never"] == str(Path("baselines") / "crit.py") and "never" in CRITERIA


LOAD = "cannot load plugin: "


def test_a_checkout_baselines_package_is_not_loaded_again(tmp_path, monkeypatch, isolated):
    """A checkout's baselines/ (a package) seen from its root by a non-editable
    install is built in."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(REPO / "baselines", tmp_path / "baselines")
    assert load_methods()["lth"].source == "built-in baselines/lth.py"


@pytest.mark.parametrize(
    "content, problem",
    [
        ("import no_such_module\n", LOAD + "ModuleNotFoundError: No module named 'no_such_module'"),
        (
            LTH,
            LOAD + "ValueError: method 'lth' is already registered (by built-in baselines/lth.py)",
        ),
        (
            "x = 1\n",
            "registers no method (@register_method) and no criterion (@register_criterion)",
        ),
        (
            LTH.replace("role=Role.COMPETITOR, ", ""),
            LOAD + "TypeError: register_method() missing 1 required keyword-only argument: 'role'",
        ),
        (
            CRITERION.format(name="flow").replace('"flow_value"', '"if_distance"'),
            LOAD
            + "ValueError: criterion 'flow': key 'if_distance' is already 'information_flow''s",
        ),
        ("def broken(:\n", LOAD + "SyntaxError: invalid syntax"),
    ],
)
def test_a_broken_plugin_is_one_line_naming_the_file(
    make_cfg, tmp_path, monkeypatch, isolated, content, problem
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.py").write_text(content)
    before = (dict(METHODS), dict(CRITERIA))
    with pytest.raises(ConfigError) as err:
        make_cfg("study.plugins=[bad.py]")
    assert str(err.value).startswith(f"bad.py: {problem}") and "\n" not in str(err.value)
    assert (METHODS, CRITERIA) == before, "a failed plugin left registrations behind"


def test_a_criterion_registered_twice_is_refused(make_cfg, tmp_path, monkeypatch, isolated):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.py").write_text(CRITERION.format(name="twice"))
    (tmp_path / "b.py").write_text(CRITERION.format(name="twice"))
    with pytest.raises(
        ConfigError,
        match=r"^b.py: criterion 'twice' is already registered "
        r"\(by a.py\)$",
    ):
        make_cfg("study.plugins=[a.py, b.py]")


def test_a_missing_plugin_path_names_the_key(make_cfg, tmp_path, monkeypatch, isolated):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ConfigError,
        match=r"^study.plugins\[0\]: nope.py \(relative to the working "
        r"directory .*\) is neither a .py file nor a folder$",
    ):
        make_cfg("study.plugins=[nope.py]")


def _cli(*args, cwd, env=None):
    return subprocess.run(
        [sys.executable, "-m", "infcop.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_infcop_methods_shows_a_config_plugins_and_their_source(tmp_path):
    _lth_copy(tmp_path / "extra.py", "extra_lth")
    (tmp_path / "study.yaml").write_text("study:\n  plugins: [extra.py]\n")
    without = _cli("methods", cwd=tmp_path)
    assert without.returncode == 0 and "extra_lth" not in without.stdout
    out = _cli("methods", "--config", "study.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("extra_lth "))
    assert "competitor" in lines[row] and lines[row + 1].split() == ["from", "extra.py"]
    lth = next(i for i, line in enumerate(lines) if line.startswith("lth "))
    assert lines[lth + 1].split() == ["from", "built-in", "baselines/lth.py"]
    (tmp_path / "extra.py").write_text("import missing_dependency_of_my_method\n")
    broken = _cli("methods", "--config", "study.yaml", cwd=tmp_path)
    assert broken.returncode == 2 and broken.stderr.strip().splitlines() == [
        "error: extra.py: cannot load plugin: ModuleNotFoundError: No module named "
        "'missing_dependency_of_my_method'"
    ]


def _distribution(site: Path, dist: str, module: str, code: str, entry_points: str) -> None:
    """A throw-away installed distribution: its module and a dist-info with entry_points.txt, which
    importlib.metadata discovers on sys.path like any installed package's."""
    (site / f"{module}.py").write_text(code)
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_entry_points_register_methods_and_criteria(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    code = _lth_copy(tmp_path / "draft.py", "ep_lth").read_text()
    code += CRITERION.format(name="ep_never")
    _distribution(site, "my-pruning", "ep_methods", code, "[infcop.methods]\nep_lth = ep_methods\n")
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    out = _cli("methods", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("ep_lth "))
    assert lines[row + 1].split() == ["from", "entry", "point", "my-pruning:ep_lth"]
    criterion = next(line for line in lines if line.startswith("ep_never "))
    assert criterion.endswith("from entry point my-pruning:ep_lth")
    # an entry point that registers nothing is named in one line
    _distribution(
        site, "empty-dist", "ep_empty", "x = 1\n", "[infcop.criteria]\nnothing = ep_empty\n"
    )
    out = _cli("methods", cwd=tmp_path, env=env)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "error: entry point empty-dist:nothing: registers no method (@register_method) and no "
        "criterion (@register_criterion)"
    ]


def test_version(tmp_path):
    out = _cli("--version", cwd=tmp_path)
    from infcop import __version__

    assert out.returncode == 0 and out.stdout.strip() == f"infcop {__version__}"


def test_every_built_in_method_names_its_file():
    for name, method in load_methods().items():
        kind, path = method.source.split(" ", 1)
        assert kind == "built-in" and (REPO / path).is_file(), (name, method.source)
