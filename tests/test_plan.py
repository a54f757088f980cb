"""`infcop plan` against figures computed by hand, and against what a run actually charges."""

import json
import re

import pytest
import yaml

from infcop.cli import main
from infcop.foundations.config import read_yamls
from infcop.engine.imp import run_imp
from infcop.engine.spec import load_run_config

# digits / lenet_300_100: 8x8 inputs, layers 64x300, 300x100, 100x10; 1438 training images,
# 144 of them validation
N_TRAIN = 1438 - round(0.1 * 1438)
F_DENSE = 2 * (64 * 300 + 300 * 100 + 100 * 10)
# half of each layer's survivors pruned per level: F after level 1 and after level 2
F_LEVELS = (2 * (9600 + 15000 + 500), 2 * (4800 + 7500 + 250))


def _config(tmp_path):
    cfg = {
        "experiment": {
            "name": "plan",
            "seeds": [0, 1],
            "results_dir": str(tmp_path / "results"),
            "threads": 1,
        },
        "training": {"epochs": 3, "batch_size": 128},
        "pruning": {"levels": 2, "fraction": 0.5, "scope": "layer"},
        "stopping": {"cap": 2, "probe_size": 64, "probe_batch": 32},
        "tracking": {"mode": "disabled"},
        "study": {
            "pairs": ["digits/lenet_300_100"],
            "methods": ["lth", "infcop_if"],
            "diagnose": ["infcop_if"],
        },
    }
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _rows(text):
    return {
        tuple(c.strip() for c in line.strip("|").split("|")[:3]): [
            c.strip() for c in line.strip("|").split("|")[3:]
        ]
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| rule")
    }


def test_plan_matches_hand_computed_flops_and_hours(tmp_path, capsys):
    path = _config(tmp_path)
    assert main(["plan", "--configfile", str(path), "--flops-per-second", "1e9"]) == 0
    rows = _rows(capsys.readouterr().out)
    per_epoch = N_TRAIN * 3
    dense = 3 * per_epoch * F_DENSE
    lth = (2 * 3 * per_epoch * F_DENSE, 3 * per_epoch * sum(F_LEVELS))  # T = 3 epochs per level
    infcop = (2 * 2 * per_epoch * F_DENSE, 2 * per_epoch * sum(F_LEVELS))  # cap 2 per level
    expect = {
        ("dense", "digits/lenet_300_100", ""): (dense, dense),
        ("imp", "digits/lenet_300_100", "lth"): lth,
        ("imp", "digits/lenet_300_100", "infcop_if"): infcop,
        ("diagnose", "digits/lenet_300_100", "infcop_if"): infcop,
    }
    assert set(rows) == set(expect) | {("**total**", "", "")}
    for key, (high, expected) in expect.items():
        jobs, f_max, f_exp, h_max, h_exp = rows[key]
        assert jobs == "2" and float(f_max) == pytest.approx(high, rel=1e-3)
        assert float(f_exp) == pytest.approx(expected, rel=1e-3)
        assert float(h_max) == pytest.approx(2 * high / 1e9 / 3600, rel=1e-3)
    total = rows[("**total**", "", "")]
    assert total[0] == "8" and float(total[1]) == pytest.approx(
        2 * sum(h for h, _ in expect.values()), rel=1e-3
    )
    assert float(total[4]) == pytest.approx(
        2 * sum(e for _, e in expect.values()) / 1e9 / 3600, rel=1e-3
    )


def test_plan_prices_the_released_rules_training_split_sweeps(tmp_path, capsys):
    """As released, IF sweeps the training split twice per check and GF once, after every epoch up
    to the cap (2 here), and each once more through the dense network for its reference (IF: plus
    one training batch)."""
    cfg = yaml.safe_load(_config(tmp_path).read_text())
    cfg["study"] = {
        "pairs": ["digits/lenet_300_100"],
        "methods": ["infcop_if_released", "infcop_gf_released"],
    }
    path = tmp_path / "released.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["plan", "--configfile", str(path)]) == 0
    rows = _rows(capsys.readouterr().out)
    train = 2 * N_TRAIN * 3  # per level: cap 2 x 3F per sample
    for method, passes, once in (
        ("infcop_if_released", 2, 2 * N_TRAIN + 128),
        ("infcop_gf_released", 1, N_TRAIN),
    ):
        sweeps = 2 * passes * N_TRAIN
        jobs, f_max, f_exp, *_ = rows[("imp", "digits/lenet_300_100", method)]
        assert float(f_max) == pytest.approx((2 * (train + sweeps) + once) * F_DENSE, rel=1e-3)
        expected = (train + sweeps) * sum(F_LEVELS) + once * F_DENSE
        assert float(f_exp) == pytest.approx(expected, rel=1e-3)


def test_plan_expected_flops_are_what_the_run_charges(tmp_path, capsys):
    """Per-layer pruning at fixed epochs: the plan's expected figure is exactly the
    run's train_flops."""
    path = _config(tmp_path)
    main(["plan", "--configfile", str(path)])
    planned = float(_rows(capsys.readouterr().out)[("imp", "digits/lenet_300_100", "lth")][2])
    cfg = load_run_config(path, pair="digits/lenet_300_100")
    assert run_imp(cfg, "lth", 0).totals.train_flops == pytest.approx(planned, rel=1e-3)


def test_plan_reads_the_throughput_infcop_bench_measured(tmp_path, capsys):
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"models": {"lenet_300_100": {"harness_samples_per_s": 1000.0}}}))
    assert main(["plan", "--configfile", str(_config(tmp_path)), "--bench", str(bench)]) == 2
    assert re.search(
        r"--bench-model 'resnet18@224': .* measured lenet_300_100; pick one of none \(run infcop "
        r"bench without --quick\)",
        capsys.readouterr().err,
    )


def test_plan_merges_several_config_files_as_snakemake_does(tmp_path, capsys):
    """`--configfile base overlay`: sections merged key by key, lists replaced
    whole, later files win."""
    base, overlay = tmp_path / "base.yaml", tmp_path / "overlay.yaml"
    base.write_text(
        yaml.safe_dump(
            {
                "experiment": {"name": "b", "seeds": [0, 1, 2]},
                "training": {"epochs": 3},
                "study": {"pairs": ["digits/lenet_300_100", "mnist1d/cnn1d"], "methods": ["lth"]},
            }
        )
    )
    overlay.write_text(
        yaml.safe_dump({"experiment": {"seeds": [0]}, "study": {"pairs": ["digits/lenet_300_100"]}})
    )
    assert read_yamls([base, overlay]) == {
        "experiment": {"name": "b", "seeds": [0]},
        "training": {"epochs": 3},
        "study": {"pairs": ["digits/lenet_300_100"], "methods": ["lth"]},
    }
    assert main(["plan", "--configfile", str(base), str(overlay)]) == 0
    rows = [
        line
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| dense") or line.startswith("| imp")
    ]
    assert [r.split("|")[2].strip() for r in rows] == ["digits/lenet_300_100"] * 2
    assert all(
        r.split("|")[4].strip() == "1" for r in rows
    )  # one seed: the overlay's list replaced the base's
