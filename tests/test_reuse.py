"""Reuse of trained epochs (infcop/engine/reuse.py): exact, keyed by every input, safe to kill."""

import json
import logging
import sys

import pytest
import torch

from helpers.kill_resume import kill_resume_and_compare, without_wall_clock
from infcop.core.costs import Costs
from infcop.core.data import epoch_generator, load_splits
from infcop.core.masks import MaskedWeights, full_mask
from infcop.core.models import build_model
from infcop.core.train import Trainer, make_optimizer
from infcop.engine.imp import run_all
from infcop.engine.reuse import EpochCache, cache_dir, epoch_cache
from infcop.engine.spec import RunSpec


def trainer_of(cfg, splits, prune_every=0):
    """A seeded lenet under a mask (every `prune_every`-th weight pruned when >
    0), fresh optimizer."""
    torch.manual_seed(0)
    model = build_model("lenet_300_100", splits.input_shape, splits.num_classes)
    mask = full_mask(model)
    if prune_every:
        for m in mask.values():
            m.view(-1)[::prune_every] = False
    masked = MaskedWeights(model, mask)
    masked.apply()
    return Trainer(model, make_optimizer(model, cfg.training), splits, 64, 1.0, Costs(), masked)


def state_of(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}, [
        b.clone() for b in trainer.optimizer.buffers
    ]


def test_a_reused_epoch_equals_the_computed_one_and_is_charged_as_if_trained(make_cfg):
    cfg = make_cfg()
    splits = load_splits(cfg.data)
    cache = epoch_cache(cfg, 0, splits.source, trainer_of(cfg, splits).model, torch.device("cpu"))
    lr = lambda s: 0.05 * 0.99**s  # noqa: E731

    plain = trainer_of(cfg, splits)  # no cache at all: the reference
    loss_plain = [plain.train_epoch(lr, 0, epoch_generator(0, 1, 1))]
    val_plain = [plain.evaluate("val", for_stopping=True)]
    loss_plain.append(plain.train_epoch(lr, 14, epoch_generator(0, 1, 2)))
    val_plain.append(plain.evaluate("val", for_stopping=True))

    first, second = trainer_of(cfg, splits), trainer_of(cfg, splits)
    for t in (first, second):
        got = [
            cache.train_and_validate(t, lr, 0, epoch_generator(0, 1, 1), for_stopping=True),
            cache.train_and_validate(t, lr, 14, epoch_generator(0, 1, 2), for_stopping=True),
        ]
        assert got == list(zip(loss_plain, val_plain))
        model, momentum = state_of(t)
        assert all(torch.equal(model[k], v) for k, v in plain.model.state_dict().items())
        assert all(torch.equal(a, b) for a, b in zip(momentum, plain.optimizer.buffers))
    assert (cache.misses, cache.hits) == (2, 2)
    # the second trainer never trained, yet is charged what the first paid, seconds included
    a, b = first.costs.as_dict(), second.costs.as_dict()
    assert a == b and b["epochs"] == 2 and b["train_seconds"] > 0 and b["monitor_seconds"] > 0
    assert (
        b["train_flops"] == plain.costs.train_flops
        and b["optimizer_steps"] == plain.costs.optimizer_steps
    )


def test_every_input_of_an_epoch_is_in_its_key(make_cfg):
    cfg = make_cfg()
    splits = load_splits(cfg.data)
    cache = epoch_cache(cfg, 0, splits.source, trainer_of(cfg, splits).model, torch.device("cpu"))
    lr = lambda s: 0.05  # noqa: E731
    t = trainer_of(cfg, splits)
    key = cache.key(t, lr, 0, epoch_generator(0, 1, 1))
    assert cache.key(trainer_of(cfg, splits), lr, 0, epoch_generator(0, 1, 1)) == key, (
        "content, not identity"
    )
    assert (
        cache.key(t, lambda s: 0.05 if s < 13 else 0.04, 0, epoch_generator(0, 1, 1)) != key
    )  # one step's LR
    assert cache.key(t, lr, 0, epoch_generator(0, 1, 2)) != key  # data order
    assert cache.key(t, lr, 0, epoch_generator(0, 2, 1)) != key
    assert (
        cache.key(trainer_of(cfg, splits, prune_every=7), lr, 0, epoch_generator(0, 1, 1)) != key
    )  # mask
    t2 = trainer_of(cfg, splits)
    t2.optimizer.buffers = [
        torch.zeros_like(p) for p in t2.optimizer.params
    ]  # momentum present, not fresh
    assert cache.key(t2, lr, 0, epoch_generator(0, 1, 1)) != key
    t3 = trainer_of(cfg, splits)
    t3.optimizer.weight_decay = 0.0
    assert cache.key(t3, lr, 0, epoch_generator(0, 1, 1)) != key
    other = epoch_cache(
        make_cfg("training.bf16=true"), 0, splits.source, t.model, torch.device("cpu")
    )
    assert other.key(trainer_of(cfg, splits), lr, 0, epoch_generator(0, 1, 1)) != key  # the recipe
    with torch.no_grad():
        next(t.model.parameters()).view(-1)[3] += 1e-6  # one weight
    assert cache.key(t, lr, 0, epoch_generator(0, 1, 1)) != key


