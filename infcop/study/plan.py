"""`infcop plan`: what a study costs before it runs, per job and in total.

Training FLOPs follow the harness's own convention (infcop/core/costs.py): a training sample costs
3F, F being the mask-aware forward FLOPs of the conv and linear layers. Per job:

* upper bound: every level trains to its cap (a fixed-epoch method: its budget) at the dense F. No
  mask can cost more, and it is what dense GPU kernels execute whatever the mask.
* expected: every level trains to its cap at the F of the mask the method is expected to reach at
  that level: its own pruner applied level after level to a Gaussian stand-in for the weights
  (exact for per-layer and random pruning, an estimate for global magnitude and PQ-index pruning,
  whose masks depend on the trained weights). An adaptive rule that stops early costs less.

Dataset sizes are the official ones (infcop.core.data.DATASET_SIZES), so no file need be present;
evaluation passes and the criteria's probe measurements are not counted (the validation pass after
each epoch adds about val_fraction / 3 of the training FLOPs), but the as-released flow criteria's
forward sweeps over the whole training split are: F per sample at every check up to the cap, and
once for their reference at the dense F (docs/method.md §7b). GPU-hours = FLOPs / throughput, the
throughput given in FLOPs/s or read from `infcop bench` (its measured samples/s x 3F of that model).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from infcop.foundations.config import Config, ConfigError
from infcop.core.costs import forward_flops, output_positions
from infcop.core.data import PRUNE_STREAM, level_draw_generator, split_sizes
from infcop.core.masks import full_mask
from infcop.core.models import build_model, output_layer_name, prunable_layers
from infcop.core.pruners import Pruner
from infcop.criteria import Stopper
from infcop.methods import BuildContext
from infcop.engine.spec import resolve_variant

SURROGATE_WEIGHTS = 200_000  # stand-in weights the pruners run on, spread over the layers by size
SMALL_LAYER = 1_000  # layers up to this size keep their exact size in the stand-in


@dataclass(frozen=True)
class JobCost:
    rule: str  # dense, imp or diagnose
    pair: str
    method: str  # "" for dense
    seeds: int  # jobs of this kind: one per seed
    flops_max: float  # per job
    flops_expected: float


@dataclass(frozen=True)
class PairModel:
    """A pair's model as the plan needs it: output positions and weights per prunable layer."""

    positions: tuple[tuple[str, int], ...]
    numel: tuple[tuple[str, int], ...]
    output_layer: str

    @property
    def dense_flops(self) -> float:
        numel = dict(self.numel)
        return float(sum(2 * numel[n] * p for n, p in self.positions))


def pair_model(cfg: Config) -> PairModel:
    shape, classes, *_ = split_sizes(cfg.data)
    torch.manual_seed(0)
    model = build_model(
        cfg.model.name, shape, classes, pretrained=False
    )  # the plan never downloads weights
    positions = output_positions(model, shape)
    dense = forward_flops(positions, full_mask(model))
    layers = prunable_layers(model)
    out = PairModel(
        tuple(positions.items()),
        tuple((n, m.weight.numel()) for n, m in layers.items()),
        output_layer_name(model),
    )
    assert math.isclose(out.dense_flops, dense)
    return out


@lru_cache(maxsize=None)
def expected_level_flops(model: PairModel, pruner: Pruner, levels: int) -> tuple[float, ...]:
    """Forward FLOPs per sample after each of `levels` prunings by `pruner` of a
    Gaussian stand-in."""
    numel, positions = dict(model.numel), dict(model.positions)
    scale = max(1.0, sum(numel.values()) / SURROGATE_WEIGHTS)
    g = torch.Generator().manual_seed(0)
    weights = {
        n: torch.randn(max(min(k, SMALL_LAYER), round(k / scale)), generator=g, dtype=torch.float64)
        for n, k in numel.items()
    }
    mask = {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}
    out = []
    for level in range(1, levels + 1):
        mask = pruner.next_mask(
            weights, mask, generator=level_draw_generator(0, level, PRUNE_STREAM, cap=0)
        )
        out.append(
            sum(2.0 * positions[n] * numel[n] * float(mask[n].double().mean()) for n in numel)
        )
    return tuple(out)


