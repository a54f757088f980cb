"""configs/paper.yaml itself, run end to end by real Snakemake on CPU with size overrides only: tiny
files in the real formats, 32x32 inputs, no pretrained weights, 1 seed, 2 levels, cap 2, and the two
pairs that together take every data format the paper's MNIST and CIFAR pairs use. The shipped file
is read and overridden, never copied, so the config a user runs is the config tested.

MNIST / ResNet-18 takes the grey-to-RGB path, CIFAR-10 / ResNet-18 the CIFAR loader; every method
and variant of the config runs on both. VGG-16 is left to tests/test_models.py (its forward pass at
32x32 and its layer lists): its 138M weights made each of its 23 jobs write about 0.8 GB, and it
took most of this test's time. The other pairs repeat these code paths (Tiny-ImageNet's loader has
its own tests in tests/test_paper.py)."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_data import fake_cifar, fake_mnist

from infcop.foundations.config import deep_merge
from infcop.core import fetch as F

REPO = Path(__file__).resolve().parents[1]
SIZE = {
    "experiment": {"seeds": [0], "device": "cpu", "threads": 1},
    "data": {"resize": 32},
    "model": {"pretrained": False},
    "training": {
        "epochs": 2,
        "rewind_point": "2ep",
    },  # the warm-up, rewound to at its end, as in the file
    "pruning": {"levels": 2},
    "stopping": {"cap": 2, "level_epochs": 2, "probe_size": 8, "probe_batch": 8},
}
PAIRS_RUN = ("mnist/resnet18", "cifar10/resnet18")
# not sizes, but what tiny stand-in files and a CI machine need: checksum-free CIFAR copies, no W&B
LOCAL = {"data": {"verify_checksums": False}, "tracking": {"mode": "disabled"}}

# Tiny MNIST files cannot match the pinned hashes of the real ones: every Python process of the
# study (Snakemake and its jobs) pins them to the tiny files' hashes instead, as
# tests/test_data.py does in-process.
SITECUSTOMIZE = """import json, os
if os.environ.get("INFCOP_TEST_PINNED_HASHES"):
    from infcop.core import fetch
    fetch.EXPECTED.update(json.loads(open(os.environ["INFCOP_TEST_PINNED_HASHES"]).read()))
"""


def tiny_data(data: Path, monkeypatch) -> dict:
    pinned = {}
    for name in ("mnist", "fashion_mnist"):
        fake_mnist(data, F.FOLDERS[name], n_train=40, n_test=20)
        raw = F.raw_dir(name, data)
        pinned[name] = {f: F.array_sha256(F.read_idx(raw / f)) for f in F.FILES}
        monkeypatch.setitem(F.EXPECTED, name, pinned[name])
        F.fetch(
            name, data, sources=[], log=lambda _: None
        )  # verifies and stamps the files in place
    fake_cifar(data, 10, n_per_batch=10)
    return pinned


@pytest.mark.slow
def test_paper_config_runs_end_to_end(tmp_path, monkeypatch):
    shipped = yaml.safe_load((REPO / "configs" / "paper.yaml").read_text())
    pinned = tiny_data(tmp_path / "data", monkeypatch)
    assert set(PAIRS_RUN) <= set(shipped["study"]["pairs"])
    pairs = list(PAIRS_RUN)
    config = deep_merge(
        deep_merge(shipped, SIZE), deep_merge(LOCAL, {"data": {"data_dir": str(tmp_path / "data")}})
    )
    config["study"]["pairs"] = pairs
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(config))
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    (tmp_path / "pinned.json").write_text(json.dumps(pinned))
    env = {
        **os.environ,
        "INFCOP_TEST_PINNED_HASHES": str(tmp_path / "pinned.json"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
    }
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(tmp_path),
            "--cores",
            "2",
            "--configfile",
            str(tmp_path / "paper.yaml"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-4000:]

    exp = tmp_path / "results" / "paper"
    methods = [m if isinstance(m, str) else m["name"] for m in shipped["study"]["methods"]]
    assert {"mnist", "cifar10"} == {p.split("/")[0] for p in pairs} and len(methods) == 20
    with open(exp / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    done = {
        (r["dataset"] + "/" + r["model"], r["method"], r["diagnostic"])
        for r in rows
        if r["status"] == "complete"
    }
    expected = {(p, m, "False") for p in pairs for m in methods}
    expected |= {(p, m, "True") for p in pairs for m in shipped["study"]["diagnose"]}
    assert done == expected
    assert len(rows) == len(expected) * 2  # two levels each
    # the protocol as run: checks every 2 passes, every level trained to its 2-pass cap or
    # stopped at the check
    assert {r["epochs"] for r in rows} == {"2"}
    record = json.loads(
        (exp / "runs/mnist/resnet18/infcop_if_pq_p1q2/seed0/record.json").read_text()
    )
    assert record["method_params"]["p"] == 1 and record["config"]["data"]["channels"] == 3
    assert (
        record["config"]["pruning"]["scope"] == "layer"
        and record["config"]["training"]["momentum"] == 0.0
    )
    summary = (exp / "summary.md").read_text()
    for pair in pairs:
        assert f"| {pair} " in summary, pair
        assert (exp / "figures" / f"{pair.replace('/', '__')}.png").stat().st_size > 0
