"""`infcop bench`: the harness's own speed, measured side by side in one process.

* loop ratio: samples/s of the harness's mask-aware epoch (`train.train_epoch`) over a minimal
  hand-written loop on the same model, data tensors, optimizer and masks. Repetitions alternate
  (harness, bare, harness, ...) and each side keeps its median, because the machine is shared.
* monitoring overhead: one information-flow / gradient-flow measurement at the default probe size
  over one training epoch, and as a function of probe size.
* probe-size stability: the spread over probe seeds of ‖Δ − Δ*‖ (Δ* from a large probe) for a
  trained network, per probe size: where it flattens is where a larger probe stops paying.
* run share: monitoring seconds / training seconds over a complete InfCoP run.
* peak memory per model (CUDA: allocator peak; CPU: process high-water mark after the model).
"""
from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from infcop.config import DataConfig, StoppingConfig
from infcop.spec import load_run_config
from infcop.core.costs import Costs
from infcop.core.data import Splits, epoch_generator, load_splits
from infcop.core.flows import Probe, distance, gradient_flow, information_flow
from infcop.core.masks import MaskedWeights, full_mask
from infcop.core.models import build_model, prunable_layers
from infcop.core.pruners import MagnitudeGlobal
from infcop.provenance import provenance
from infcop.storage import atomic_write_json, atomic_write_text
from infcop.core.sgd import SGD
from infcop.core.train import Trainer, evaluate, synchronize

QUICK_MODELS = {"lenet_300_100": "digits", "conv_small": "digits", "cnn1d": "mnist1d"}
FULL_MODELS = {"cifar_resnet20": (3, 32, 32), "cifar_vgg16": (3, 32, 32), "resnet18": (3, 32, 32),
               "resnet18@224": (3, 224, 224)}
PROBE_SIZES = (32, 64, 128, 256, 512)
DEFAULT_PROBE = StoppingConfig.probe_size


def synthetic_splits(shape: tuple[int, ...], n: int, device: torch.device, classes: int = 10) -> Splits:
    g = torch.Generator().manual_seed(0)
    x = torch.randn((n, *shape), generator=g).to(device)
    y = torch.randint(0, classes, (n,), generator=g).to(device)
    return Splits(x, y, x[:256], y[:256], x[:256], y[:256], classes, False, 0)


def bare_epoch(model, opt: SGD, x: torch.Tensor, y: torch.Tensor, batch: int, masks: list, weights: list,
               g: torch.Generator) -> None:
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


def bench_model(name: str, splits: Splits, device: torch.device, reps: int, batch: int = 64) -> dict:
    torch.manual_seed(0)
    model = build_model(name.split("@")[0], splits.input_shape, splits.num_classes).to(device)
    mask = MagnitudeGlobal(fraction=0.5).next_mask({n: m.weight for n, m in prunable_layers(model).items()},
                                                   full_mask(model))
    masked = MaskedWeights(model, mask)
    masked.apply()
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    n = len(splits.y_train)
    trainer = Trainer(model, opt, splits, batch, 1.0, Costs(), masked)
    harness = lambda i: trainer.train_epoch(lambda s: 0.01, 0, epoch_generator(0, 1, i))  # noqa: E731
    bare = lambda i: bare_epoch(model, opt, splits.x_train, splits.y_train, batch, masked.masks,  # noqa: E731
                                masked.weights, epoch_generator(0, 1, i))
    harness(0), bare(0)  # warm-up
    t_harness, t_bare = [], []
    for i in range(reps):
        t_harness.append(_timed(lambda: harness(i + 1), device))
        t_bare.append(_timed(lambda: bare(i + 1), device))
    epoch_s = statistics.median(t_harness)
    out = {"train_samples": n, "batch_size": batch, "epoch_seconds": epoch_s,
           "harness_samples_per_s": n / epoch_s, "bare_samples_per_s": n / statistics.median(t_bare),
           "loop_ratio": statistics.median(t_bare) / epoch_s, "monitor_overhead_if_by_probe": {},
           "monitor_overhead_gf_by_probe": {}}
    for size in PROBE_SIZES:
        size = min(size, n)
        probe = Probe(splits.x_train[:size], splits.y_train[:size], 256, splits)
        t_if = statistics.median(_timed(lambda: information_flow(model, probe), device) for _ in range(reps))
        t_gf = statistics.median(_timed(lambda: gradient_flow(model, probe, mask), device) for _ in range(reps))
        out["monitor_overhead_if_by_probe"][size] = t_if / epoch_s
        out["monitor_overhead_gf_by_probe"][size] = t_gf / epoch_s
    default = min(DEFAULT_PROBE, n)
    out["monitor_overhead_if"] = out["monitor_overhead_if_by_probe"][default]
    out["monitor_overhead_gf"] = out["monitor_overhead_gf_by_probe"][default]
    out["peak_memory_mb"] = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
                             else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def probe_stability(device: torch.device, seeds: int = 8) -> dict:
    """Spread over probe seeds of ‖Δ − Δ*‖ for lenet_300_100 trained on digits, per probe size."""
    splits = load_splits(DataConfig(dataset="digits"), device)
    torch.manual_seed(0)
    model = build_model("lenet_300_100", splits.input_shape, splits.num_classes).to(device)
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    for epoch in range(8):
        Trainer(model, opt, splits, 64, 1.0, Costs()).train_epoch(lambda s: 0.05, 0, epoch_generator(0, 0, epoch))
    n = len(splits.y_train)
    reference = {agg: information_flow(model, Probe(splits.x_train, splits.y_train, 512, splits), agg)
                 for agg in ("signed", "absolute")}
    out: dict = {"model": "lenet_300_100", "dataset": "digits", "reference_probe": n, "seeds": seeds,
                 "val_acc": evaluate(model, splits.x_val, splits.y_val, splits, 1024, 1.0, Costs())}
    for agg in ("signed", "absolute"):
        rows = {}
        for size in PROBE_SIZES:
            d = []
            for s in range(seeds):
                idx = torch.randperm(n, generator=epoch_generator(s, 99)).to(device)[:size]
                d.append(distance(information_flow(model, Probe(splits.x_train[idx], splits.y_train[idx], 512, splits), agg),
                                  reference[agg]))
            rows[size] = {"mean": float(np.mean(d)), "sd": float(np.std(d, ddof=1))}
        out[agg] = rows
    return out


