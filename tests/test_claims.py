"""Claims as data and their verdicts: the loader's checks, the verdict rules on hand-made
statistics, and every shipped claim against the registry and the shipped studies."""

import csv
import json
import re

import numpy as np
import pytest
import yaml
from scipy import stats as st

from infcop.foundations.config import ConfigError, read_yaml
from infcop.core.costs import Costs
from infcop.methods import load_methods
from infcop.engine.records import LevelRow, RunRecord
from infcop.engine.spec import study_configs
from infcop.study.analysis import compare, final_values
from infcop.foundations.paths import SHIPPED as ROOT
from infcop.study.claims import (
    CONFIGS_DIR,
    Check,
    ClaimFile,
    load_claim_file,
    shipped_studies,
    shipped_variants,
    study_claims,
)
from infcop.study.verdicts import (
    EXCEEDS,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    SCALED,
    claim_rows,
    judge,
    main,
    matrix_rows,
    measure,
)

PAIR = "digits/lenet_300_100"
MARGIN, ALPHA = 0.01, 0.05


def stats_of(
    methods: dict[str, dict[int, tuple[float, float]]], dense: dict[int, float] | None = None
) -> dict:
    """A stats.json with one pair: per method, seed -> (final test accuracy, total epochs)."""
    per_seed = {
        m: {
            "per_seed": {
                str(s): {
                    "test_acc": acc,
                    "density": 0.2,
                    "epochs": ep,
                    "flops": 1e9 * ep,
                    "wall": 2.0 * ep,
                }
                for s, (acc, ep) in by_seed.items()
            }
        }
        for m, by_seed in methods.items()
    }
    dense = dense or {s: 0.95 for s in range(5)}
    return {
        "experiment": "t",
        "seeds": list(range(5)),
        "margin": MARGIN,
        "alpha": ALPHA,
        "pairs": {
            PAIR: {
                "dense": {"per_seed": {str(s): v for s, v in dense.items()}},
                "methods": per_seed,
            }
        },
    }


def record(method: str, seed: int, test_acc: float, epochs: int) -> RunRecord:
    """A complete one-level run whose flops and seconds are fixed multiples of its epochs."""
    level = LevelRow(
        level=1,
        density=0.2,
        val_acc=test_acc,
        test_acc=test_acc,
        stop_reason="cap",
        measurements={},
        costs=Costs(epochs=epochs, train_flops=1e9 * epochs, train_seconds=2.0 * epochs),
        stopper={},
        lr_start=0.1,
    )
    return RunRecord(
        method=method,
        base_method=method,
        role="competitor",
        schedule="s",
        dataset="digits",
        model="lenet_300_100",
        seed=seed,
        config_hash="c",
        dense_config_hash="d",
        status="complete",
        diagnostic=False,
        method_params={},
        config={},
        provenance={},
        started="",
        finished="",
        wall_seconds=1.0,
        dense={},
        flow_reference=None,
        levels=[level],
    )


def claim_file(tmp_path, claims: list[dict], name: str = "c.yaml") -> ClaimFile:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"source": "A & B 2020", "claims": claims}))
    return load_claim_file(path, set(load_methods()) | {"a", "b"}, {"t"})


def claim(checks: list[dict], differs: str = "", pairs=(PAIR,), **kw) -> dict:
    return {
        "id": kw.get("id", "c1"),
        "where": "Sec. 1",
        "words": "a is faster than b",
        "setting": "big nets",
        "tested_in": {"t": {"pairs": list(pairs), "differs": differs}},
        "checks": checks,
    }


SPEEDUP = {
    "quantity": "speedup_epochs",
    "methods": ["a", "b"],
    "rule": "overlaps",
    "value": [1.8, 3.2],
}
NONINF = {"quantity": "accuracy_diff", "methods": ["a", "b"], "rule": "noninferior"}


def verdicts(tmp_path, stats, checks, differs=""):
    f = claim_file(tmp_path, [claim(checks, differs)])
    md, rows = claim_rows(f, f.claims[0], f.claims[0].tested_in["t"], stats, n_boot=500)
    return md[0], rows


