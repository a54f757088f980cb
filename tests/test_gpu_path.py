"""The GPU path, checked on CPU: every change made for the device must give the CPU its old numbers.

The old implementations are written out here (float64 copies on the host, draws on the host) and
the new code is compared with them bit for bit.
"""

import math
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from infcop.core import flows, train
from infcop.core.data import device_generator, epoch_generator, random_crop_flip
from infcop.core.masks import full_mask
from infcop.core.models import build_model, prunable_layers
from infcop.core.pruners import MagnitudeGlobal, MagnitudeLayer, PQIndexPruner, pq_index
from infcop.criteria.mask_stability import mask_distance
from infcop.foundations.config import ConfigError
from infcop.foundations.provenance import provenance

REPO = Path(__file__).resolve().parents[1]


# -------------------------------------------------------------- pruning without a float64 host copy
def old_prune_smallest(scores, alive, n_prune):
    flat = alive.flatten().clone()
    idx = torch.nonzero(flat).squeeze(1)
    order = torch.argsort(scores.flatten()[idx], stable=True)
    flat[idx[order[:n_prune]]] = False
    return flat.view_as(alive)


def old_global(weights, mask, fraction=None, pq=None):
    """The pruners before the change: |w| as float64 on the host, one stable argsort."""
    names = list(mask)
    scores = torch.cat([weights[n].detach().abs().flatten().double().cpu() for n in names])
    alive = torch.cat([mask[n].flatten().cpu() for n in names])
    if pq is None:
        n_prune = int(round(fraction * int(alive.sum())))
    else:
        n_prune = math.floor(int(alive.sum()) * pq.fraction_for(scores[alive]))
    flat, out, start = old_prune_smallest(scores, alive, n_prune), {}, 0
    for n in names:
        out[n] = flat[start : start + mask[n].numel()].view_as(mask[n])
        start += mask[n].numel()
    return out


def tied_weights(seed):
    """lenet weights rounded to a coarse grid: many exact ties across and within layers."""
    torch.manual_seed(seed)
    model = build_model("lenet_300_100", (1, 8, 8), 10)
    with torch.no_grad():
        for m in prunable_layers(model).values():
            m.weight.copy_((m.weight * 50).round() / 50)
    return {n: m.weight for n, m in prunable_layers(model).items()}, full_mask(model)


@pytest.mark.parametrize("seed", [0, 1])
def test_global_pruning_equals_the_float64_host_ranking(seed):
    weights, mask = tied_weights(seed)
    old, new = dict(mask), dict(mask)
    for _ in range(4):  # successive levels: ranks among the survivors too
        old, new = (
            old_global(weights, old, 0.2),
            MagnitudeGlobal(fraction=0.2).next_mask(weights, new),
        )
        assert all(torch.equal(old[n], new[n]) for n in mask)


def test_layer_and_pq_pruning_equal_the_float64_host_ranking():
    weights, mask = tied_weights(2)
    layer = MagnitudeLayer(fraction=0.3).next_mask(weights, mask)
    for n in mask:
        k = int(round(0.3 * int(mask[n].sum())))
        assert torch.equal(
            layer[n], old_prune_smallest(weights[n].detach().abs().double(), mask[n], k)
        )
    pq = PQIndexPruner()
    new = pq.next_mask(weights, mask)
    old = old_global(weights, mask, pq=pq)
    assert all(torch.equal(old[n], new[n]) for n in mask)
    assert 0 < sum(int((~new[n]).sum()) for n in mask) < sum(m.numel() for m in mask.values())


def test_pq_index_reads_the_same_values_from_float32_scores():
    w = torch.randn(1000)
    assert pq_index(w, 0.5, 1.0) == pq_index(w.double(), 0.5, 1.0)


def test_mask_distance_counts_on_the_device_as_by_hand():
    g = torch.Generator().manual_seed(0)
    a = {"x": torch.rand(30, 7, generator=g) < 0.6, "y": torch.rand(11, generator=g) < 0.4}
    b = {"x": torch.rand(30, 7, generator=g) < 0.6, "y": torch.rand(11, generator=g) < 0.4}
    kept = a["x"].sum().item() + a["y"].sum().item()
    both = (a["x"] & b["x"]).sum().item() + (a["y"] & b["y"]).sum().item()
    assert mask_distance(a, b) == 1.0 - both / kept
    assert mask_distance(a, a) == 0.0


# ---------------------------------------------------------------- flow hooks
@pytest.mark.parametrize("shape", [(37, 16, 9, 9), (12, 8, 40), (20, 5)])
def test_position_means_equal_a_whole_float64_copy_bit_for_bit(shape, monkeypatch):
    out = torch.randn(shape) * 3 + 1
    whole = out.double().flatten(2).mean(2) if out.dim() > 2 else out.double()
    monkeypatch.setattr(
        flows, "WIDEN_BYTES", 8 * out[0].numel() * 5
    )  # 5 samples at a time: 8 chunks
    assert torch.equal(flows.position_means(out), whole)
    monkeypatch.setattr(flows, "WIDEN_BYTES", 1)  # one sample at a time
    assert torch.equal(flows.position_means(out), whole)


