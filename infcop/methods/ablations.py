"""Ablations of InfCoP: each changes one part of it (the reset, the stopping rule, the budget) to
locate where its speedup comes from. Every ablation exists in both pairings (`acc_target` /
`acc_target_pq`, ...), so the authors' PQ-index InfCoP has its ablations on its
own density schedule.

The budget-matched controls (`budget_matched_if`, ...) retrain each level for exactly the epochs the
InfCoP run they mirror used there (read from its record at the same seed), with the LR annealed to 0
within that budget: same pruner, same rewind, same epochs, no criterion. If InfCoP is not more
accurate than its control, its choice of *when* to stop adds nothing to the budget it ends up with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from infcop.foundations.config import NAME_PATTERN, ConfigError, dense_hash
from infcop.foundations.paths import study_dir
from infcop.foundations.storage import read_json
from infcop.core.pruners import Pruner
from infcop.core.resets import AnnealedWithin, ResetToInit, RewindTo
from infcop.core.schedule import ANNEAL_FORMS
from infcop.criteria import FixedEpochs, Stopper
from infcop.criteria.accuracy import AccuracyTarget
from infcop.criteria.gradient_flow import GradientFlow
from infcop.criteria.information_flow import InformationFlow
from infcop.methods import (
    BuildContext,
    MethodSpec,
    Role,
    fraction_schedule,
    magnitude,
    pq_index,
    pq_schedule,
    register_method,
)
from infcop.methods.infcop import (
    GFParams,
    GFPQParams,
    IFParams,
    IFPQParams,
    PQSettings,
    infcop_spec,
)


@register_method(
    "infcop_if_init",
    params=IFParams,
    role=Role.ABLATION,
    schedule=fraction_schedule,
    ablates=("infcop_if",),
)
def infcop_if_init(ctx: BuildContext, p: IFParams) -> MethodSpec:
    """Ablation: InfCoP-IF with reset to θ₀, so the reset cannot carry accuracy."""
    return infcop_spec(ctx, InformationFlow(p.epsilon), magnitude(ctx), ResetToInit())


@register_method(
    "infcop_gf_init",
    params=GFParams,
    role=Role.ABLATION,
    schedule=fraction_schedule,
    ablates=("infcop_gf",),
)
def infcop_gf_init(ctx: BuildContext, p: GFParams) -> MethodSpec:
    """Ablation: InfCoP-GF with reset to θ₀."""
    return infcop_spec(ctx, GradientFlow(p.epsilon), magnitude(ctx), ResetToInit())


@dataclass(frozen=True)
class AccTargetParams:
    hash_name: ClassVar[str] = "NoParams"  # τ = 0 is the rule acc_target always was: same run ids
    tolerance: float = field(
        default=0.0,
        metadata={"min": 0.0, "lt": 1.0, "doc": "τ: stop at validation accuracy ≥ dense best − τ"},
    )


@dataclass(frozen=True)
class FixedParams:
    hash_name: ClassVar[str] = (
        "NoParams"  # unset is the budget fixed_same_reset always trained: same run ids
    )
    epochs: int | None = field(
        default=None, metadata={"min": 1, "doc": "epochs per level; unset: the cap"}
    )


@register_method(
    "acc_target", params=AccTargetParams, role=Role.ABLATION, schedule=fraction_schedule
)
def acc_target(ctx: BuildContext, p: AccTargetParams) -> MethodSpec:
    """Ablation: InfCoP's pruner and reset, stop when validation accuracy ≥ dense best − τ (or cap)."""
    reset = RewindTo()
    return MethodSpec(magnitude(ctx), reset, Stopper([AccuracyTarget(p.tolerance)], ctx.cap(reset)))


@register_method(
    "fixed_same_reset", params=FixedParams, role=Role.ABLATION, schedule=fraction_schedule
)
def fixed_same_reset(ctx: BuildContext, p: FixedParams) -> MethodSpec:
    """Ablation: InfCoP's pruner and reset, trained a fixed number of epochs (default InfCoP's cap: what the
    reset alone saves; with the default cap this is wr, T − t epochs after the rewind)."""
    reset = RewindTo()
    budget = ctx.budget(reset)
    if p.epochs is not None and p.epochs > budget and ctx.cfg.training.schedule == "cosine":
        raise ConfigError(
            f"fixed_same_reset params.epochs: {p.epochs} epochs run past the end of the cosine LR "
            f"schedule, which has {budget} epoch(s) left after the rewind; the extra epochs would "
            f"train at LR 0. Set epochs <= {budget}."
        )
    return MethodSpec(magnitude(ctx), reset, FixedEpochs(p.epochs or ctx.cap(reset)))


@register_method(
    "infcop_if_pq_init",
    params=IFPQParams,
    role=Role.ABLATION,
    schedule=pq_schedule,
    ablates=("infcop_if_pq",),
)
def infcop_if_pq_init(ctx: BuildContext, p: IFPQParams) -> MethodSpec:
    """Ablation: InfCoP-IF with PQ-index pruning and reset to θ₀."""
    return infcop_spec(ctx, InformationFlow(p.epsilon), pq_index(ctx, p), ResetToInit())


@register_method(
    "infcop_gf_pq_init",
    params=GFPQParams,
    role=Role.ABLATION,
    schedule=pq_schedule,
    ablates=("infcop_gf_pq",),
)
def infcop_gf_pq_init(ctx: BuildContext, p: GFPQParams) -> MethodSpec:
    """Ablation: InfCoP-GF with PQ-index pruning and reset to θ₀."""
    return infcop_spec(ctx, GradientFlow(p.epsilon), pq_index(ctx, p), ResetToInit())


