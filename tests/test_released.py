"""InfCoP's flow criteria as the authors' code computes them (docs/method.md §7b).

Every expected value is written down or computed here directly (numpy, by hand), never by the
harness's own flow code; each test names the released detail it would catch if it changed.
"""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn as nn

from infcop.core.costs import Costs
from infcop.core.data import Splits, epoch_generator, load_splits, train_batches
from infcop.core.flows import FlowReference, ReleasedReference, released_information_flow
from infcop.core.masks import MaskedWeights
from infcop.core.sgd import SGD
from infcop.core.train import Trainer
from infcop.criteria import LevelContext, Stopper
from infcop.criteria.released import ReleasedGradientFlow, ReleasedInformationFlow
from infcop.engine.dense import ensure_dense, seeded_model, warmup_gradient
from infcop.engine.imp import run_imp
from infcop.engine.spec import run_hash
from infcop.foundations.config import ConfigError
from infcop.foundations.storage import ConfigMismatch, load_checkpoint, save_checkpoint
from infcop.methods import get_method

from helpers.kill_resume import without_wall_clock


def splits_of(x, y, classes=2):
    return Splits(x, y, x[:2], y[:2], x[:2], y[:2], classes, False, 0)


def context(model, mask, splits, gradient_ref=None, information_ref=None):
    measure = {}
    n = len(splits.y_train)
    if gradient_ref is not None:
        measure["gradient"] = lambda: (torch.tensor(gradient_ref, dtype=torch.float32), n, 0.0)
    if information_ref is not None:
        measure["information"] = lambda: (torch.tensor(information_ref), n, 0.0)
    released = ReleasedReference(splits, measure)
    ref = FlowReference(np.zeros(1), np.zeros(1), 0.0, 0.0, released=released)
    return LevelContext(
        model=model,
        mask=mask,
        probe=None,
        reference=ref,
        target_val_acc=1.0,
        costs=Costs(),
        flops_per_sample=1.0,
    )