def test_a_claim_that_holds(tmp_path):
    # a needs 2-3x fewer epochs than b and is within ±0.3 pp of it
    a = {s: (0.95 + d, 10.0) for s, d in enumerate([0.001, -0.002, 0.0, 0.003, -0.001])}
    b = {s: (0.95, ep) for s, ep in enumerate([20.0, 25.0, 30.0, 25.0, 20.0])}
    md, rows = verdicts(tmp_path, stats_of({"a": a, "b": b}), [SPEEDUP, NONINF])
    assert md["verdict"] == f"**{HOLDS}**" and [r["check_verdict"] for r in rows] == [HOLDS, HOLDS]
    assert (
        rows[0]["value"] == pytest.approx(st.gmean([2.0, 2.5, 3.0, 2.5, 2.0])) and rows[0]["n"] == 5
    )
    diffs = np.array([0.001, -0.002, 0.0, 0.003, -0.001])
    assert rows[1]["value"] == pytest.approx(diffs.mean())
    assert rows[1]["p_noninferior"] == pytest.approx(
        st.ttest_1samp(diffs + MARGIN, 0, alternative="greater").pvalue
    )
    assert f"{st.gmean([2.0, 2.5, 3.0, 2.5, 2.0]):.2f}×" in md["measured (95% CI)"]
    assert md["tested (pair, n seeds)"] == f"{PAIR}, n = 5"


def test_a_claim_that_does_not_hold_names_the_failing_check_and_the_scaled_setting(tmp_path):
    # 1.2x fewer epochs (below 1.8-3.2) and 5 pp less accurate: both checks fail
    a = {s: (0.90 + d, 25.0) for s, d in enumerate([0.001, -0.002, 0.0, 0.003, -0.001])}
    b = {s: (0.95, 30.0) for s in range(5)}
    md, rows = verdicts(
        tmp_path, stats_of({"a": a, "b": b}), [SPEEDUP, NONINF], differs="small nets, 6 epochs"
    )
    assert [r["check_verdict"] for r in rows] == [FAILS, FAILS]
    assert md["verdict"].startswith(
        f"**{FAILS}** {SCALED}: 95% CI [1.20×, 1.20×] lies below 1.80× to 3.20×"
    )
    assert "inferior beyond δ: 95% CI" in md["verdict"]
    assert md["setting here vs published"] == "small nets, 6 epochs" and all(
        r["scaled"] for r in rows
    )


def test_a_speedup_above_the_claimed_range_exceeds_and_the_accuracy_check_decides(tmp_path):
    """6x against a claimed 1.8-3.2x is beyond the claim in its own direction, not a refutation."""
    b = {s: (0.95, 30.0) for s in range(5)}
    close = {s: (0.95 + d, 5.0) for s, d in enumerate([0.001, -0.002, 0.0, 0.003, -0.001])}
    md, rows = verdicts(tmp_path, stats_of({"a": close, "b": b}), [SPEEDUP, NONINF])
    assert [r["check_verdict"] for r in rows] == [EXCEEDS, HOLDS]
    assert md["verdict"].startswith(
        f"**{EXCEEDS}**: 95% CI [6.00×, 6.00×] lies above 1.80× to 3.20×"
    )
    noisy = {s: (0.95 + d, 5.0) for s, d in enumerate([0.01, -0.03, 0.0, 0.02, -0.02])}
    md, rows = verdicts(tmp_path, stats_of({"a": noisy, "b": b}), [SPEEDUP, NONINF])
    assert [r["check_verdict"] for r in rows] == [EXCEEDS, INCONCLUSIVE]
    assert md["verdict"].startswith(f"**{INCONCLUSIVE}**")
    worse = {s: (0.90, 5.0) for s in range(5)}
    md, rows = verdicts(tmp_path, stats_of({"a": worse, "b": b}), [SPEEDUP, NONINF])
    assert md["verdict"].startswith(f"**{FAILS}**") and rows[0]["check_verdict"] == EXCEEDS


def test_fewer_than_three_seeds_is_inconclusive_and_a_failing_check_outweighs_it(tmp_path):
    a = {s: (0.95, 10.0) for s in range(2)}
    b = {s: (0.95, 25.0) for s in range(2)}
    md, rows = verdicts(tmp_path, stats_of({"a": a, "b": b}), [SPEEDUP, NONINF], differs="smaller")
    assert md["verdict"] == f"**{INCONCLUSIVE}**: n = 2 < 3 seeds"  # never "at this scaled setting"
    assert rows[0]["value"] == pytest.approx(2.5) and rows[0]["ci_low"] is None
    b = {s: (0.95, 100.0) for s in range(5)}
    a = {
        s: (0.95, 80.0) for s in range(5)
    }  # 1.25x, below 1.8-3.2: fails, whatever the unrun method's check says
    md, _ = verdicts(
        tmp_path, stats_of({"a": a, "b": b}), [SPEEDUP, {**NONINF, "methods": ["a", "lth"]}]
    )
    assert md["verdict"].startswith(f"**{FAILS}**")