@register_method("acc_target_pq", params=PQSettings, role=Role.ABLATION, schedule=pq_schedule)
def acc_target_pq(ctx: BuildContext, p: PQSettings) -> MethodSpec:
    """Ablation: acc_target with PQ-index pruning (the pairing of the infcop_*_pq variants)."""
    reset = RewindTo()
    return MethodSpec(pq_index(ctx, p), reset, Stopper([AccuracyTarget()], ctx.cap(reset)))


@register_method("fixed_same_reset_pq", params=PQSettings, role=Role.ABLATION, schedule=pq_schedule)
def fixed_same_reset_pq(ctx: BuildContext, p: PQSettings) -> MethodSpec:
    """Ablation: fixed_same_reset with PQ-index pruning, trained to the infcop_*_pq cap."""
    reset = RewindTo()
    return MethodSpec(pq_index(ctx, p), reset, FixedEpochs(ctx.cap(reset)))


# ---------------------------------------------------------------- the budget-matched control
_MIRROR_DOC = (
    "the study's run (method or variant name) whose epochs per level this control "
    "retrains; unset: the InfCoP method it ablates"
)
_FORM_DOC = "how the LR falls to 0 within each level's budget"


@dataclass(frozen=True)
class MirrorParams:
    mirror: str | None = field(
        default=None, metadata={"run": True, "pattern": NAME_PATTERN, "doc": _MIRROR_DOC}
    )
    form: str = field(default="linear", metadata={"choices": ANNEAL_FORMS, "doc": _FORM_DOC})


@dataclass(frozen=True)
class MirrorPQParams(PQSettings, MirrorParams):
    pass


@dataclass(frozen=True)
class PerLevelBudget(MethodSpec):
    """A method that retrains level k for `epochs[k - 1]` epochs, its LR annealed to 0 in them."""

    epochs: tuple[int, ...] = ()
    steps_per_epoch: int = 1
    form: str = "linear"

    def for_level(self, level: int) -> MethodSpec:
        if level > len(self.epochs):
            raise ValueError(
                f"no budget for level {level}: the mirrored run recorded "
                f"{len(self.epochs)} level(s)"
            )
        k = self.epochs[level - 1]
        reset = AnnealedWithin(
            self.reset, epochs=k, steps_per_epoch=self.steps_per_epoch, form=self.form
        )
        return MethodSpec(self.pruner, reset, FixedEpochs(k))


def mirrored_epochs(ctx: BuildContext, mirror: str) -> tuple[int, ...]:
    """Epochs per level of run `mirror` at this run's seed, read from its record."""
    ex = ctx.cfg.experiment
    study = study_dir(ex.results_dir, ex.name)
    path = study.run(ctx.cfg.data.dataset, ctx.cfg.model.name, mirror, ctx.seed).record
    if not path.exists():
        raise ConfigError(
            f"{path}: the record of {mirror!r}, which this budget-matched control "
            "mirrors, does not exist; run it first (the workflow orders it first)"
        )
    record = read_json(path)
    if record["status"] != "complete" or record["dense_config_hash"] != dense_hash(ctx.cfg):
        raise ConfigError(
            f"{path}: {mirror!r} did not complete on this study's dense run "
            f"(status {record['status']}); a budget-matched control needs a complete "
            "run to mirror"
        )
    return tuple(int(level["epochs"]) for level in record["levels"])


def budget_matched(ctx: BuildContext, p: MirrorParams, mirror: str, pruner: Pruner) -> MethodSpec:
    """The mirrored run's pruner and rewind, each level retrained for the epochs the mirrored run
    used there. Built without a seed (to be priced), its budget is the mirrored method's cap."""
    rewind = RewindTo()
    cap = ctx.cap(rewind)
    if ctx.seed is None:
        epochs = (cap,) * ctx.cfg.pruning.levels
    else:
        epochs = mirrored_epochs(ctx, p.mirror or mirror)
    return PerLevelBudget(
        pruner,
        rewind,
        FixedEpochs(max(epochs, default=cap)),
        epochs=epochs,
        steps_per_epoch=ctx.steps_per_epoch,
        form=p.form,
    )


def _register_budget_matched(name: str, mirror: str, pq: bool) -> None:
    params, schedule = (MirrorPQParams, pq_schedule) if pq else (MirrorParams, fraction_schedule)

    def build(ctx: BuildContext, p) -> MethodSpec:
        return budget_matched(ctx, p, mirror, pq_index(ctx, p) if pq else magnitude(ctx))

    build.__doc__ = (
        f"Control: {mirror}'s pruner and rewind, each level retrained for the epochs "
        f"{mirror} used there, the LR annealed to 0 within them: is the saving the "
        "criterion's timing, or the budget alone?"
    )
    build.__qualname__ = f"budget_matched.{name}"
    register = register_method(
        name, params=params, role=Role.ABLATION, schedule=schedule, ablates=(mirror,)
    )
    register(build)


for _mirror in ("infcop_if", "infcop_gf", "infcop_if_pq", "infcop_gf_pq"):
    _register_budget_matched(
        f"budget_matched_{_mirror.removeprefix('infcop_')}", _mirror, pq=_mirror.endswith("_pq")
    )