class Shortcut(nn.Module):
    """fc1 and a `downsample` branch in parallel, a norm layer, then fc2."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 2, bias=False)
        self.downsample = nn.Sequential(nn.Linear(3, 2, bias=False))
        self.norm = nn.BatchNorm1d(2)
        self.fc2 = nn.Linear(2, 2)

    def forward(self, x):
        return self.fc2(self.norm(self.fc1(x) + self.downsample(x)))


def test_released_gf_is_norms_over_n_minus_1_of_the_masked_grad_against_reference_means():
    """Layers: every weight with dim > 1 (downsample included, norm weight and biases not); the
    current side is ‖|g ⊙ mask|‖_F summed once per batch and divided by (batches − 1); the
    reference is taken as is."""
    model = Shortcut()
    grads = {
        "fc1.weight": [[3.0, -4.0, 0.0], [0.0, 0.0, 12.0]],
        "downsample.0.weight": [[0.0, 0.0, 0.0], [0.0, 6.0, 8.0]],
        "fc2.weight": [[0.5, 0.0], [0.0, 0.0]],
        "norm.weight": [100.0, 100.0],
        "fc2.bias": [50.0, 50.0],
    }
    for name, p in model.named_parameters():
        p.grad = torch.tensor(grads.get(name, torch.full_like(p, 7.0).tolist()))
    mask = {
        "fc1": torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool),  # prunes the 12
        "downsample.0": torch.ones(2, 3, dtype=torch.bool),
        "fc2": torch.ones(2, 2, dtype=torch.bool),
    }
    splits = splits_of(torch.randn(10, 3), torch.zeros(10, dtype=torch.long))  # 3 batches of <= 4
    # norms: fc1 5 (the 12 masked), downsample 10, fc2 0.5; x 3 batches / (3 - 1); minus the means
    expected = np.sqrt((5 * 1.5 - 1.0) ** 2 + (10 * 1.5 - 2.0) ** 2 + (0.5 * 1.5 - 0.25) ** 2)
    rule = ReleasedGradientFlow(batch_size=4, threshold=14.6)
    ctx = context(model, mask, splits, gradient_ref=[1.0, 2.0, 0.25])
    d = rule.measure(ctx, val_acc=0.0)
    assert d == pytest.approx(expected, rel=1e-6)
    assert float(np.float32(d)) == d  # a float32 distance, as their `.norm().item()`
    assert rule.fires(d) and not ReleasedGradientFlow(4, 14.5).fires(d)  # strict <, ε absolute
    assert ctx.costs.monitor_forward_samples == 10  # the sweep over the training split, charged


def test_released_gf_reads_the_last_minibatch_loss_gradient_without_weight_decay():
    """The `.grad` one training epoch leaves: the cross-entropy gradient of its last minibatch (2 of
    10 samples, batches of 4), before weight decay (λ = 0.5 here), masked. lr = 0 keeps the weights
    fixed, so the gradient can be written down: (softmax(xWᵀ + b) − onehot(y))ᵀ x / 2."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2))
    with torch.no_grad():
        model[0].weight[0, 1] = 0.0
    mask = {"0": torch.tensor([[1, 0, 1], [1, 1, 1]], dtype=torch.bool)}
    x, y = torch.randn(10, 3), torch.tensor([0, 1, 1, 0, 1, 0, 0, 1, 1, 0])
    splits = splits_of(x, y)
    sgd = SGD(model.parameters(), lr=0.0, weight_decay=0.5)
    trainer = Trainer(model, sgd, splits, 4, 1.0, Costs(), MaskedWeights(model, mask))
    trainer.train_epoch(lambda step: 0.0, 0, torch.Generator().manual_seed(5))
    last = torch.randperm(10, generator=torch.Generator().manual_seed(5))[8:].numpy()
    w, b = model[0].weight.detach().double().numpy(), model[0].bias.detach().double().numpy()
    xs, ys = x.double().numpy()[last], y.numpy()[last]
    z = xs @ w.T + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(2), ys] -= 1
    g = (p.T @ xs / 2) * mask["0"].numpy()
    expected = abs(np.linalg.norm(g) * 3 / 2 - 0.01)
    d = ReleasedGradientFlow(batch_size=4).measure(context(model, mask, splits, [0.01]), 0.0)
    assert d == pytest.approx(expected, rel=1e-5)


class Small(nn.Module):
    """conv (output averaged over positions), linear, batch norm, linear: 3 flow layers, 2 ρ."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 2)
        self.fc1 = nn.Linear(8, 3)
        self.norm = nn.BatchNorm1d(3)
        self.fc2 = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc2(self.norm(self.fc1(torch.relu(self.conv(x)).flatten(1))))


def small_outputs(model, x, running_mean, running_var):
    """The three flow layers' outputs, in numpy float32, in eval mode (BN on `running_*`)."""
    f = np.float32
    w, b = model.conv.weight.detach().numpy(), model.conv.bias.detach().numpy()
    conv = np.zeros((len(x), 2, 2, 2), dtype=f)
    for i in range(2):
        for j in range(2):
            conv[:, :, i, j] = np.einsum("nchw,ochw->no", x[:, :, i : i + 2, j : j + 2], w) + b
    param = {n: v.detach().numpy() for n, v in model.named_parameters()}
    fc1 = np.maximum(conv, 0).reshape(len(x), 8) @ param["fc1.weight"].T + param["fc1.bias"]
    bn = (fc1 - running_mean) / np.sqrt(running_var + model.norm.eps) * param[
        "norm.weight"
    ] + param["norm.bias"]
    fc2 = bn @ param["fc2.weight"].T + param["fc2.bias"]
    return [conv.mean((2, 3)), fc1, fc2]