def test_the_global_rng_state_is_in_the_key(make_cfg):
    cfg = make_cfg()
    splits = load_splits(cfg.data)
    cache = epoch_cache(cfg, 0, splits.source, trainer_of(cfg, splits).model, torch.device("cpu"))
    t = trainer_of(cfg, splits)  # seeds the global RNG with 0
    key = cache.key(t, lambda s: 0.05, 0, epoch_generator(0, 1, 1))
    torch.rand(1)  # a dropout layer would have drawn
    assert cache.key(t, lambda s: 0.05, 0, epoch_generator(0, 1, 1)) != key


def test_a_damaged_entry_is_recomputed_not_used(make_cfg, caplog):
    cfg = make_cfg()
    splits = load_splits(cfg.data)
    cache = epoch_cache(cfg, 0, splits.source, trainer_of(cfg, splits).model, torch.device("cpu"))
    lr = lambda s: 0.05  # noqa: E731
    first = trainer_of(cfg, splits)
    expected = cache.train_and_validate(first, lr, 0, epoch_generator(0, 1, 1), for_stopping=False)
    [entry] = cache_dir(cfg, 0).entries()
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    second = trainer_of(cfg, splits)
    with caplog.at_level(logging.WARNING, logger="infcop"):
        got = cache.train_and_validate(second, lr, 0, epoch_generator(0, 1, 1), for_stopping=False)
    assert got == expected and cache.hits == 0 and cache.misses == 2
    assert "recomputing" in caplog.text
    assert all(
        torch.equal(a, b)
        for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values())
    )


def test_the_budget_keeps_the_most_recent_entries(make_cfg):
    cfg = make_cfg()
    splits = load_splits(cfg.data)
    t = trainer_of(cfg, splits)
    probe = EpochCache(cache_dir(cfg, 0), "budget", 1)
    probe.train_and_validate(t, lambda s: 0.05, 0, epoch_generator(0, 1, 1), for_stopping=False)
    [entry] = cache_dir(cfg, 0).entries()
    size = entry.stat().st_size
    assert size < 2**20 < 3 * size, "the budget below holds two entries of this model, not three"
    for epoch in range(2, 5):
        probe.train_and_validate(
            t, lambda s: 0.05, 0, epoch_generator(0, 1, epoch), for_stopping=False
        )
    assert len(cache_dir(cfg, 0).entries()) == 2**20 // size


def test_runs_sharing_a_trajectory_write_the_records_they_write_without_reuse(make_cfg, caplog):
    """wr and fixed_same_reset train the same levels: the second reuses every epoch of the first."""
    records = {}
    for budget in (4096, 0):
        cfg = make_cfg(f"experiment.name=reuse{budget}", f"experiment.epoch_cache_mb={budget}")
        with caplog.at_level(logging.INFO, logger="infcop"):
            records[budget] = [
                r.to_json()
                for r in run_all([RunSpec.of(cfg, m, 0) for m in ("wr", "fixed_same_reset")])
            ]
        assert not cache_dir(cfg, 0).root.exists(), "a finished seed job leaves no cache behind"
    assert "fixed_same_reset seed 0: 4 epochs reused, 0 trained" in caplog.text
    drop = ("epoch_cache_mb", "name", "provenance")
    assert without_wall_clock(records[4096], drop) == without_wall_clock(records[0], drop)


def runs_cli(results, *extra):
    return [
        sys.executable,
        "-m",
        "infcop.cli",
        "-q",
        "runs",
        "--config",
        "configs/default.yaml",
        "--pair",
        "digits/lenet_300_100",
        "--set",
        f"experiment.results_dir={results}",
        "--set",
        "study.methods=[wr,fixed_same_reset]",
        "--set",
        "study.diagnose=[]",
        "--set",
        "pruning.levels=4",
        "--set",
        "training.epochs=3",
        "--set",
        "experiment.threads=1",
        "--set",
        "tracking.mode=disabled",
        *extra,
    ]


@pytest.mark.slow
def test_a_job_killed_while_reusing_resumes_to_the_records_of_one_without_reuse(tmp_path):
    """Killed once the second run has a level checkpoint (it is reusing the first's epochs), rerun:
    the records equal an uninterrupted run's, which equal a run's without any reuse."""
    run_path = "default/runs/digits/lenet_300_100/fixed_same_reset/seed0"
    kill_resume_and_compare(
        tmp_path, runs_cli, run_path, levels=4, kill_when="checkpoints/level2.pt"
    )
    import subprocess

    assert (
        subprocess.run(
            runs_cli(tmp_path / "plain", "--set", "experiment.epoch_cache_mb=0"),
            capture_output=True,
        ).returncode
        == 0
    )
    resumed = json.loads((tmp_path / "killed" / run_path / "record.json").read_text())
    plain = json.loads((tmp_path / "plain" / run_path / "record.json").read_text())
    assert without_wall_clock(resumed["levels"]) == without_wall_clock(plain["levels"])


def test_temporaries_of_killed_writes_are_removed_and_live_ones_kept(make_cfg):
    import os
    import socket
    import subprocess

    cfg = make_cfg()
    splits = load_splits(cfg.data)
    root = cache_dir(cfg, 0)
    root.root.mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    host = socket.gethostname()
    killed = root.root / f".abc.pt.{host}.{int(dead.stdout)}.tmp"
    live = root.root / f".abd.pt.{host}.{os.getpid()}.tmp"
    for f in (killed, live):
        f.write_bytes(b"partial")
    epoch_cache(
        cfg, 0, splits.source, trainer_of(cfg, splits).model, torch.device("cpu")
    )  # a run starts
    assert not killed.exists() and live.exists()