# ---------------------------------------------------------------- augmentation
def old_crop_flip(x, g, pad=4):
    """random_crop_flip before the change: offsets and flips drawn on the host, then copied."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=g)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=g)
    flip = torch.rand(n, generator=g) < 0.5
    rows = (dy[:, None] + torch.arange(h))[:, :, None]
    cols = dx[:, None] + torch.arange(w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, :]
    return padded.permute(0, 2, 3, 1)[torch.arange(n)[:, None, None], rows, cols].permute(
        0, 3, 1, 2
    )


def test_crop_flip_on_the_host_draws_exactly_as_before():
    x = torch.randn(50, 3, 12, 12)
    assert torch.equal(
        random_crop_flip(x, epoch_generator(3, 1, 2)), old_crop_flip(x, epoch_generator(3, 1, 2))
    )


def offsets_and_flips(out, pad):
    """(dy, dx, flip) of each augmented copy of an image whose every pixel value is distinct."""
    h = w = 6
    base = torch.arange(1.0, h * w + 1).view(1, 1, h, w)
    padded = F.pad(base[0], (pad, pad, pad, pad))
    found = []
    for img in out:
        for dy in range(2 * pad + 1):
            for dx in range(2 * pad + 1):
                window = padded[:, dy : dy + h, dx : dx + w]
                for flip in (False, True):
                    if torch.equal(img, window.flip(-1) if flip else window):
                        found.append((dy, dx, flip))
    return found


def test_device_generator_draws_follow_the_host_distribution():
    """The device path seeds a generator on the device from the host one; its offsets and flips are
    uniform like the host draws (chi-square over 9 offsets per axis and the flip, n = 3600)."""
    pad, n = 4, 3600
    x = torch.arange(1.0, 37).view(1, 1, 6, 6).expand(n, 1, 6, 6).contiguous()
    g = epoch_generator(0, 5)
    draws = offsets_and_flips(random_crop_flip(x, device_generator(g, x.device), pad), pad)
    assert len(draws) == n, "every output is one translation or mirror of the input"
    for axis, k in ((0, 9), (1, 9), (2, 2)):
        counts = torch.bincount(torch.tensor([int(d[axis]) for d in draws]), minlength=k).double()
        expected = n / k
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert (
            chi2 < {9: 26.1, 2: 10.8}[k]
        )  # p = 0.001 critical values for 8 and 1 degrees of freedom
    assert not torch.equal(
        torch.tensor([d[0] for d in draws[:50]]),
        torch.tensor(
            [
                d[0]
                for d in offsets_and_flips(old_crop_flip(x[:50], epoch_generator(0, 5), pad), pad)
            ]
        ),
    )


def test_device_generator_is_a_function_of_the_host_stream():
    a, b = (device_generator(epoch_generator(1, 2, 3), torch.device("cpu")) for _ in range(2))
    assert torch.equal(torch.rand(5, generator=a), torch.rand(5, generator=b))


# -------------------------------------------------------------- evaluation batch, autocast, kernels
def test_evaluation_batch_fits_the_free_memory():
    assert train.fitting_batch(per_sample_bytes=1e6, free_bytes=100e6, cap=1024) == 50
    assert train.fitting_batch(per_sample_bytes=1e3, free_bytes=100e9, cap=1024) == 1024
    assert train.fitting_batch(per_sample_bytes=1e12, free_bytes=1e9, cap=1024) == 1
    model = build_model("lenet_300_100", (1, 8, 8), 10)
    assert train.eval_batch_size(model, (1, 8, 8), torch.device("cpu"), False) == train.EVAL_BATCH


def test_autocast_is_entered_only_when_bf16_is_on():
    assert train.autocast(torch.device("cpu"), False) is nullcontext
    with train.autocast(torch.device("cpu"), True)():
        out = torch.nn.Linear(4, 3)(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16


def test_kernel_settings_are_applied_and_recorded():
    try:
        train.resolve_device("cpu", deterministic=True)
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        assert provenance(torch.device("cpu"))["kernels"] == {
            "deterministic": True,
            "cudnn_benchmark": False,
        }
        train.resolve_device("cpu", cudnn_benchmark=True)
        assert torch.backends.cudnn.benchmark and not torch.are_deterministic_algorithms_enabled()
        with pytest.raises(ConfigError, match="experiment.deterministic"):
            train.resolve_device("cpu", deterministic=True, cudnn_benchmark=True)
    finally:
        train.resolve_device("cpu")
    assert provenance(torch.device("cpu"))["kernels"] == {
        "deterministic": False,
        "cudnn_benchmark": False,
    }


# ---------------------------------------------------------------- the device script
GPU_CHECK = [sys.executable, str(REPO / "scripts" / "gpu-check")]


def test_gpu_check_dry_run_lists_every_check_on_the_paper_pair_at_224(tmp_path):
    out = subprocess.run(
        [*GPU_CHECK, "--dry-run", "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "bench",
        "records",
        "records",
        "resume",
        "tuned run",
    ]
    assert all(
        "data.resize=224" in line
        and "model.name=resnet18" in line
        and "experiment.device=cuda" in line
        for line in lines[1:]
    )
    assert all("experiment.deterministic=true" in line for line in lines[1:4])
    assert "training.bf16=true" in lines[4] and "training.channels_last=true" in lines[4]


@pytest.mark.slow
def test_gpu_check_passes_on_cpu_sized_models(tmp_path):
    out = subprocess.run(
        [*GPU_CHECK, "--device", "cpu", "--tiny", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "5/5 checks passed" in out.stdout and "| resume after kill | pass" in out.stdout
