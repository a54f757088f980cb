"""`infcop bench`: the harness's own speed, measured side by side in one process, at the settings
the study's jobs run with.

* settings: the quick bench times the default study's pairs at its recipes' batch sizes, with the
  threads a study job gets (STUDY_THREADS: workflow/rules/train.smk gives every training job one).
* loop ratio: samples/s of the harness's mask-aware epoch (`train.train_epoch`) over a minimal
  hand-written loop on the same model, data tensors, optimizer and masks. Repetitions interleave
  (harness, bare, [tuned,] harness, ...); the figure is the median of the per-pair ratios, with its
  interquartile range. The machine may be shared: a figure whose IQR is wider than TRUSTED_SPREAD
  of its median is marked untrusted instead of reported as a result.
* the machine's limit: dense matmul FLOP/s measured just before each model (fp32 1024² on CPU; on
  CUDA bf16 at a saturating size), and each model's training FLOP/s (dense FLOPs the hardware
  executes, masked weights included) as a fraction of it: on CUDA, of the tuned path, the MFU.
* tuned path (CUDA): the harness with bf16 autocast and channels-last,
  interleaved with the plain one.
* monitoring overhead: one information-flow / gradient-flow measurement at the default probe size
  over one training epoch (paired with the epoch timed just before it), and by probe size.
* probe-size stability: the spread over probe seeds of ‖Δ − Δ*‖ (Δ* from a large probe) for a
  trained network, per probe size: where it flattens is where a larger probe stops paying.
* run share: monitoring seconds / training seconds over a complete InfCoP run.
* peak memory per model (CUDA: allocator peak; CPU: process high-water mark after the model).
"""

from __future__ import annotations

import copy
import os
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from infcop.foundations.config import DataConfig, StoppingConfig, read_yaml
from infcop.engine.spec import load_run_config, study_configs
from infcop.core.costs import Costs, forward_flops, output_positions
from infcop.core.data import Splits, epoch_generator, load_splits
from infcop.core.flows import Probe, distance, gradient_flow, information_flow
from infcop.core.masks import MaskedWeights, full_mask
from infcop.core.models import build_model, prunable_layers
from infcop.core.pruners import MagnitudeGlobal
from infcop.foundations.paths import shipped
from infcop.foundations.provenance import provenance
from infcop.foundations.storage import atomic_write_json, atomic_write_text
from infcop.core.sgd import SGD
from infcop.core.threads import configure_threads
from infcop.core.train import Trainer, evaluate, synchronize

STUDY_THREADS = 1  # what workflow/rules/train.smk gives every training job
FULL_MODELS = {
    "cifar_resnet20": (3, 32, 32),
    "cifar_vgg16": (3, 32, 32),
    "resnet18": (3, 32, 32),
    "resnet18@224": (3, 224, 224),
}
PROBE_SIZES = (32, 64, 128, 256, 512)
DEFAULT_PROBE = StoppingConfig.probe_size
TRUSTED_SPREAD = 0.25  # IQR / median above which a paired figure is too noisy to report
MATMUL_SIZE = 1024  # fp32 on CPU: large enough for one thread's peak
GPU_MATMUL_SIZE = 8192  # bf16 on a GPU: large enough to saturate the tensor cores


def study_recipes() -> dict:
    """The default study's pairs, each with its config (its recipe's batch size, its data)."""
    return study_configs(read_yaml(shipped("configs/default.yaml")))


def synthetic_splits(
    shape: tuple[int, ...], n: int, device: torch.device, classes: int = 10
) -> Splits:
    g = torch.Generator().manual_seed(0)
    x = torch.randn((n, *shape), generator=g).to(device)
    y = torch.randint(0, classes, (n,), generator=g).to(device)
    return Splits(x, y, x[:256], y[:256], x[:256], y[:256], classes, False, 0)