def two_pass_float32(outputs, batch):
    """Their two passes in float32: per-batch sums of a and a², σ = sqrt(E[a²] − μ²) floored at
    1e-6, then C = Σ zᵀz / N per consecutive pair and ρ = mean(C)."""
    f, n = np.float32, len(outputs[0])
    stats = []
    for a in outputs:
        s1 = sum(a[i : i + batch].sum(0, dtype=f) for i in range(0, n, batch))
        s2 = sum((a[i : i + batch] ** 2).sum(0, dtype=f) for i in range(0, n, batch))
        mu = s1 / f(n)
        stats.append((mu, np.maximum(np.sqrt(s2 / f(n) - mu**2), f(1e-6))))
    z = [(a - mu) / sd for a, (mu, sd) in zip(outputs, stats)]
    return np.array([(za.T @ zb / f(n)).mean(dtype=f) for za, zb in zip(z[:-1], z[1:])], dtype=f)


def test_released_if_is_the_float32_two_pass_flow_of_the_whole_training_split():
    torch.manual_seed(1)
    model = Small().eval()
    with torch.no_grad():
        model.norm.running_mean.copy_(torch.tensor([0.1, -0.2, 0.3]))
        model.norm.running_var.copy_(torch.tensor([0.5, 2.0, 1.5]))
    x = torch.randn(10, 1, 3, 3)
    splits = splits_of(x, torch.zeros(10, dtype=torch.long))
    outputs = small_outputs(
        model, x.numpy(), model.norm.running_mean.numpy(), model.norm.running_var.numpy()
    )
    expected = two_pass_float32(outputs, batch=4)
    rho, has_nan = released_information_flow(model, splits, batch_size=4)
    assert rho.dtype == torch.float32 and not has_nan
    np.testing.assert_allclose(rho.numpy(), expected, rtol=1e-4, atol=1e-6)
    ref = [0.3, -0.1]
    rule = ReleasedInformationFlow(batch_size=4)
    d = rule.measure(context(model, {}, splits, information_ref=ref), 0.0)
    assert d == pytest.approx(float(np.linalg.norm(expected - np.float32(ref))), rel=1e-5)
    half = splits_of(x[:5], torch.zeros(5, dtype=torch.long))  # a part of the split gives another ρ
    assert not np.allclose(
        released_information_flow(model, half, 4)[0].numpy(), expected, rtol=1e-3
    )


