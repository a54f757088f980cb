import math

import numpy as np
import pytest
import torch

from infcop.core.masks import density, full_mask, load_mask, save_mask
from infcop.core.models import build_model, prunable_layers
from infcop.core.pruners import (
    MagnitudeGlobal,
    MagnitudeLayer,
    PQIndexPruner,
    RandomPruner,
    pq_index,
    sap_prune_fraction,
)


def _model():
    torch.manual_seed(0)
    return build_model("lenet_300_100", (1, 8, 8), 10)


def _weights(model):
    return {n: m.weight for n, m in prunable_layers(model).items()}


@pytest.mark.parametrize(
    "pruner",
    [MagnitudeGlobal(fraction=0.2), MagnitudeLayer(fraction=0.2), RandomPruner(fraction=0.2)],
)
def test_density_after_k_levels_is_point_eight_to_the_k(pruner):
    model = _model()
    mask = full_mask(model)
    total = sum(m.numel() for m in mask.values())
    g = torch.Generator().manual_seed(0)
    for k in range(1, 8):
        new = pruner.next_mask(_weights(model), mask, generator=g)
        assert all(torch.all(new[n] <= mask[n]) for n in mask), "pruning only removes alive weights"
        mask = new
        # per-layer rounding: at most half a weight per layer per level
        assert abs(density(mask) - 0.8**k) <= k * len(mask) / total


def test_magnitude_global_removes_globally_smallest():
    w = {
        "a": torch.tensor([[0.1, -5.0, 0.3]]),
        "b": torch.tensor([[-0.2, 4.0, 0.05, 1.0, 2.0, 3.0, 0.4]]),
    }
    mask = {n: torch.ones_like(t, dtype=torch.bool) for n, t in w.items()}
    new = MagnitudeGlobal(fraction=0.2).next_mask(w, mask)  # 10 weights -> prune 2: 0.05 and 0.1
    assert new["a"].tolist() == [[False, True, True]]
    assert new["b"].tolist() == [[True, True, False, True, True, True, True]]


def test_magnitude_layer_and_exclusion():
    w = {"a": torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]), "b": torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])}
    mask = {n: torch.ones(5, dtype=torch.bool) for n in w}
    new = MagnitudeLayer(fraction=0.2).next_mask(w, mask)
    assert new["a"].tolist() == [False, True, True, True, True] and new["b"].tolist() == [
        False,
        True,
        True,
        True,
        True,
    ]
    new = MagnitudeGlobal(fraction=0.4, exclude=("b",)).next_mask(w, mask)
    assert new["b"].all() and new["a"].tolist() == [False, False, True, True, True]


def test_pq_index_closed_forms():
    # one nonzero entry among d: ||w||_p = ||w||_q = |w|, I = 1 - d^(1/q - 1/p)
    d = 10
    one = torch.zeros(d)
    one[3] = 2.5
    for p, q in [(0.5, 1.0), (1.0, 2.0)]:
        assert pq_index(one, p, q) == pytest.approx(1 - d ** (1 / q - 1 / p), abs=1e-12)
    # a constant vector is not sparse at all
    assert pq_index(torch.full((7,), -3.0), 0.5, 1.0) == pytest.approx(0.0, abs=1e-12)
    # a generic vector against the textbook formula with norms
    x = np.array([0.5, -2.0, 3.0, 0.1])
    norm = lambda v, r: (np.abs(v) ** r).sum() ** (1 / r)  # noqa: E731
    expected = 1 - len(x) ** (1 / 2 - 1 / 1) * norm(x, 1) / norm(x, 2)
    assert pq_index(torch.tensor(x), 1.0, 2.0) == pytest.approx(expected, rel=1e-12)
    assert pq_index(torch.zeros(0), 0.5, 1.0) == 0.0


def test_sap_fraction_equals_index_for_p_half_q_one():
    for index in (0.0, 0.05, 0.3, 0.7):
        assert sap_prune_fraction(index, 0.5, 1.0, 0.0, 1.0, 0.9) == pytest.approx(min(index, 0.9))
    # general rule against the formula as written on the design page
    p, q, eta, gamma, beta, index = 1.0, 2.0, 0.1, 1.2, 0.9, 0.2
    m_over_d = (1 + eta) ** (-q / (q - p)) * (1 - index) ** (q * p / (q - p))
    assert sap_prune_fraction(index, p, q, eta, gamma, beta) == pytest.approx(
        min(max(gamma * (1 - m_over_d), 0), beta)
    )


def test_pq_pruner_prunes_floor_d_times_index():
    model = _model()
    mask = full_mask(model)
    weights = _weights(model)
    alive = torch.cat([w.detach().flatten().double() for w in weights.values()])
    index = pq_index(alive, 0.5, 1.0)
    new = PQIndexPruner().next_mask(weights, mask)
    pruned = sum(int(m.sum()) for m in mask.values()) - sum(int(m.sum()) for m in new.values())
    assert pruned == math.floor(alive.numel() * index)


def test_mask_save_load_roundtrip(tmp_path):
    model = _model()
    mask = MagnitudeGlobal(fraction=0.5).next_mask(_weights(model), full_mask(model))
    save_mask(mask, tmp_path / "m.pt")
    loaded = load_mask(tmp_path / "m.pt")
    assert all(torch.equal(loaded[n], mask[n]) for n in mask) and density(loaded) == density(mask)