@pytest.mark.parametrize(
    "rule, value, ci, want",
    [
        ("greater_than", 1.0, (1.2, 1.5), HOLDS),
        ("greater_than", 1.0, (0.8, 1.0), FAILS),
        ("greater_than", 1.0, (0.9, 1.3), INCONCLUSIVE),
        ("less_than", 1.0, (0.5, 0.9), HOLDS),
        ("less_than", 1.0, (1.0, 1.2), FAILS),
        ("overlaps", (1.8, 3.2), (3.0, 4.0), HOLDS),
        ("overlaps", (1.8, 3.2), (1.0, 1.7), FAILS),
        ("overlaps", (1.8, 3.2), (1.0, 5.0), INCONCLUSIVE),
        ("overlaps", (1.8, 3.2), (3.3, 5.0), EXCEEDS),
    ],
)
def test_rules_decide_on_the_ci(rule, value, ci, want):
    from infcop.study.verdicts import Measurement

    check = Check("speedup_epochs", ("a", "b"), rule, value)
    status, why = judge(check, Measurement(5, sum(ci) / 2, *ci, sd=0.3), MARGIN, ALPHA)
    assert status == want, why
    assert ("seeds to decide" in why) == (want == INCONCLUSIVE)


def test_noninferior_rule_reads_the_margin():
    from infcop.study.verdicts import Measurement

    check = Check("accuracy_diff", ("a", "b"), "noninferior")
    assert judge(check, Measurement(5, -0.005, -0.008, -0.002, 0.001), MARGIN, ALPHA)[0] == HOLDS
    assert judge(check, Measurement(5, -0.03, -0.04, -0.02, 1.0), MARGIN, ALPHA)[0] == FAILS
    assert judge(check, Measurement(5, -0.01, -0.02, 0.0, 0.5), MARGIN, ALPHA)[0] == INCONCLUSIVE


def test_noninferiority_reasons_say_what_the_data_show():
    from infcop.study.verdicts import Measurement

    check = Check("accuracy_diff", ("a", "b"), "noninferior")
    status, why = judge(check, Measurement(5, -0.006, -0.011, -0.001, 0.2, sd=0.004), MARGIN, ALPHA)
    assert status == INCONCLUSIVE and why.startswith("worse, not shown inferior beyond δ: 95% CI")
    status, why = judge(check, Measurement(5, 0.0, -0.02, 0.02, 0.1, sd=0.016), MARGIN, ALPHA)
    assert status == INCONCLUSIVE and why.startswith("not shown non-inferior: 95% CI")
    assert "too wide" not in why and "seeds to decide: " in why


def test_claims_take_the_comparison_tables_holm_adjusted_p_and_show_both_where_they_disagree(
    tmp_path,
):
    """The same question gets the same answer in the claims and the comparison table."""
    a = {s: (0.95 + d, 10.0) for s, d in enumerate([0.004, -0.006, 0.001, 0.003, -0.002])}
    b = {s: (0.95, 25.0) for s in range(5)}
    stats = stats_of({"a": a, "b": b})
    raw = measure(
        Check("accuracy_diff", ("a", "b"), "noninferior"), stats["pairs"][PAIR], MARGIN, 500
    ).p_noninferior
    assert raw < ALPHA
    stats["pairs"][PAIR]["comparisons"] = [
        {
            "infcop": "a",
            "competitor": "b",
            "accuracy": {"p_noninferior": raw, "p_noninferior_adj": 0.28},
        },
        *(
            {
                "infcop": "a",
                "competitor": x,
                "accuracy": {"p_noninferior": 0.1, "p_noninferior_adj": 0.3},
            }
            for x in ("c", "d")
        ),
    ]
    md, rows = verdicts(tmp_path, stats, [NONINF])
    assert rows[0]["check_verdict"] == INCONCLUSIVE and rows[0]["p_noninferior_adj"] == 0.28
    assert rows[0]["holm_family"] == 3
    assert f"Holm p_adj = 0.28, family of 3; unadjusted p = {raw:.3g}" in md["verdict"]
    del stats["pairs"][PAIR][
        "comparisons"
    ]  # not in the tables: the claim checks' own family (here one)
    md, rows = verdicts(tmp_path, stats, [NONINF])
    assert rows[0]["check_verdict"] == HOLDS and rows[0]["p_noninferior_adj"] == pytest.approx(raw)
    assert "unadjusted" not in md["verdict"]