def plan_pair(pair: str, cfg: Config) -> list[JobCost]:
    """Dense, IMP and diagnostic jobs of one dataset x model, each priced for one seed."""
    _, _, n_train, _, _ = split_sizes(cfg.data)
    tc, levels, seeds = cfg.training, cfg.pruning.levels, len(cfg.experiment.seeds)
    model = pair_model(cfg)
    ctx = BuildContext.priced(cfg, n_train, model.output_layer)
    dense = tc.epochs * n_train * 3 * model.dense_flops
    jobs = [JobCost("dense", pair, "", seeds, dense, dense)]
    for rule, names in (
        ("imp", [e.name for e in cfg.study.methods]),
        ("diagnose", list(cfg.study.diagnose)),
    ):
        for name in names:
            variant = resolve_variant(cfg, name)
            spec = variant.method.build(ctx, variant.params)
            per_epoch = spec.stopper.cap * n_train * 3
            expected = expected_level_flops(model, spec.pruner, levels)
            checks, once = sweep_samples(spec.stopper, n_train, cfg.stopping.check_every)
            jobs.append(
                JobCost(
                    rule,
                    pair,
                    name,
                    seeds,
                    (levels * (per_epoch + checks) + once) * model.dense_flops,
                    (per_epoch + checks) * sum(expected) + once * model.dense_flops,
                )
            )
    return jobs


def sweep_samples(stopper: Stopper, n_train: int, check_every: int) -> tuple[int, int]:
    """Forward samples of the criteria's training-split sweeps (the as-released flows): per level,
    at every check up to the cap, and once per run for their reference on the dense network."""
    samples = [c.training_split_samples(n_train) for c in stopper.criteria]
    per_check, once = sum(s for s, _ in samples), sum(s for _, s in samples)
    return stopper.cap // check_every * per_check, once


def plan_study(pair_cfgs: dict[str, Config]) -> list[JobCost]:
    return [job for pair, cfg in pair_cfgs.items() for job in plan_pair(pair, cfg)]


def bench_throughput(path: Path, model_name: str, tuned: bool = False) -> float:
    """Training FLOPs/s that `infcop bench` measured for `model_name` (e.g. resnet18@224): its
    samples/s x 3 x that model's dense F (GPU kernels run dense whatever the mask). `tuned`: of the
    bf16 + channels-last path (`infcop bench --device cuda` measures it beside the plain one)."""
    from infcop.study.bench import FULL_MODELS

    try:
        models = json.loads(Path(path).read_text())["models"]
    except (OSError, ValueError, KeyError) as err:
        raise ConfigError(
            f"--bench {path}: not a bench.json written by `infcop bench` ({err})"
        ) from err
    if model_name not in models or model_name not in FULL_MODELS:
        full = ", ".join(m for m in models if m in FULL_MODELS)
        raise ConfigError(
            f"--bench-model {model_name!r}: {path} measured {', '.join(models)}; pick one of "
            f"{full or 'none (run infcop bench without --quick)'}"
        )
    shape = FULL_MODELS[model_name]
    model = build_model(model_name.split("@")[0], shape, 10)
    flops = forward_flops(output_positions(model, shape), full_mask(model))
    measured = models[model_name]
    if tuned and "tuned_samples_per_s" not in measured:
        raise ConfigError(
            f"--bench {path}: measured no tuned path (bf16, channels-last) for {model_name}, which "
            "this bf16 study trains on; run `infcop bench --device cuda`"
        )
    return measured["tuned_samples_per_s" if tuned else "harness_samples_per_s"] * 3 * flops


def format_plan(jobs: list[JobCost], flops_per_second: float | None, source: str = "") -> str:
    hours = (
        (lambda f: f"{f / flops_per_second / 3600:.4g}") if flops_per_second else (lambda f: "-")
    )
    lines = [
        "| rule | pair | method | jobs | FLOPs max / job | FLOPs expected / job | GPU-h max | "
        "GPU-h expected |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for j in jobs:
        lines.append(
            f"| {j.rule} | {j.pair} | {j.method} | {j.seeds} | {j.flops_max:.4g} | "
            f"{j.flops_expected:.4g} | {hours(j.seeds * j.flops_max)} | "
            f"{hours(j.seeds * j.flops_expected)} |"
        )
    total_max = sum(j.seeds * j.flops_max for j in jobs)
    total_expected = sum(j.seeds * j.flops_expected for j in jobs)
    lines.append(
        f"| **total** | | | {sum(j.seeds for j in jobs)} | {total_max:.4g} | {total_expected:.4g} "
        f"| {hours(total_max)} | {hours(total_expected)} |"
    )
    rate = (
        f"at {flops_per_second:.4g} training FLOPs/s{f' ({source})' if source else ''}"
        if flops_per_second
        else "no throughput given (--flops-per-second or --bench)"
    )
    lines += [
        "",
        "Training FLOPs (3F per sample, every level to its cap; max: at the dense F, "
        "expected: at the F of each level's expected mask), plus the as-released flow "
        f"rules' training-split sweeps (F per sample). GPU-hours {rate}; the GPU-h "
        "columns count every job of the row (jobs = seeds).",
    ]
    return "\n".join(lines)