def run_share(device: torch.device, results_dir: Path) -> dict:
    from infcop.engine.imp import run_imp

    cfg = load_run_config("configs/default.yaml" if Path("configs/default.yaml").exists() else None,
                      [f"experiment.results_dir={results_dir}", "experiment.name=bench", "pruning.levels=3",
                       "tracking.mode=disabled", f"experiment.device={device.type}", "experiment.seeds=[0]"])
    share = {}
    for method in ("infcop_if", "infcop_gf"):
        t = run_imp(cfg, method, 0).totals
        share[method] = {"monitor_seconds": t.monitor_seconds, "train_seconds": t.train_seconds,
                         "monitor_over_train": t.monitor_seconds / t.train_seconds}
    return share


def run_bench(quick: bool, device_name: str, out_dir: Path) -> dict:
    device = torch.device(device_name)
    reps = 5 if quick else 9
    models: dict[str, dict] = {}
    for name, dataset in QUICK_MODELS.items():
        splits = load_splits(DataConfig(dataset=dataset, mnist1d_samples=3000), device)  # as the default study
        models[name] = bench_model(name, splits, device, reps)
    if not quick:
        for name, shape in FULL_MODELS.items():
            models[name] = bench_model(name, synthetic_splits(shape, 1024 if shape[-1] > 32 else 4096, device),
                                       device, reps, batch=64 if shape[-1] > 32 else 128)
    result = {"quick": quick, "device": str(device), "cpu_cores": os.cpu_count(),
              "machine": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
              "provenance": provenance(device), "default_probe_size": DEFAULT_PROBE, "models": models,
              "probe_stability": probe_stability(device), "run_share": run_share(device, out_dir / "runs")}
    atomic_write_json(out_dir / "bench.json", result)
    atomic_write_text(out_dir / "bench.md", markdown(result))
    return result


def markdown(r: dict) -> str:
    lines = [f"Device `{r['device']}`, {r['cpu_cores']} CPU cores, torch threads {r['torch_threads']}, "
             f"{'quick' if r['quick'] else 'full'} mode; medians of alternating repetitions.", "",
             "| model | harness samples/s | bare samples/s | loop_ratio | IF / epoch | GF / epoch | peak MB |",
             "|---|---|---|---|---|---|---|"]
    for name, m in r["models"].items():
        lines.append(f"| {name} | {m['harness_samples_per_s']:.0f} | {m['bare_samples_per_s']:.0f} | {m['loop_ratio']:.3f} | "
                     f"{m['monitor_overhead_if']:.3f} | {m['monitor_overhead_gf']:.3f} | {m['peak_memory_mb']:.0f} |")
    lines += ["", "Monitoring overhead by probe size (measurement time / epoch time):", "",
              "| model | " + " | ".join(f"IF@{s}" for s in PROBE_SIZES) + " | " + " | ".join(f"GF@{s}" for s in PROBE_SIZES) + " |",
              "|---|" + "---|" * (2 * len(PROBE_SIZES))]
    for name, m in r["models"].items():
        cells = [f"{v:.3f}" for v in m["monitor_overhead_if_by_probe"].values()] + \
                [f"{v:.3f}" for v in m["monitor_overhead_gf_by_probe"].values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    ps = r["probe_stability"]
    lines += ["", f"Probe-size stability ({ps['model']} on {ps['dataset']}, {ps['seeds']} probe seeds, Δ* on all "
              f"{ps['reference_probe']} training samples): mean ± sd of ‖Δ − Δ*‖", "",
              "| aggregation | " + " | ".join(str(s) for s in PROBE_SIZES) + " |", "|---|" + "---|" * len(PROBE_SIZES)]
    for agg in ("signed", "absolute"):
        lines.append(f"| {agg} | " + " | ".join(f"{v['mean']:.4f} ± {v['sd']:.4f}" for v in ps[agg].values()) + " |")
    lines += ["", "Monitoring share of a complete run (digits / lenet_300_100, 3 levels): " + ", ".join(
        f"{m}: {v['monitor_over_train']:.3f}" for m, v in r["run_share"].items()), ""]
    return "\n".join(lines)
