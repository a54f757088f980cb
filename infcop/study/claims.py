"""Published claims as data: one YAML file per source under claims/, checked like a config.

    source: Frankle & Carbin, The Lottery Ticket Hypothesis (ICLR 2019)
    claims:
      - id: lth_matches_dense
        where: Sec. 2, Fig. 3
        words: IMP subnetworks reset to θ₀ reach at least the dense network's test accuracy
        setting: LeNet-300-100 on MNIST, Adam 1.2e-3, batch 60, 50k iterations
        tested_in:
          mnist: {pairs: [mnist/lenet_300_100], differs: SGD, 4 epochs per level}
        checks:
          - {quantity: accuracy_vs_dense, methods: [lth], rule: noninferior}

`implementation` (optional) says which implementation of the method the checks run where the harness
has several (InfCoP as its authors released it, or corrected); every verdict row names it.

A check names a quantity the statistics compute (QUANTITIES), the methods it involves, and the rule
that decides it (RULES) with the published value where the rule needs one. A claim holds where all
its checks hold. `tested_in` maps a study (its experiment.name) to the pairs where the claim
is tested and to how that setting differs from the published one (empty: it does not).
Top-level keys starting with `x-` are ignored: they hold YAML anchors (`&name` ... `*name`)
that several claims share.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Iterator, NoReturn

import yaml

from infcop.foundations.config import NAME_PATTERN, Config, ConfigError, read_yaml
from infcop.core.costs import COMPARED_COSTS
from infcop.foundations.paths import SHIPPED, shipped
from infcop.methods import load_methods

CONFIGS_DIR = SHIPPED / "configs"
SHARED_PREFIX = "x-"  # top-level keys the loader ignores: YAML anchors several claims share


@dataclass(frozen=True)
class Quantity:
    methods: int  # how many methods a check of it names
    unit: str  # "pp": accuracy difference, "%": accuracy, "x": cost ratio
    doc: str


QUANTITIES = {
    **{
        f"speedup_{k}": Quantity(
            2, "x", f"cost(b) / cost(a) in {k}, geometric mean over seeds (bootstrap CI)"
        )
        for k in COMPARED_COSTS
    },
    "accuracy_diff": Quantity(2, "pp", "final test accuracy a − b, paired over seeds (t CI)"),
    "accuracy_vs_dense": Quantity(
        1, "pp", "final test accuracy a − the dense network's, paired over seeds (t CI)"
    ),
    "dense_accuracy": Quantity(0, "%", "the dense network's test accuracy, mean over seeds (t CI)"),
}

RULES = {
    "overlaps": "the 95% CI overlaps the published range [low, high]; a CI above it exceeds it",
    "greater_than": "the 95% CI lies above the value",
    "less_than": "the 95% CI lies below the value",
    "noninferior": "a − b > −δ (study.margin), one-sided paired t-test, Holm p_adj < study.alpha",
}


@dataclass(frozen=True)
class Check:
    quantity: str
    methods: tuple[str, ...]
    rule: str
    value: float | tuple[float, float] | None = None


@dataclass(frozen=True)
class TestedIn:
    pairs: tuple[str, ...]
    differs: str = ""


@dataclass(frozen=True)
class Claim:
    id: str
    where: str
    words: str
    setting: str
    tested_in: dict[str, TestedIn]
    checks: tuple[Check, ...]
    implementation: str = ""  # which implementation of the method its checks run, if several


@dataclass(frozen=True)
class ClaimFile:
    path: str
    source: str
    claims: tuple[Claim, ...]


class _Reader:
    """Typed access to one YAML mapping; every error names the file and the key."""

    def __init__(self, path: str, key: str, data: Any, allowed: tuple[str, ...]):
        self.path, self.key = path, key
        if not isinstance(data, dict):
            self.fail(key, f"expected a mapping, got {data!r}")
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            self.fail(self.sub(unknown[0]), f"unknown key; allowed keys: {', '.join(allowed)}")
        self.data = data

    def sub(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def fail(self, key: str, message: str) -> NoReturn:
        raise ConfigError(f"{self.path}: {key}: {message}")

    def text(self, name: str, required: bool = True) -> str:
        value = self.data.get(name, None if required else "")
        if not isinstance(value, str) or (required and not value.strip()):
            self.fail(self.sub(name), f"expected a non-empty string, got {value!r}")
        return value.strip()

    def items(self, name: str) -> list:
        value = self.data.get(name)
        if not isinstance(value, list) or not value:
            self.fail(self.sub(name), f"expected a non-empty list, got {value!r}")
        return value


def _number(r: _Reader, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        r.fail(key, f"expected a number, got {value!r}")
    return float(value)


def _check(r: _Reader, key: str, data: Any, methods: Collection[str]) -> Check:
    c = _Reader(r.path, key, data, ("quantity", "methods", "rule", "value"))
    quantity, rule = c.text("quantity"), c.text("rule")
    if quantity not in QUANTITIES:
        c.fail(c.sub("quantity"), f"unknown quantity {quantity!r}; known: {', '.join(QUANTITIES)}")
    if rule not in RULES:
        c.fail(c.sub("rule"), f"unknown rule {rule!r}; known: {', '.join(RULES)}")
    names = c.data.get("methods") or []
    if not isinstance(names, list) or len(names) != QUANTITIES[quantity].methods:
        c.fail(
            c.sub("methods"),
            f"{quantity} compares {QUANTITIES[quantity].methods} method(s), got {names!r}",
        )
    for i, name in enumerate(names):
        if name not in methods:
            c.fail(
                c.sub(f"methods[{i}]"),
                f"unknown method {name!r}; known methods: {', '.join(sorted(methods))}",
            )
    value = c.data.get("value")
    if rule == "noninferior":
        if QUANTITIES[quantity].unit != "pp":
            c.fail(c.sub("rule"), f"noninferior applies to accuracy differences, not to {quantity}")
        if value is not None:
            c.fail(
                c.sub("value"), "noninferior takes no value: its margin is the study's study.margin"
            )
    elif rule == "overlaps":
        if not isinstance(value, list) or len(value) != 2:
            c.fail(c.sub("value"), f"overlaps needs a published range [low, high], got {value!r}")
        value = tuple(_number(c, c.sub("value"), v) for v in value)
        if value[0] > value[1]:
            c.fail(c.sub("value"), f"low {value[0]} is above high {value[1]}")
    else:
        value = _number(c, c.sub("value"), value)
    return Check(quantity, tuple(names), rule, value)


def _tested_in(r: _Reader, key: str, data: Any, studies: Collection[str]) -> dict[str, TestedIn]:
    if not isinstance(data, dict) or not data:
        r.fail(key, f"expected a mapping of study name -> {{pairs, differs}}, got {data!r}")
    out = {}
    for study, entry in data.items():
        if study not in studies:
            r.fail(
                f"{key}.{study}",
                f"unknown study; known studies (experiment.name of configs/*.yaml and "
                f"this study): {', '.join(sorted(studies))}",
            )
        t = _Reader(r.path, f"{key}.{study}", entry, ("pairs", "differs"))
        pairs = t.items("pairs")
        for i, pair in enumerate(pairs):
            if not isinstance(pair, str) or pair.count("/") != 1:
                t.fail(t.sub(f"pairs[{i}]"), f"expected dataset/model, got {pair!r}")
        out[study] = TestedIn(tuple(pairs), t.text("differs", required=False))
    return out


def load_claim_file(
    path: str | Path, methods: Collection[str], studies: Collection[str], label: str | None = None
) -> ClaimFile:
    """Read and check one claim file: every quantity, rule, method and study must exist. Errors and
    the tables name the file as `label` (as the config names it), by default its path."""
    raw = read_yaml(path)
    name = label or str(path)
    shared = [k for k in raw if str(k).startswith(SHARED_PREFIX)] if isinstance(raw, dict) else []
    r = _Reader(name, "", raw, ("source", "claims", *shared))
    claims = []
    for i, data in enumerate(r.items("claims")):
        key = f"claims[{i}]"
        c = _Reader(
            name,
            key,
            data,
            ("id", "where", "words", "setting", "tested_in", "checks", "implementation"),
        )
        cid = c.text("id")
        if not re.fullmatch(NAME_PATTERN, cid):
            c.fail(c.sub("id"), f"{cid!r} must match {NAME_PATTERN}")
        if cid in {x.id for x in claims}:
            c.fail(c.sub("id"), f"{cid!r} appears more than once")
        checks = tuple(
            _check(c, f"{key}.checks[{j}]", d, methods) for j, d in enumerate(c.items("checks"))
        )
        claims.append(
            Claim(
                cid,
                c.text("where"),
                c.text("words"),
                c.text("setting"),
                _tested_in(c, c.sub("tested_in"), c.data.get("tested_in"), studies),
                checks,
                c.text("implementation", required=False),
            )
        )
    return ClaimFile(name, r.text("source"), tuple(claims))


def _shipped_configs(configs_dir: Path) -> Iterator[tuple[Path, dict]]:
    """Every shipped config that parses as a YAML mapping, with its path."""
    for path in sorted(configs_dir.glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            continue
        if isinstance(raw, dict):
            yield path, raw


def shipped_studies(configs_dir: Path = CONFIGS_DIR) -> set[str]:
    """The experiment.name of every shipped config (the file's stem where it names none)."""
    return {
        str((raw.get("experiment") or {}).get("name", path.stem))
        for path, raw in _shipped_configs(configs_dir)
    }


def shipped_variants(configs_dir: Path = CONFIGS_DIR) -> set[str]:
    """The names of the method variants the shipped configs define (`{name, method, params}`
    entries), so a claim may test one (e.g. a threshold of the harness's) in the studies that run
    it."""
    return {
        e["name"]
        for _, raw in _shipped_configs(configs_dir)
        for e in (raw.get("study") or {}).get("methods") or []
        if isinstance(e, dict) and isinstance(e.get("name"), str)
    }


def claim_path(name: str) -> Path:
    """A study.claims entry as a file: a relative path is the study directory's file when it exists,
    else the harness's shipped one, as `--config experiment=NAME` finds configs/NAME.yaml."""
    return shipped(name)


def study_claims(cfg: Config) -> list[ClaimFile]:
    """The claim files a study names (study.claims), checked against the registry, the study's own
    method names, the shipped studies' variants and the known studies; a claim id may appear in only
    one of them. A claim tested in this study on a method it does not run is inconclusive there."""
    methods = set(load_methods()) | {e.name for e in cfg.study.methods} | shipped_variants()
    studies = shipped_studies() | {cfg.experiment.name}
    files, seen = [], {}
    for i, name in enumerate(cfg.study.claims):
        path = claim_path(name)
        if not path.is_file():
            raise ConfigError(
                f"study.claims[{i}]: claim file {path} not found (a relative path is looked up in "
                f"the working directory, then in {SHIPPED})"
            )
        f = load_claim_file(path, methods, studies, label=name)
        for j, claim in enumerate(f.claims):
            if claim.id in seen:
                raise ConfigError(
                    f"{f.path}: claims[{j}].id: {claim.id!r} is also a claim of {seen[claim.id]}"
                )
            seen[claim.id] = f.path
        files.append(f)
    return files