def bare_epoch(
    model,
    opt: SGD,
    x: torch.Tensor,
    y: torch.Tensor,
    batch: int,
    masks: list,
    weights: list,
    g: torch.Generator,
) -> None:
    """The reference: forward, loss, backward, step, re-apply masks. Nothing else."""
    model.train()
    for idx in torch.randperm(len(y), generator=g).to(y.device).split(batch):
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            torch._foreach_mul_(weights, masks)


def _timed(fn, device: torch.device) -> float:
    synchronize(device)
    t0 = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - t0


def paired_ratio(numerators: list[float], denominators: list[float]) -> dict:
    """Median of the per-pair ratios, their IQR, and whether the IQR is narrow enough to trust.

    Pairs are timed back to back, so a disturbance hits both sides of a pair rather than one side
    of the whole comparison; the median over pairs then ignores the disturbed ones."""
    ratios = sorted(a / b for a, b in zip(numerators, denominators, strict=True))
    median = statistics.median(ratios)
    q1, _, q3 = (
        statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else (median,) * 3
    )
    return {
        "median": median,
        "iqr": [q1, q3],
        "pairs": len(ratios),
        "trusted": len(ratios) >= 5 and (q3 - q1) <= TRUSTED_SPREAD * median,
    }


def matmul_flops_per_s(
    device: torch.device, dtype: torch.dtype, reps: int, n: int = MATMUL_SIZE
) -> float:
    """The practical dense limit: FLOP/s of an n x n matmul (2n³ FLOPs) at the current threads."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn((n, n), generator=g).to(device=device, dtype=dtype) for _ in range(2))
    a @ b  # warm-up
    return 2 * n**3 / statistics.median(_timed(lambda: a @ b, device) for _ in range(reps))


def device_peak(device: torch.device, reps: int) -> dict:
    """The matmul limit the model figures are divided by: bf16 at a saturating size on CUDA (what
    MFU is quoted against), fp32 at MATMUL_SIZE on CPU."""
    on_gpu = device.type == "cuda"
    dtype, n = (torch.bfloat16, GPU_MATMUL_SIZE) if on_gpu else (torch.float32, MATMUL_SIZE)
    return {
        "dtype": str(dtype).removeprefix("torch."),
        "size": n,
        "flops_per_s": matmul_flops_per_s(device, dtype, reps, n),
    }


def _masked_setup(model, tuned: bool):
    """Model (channels-last when tuned), its mask at density 0.5, applied, and an optimizer."""
    if tuned:
        model = model.to(memory_format=torch.channels_last)
    mask = MagnitudeGlobal(fraction=0.5).next_mask(
        {n: m.weight for n, m in prunable_layers(model).items()}, full_mask(model)
    )
    masked = MaskedWeights(model, mask)
    masked.apply()
    return model, mask, masked, SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)


def bench_model(
    name: str, splits: Splits, device: torch.device, reps: int, batch: int = 64, tuned: bool = False
) -> dict:
    """Harness and bare loop (and, when `tuned`, the harness with bf16 autocast and channels-last)
    timed in interleaved repetitions, with the device's matmul limit measured just before."""
    peak = device_peak(device, reps)
    torch.manual_seed(0)
    model, mask, masked, opt = _masked_setup(
        build_model(name.split("@")[0], splits.input_shape, splits.num_classes).to(device),
        tuned=False,
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    n = len(splits.y_train)
    trainer = Trainer(model, opt, splits, batch, 1.0, Costs(), masked)
    sides = {
        "harness": lambda i: trainer.train_epoch(lambda s: 0.01, 0, epoch_generator(0, 1, i)),
        "bare": lambda i: bare_epoch(
            model,
            opt,
            splits.x_train,
            splits.y_train,
            batch,
            masked.masks,
            masked.weights,
            epoch_generator(0, 1, i),
        ),
    }
    if tuned:
        t_model, _, t_masked, t_opt = _masked_setup(copy.deepcopy(model), tuned=True)
        t_trainer = Trainer(
            t_model, t_opt, splits, batch, 1.0, Costs(), t_masked, bf16=True, channels_last=True
        )
        sides["tuned"] = lambda i: t_trainer.train_epoch(
            lambda s: 0.01, 0, epoch_generator(0, 1, i)
        )
    for run in sides.values():
        run(0)  # warm-up
    times: dict[str, list[float]] = {side: [] for side in sides}
    for i in range(reps):
        for side, run in sides.items():
            times[side].append(_timed(lambda: run(i + 1), device))
    t_harness, t_bare = times["harness"], times["bare"]
    epoch_s = statistics.median(t_harness)
    loop = paired_ratio(t_bare, t_harness)
    # the hardware multiplies masked weights too: its work is the dense FLOPs of a training epoch
    epoch_flops = (
        3 * forward_flops(output_positions(model, splits.input_shape), full_mask(model)) * n
    )
    out = {
        "train_samples": n,
        "batch_size": batch,
        "threads": torch.get_num_threads(),
        "epoch_seconds": epoch_s,
        "epoch_seconds_iqr": _iqr(t_harness),
        "harness_samples_per_s": n / epoch_s,
        "bare_samples_per_s": n / statistics.median(t_bare),
        "loop_ratio": loop["median"],
        "loop_ratio_iqr": loop["iqr"],
        "loop_ratio_trusted": loop["trusted"],
        "harness_flops_per_s": epoch_flops / epoch_s,
        "bare_flops_per_s": epoch_flops / statistics.median(t_bare),
        "peak": peak,
        "monitor_overhead_if_by_probe": {},
        "monitor_overhead_gf_by_probe": {},
    }
    out["harness_fraction_of_peak"] = out["harness_flops_per_s"] / peak["flops_per_s"]
    out["bare_fraction_of_peak"] = out["bare_flops_per_s"] / peak["flops_per_s"]
    if tuned:
        t_tuned = times["tuned"]
        speedup = paired_ratio(t_harness, t_tuned)
        out.update(
            tuned_samples_per_s=n / statistics.median(t_tuned),
            tuned_flops_per_s=epoch_flops / statistics.median(t_tuned),
            tuned_speedup=speedup["median"],
            tuned_speedup_iqr=speedup["iqr"],
            tuned_speedup_trusted=speedup["trusted"],
        )
        out["mfu"] = out["tuned_flops_per_s"] / peak["flops_per_s"]
    default = min(DEFAULT_PROBE, n)
    harness = sides["harness"]
    for size in PROBE_SIZES:
        size = min(size, n)
        probe = Probe(splits.x_train[:size], splits.y_train[:size], 256, splits)
        t_if, t_gf, t_epoch = [], [], []
        for i in range(reps):
            t_epoch.append(_timed(lambda: harness(reps + 1 + i), device))
            t_if.append(_timed(lambda: information_flow(model, probe), device))
            t_gf.append(_timed(lambda: gradient_flow(model, probe, mask), device))
            if size != default:
                break  # one pair per other probe size: the curve's shape, not a headline figure
        for flow, t_flow in (("if", t_if), ("gf", t_gf)):
            ratio = paired_ratio(t_flow, t_epoch)
            out[f"monitor_overhead_{flow}_by_probe"][size] = ratio["median"]
            if size == default:
                out[f"monitor_overhead_{flow}"] = ratio["median"]
                out[f"monitor_overhead_{flow}_iqr"] = ratio["iqr"]
                out[f"monitor_overhead_{flow}_trusted"] = ratio["trusted"]
    out["peak_memory_mb"] = (
        torch.cuda.max_memory_allocated(device) / 2**20
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return out


def _iqr(values: list[float]) -> list[float]:
    if len(values) == 1:
        return [values[0], values[0]]
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return [q1, q3]


def probe_stability(device: torch.device, seeds: int = 8) -> dict:
    """Spread over probe seeds of ‖Δ − Δ*‖ for lenet_300_100 trained on digits, per probe size."""
    splits = load_splits(DataConfig(dataset="digits"), device)
    torch.manual_seed(0)
    model = build_model("lenet_300_100", splits.input_shape, splits.num_classes).to(device)
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    for epoch in range(8):
        Trainer(model, opt, splits, 64, 1.0, Costs()).train_epoch(
            lambda s: 0.05, 0, epoch_generator(0, 0, epoch)
        )
    n = len(splits.y_train)
    reference = {
        agg: information_flow(model, Probe(splits.x_train, splits.y_train, 512, splits), agg)
        for agg in ("signed", "absolute")
    }
    out: dict = {
        "model": "lenet_300_100",
        "dataset": "digits",
        "reference_probe": n,
        "seeds": seeds,
        "val_acc": evaluate(model, splits.x_val, splits.y_val, splits, 1024, 1.0, Costs()),
    }
    for agg in ("signed", "absolute"):
        rows = {}
        for size in PROBE_SIZES:
            d = []
            for s in range(seeds):
                idx = torch.randperm(n, generator=epoch_generator(s, 99)).to(device)[:size]
                d.append(
                    distance(
                        information_flow(
                            model, Probe(splits.x_train[idx], splits.y_train[idx], 512, splits), agg
                        ),
                        reference[agg],
                    )
                )
            rows[size] = {"mean": float(np.mean(d)), "sd": float(np.std(d, ddof=1))}
        out[agg] = rows
    return out


def run_share(device: torch.device, results_dir: Path) -> dict:
    from infcop.engine.imp import run_imp

    cfg = load_run_config(
        "configs/default.yaml" if Path("configs/default.yaml").exists() else None,
        [
            f"experiment.results_dir={results_dir}",
            "experiment.name=bench",
            "pruning.levels=3",
            "tracking.mode=disabled",
            f"experiment.device={device.type}",
            "experiment.seeds=[0]",
        ],
    )
    share = {}
    for method in ("infcop_if", "infcop_gf"):
        t = run_imp(cfg, method, 0).totals
        share[method] = {
            "monitor_seconds": t.monitor_seconds,
            "train_seconds": t.train_seconds,
            "monitor_over_train": t.monitor_seconds / t.train_seconds,
        }
    return share


def run_bench(quick: bool, device_name: str, out_dir: Path, threads: int = STUDY_THREADS) -> dict:
    """Every model at the study's threads and batch sizes; on CUDA the tuned path beside the plain
    one."""
    device = torch.device(device_name)
    configure_threads(threads)
    reps = 5 if quick else 9
    tuned = device.type == "cuda"
    models: dict[str, dict] = {}
    for pair, cfg in study_recipes().items():
        splits = load_splits(cfg.data, device)
        models[pair] = bench_model(
            cfg.model.name, splits, device, reps, batch=cfg.training.batch_size, tuned=tuned
        )
    if not quick:
        for name, shape in FULL_MODELS.items():
            models[name] = bench_model(
                name,
                synthetic_splits(shape, 1024 if shape[-1] > 32 else 4096, device),
                device,
                reps,
                batch=64 if shape[-1] > 32 else 128,
                tuned=tuned,
            )
    result = {
        "quick": quick,
        "device": str(device),
        "cpu_cores": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "provenance": provenance(device),
        "default_probe_size": DEFAULT_PROBE,
        "models": models,
        "probe_stability": probe_stability(device),
        "run_share": run_share(device, out_dir / "runs"),
    }
    atomic_write_json(out_dir / "bench.json", result)
    atomic_write_text(out_dir / "bench.md", markdown(result))
    return result


def _paired_cell(m: dict, key: str) -> str:
    """A paired figure with its IQR, or marked untrusted when the IQR is too wide to report it."""
    q1, q3 = m[f"{key}_iqr"]
    text = f"{m[key]:.3f} [{q1:.3f}, {q3:.3f}]"
    return text if m[f"{key}_trusted"] else f"untrusted: IQR {q1:.3f}-{q3:.3f}"


def markdown(r: dict) -> str:
    tuned = any("tuned_speedup" in m for m in r["models"].values())
    lines = [
        f"Device `{r['device']}`, {r['cpu_cores']} CPU cores, torch threads {r['torch_threads']} "
        f"(as a study job), {'quick' if r['quick'] else 'full'} mode, each model at its study "
        "batch size. Ratios: median [IQR] over interleaved repetitions; a figure whose IQR "
        f"exceeds {TRUSTED_SPREAD:.0%} of its median is marked untrusted (rerun on a quieter "
        "machine). Peak: a dense matmul measured just before each model.",
        "",
        "| model | batch | harness samples/s | bare samples/s | loop_ratio | peak GFLOP/s (dtype, "
        "n) | harness GFLOP/s (of peak) | bare GFLOP/s (of peak) | IF / epoch | GF / epoch | "
        "peak MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in r["models"].items():
        p = m["peak"]
        lines.append(
            f"| {name} | {m['batch_size']} | {m['harness_samples_per_s']:.0f} | "
            f"{m['bare_samples_per_s']:.0f} | {_paired_cell(m, 'loop_ratio')} | "
            f"{p['flops_per_s'] / 1e9:.1f} ({p['dtype']}, {p['size']}) | "
            f"{m['harness_flops_per_s'] / 1e9:.1f} ({m['harness_fraction_of_peak']:.2f}) | "
            f"{m['bare_flops_per_s'] / 1e9:.1f} ({m['bare_fraction_of_peak']:.2f}) | "
            f"{_paired_cell(m, 'monitor_overhead_if')} | {_paired_cell(m, 'monitor_overhead_gf')} "
            f"| {m['peak_memory_mb']:.0f} |"
        )
    if tuned:
        lines += [
            "",
            "Tuned path (bf16 autocast + channels-last) beside the plain harness; MFU = tuned "
            "training FLOP/s over the bf16 matmul peak:",
            "",
            "| model | plain samples/s | tuned samples/s | speedup | MFU |",
            "|---|---|---|---|---|",
        ]
        for name, m in r["models"].items():
            lines.append(
                f"| {name} | {m['harness_samples_per_s']:.0f} | {m['tuned_samples_per_s']:.0f} | "
                f"{_paired_cell(m, 'tuned_speedup')} | {m['mfu']:.3f} |"
            )
    lines += [
        "",
        "Monitoring overhead by probe size (measurement time / epoch time):",
        "",
        "| model | "
        + " | ".join(f"IF@{s}" for s in PROBE_SIZES)
        + " | "
        + " | ".join(f"GF@{s}" for s in PROBE_SIZES)
        + " |",
        "|---|" + "---|" * (2 * len(PROBE_SIZES)),
    ]
    for name, m in r["models"].items():
        cells = [f"{v:.3f}" for v in m["monitor_overhead_if_by_probe"].values()] + [
            f"{v:.3f}" for v in m["monitor_overhead_gf_by_probe"].values()
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    ps = r["probe_stability"]
    lines += [
        "",
        f"Probe-size stability ({ps['model']} on {ps['dataset']}, {ps['seeds']} probe seeds, Δ* on "
        f"all {ps['reference_probe']} training samples): mean ± sd of ‖Δ − Δ*‖",
        "",
        "| aggregation | " + " | ".join(str(s) for s in PROBE_SIZES) + " |",
        "|---|" + "---|" * len(PROBE_SIZES),
    ]
    for agg in ("signed", "absolute"):
        lines.append(
            f"| {agg} | "
            + " | ".join(f"{v['mean']:.4f} ± {v['sd']:.4f}" for v in ps[agg].values())
            + " |"
        )
    lines += [
        "",
        "Monitoring share of a complete run (digits / lenet_300_100, 3 levels): "
        + ", ".join(f"{m}: {v['monitor_over_train']:.3f}" for m, v in r["run_share"].items()),
        "",
    ]
    return "\n".join(lines)
