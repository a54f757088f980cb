"""`infcop bench --quick` as a smoke test: its structure, never its timings (a shared machine can
push any timing ratio anywhere; speed is the bench's to report, not a test's to assert)."""

import json
import math
import subprocess
import sys

from pathlib import Path

import pytest
import yaml

from infcop.study.bench import TRUSTED_SPREAD, paired_ratio

REPO = Path(__file__).resolve().parents[1]


def test_paired_ratio_is_the_median_of_per_pair_ratios_and_ignores_one_disturbed_pair():
    # pair 3 was disturbed (the harness side took 10x): the median of ratios is
    # unmoved, the IQR narrow
    r = paired_ratio([2.0, 2.0, 2.0, 20.0, 2.0], [1.0, 1.0, 1.0, 1.0, 1.0])
    assert r["median"] == 2.0 and r["iqr"] == [2.0, 2.0] and r["pairs"] == 5 and r["trusted"]


def test_paired_ratio_marks_a_wide_spread_or_too_few_pairs_untrusted():
    wide = paired_ratio([1.0, 2.0, 3.0, 4.0, 5.0], [1.0] * 5)  # ratios 1..5: IQR [2, 4] around 3
    assert wide["median"] == 3.0 and wide["iqr"] == [2.0, 4.0] and not wide["trusted"]
    assert 2.0 > TRUSTED_SPREAD * 3.0
    assert not paired_ratio([1.0] * 4, [1.0] * 4)[
        "trusted"
    ]  # 4 pairs: too few to call a median robust


@pytest.mark.slow
def test_bench_quick_describes_the_study_and_writes_json_and_table(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "infcop.cli", "-q", "bench", "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads((tmp_path / "bench.json").read_text())
    study = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    assert list(r["models"]) == study["study"]["pairs"]
    recipes = study["per_model"]
    for pair, m in r["models"].items():
        model = pair.split("/")[1]
        want_batch = (
            recipes.get(model, {})
            .get("training", {})
            .get("batch_size", study["training"]["batch_size"])
        )
        assert m["batch_size"] == want_batch and m["threads"] == 1, "measured as a study job runs"
        assert m["peak"]["flops_per_s"] > 0 and m["peak"]["dtype"] == "float32"
        assert math.isfinite(m["loop_ratio"]) and m["loop_ratio"] > 0
        assert m["loop_ratio_iqr"][0] <= m["loop_ratio"] <= m["loop_ratio_iqr"][1]
        assert m["epoch_seconds_iqr"][0] <= m["epoch_seconds"] <= m["epoch_seconds_iqr"][1]
        assert isinstance(m["loop_ratio_trusted"], bool) and isinstance(
            m["monitor_overhead_gf_trusted"], bool
        )
        # same work on both sides, so the FLOP/s figures stand in the ratio of the samples/s figures
        assert m["harness_fraction_of_peak"] / m["bare_fraction_of_peak"] == pytest.approx(
            m["harness_samples_per_s"] / m["bare_samples_per_s"]
        )
        assert (
            m["monitor_overhead_if"] > 0
            and m["monitor_overhead_gf"] > 0
            and m["peak_memory_mb"] > 0
        )
        assert set(m["monitor_overhead_if_by_probe"]) == {"32", "64", "128", "256", "512"}
        assert "tuned_speedup" not in m, "the tuned path is a GPU path"
    for agg in ("signed", "absolute"):
        spread = r["probe_stability"][agg]
        assert spread["512"]["mean"] <= spread["32"]["mean"]  # a larger probe lands closer to Δ*
    assert r["run_share"]["infcop_if"]["monitor_over_train"] > 0
    assert (
        "loop_ratio" in (tmp_path / "bench.md").read_text()
        and "| digits/lenet_300_100 | 64 |" in out.stdout
    )


def test_tuned_path_is_timed_beside_the_plain_one():
    """bf16 autocast exists on CPU: the tuned side runs there too (its speed is a GPU question)."""
    import torch

    from infcop.study.bench import bench_model, synthetic_splits

    r = bench_model(
        "conv_small",
        synthetic_splits((1, 8, 8), 64, torch.device("cpu")),
        torch.device("cpu"),
        reps=2,
        batch=32,
        tuned=True,
    )
    assert r["tuned_samples_per_s"] > 0 and r["tuned_speedup"] > 0 and r["mfu"] > 0
    assert r["mfu"] == pytest.approx(r["tuned_flops_per_s"] / r["peak"]["flops_per_s"])


@pytest.mark.slow  # ResNet-18 at 224x224 on CPU: about a minute
def test_full_mode_models_run_on_synthetic_tensors():
    """The full mode's models go through the same measurement on synthetic data (tiny here)."""
    import torch

    from infcop.study.bench import FULL_MODELS, bench_model, synthetic_splits

    for name in ("cifar_resnet20", "resnet18@224"):
        splits = synthetic_splits(FULL_MODELS[name], 32, torch.device("cpu"))
        r = bench_model(name, splits, torch.device("cpu"), reps=1, batch=16)
        assert r["train_samples"] == 32 and r["loop_ratio"] > 0 and r["monitor_overhead_gf"] > 0


def test_plan_prices_the_tuned_gpu_overlay_from_the_tuned_throughput(tmp_path):
    """configs/paper_gpu.yaml trains in bf16 with channels-last: `infcop plan` reads the
    bench's tuned samples/s for it (cli.cmd_plan passes tuned=True for a bf16 study), and
    refuses a bench without."""
    from infcop.engine.spec import study_configs
    from infcop.foundations.config import ConfigError, read_yamls
    from infcop.study.plan import bench_throughput

    configs = study_configs(
        read_yamls([REPO / "configs" / "paper.yaml", REPO / "configs" / "paper_gpu.yaml"])
    )
    assert all(
        c.training.bf16 and c.training.channels_last and not c.training.compile
        for c in configs.values()
    )
    assert {c.experiment.name for c in configs.values()} == {"paper_gpu"}
    bench = tmp_path / "bench.json"
    bench.write_text(
        json.dumps(
            {
                "models": {
                    "resnet18@224": {"harness_samples_per_s": 100.0, "tuned_samples_per_s": 250.0}
                }
            }
        )
    )
    assert bench_throughput(bench, "resnet18@224", tuned=True) == 2.5 * bench_throughput(
        bench, "resnet18@224"
    )
    bench.write_text(json.dumps({"models": {"resnet18@224": {"harness_samples_per_s": 100.0}}}))
    with pytest.raises(ConfigError, match="no tuned path"):
        bench_throughput(bench, "resnet18@224", tuned=True)