def test_negative_float32_variance_is_nan_and_never_stops():
    """A layer whose output is the constant 0.7: in float32, E[a²] − μ² < 0 over 10 samples in
    batches of 4 (checked here by hand), so σ is NaN, the 1e-6 floor keeps it (torch.max propagates
    NaN), and the rule records no distance and never stops."""
    f = np.float32
    a = np.full(10, 0.7, dtype=f)
    s1, s2 = f(0), f(0)
    for i in range(0, 10, 4):
        s1, s2 = f(s1 + a[i : i + 4].sum(dtype=f)), f(s2 + (a[i : i + 4] ** 2).sum(dtype=f))
    assert s2 / f(10) - (s1 / f(10)) ** 2 < 0  # the precondition, by hand
    model = nn.Sequential(nn.Linear(1, 1), nn.Linear(1, 2), nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.fill_(0.7)
    splits = splits_of(torch.randn(10, 1), torch.zeros(10, dtype=torch.long))
    _, has_nan = released_information_flow(model, splits, batch_size=4)
    assert has_nan
    rule = ReleasedInformationFlow(batch_size=4, threshold=1e9)
    value = rule.measure(context(model, {}, splits, information_ref=[0.0, 0.0]), 0.0)
    assert value is None and not rule.fires(value)
    assert Stopper([rule], cap=3).decide({rule.key: value}, epoch=1) is None
    assert not rule.fires(float("nan"))  # a NaN reference gives a NaN distance: never stops either


def tiny(make_cfg, *extra):
    return make_cfg(
        "training.momentum=0", "training.schedule=constant", "training.epochs=2", *extra
    )


def test_dense_run_saves_the_last_warmup_minibatch_gradient_before_weight_decay(make_cfg, tmp_path):
    """Rewinding at step 3 saves mean |g| of step 2's minibatch at θ₂. Written down from two dense
    runs that differ only in their rewind point: plain SGD gives g = (θ₂ − θ₃)/lr − λθ₂. A replay
    reproduces the file bit for bit, and a replay that misses the saved rewind weights is
    refused."""
    lr, wd = 0.05, 0.01
    common = (f"training.lr={lr}", f"training.weight_decay={wd}")
    cfg3 = tiny(make_cfg, "training.rewind_point=3it", *common)
    cfg2 = tiny(make_cfg, "training.rewind_point=2it", "experiment.name=t2", *common)
    device = torch.device("cpu")
    d3, d2 = ensure_dense(cfg3, 0, device), ensure_dense(cfg2, 0, device)
    saved = load_checkpoint(d3.dir.warmup_gradient)
    th3, th2 = d3.state("rewind"), d2.state("rewind")
    names = ["1.weight", "3.weight", "5.weight"]  # lenet_300_100: Flatten, then three Linear layers
    assert saved["layers"] == names and saved["step"] == 3
    expected = [
        ((th2[n].double() - th3[n].double()) / lr - wd * th2[n].double()).abs().mean()
        for n in names
    ]
    np.testing.assert_allclose(
        saved["mean_abs"].double().numpy(), torch.stack(expected).numpy(), rtol=2e-3
    )

    d3.dir.warmup_gradient.unlink()
    splits = load_splits(cfg3.data, device)
    replayed = warmup_gradient(cfg3, 0, device, splits, d3)
    assert torch.equal(replayed["mean_abs"], saved["mean_abs"]) and d3.dir.warmup_gradient.exists()
    d3.dir.warmup_gradient.unlink()
    moved = {k: v + 1e-3 for k, v in th3.items()}
    save_checkpoint({"state": moved, "step": 3}, d3.dir.snapshot("rewind"))
    with pytest.raises(ConfigMismatch, match="did not give its saved weights"):
        warmup_gradient(cfg3, 0, device, splits, d3)


def test_released_and_corrected_run_side_by_side_on_one_warmup(make_cfg):
    """One pair and seed: each variant under its own hash, all on the same dense run; the released
    references are right after the warm-up (GF: the saved warm-up means x batches / (batches −
    1))."""
    cfg = tiny(make_cfg, "training.rewind_point=1ep")
    methods = ("infcop_gf", "infcop_gf_released", "infcop_if_released")
    records = {m: run_imp(cfg, m, 0).to_json() for m in methods}
    assert len({r["dense"]["weights_sha256"] for r in records.values()}) == 1
    assert len({r["dense_config_hash"] for r in records.values()}) == 1
    assert len({run_hash(cfg, m) for m in records}) == 3
    gf = records["infcop_gf_released"]
    assert all(lv["measurements"]["gf_released_distance"] for lv in gf["levels"])
    assert "gf_distance" not in gf["levels"][0]["measurements"]
    dense = ensure_dense(cfg, 0, torch.device("cpu"))
    saved = load_checkpoint(dense.dir.warmup_gradient)["mean_abs"].double().numpy()
    n_train = gf["levels"][0]["train_samples"] // gf["levels"][0]["epochs"]
    n_b = -(-n_train // cfg.training.batch_size)
    np.testing.assert_allclose(
        gf["flow_reference"]["released"]["values"]["gradient"], saved * n_b / (n_b - 1), rtol=1e-6
    )
    assert records["infcop_gf"]["flow_reference"].get("released") is None  # a corrected run: never


def test_released_sweeps_are_charged_as_monitoring(make_cfg):
    """Level 1 of GF as released: its reference sweep once, one training-split sweep per check, and
    the validation pass of the accuracy rule at each check; level 2 the same without the
    reference."""
    cfg = tiny(make_cfg, "training.rewind_point=1ep")
    levels = run_imp(cfg, "infcop_gf_released", 0).to_json()["levels"]
    n_train = levels[0]["train_samples"] // levels[0]["epochs"]
    n_val = len(load_splits(cfg.data, "cpu").y_val)
    for lv, once in zip(levels, (n_train, 0)):
        assert lv["monitor_forward_samples"] == once + lv["epochs"] * (n_train + n_val)


def test_released_if_reference_follows_one_train_mode_forward_of_the_first_batch(make_cfg):
    """The authors' hook set-up ran the first training batch through the network in train mode (no
    grad) right after the warm-up, moving the BN running statistics before the reference was
    taken."""
    cfg = tiny(
        make_cfg, "model.name=cifar_resnet20", "training.rewind_point=1ep", "pruning.levels=1"
    )
    record = run_imp(cfg, "infcop_if_released", 0).to_json()
    reference = np.array(
        record["flow_reference"]["released"]["values"]["information"], dtype=np.float32
    )
    dense = ensure_dense(cfg, 0, torch.device("cpu"))
    splits = load_splits(cfg.data, "cpu")
    model = seeded_model(cfg, splits, 0, torch.device("cpu"))
    model.load_state_dict(dense.state("rewind"))
    without = released_information_flow(model, splits, cfg.training.batch_size)[0].numpy()
    x, _ = next(train_batches(splits, cfg.training.batch_size, epoch_generator(0, 1, 1)))
    model.train()
    with torch.no_grad():
        model(x)
    shifted = released_information_flow(model, splits, cfg.training.batch_size)[0].numpy()
    np.testing.assert_array_equal(reference, shifted)
    assert not np.array_equal(reference, without)


def test_diagnostic_runs_evaluate_the_authors_epsilon_grid(make_cfg):
    cfg = tiny(make_cfg, "training.rewind_point=1ep", "stopping.diagnose=true", "pruning.levels=1")
    level = run_imp(cfg, "infcop_gf_released", 0).to_json()["levels"][0]
    grid = {"0.3", "0.4", "0.5", "0.6", "0.7", "1.0"}
    assert set(level["diagnosis"]["criteria"]["gradient_flow_released"]) == grid
    assert "gf_distance" in level["measurements"]  # the corrected GF logged beside it


@pytest.mark.parametrize("setting", ["training.bf16=true", "training.channels_last=true"])
@pytest.mark.parametrize("method", ["infcop_if_released", "infcop_gf_pq_released"])
def test_bf16_and_channels_last_are_refused(make_cfg, setting, method):
    m = get_method(method)
    with pytest.raises(ConfigError, match=setting.split("=")[0]):
        m.schedule(make_cfg(setting), m.params())


def test_methods_lists_the_released_variants(capsys):
    from infcop.cli import main

    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in (
        "infcop_if_released",
        "infcop_gf_released",
        "infcop_if_pq_released",
        "infcop_gf_pq_released",
    ):
        line = next(ln for ln in out.splitlines() if ln.startswith(name + " "))
        assert "as released" in line


def test_a_resumed_released_run_equals_an_uninterrupted_one(make_cfg):
    """Resumed after level 1, a run measures its released reference mid-run (no charge_setup then);
    on a network with dropout the result equals a run that measured it at level 1, so measuring it
    leaves training's RNG alone."""
    from helpers import dropout_runner  # noqa: F401  (registers mlp_dropout)

    # levels of 3 epochs that never stop on the flow, so training goes on after the measurement
    same = (
        "model.name=mlp_dropout",
        "training.epochs=4",
        "training.rewind_point=1ep",
        "methods.infcop_if_released.epsilon=1e-9",
    )
    cfg = tiny(make_cfg, *same)
    resumed = tiny(make_cfg, *same, "pruning.levels=1", "experiment.name=resumed")
    run_imp(resumed, "infcop_if_released", 0)
    resumed = dataclasses.replace(resumed, pruning=cfg.pruning)
    a = run_imp(resumed, "infcop_if_released", 0).to_json()["levels"]
    b = run_imp(cfg, "infcop_if_released", 0).to_json()["levels"]
    assert len(a) == len(b) == 2 and a[1]["epochs"] > 1
    assert without_wall_clock(a) == without_wall_clock(b)
