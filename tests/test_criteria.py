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
    assert mask_distance(a, b) == pytest.approx(
        1 - 3 / 4
    )  # not 2/10, the full-length Hamming share
    assert mask_distance(a, a) == 0.0


def test_early_bird_fires_exactly_when_newest_is_close_to_all_older():
    rule = MaskStability(pruner=None, window=3, epsilon=0.3)
    base = m(1, 1, 1, 1, 1, 0, 0, 0, 0, 0)  # kept 5
    near = m(1, 1, 1, 1, 0, 1, 0, 0, 0, 0)  # distance 1/5 = 0.2 to base
    far = m(0, 0, 1, 1, 1, 1, 1, 0, 0, 0)  # distance 2/5 = 0.4 to base
    assert rule.push(base) is None and rule.push(base) is None  # window not yet full
    assert rule.push(far) == pytest.approx(0.4) and not rule.fires(0.4)
    assert rule.push(near) == pytest.approx(
        max(mask_distance(near, base), mask_distance(near, far))
    )
    assert not rule.fires(rule.push(near))  # window (far, near, near): far is still 0.6 away
    v = rule.push(near)  # window (near, near, near)
    assert v == 0.0 and rule.fires(v)
    assert rule.fires(0.3) and not rule.fires(0.30001)  # ≤ ε


def _ctx(noise=0.5):
    ref = FlowReference(torch.zeros(2).numpy(), torch.zeros(2).numpy(), noise, 2 * noise)
    return LevelContext(
        model=None,
        mask={},
        probe=object(),
        reference=ref,
        target_val_acc=0.9,
        costs=None,
        flops_per_sample=1.0,
        epsilon_mode="relative",
    )


def test_relative_epsilon_scales_by_noise_floor():
    rule = InformationFlow(0.1)
    rule.begin_level(_ctx(noise=0.5))
    assert (
        rule.describe()["threshold"] == pytest.approx(0.05)
        and rule.fires(0.04)
        and not rule.fires(0.05)
    )
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


@pytest.mark.parametrize("rule", [InformationFlow(10.0), GradientFlow(10.0)])
def test_a_flow_rule_never_fires_on_an_undefined_flow_and_says_so(rule):
    """A network whose first layer is dead (constant output): the flows are undefined there, the
    rule records no distance, does not fire at any ε, and leaves a note for the run's warnings."""
    from test_flows import dead_first_layer, probe_of

    from infcop.core.costs import Costs
    from infcop.core.masks import full_mask

    model = dead_first_layer()
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    ref = FlowReference(
        information=torch.zeros(2).numpy(),
        gradient=torch.zeros(3).numpy(),
        information_noise=1.0,
        gradient_noise=1.0,
    )
    ctx = LevelContext(
        model=model,
        mask=full_mask(model),
        probe=probe_of(x, y),
        reference=ref,
        target_val_acc=0.9,
        costs=Costs(),
        flops_per_sample=1.0,
    )
    rule.begin_level(ctx)
    value = rule.measure(ctx, val_acc=0.1)
    assert value is None and not rule.fires_at(value, rule.threshold)
    assert len(ctx.notes) == 1 and ctx.notes[0].startswith(f"{rule.label} undefined at ")
    assert "0->2" in ctx.notes[0] if rule.label == "IF" else "0, 2" in ctx.notes[0]