def test_claim_checks_outside_the_tables_are_adjusted_together_per_pair(tmp_path):
    a = {s: (0.95 + d, 10.0) for s, d in enumerate([0.004, -0.006, 0.001, 0.003, -0.002])}
    c = {s: (0.95 + d, 10.0) for s, d in enumerate([0.0, -0.015, 0.01, 0.003, -0.002])}
    stats = stats_of({"a": a, "b": {s: (0.95, 25.0) for s in range(5)}, "lth": c})
    ps = stats["pairs"][PAIR]
    checks = [
        Check("accuracy_diff", ("a", "b"), "noninferior"),
        Check("accuracy_diff", ("lth", "b"), "noninferior"),
    ]
    raw = [measure(ch, ps, MARGIN, 500).p_noninferior for ch in checks]
    f = claim_file(
        tmp_path, [claim([NONINF], id="c1"), claim([{**NONINF, "methods": ["lth", "b"]}], id="c2")]
    )
    from infcop.study.verdicts import verdict_tables

    _, rows, _ = verdict_tables([f], stats, n_boot=500)
    lo, hi = sorted(raw)
    want = {lo: min(1.0, 2 * lo), hi: max(min(1.0, 2 * lo), hi)}  # Holm over two, written out
    assert [r["p_noninferior_adj"] for r in rows] == pytest.approx([want[p] for p in raw])
    assert [r["holm_family"] for r in rows] == [2, 2]


def test_a_method_or_pair_the_study_did_not_run_is_inconclusive(tmp_path):
    stats = stats_of({"a": {s: (0.95, 10.0) for s in range(3)}})
    md, _ = verdicts(tmp_path, stats, [SPEEDUP])
    assert md["verdict"] == f"**{INCONCLUSIVE}**: `b` not run in this study"
    f = claim_file(tmp_path, [claim([SPEEDUP], pairs=["mnist1d/cnn1d"])])
    md, _ = claim_rows(f, f.claims[0], f.claims[0].tested_in["t"], stats, n_boot=500)
    assert md[0]["verdict"] == f"**{INCONCLUSIVE}**: pair mnist1d/cnn1d not run in this study"


def test_dense_accuracy_and_accuracy_vs_dense_pair_with_the_dense_runs():
    dense = {0: 0.980, 1: 0.982, 2: 0.985, 3: 0.981}
    stats = stats_of({"lth": {s: (0.983, 4.0) for s in range(3)}}, dense)
    ps = stats["pairs"][PAIR]
    m = measure(Check("dense_accuracy", (), "overlaps", (0.982, 0.984)), ps, MARGIN, 500)
    x = list(dense.values())
    assert (m.n, m.value) == (4, pytest.approx(np.mean(x)))
    assert (m.ci_low, m.ci_high) == pytest.approx(
        st.t.interval(0.95, 3, loc=np.mean(x), scale=st.sem(x))
    )
    m = measure(Check("accuracy_vs_dense", ("lth",), "noninferior"), ps, MARGIN, 500)
    assert m.n == 3 and m.value == pytest.approx(
        0.983 - np.mean([0.980, 0.982, 0.985])
    )  # seed 3 has no lth run


def test_claim_numbers_equal_the_comparison_tables_numbers():
    """A claim measured from stats.json's per-seed values and the InfCoP comparison of
    the same pair agree."""
    infcop = {
        s: record("infcop", s, acc, ep)
        for s, acc, ep in [(0, 0.91, 10), (1, 0.93, 12), (2, 0.90, 8), (3, 0.92, 9)]
    }
    lth = {
        s: record("lth", s, acc, ep)
        for s, acc, ep in [(1, 0.92, 30), (2, 0.925, 24), (3, 0.905, 20), (4, 0.9, 1)]
    }
    table = compare(infcop, lth, MARGIN, n_boot=500)
    ps = {
        "dense": {"per_seed": {}},
        "methods": {
            m: {"per_seed": {str(s): final_values(r) for s, r in runs.items()}}
            for m, runs in (("infcop", infcop), ("lth", lth))
        },
    }
    for cost in ("epochs", "flops", "wall"):
        m = measure(
            Check(f"speedup_{cost}", ("infcop", "lth"), "greater_than", 1.0), ps, MARGIN, 500
        )
        sp = table["speedup"][cost]
        assert (m.n, m.value, m.ci_low, m.ci_high) == (
            sp["n"],
            sp["geomean"],
            sp["ci_low"],
            sp["ci_high"],
        )
    m = measure(Check("accuracy_diff", ("infcop", "lth"), "noninferior"), ps, MARGIN, 500)
    acc = table["accuracy"]
    assert (m.n, m.value, m.ci_low, m.ci_high, m.p_noninferior) == (
        acc["n"],
        acc["mean_diff"],
        acc["ci_low"],
        acc["ci_high"],
        acc["p_noninferior"],
    )


