import pytest
import torch

from infcop.core.flows import FlowReference
from infcop.criteria import FixedEpochs, LevelContext, Stopper
from infcop.criteria.accuracy import AccuracyTarget
from infcop.criteria.gradient_flow import GradientFlow
from infcop.criteria.information_flow import InformationFlow
from infcop.criteria.mask_stability import MaskStability, mask_distance


def m(*bits):
    return {"w": torch.tensor(bits, dtype=torch.bool)}


def test_mask_distance_normalised_by_kept_count():
    a, b = m(1, 1, 1, 1, 0, 0, 0, 0, 0, 0), m(1, 1, 1, 0, 1, 0, 0, 0, 0, 0)
    assert mask_distance(a, b) == pytest.approx(1 - 3 / 4)  # not 2/10, the full-length Hamming share
    assert mask_distance(a, a) == 0.0


def test_early_bird_fires_exactly_when_newest_is_close_to_all_older():
    rule = MaskStability(pruner=None, window=3, epsilon=0.3)
    base = m(1, 1, 1, 1, 1, 0, 0, 0, 0, 0)      # kept 5
    near = m(1, 1, 1, 1, 0, 1, 0, 0, 0, 0)      # distance 1/5 = 0.2 to base
    far = m(0, 0, 1, 1, 1, 1, 1, 0, 0, 0)       # distance 2/5 = 0.4 to base
    assert rule.push(base) is None and rule.push(base) is None  # window not yet full
    assert rule.push(far) == pytest.approx(0.4) and not rule.fires(0.4)
    assert rule.push(near) == pytest.approx(max(mask_distance(near, base), mask_distance(near, far)))
    assert not rule.fires(rule.push(near))  # window (far, near, near): far is still 0.6 away
    v = rule.push(near)  # window (near, near, near)
    assert v == 0.0 and rule.fires(v)
    assert rule.fires(0.3) and not rule.fires(0.30001)  # ≤ ε


def _ctx(noise=0.5):
    ref = FlowReference(torch.zeros(2).numpy(), torch.zeros(2).numpy(), noise, 2 * noise)
    return LevelContext(model=None, mask={}, probe=object(), reference=ref, target_val_acc=0.9, costs=None,
                        flops_per_sample=1.0, epsilon_mode="relative")


def test_relative_epsilon_scales_by_noise_floor():
    rule = InformationFlow(0.1)
    rule.begin_level(_ctx(noise=0.5))
    assert rule.describe()["threshold"] == pytest.approx(0.05) and rule.fires(0.04) and not rule.fires(0.05)
    g = GradientFlow(0.1)
    g.begin_level(_ctx(noise=0.5))
    assert g.describe()["threshold"] == pytest.approx(0.1)


def test_nan_measurement_never_stops():
    rule = InformationFlow(0.1)
    assert not rule.fires(float("nan")) and not rule.fires(None) and rule.fires(0.01)


def test_any_of_reports_first_firing_reason_and_cap():
    acc = AccuracyTarget()
    flow = InformationFlow(0.1)
    stopper = Stopper([flow, acc], cap=4)
    ctx = _ctx()
    ctx.epsilon_mode = "absolute"
    stopper.begin_level(ctx)
    assert stopper.decide({"if_distance": 0.5, "val_acc": 0.5}, 1) is None
    assert stopper.decide({"if_distance": 0.05, "val_acc": 0.95}, 2) == "flow"
    assert stopper.decide({"if_distance": 0.5, "val_acc": 0.9}, 2) == "accuracy"  # ≥ target
    assert stopper.decide({"if_distance": 0.5, "val_acc": 0.5}, 4) == "cap"
    fixed = FixedEpochs(3)
    assert [fixed.decide({}, e) for e in (1, 2, 3)] == [None, None, "cap"]