@pytest.mark.parametrize(
    "edit, key, match",
    [
        (
            {"quantity": "speedup"},
            "claims[0].checks[0].quantity",
            "unknown quantity 'speedup'; known: speedup_epochs",
        ),
        ({"rule": "about"}, "claims[0].checks[0].rule", "unknown rule 'about'; known: overlaps"),
        (
            {"methods": ["a", "lht"]},
            r"claims[0].checks[0].methods[1]",
            "unknown method 'lht'; known methods: .*lth",
        ),
        ({"methods": ["a"]}, "claims[0].checks[0].methods", "speedup_epochs compares 2 method"),
        ({"value": 2.0}, "claims[0].checks[0].value", "overlaps needs a published range"),
        (
            {"rule": "noninferior", "value": None},
            "claims[0].checks[0].rule",
            "noninferior applies to accuracy",
        ),
        ({"colour": "red"}, "claims[0].checks[0].colour", "unknown key"),
    ],
)
def test_bad_claims_name_the_file_and_the_key(tmp_path, edit, key, match):
    check = {k: v for k, v in {**SPEEDUP, **edit}.items() if v is not None}
    with pytest.raises(ConfigError, match=rf"c\.yaml: {re.escape(key)}: {match}"):
        claim_file(tmp_path, [claim([check])])


def test_unknown_study_and_repeated_id_are_errors(tmp_path):
    bad = claim([SPEEDUP])
    bad["tested_in"] = {"mnsit": {"pairs": [PAIR]}}
    with pytest.raises(
        ConfigError, match=r"c\.yaml: claims\[0\]\.tested_in\.mnsit: unknown study; known studies"
    ):
        claim_file(tmp_path, [bad])
    with pytest.raises(ConfigError, match=r"claims\[1\]\.id: 'c1' appears more than once"):
        claim_file(tmp_path, [claim([SPEEDUP]), claim([SPEEDUP])])


def test_every_shipped_claim_names_quantities_methods_and_studies_that_exist():
    files = sorted((ROOT / "claims").glob("*.yaml"))
    assert len(files) >= 5
    for path in files:
        f = load_claim_file(path, set(load_methods()) | shipped_variants(), shipped_studies())
        assert f.claims, path
    # and every shipped study that names claims runs every method and pair its claims are tested on
    for config in sorted(CONFIGS_DIR.glob("*.yaml")):
        cfg = next(iter(study_configs(read_yaml(config)).values()))
        runs = {e.name for e in cfg.study.methods}
        for f in study_claims(cfg):
            for c in f.claims:
                tested = c.tested_in.get(cfg.experiment.name)
                if tested is None:
                    continue
                assert set(tested.pairs) <= set(cfg.study.pairs), (config.name, c.id)
                assert {m for check in c.checks for m in check.methods} <= runs, (config.name, c.id)


def test_a_missing_claim_file_names_the_config_key(make_cfg):
    cfg = make_cfg("study.claims=[claims/nope.yaml]")
    with pytest.raises(
        ConfigError, match=r"study\.claims\[0\]: claim file .*claims/nope\.yaml not found"
    ):
        study_claims(cfg)


def test_verdicts_command_writes_claims_md_and_csv(tmp_path):
    (tmp_path / "c.yaml").write_text(
        yaml.safe_dump(
            {
                "source": "A & B 2020",
                "claims": [
                    claim(
                        [{**SPEEDUP, "methods": ["infcop_if", "lth"]}],
                        differs="smaller",
                        id="faster",
                    ),
                    {
                        **claim([{**SPEEDUP, "methods": ["infcop_if", "lth"]}], id="elsewhere"),
                        "tested_in": {"default": {"pairs": [PAIR]}},
                    },
                ],
            }
        )
    )
    cfg = {
        "experiment": {"name": "t", "results_dir": str(tmp_path / "results"), "seeds": [0, 1, 2]},
        "study": {
            "methods": ["infcop_if", "lth"],
            "claims": [str(tmp_path / "c.yaml")],
            "bootstrap": 200,
        },
        "tracking": {"mode": "disabled"},
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    stats = stats_of(
        {
            "infcop_if": {s: (0.95, 10.0) for s in range(3)},
            "lth": {s: (0.95, 25.0) for s in range(3)},
        }
    )
    (tmp_path / "results" / "t").mkdir(parents=True)
    (tmp_path / "results" / "t" / "stats.json").write_text(json.dumps(stats))
    assert main(["--config", str(tmp_path / "cfg.yaml")]) == 0
    md = (tmp_path / "results" / "t" / "claims.md").read_text()
    assert re.search(rf"\| `faster` +\| {HOLDS}\* +\|", md)
    assert "`elsewhere`" in md.split("Named but not tested in this study")[1]
    with open(tmp_path / "results" / "t" / "claims.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["claim"], r["verdict"], float(r["value"])) for r in rows] == [("faster", HOLDS, 2.5)]
    del stats["pairs"][PAIR]["methods"]["lth"]["per_seed"]  # stats.json from before per-seed values
    (tmp_path / "results" / "t" / "stats.json").write_text(json.dumps(stats))
    assert main(["--config", str(tmp_path / "cfg.yaml")]) == 2


def test_the_docs_claim_example_is_a_valid_claim_file(tmp_path):
    section = (ROOT / "docs" / "claims.md").read_text().split("# Claims", 1)[1]
    example = re.search(r"```yaml\n(# claims/my_source\.yaml.*?)```", section, re.S).group(1)
    (tmp_path / "my_source.yaml").write_text(example)
    f = load_claim_file(tmp_path / "my_source.yaml", set(load_methods()), shipped_studies())
    assert [c.id for c in f.claims] == ["lrr_faster_than_wr"]


def test_every_verdict_row_names_the_implementation_its_claim_runs(tmp_path):
    stats = stats_of(
        {"a": {s: (0.95, 10.0) for s in range(3)}, "b": {s: (0.95, 25.0) for s in range(3)}}
    )
    f = claim_file(
        tmp_path, [{**claim([SPEEDUP]), "implementation": "as released"}, claim([SPEEDUP], id="c2")]
    )
    md, rows = claim_rows(f, f.claims[0], f.claims[0].tested_in["t"], stats, n_boot=200)
    assert md[0]["claim"] == "`c1` (as released): a is faster than b"
    assert rows[0]["implementation"] == "as released"
    md2, rows2 = claim_rows(f, f.claims[1], f.claims[1].tested_in["t"], stats, n_boot=200)
    assert md2[0]["claim"] == "`c2`: a is faster than b" and rows2[0]["implementation"] == ""
    assert [r["claim"] for r in matrix_rows(rows + rows2)] == ["`c1` (as released)", "`c2`"]


def test_every_shipped_infcop_claim_says_which_implementation_it_tests():
    """InfCoP runs as released or corrected; a verdict on it must say which."""
    methods = load_methods()
    infcop = {n for n, m in methods.items() if m.role.value == "infcop"}
    for path in sorted((ROOT / "claims").glob("*.yaml")):
        for c in load_claim_file(path, set(methods) | shipped_variants(), shipped_studies()).claims:
            named = {m for check in c.checks for m in check.methods}
            runs_infcop = any(n in infcop or n.startswith("infcop_") for n in named)
            assert not runs_infcop or c.implementation, (path.name, c.id)
            released = any("released" in n for n in named)
            assert c.implementation.startswith("as released") == released, (path.name, c.id)


def test_a_claim_states_each_reason_once():
    from infcop.study.verdicts import FAILS, HOLDS, INCONCLUSIVE, combine

    missing = "`x` not run in this study"
    assert combine([(INCONCLUSIVE, missing), (INCONCLUSIVE, missing)]) == (INCONCLUSIVE, missing)
    assert combine([(HOLDS, ""), (FAILS, "a"), (INCONCLUSIVE, "b"), (FAILS, "c")]) == (
        FAILS,
        "a; c",
    )
    assert combine([(HOLDS, ""), (HOLDS, "")]) == (HOLDS, "")
