"""The fault catalogue: every bad input or fault a user, a cluster or a crash can produce, one row
each, with what must come of it.

A row is (id, what is broken, how to reproduce it, the expected outcome). The outcome is either
an error (a text fragment the one-line message must hold; never a traceback) or a clean result
(the final record identical, level by level, to an undisturbed run), or a check of its own (a
warning recorded, file permissions). Rows with `then` follow the error's advice and must then
reach the clean result: advice that does not work when followed is a fault too.

Rows run the CLI in-process (`infcop.cli.main`) on tiny runs (digits, 1 epoch, 1-2 levels) and
tiny real-format IDX files; the kill-and-resume and concurrent-run rows run real processes.
README.md (Reliability) states the number of rows: keep it in step.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import torch
import yaml
from helpers.idx_files import fake_mnist, stamped_mnist, write_idx
from helpers.kill_resume import dropout_cli, flow_cli, kill_resume_and_compare, without_wall_clock

from infcop.cli import main
from infcop.core import fetch as F

STUDY = "smoke"  # configs/smoke.yaml: digits / lenet_300_100
RUN = Path(STUDY, "runs", "digits", "lenet_300_100", "lth", "seed0")
DENSE = Path(STUDY, "dense", "digits", "lenet_300_100", "seed0")
CLEAN = "clean"  # the expected outcome: the undisturbed run's levels


def _permissions_enforced() -> bool:
    """False for root (with CAP_DAC_OVERRIDE), which writes through read-only directories."""
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o555)
        try:
            Path(d, "probe").touch()
            return False
        except PermissionError:
            return True
        finally:
            os.chmod(d, 0o755)


NEEDS_PERMISSIONS = pytest.mark.skipif(
    not _permissions_enforced(), reason="this user writes through file permissions"
)


@dataclass
class Env:
    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    finished: Path  # a results tree holding a finished 1-level lth run (copied, never changed)
    clean: list = field(default_factory=list)  # the levels of an undisturbed 2-level lth run
    log: str = ""  # what the row's command logged
    notes: dict = field(default_factory=dict)  # what a row's set-up tells its check

    @property
    def res(self) -> Path:
        return self.tmp / "results"

    def run(self, *sets: str, method: str = "lth", levels: int = 2, cmd: str = "run") -> list[str]:
        """A tiny run of configs/smoke.yaml under this row's results directory."""
        argv = ["-q", cmd, "--config", "configs/smoke.yaml"] + (
            ["--method", method] if cmd == "run" else []
        )
        for s in (
            f"experiment.results_dir={self.res}",
            "tracking.mode=disabled",
            f"pruning.levels={levels}",
            "training.epochs=1",
            "experiment.threads=1",
            *sets,
        ):
            argv += ["--set", s]
        return argv

    def with_finished_run(self) -> Path:
        shutil.copytree(self.finished, self.res)
        return self.res

    def config_file(self, text: str) -> list[str]:
        path = self.tmp / "bad.yaml"
        path.write_text(text)
        return ["-q", "run", "--config", str(path), "--method", "lth"]

    def mnist(self, *sets: str, cmd: str = "train") -> list[str]:
        return self.run("data.dataset=mnist", f"data.data_dir={self.tmp / 'data'}", *sets, cmd=cmd)

    def fetch(self) -> list[str]:
        self.monkeypatch.setattr(F, "SOURCES", ())  # no network: only the files placed in the row
        return ["-q", "data", "fetch", "mnist", "--data-dir", str(self.tmp / "data")]


@dataclass
class Fault:
    id: str
    broken: str
    prepare: Callable[[Env], list[str]]  # sets the fault up, returns the command line
    expect: str | Callable[[Env, int, str], None]  # error fragment, CLEAN, or a check
    then: Callable[[Env], list[str]] | None = None  # follow the advice; the rerun must give CLEAN
    marks: tuple = field(default_factory=tuple)


# ---------------------------------------------------------------- helpers for the rows
def flip_byte(path: Path, offset: int, bits: int = 0xFF) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= bits
    path.write_bytes(bytes(data))


def later(path: Path) -> None:
    """Move a file's mtime a second on, as any later edit would (a flip right after stamping may
    fall within the filesystem's timestamp granularity)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def flip_mask_byte(ckpt: Path) -> None:
    """Flip one bit of a mask inside a checkpoint file, in place (torch's zip stores tensor bytes
    uncompressed and does not check their CRC on load): one weight changes from kept
    to pruned or back."""
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    mask_bytes = next(iter(state["mask"].values())).numpy().tobytes()
    with zipfile.ZipFile(
        ckpt
    ) as z:  # the masks may share one storage: find the entry holding the first
        entry, at = next(
            (i, z.read(i).find(mask_bytes))
            for i in z.infolist()
            if "/data/" in i.filename and mask_bytes in z.read(i)
        )
    with open(ckpt, "rb") as f:
        f.seek(entry.header_offset + 26)
        name_len, extra_len = (
            int.from_bytes(f.read(2), "little"),
            int.from_bytes(f.read(2), "little"),
        )
    flip_byte(ckpt, entry.header_offset + 30 + name_len + extra_len + at + 5, bits=0x01)
    flipped = torch.load(ckpt, map_location="cpu", weights_only=False)["mask"]
    assert sum(int(m.sum()) for m in flipped.values()) != sum(
        int(m.sum()) for m in state["mask"].values()
    )


def checkpoint(env: Env) -> Path:
    return env.res / RUN / "checkpoints" / "level1.pt"


def damaged_checkpoint(damage: Callable[[Path], None]) -> Callable[[Env], list[str]]:
    def prepare(env: Env) -> list[str]:
        env.with_finished_run()
        damage(checkpoint(env))
        return env.run(levels=2)  # extends the 1-level run from its checkpoint

    return prepare


def delete_checkpoint(env: Env) -> list[str]:
    checkpoint(env).unlink()
    return env.run(levels=2)


def delete_dense(env: Env) -> list[str]:
    shutil.rmtree(env.res / DENSE)
    return env.run(levels=2)


def delete_dense_record(env: Env) -> list[str]:
    (env.res / DENSE / "record.json").unlink()
    return env.run(levels=2)


def set_label(index: int, value: int) -> Callable:
    def edit(y):
        y[index] = value
        return y

    return edit


def damaged_final(env: Env) -> list[str]:
    env.with_finished_run()
    (env.res / DENSE / "final.pt").write_bytes(b"PK")
    return env.run(method="wr", levels=1)


def garbled_dense_record(env: Env) -> list[str]:
    env.with_finished_run()
    (env.res / DENSE / "record.json").write_text("{")
    return env.run(levels=2)


def never_verified(env: Env) -> list[str]:
    fake_mnist(env.tmp / "data", "MNIST")
    return env.mnist()


def results_dir_is_a_file(env: Env) -> list[str]:
    (env.tmp / "file").write_text("")
    return env.run(f"experiment.results_dir={env.tmp / 'file'}")


def wandb_dir_is_a_file(env: Env) -> list[str]:
    """The W&B mirror of finished runs (`infcop track`) cannot write its directory."""
    env.with_finished_run()
    (env.tmp / "wandb").write_text("")
    return env.run(
        "tracking.mode=offline", f"tracking.dir={env.tmp / 'wandb'}", levels=1, cmd="track"
    )


def other_config_checkpoint(env: Env) -> list[str]:
    """A run killed after its checkpoint, restarted with another config."""
    env.with_finished_run()
    (env.res / RUN / "record.json").unlink()
    return env.run("pruning.fraction=0.5", levels=2)


def placed_mnist(damage: Callable[[Path], None]) -> Callable[[Env], list[str]]:
    """Tiny MNIST files placed by hand, one of them damaged, then `infcop data fetch mnist`."""

    def prepare(env: Env) -> list[str]:
        fake_mnist(env.tmp / "data", "MNIST")
        damage(F.raw_dir("mnist", env.tmp / "data"))
        return env.fetch()

    return prepare


def stamped(damage: Callable[[Path], None]) -> Callable[[Env], list[str]]:
    """Tiny MNIST, verified and stamped, then damaged; then a dense run on it."""

    def prepare(env: Env) -> list[str]:
        stamped_mnist(env.tmp / "data", "mnist", env.monkeypatch)
        damage(F.raw_dir("mnist", env.tmp / "data"))
        return env.mnist()

    return prepare


def rewrite_idx(name: str, edit: Callable) -> Callable[[Path], None]:
    def damage(raw: Path) -> None:
        write_idx(raw / name, edit(F.read_idx(raw / name).copy()))

    return damage


def patch_header(name: str, offset: int, value: bytes) -> Callable[[Path], None]:
    def damage(raw: Path) -> None:
        data = bytearray((raw / name).read_bytes())
        data[offset : offset + len(value)] = value
        (raw / name).write_bytes(bytes(data))

    return damage


def fashion_in_mnist_folder(stamp: bool) -> Callable[[Env], list[str]]:
    """Fashion-MNIST (here: other tiny arrays pinned as fashion_mnist) copied into
    the MNIST folder."""

    def prepare(env: Env) -> list[str]:
        data = env.tmp / "data"
        stamped_mnist(data / "real", "mnist", env.monkeypatch)
        stamped_mnist(data, "fashion_mnist", env.monkeypatch, seed=1)
        F.raw_dir("mnist", data).mkdir(parents=True)
        for name in F.FILES + ((F.stamp_path("fashion_mnist", data).name,) if stamp else ()):
            shutil.copy2(F.raw_dir("fashion_mnist", data) / name, F.raw_dir("mnist", data) / name)
        return env.mnist() if stamp else env.fetch()

    return prepare


def other_data_after_dense(env: Env) -> list[str]:
    """A dense run on tiny MNIST, then other (verified) MNIST files in the same folder."""
    data = env.tmp / "data"
    stamped_mnist(data, "mnist", env.monkeypatch)
    assert main(env.mnist()) == 0
    first = json.loads(
        (
            env.res / STUDY / "dense" / "mnist" / "lenet_300_100" / "seed0" / "record.json"
        ).read_text()
    )
    env.notes["fingerprint"] = first["provenance"]["data"]["content_sha256"]
    stamped_mnist(data, "mnist", env.monkeypatch, seed=1)
    return env.mnist()


def fingerprint_checked(env: Env, rc: int, err: str) -> None:
    assert (
        rc == 2
        and "was trained on other mnist data than data.data_dir" in err
        and "Traceback" not in err
    )
    assert len(env.notes["fingerprint"]) == 64
    assert f"content sha256 {env.notes['fingerprint'][:16]} then" in err


def stale_temporaries(env: Env) -> list[str]:
    """Killed in the middle of writing the dense record and of a level checkpoint."""
    env.with_finished_run()
    (env.res / DENSE / "record.json").unlink()
    for path in (
        env.res / DENSE / ".record.json.0a0b0c0d.tmp",
        env.res / RUN / ".record.json.1a2b3c4d.tmp",
        env.res / RUN / "checkpoints" / ".level2.pt.5e6f7a8b.tmp",
    ):
        path.write_bytes(b"half a write")
    return env.run(levels=2)


def no_temporaries_left(env: Env, rc: int, err: str) -> None:
    assert rc == 0 and not list(env.res.rglob("*.tmp"))
    assert_clean(env)


def umask_022(env: Env) -> list[str]:
    env.notes["umask"] = os.umask(0o022)
    return env.run(levels=1)


def readable_results(env: Env, rc: int, err: str) -> None:
    os.umask(env.notes["umask"])
    assert rc == 0
    for path in (
        RUN / "record.json",
        RUN / "levels.csv",
        RUN / "checkpoints" / "level1.pt",
        RUN / "masks" / "level1.pt",
        DENSE / "record.json",
        DENSE / "final.pt",
    ):
        assert (env.res / path).stat().st_mode & 0o777 == 0o644, path


def warning_recorded(
    fragment: str, log_fragment: str | None = None
) -> Callable[[Env, int, str], None]:
    def check(env: Env, rc: int, err: str) -> None:
        assert rc == 0
        run = next(p for p in (env.res / STUDY / "runs").rglob("record.json"))
        if log_fragment is None:
            assert any(fragment in w for w in json.loads(run.read_text())["warnings"])
        else:
            assert log_fragment in env.log

    return check


def readonly(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)


def readonly_finished_tree(env: Env) -> list[str]:
    readonly(env.with_finished_run())
    return env.run(levels=1, method="wr")


def readonly_parent(env: Env) -> list[str]:
    parent = env.tmp / "locked"
    parent.mkdir(mode=0o555)
    return env.run(f"experiment.results_dir={parent / 'results'}")


def rerun_readonly_finished(env: Env) -> list[str]:
    readonly(env.with_finished_run())
    return env.run(levels=1)


def answered_from_disk(env: Env, rc: int, err: str) -> None:
    assert rc == 0, err
    assert "already done; skipping" in env.log


def lock_held_elsewhere(env: Env) -> list[str]:
    """Another process (on any host) holds the run directory's lock for 2 s."""
    lock = env.res / RUN.parent / ".seed0.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom pathlib import Path\nfrom infcop.foundations.storage "
            "import file_lock\n"
            "with file_lock(Path(sys.argv[1])):\n    print('held', flush=True)\n    time.sleep(2)",
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    env.notes["holder"] = holder
    return env.run(levels=2)


def waited_for_the_holder(env: Env, rc: int, err: str) -> None:
    holder = env.notes["holder"]
    holder.wait()
    assert rc == 0 and f"pid {holder.pid}" in env.log and "waiting for it to finish" in env.log
    assert_clean(env)


def dense_record(env: Env, results: Path) -> dict:
    return json.loads(
        (
            results / STUDY / "dense" / "mnist" / "lenet_300_100" / "seed0" / "record.json"
        ).read_text()
    )


def damaged_split_cache(env: Env) -> list[str]:
    """A dense run on tiny MNIST writes the split cache; then five cached test labels are changed
    and the file saved again as a whole, readable cache; then the same dense run into a fresh
    results directory."""
    stamped_mnist(env.tmp / "data", "mnist", env.monkeypatch)
    assert main(env.mnist()) == 0
    env.notes["first"] = dense_record(env, env.res)
    (cache,) = (env.tmp / "data" / "MNIST" / "splits").glob("*.pt")
    saved = torch.load(cache, weights_only=True)
    saved["y_test"][:5] = (saved["y_test"][:5] + 1) % 10
    torch.save(saved, cache)
    return env.mnist(f"experiment.results_dir={env.tmp / 'again'}")


def same_data_as_the_first(env: Env, rc: int, err: str) -> None:
    assert rc == 0, err
    assert "fails its checksum" in env.log and "rebuilding the splits" in env.log
    again, first = dense_record(env, env.tmp / "again"), env.notes["first"]
    assert (
        again["provenance"]["data"]["content_sha256"]
        == first["provenance"]["data"]["content_sha256"]
    )
    assert again["test_acc"] == first["test_acc"]


def unwritable_split_cache(env: Env) -> list[str]:
    """The cache's folder cannot be created (a file holds its name), as in a read-only
    dataset directory."""
    stamped_mnist(env.tmp / "data", "mnist", env.monkeypatch)
    (env.tmp / "data" / "MNIST" / "splits").write_text("")
    return env.mnist()


def ran_without_a_cache(env: Env, rc: int, err: str) -> None:
    assert rc == 0, err
    assert "not written" in env.log and (env.tmp / "data" / "MNIST" / "splits").is_file()
    assert len(dense_record(env, env.res)["provenance"]["data"]["content_sha256"]) == 64


def copied_study(cmd: str) -> Callable[[Env], list[str]]:
    """A finished study copied elsewhere; its config.yaml still names the original's results_dir
    (which is then removed, so any read or write there would show)."""

    def prepare(env: Env) -> list[str]:
        copy = env.tmp / "copy"
        shutil.copytree(env.finished, copy)
        raw = yaml.safe_load(Path("configs/smoke.yaml").read_text())
        raw["experiment"].update(results_dir=str(env.res), seeds=[0], threads=1)
        raw["study"].update(methods=["lth"], diagnose=[])
        raw.update(
            tracking={"mode": "disabled"},
            pruning={"levels": 1},
            training={**raw["training"], "epochs": 1},
        )
        (copy / STUDY / "config.yaml").write_text(yaml.safe_dump(raw))
        return ["-q", cmd, "--config", str(copy / STUDY / "config.yaml")] + (
            ["--method", "lth"] if cmd == "run" else []
        )

    return prepare


def worked_in_place(env: Env, rc: int, err: str) -> None:
    assert rc == 0, err
    assert not env.res.exists()  # nothing written at the original's location
    if "already done; skipping" not in env.log:
        assert (env.tmp / "copy" / STUDY / "runs.csv").read_text().count("\n") == 2


def run_record(env: Env, method: str) -> dict:
    return json.loads(
        (
            env.res / STUDY / "runs" / "digits" / "lenet_300_100" / method / "seed0" / "record.json"
        ).read_text()
    )


def diverged_as_a_result(method: str, level: int) -> Callable[[Env, int, str], None]:
    def check(env: Env, rc: int, err: str) -> None:
        assert rc == 0, err
        record = run_record(env, method)
        assert (
            record["status"] == "diverged"
            and record["diverged_at_level"] == level
            and not record["levels"]
        )
        assert "recorded as a result" in env.log

    return check


def collapsed_with_a_reason(env: Env, rc: int, err: str) -> None:
    """Before: status complete, every level stopped on "flow" at chance accuracy
    with dead layers."""
    assert rc == 0, err
    record = run_record(env, "infcop_if")
    assert (
        record["status"] == "collapsed"
        and record["collapsed_at_level"] == len(record["levels"]) + 1
    )
    assert any("pruning left no weight in layer(s)" in w for w in record["warnings"])
    assert all(lv["density"] > 0 for lv in record["levels"])


def one_run_of_the_seed_fails(env: Env) -> list[str]:
    """`infcop runs` (a seed job) where one run cannot go on (its old record is garbled)."""
    path = (
        env.res / STUDY / "runs" / "digits" / "lenet_300_100" / "finetune" / "seed0" / "record.json"
    )
    path.parent.mkdir(parents=True)
    path.write_text("{")
    return env.run("study.methods=[finetune, lth]", "study.diagnose=[]", levels=1, cmd="runs")


def the_others_kept_their_records(env: Env, rc: int, err: str) -> None:
    assert (
        rc == 1
        and "1 of 2 run(s) failed" in err
        and "finetune/seed0/record.json is corrupt" in env.log
    )
    assert run_record(env, "lth")["status"] == "complete"


def edit_record(path: Path, edit: Callable[[dict], None]) -> None:
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record, indent=2))


def hand_edited_record(env: Env) -> list[str]:
    env.with_finished_run()
    edit_record(env.res / RUN / "record.json", lambda r: r["levels"][0].update(test_acc=0.99))
    return env.run(levels=2)


def delete_record(env: Env) -> list[str]:
    (env.res / RUN / "record.json").unlink()
    return env.run(levels=2)


def collect(*sets: str, edit: Callable[[Path], None] | None = None) -> Callable[[Env], list[str]]:
    """`infcop collect` of a one-method, one-seed study over the finished 1-level lth
    run, after `edit`."""

    def prepare(env: Env) -> list[str]:
        env.with_finished_run()
        if edit is not None:
            edit(env.res)
        return env.run(
            "study.methods=[lth]",
            "study.diagnose=[]",
            "experiment.seeds=[0]",
            *sets,
            levels=1,
            cmd="collect",
        )

    return prepare


def collected_with_a_warning(env: Env, rc: int, err: str) -> None:
    assert rc == 0, err
    assert "carries no checksum (written before records did); read unchecked" in env.log
    assert (env.res / STUDY / "runs.csv").read_text().count(
        "\n"
    ) == 2  # the header and the one level


# ---------------------------------------------------------------- the catalogue
CATALOGUE = [
    # ---- command line
    Fault(
        "set-malformed-yaml",
        "--set value that is not YAML",
        lambda e: e.run("experiment.seeds=[0,"),
        "--set experiment.seeds: '[0,' is not a valid YAML value",
    ),
    Fault(
        "set-empty-key",
        "--set with nothing before '='",
        lambda e: e.run("=5"),
        "--set '=5': the key before '=' must be section.key",
    ),
    Fault(
        "set-no-equals",
        "--set without '='",
        lambda e: e.run("training.epochs"),
        "expected key=value",
    ),
    Fault(
        "set-under-a-value",
        "--set a key below a plain value",
        lambda e: e.run("training.epochs.x=5"),
        "--set training.epochs.x: epochs is not a section",
    ),
    Fault(
        "seed-negative-cli",
        "--seed -1",
        lambda e: e.run() + ["--seed", "-1"],
        "--seed: -1 is out of range",
    ),
    Fault(
        "pair-malformed",
        "--pair without a model",
        lambda e: e.run() + ["--pair", "digits"],
        "--pair 'digits': expected dataset/model",
    ),
    Fault(
        "method-unknown",
        "a method that is not registered",
        lambda e: e.run(method="lottery"),
        "unknown method 'lottery'; known methods:",
    ),
    # ---- configuration values
    Fault(
        "seeds-empty",
        "experiment.seeds: []",
        lambda e: e.run("experiment.seeds=[]"),
        "experiment.seeds: needs at least 1 item",
    ),
    Fault(
        "seeds-duplicate",
        "experiment.seeds: [0, 0, 1]",
        lambda e: e.run("experiment.seeds=[0, 0, 1]"),
        "experiment.seeds: 0 appears more than once",
    ),
    Fault(
        "seed-negative-config",
        "experiment.seeds: [-1]",
        lambda e: e.run("experiment.seeds=[-1]"),
        "experiment.seeds[0]: -1 is out of range; must be >= 0",
    ),
    Fault(
        "name-with-slash",
        "experiment.name with a '/'",
        lambda e: e.run("experiment.name=a/b"),
        "experiment.name: 'a/b' is not allowed here",
    ),
    Fault(
        "name-dotdot",
        "experiment.name '..' (outside results_dir)",
        lambda e: e.run("experiment.name=.."),
        "experiment.name: '..' is not allowed here",
    ),
    Fault(
        "rewind-beyond-dense",
        "training.rewind_point past dense training",
        lambda e: e.run("training.rewind_point=999ep"),
        "training.rewind_point: 999ep lies beyond dense training",
    ),
    Fault(
        "rewind-malformed",
        "training.rewind_point not '<n>ep'",
        lambda e: e.run("training.rewind_point=3 epochs"),
        "training.rewind_point: '3 epochs' is not a training point",
    ),
    Fault(
        "cap-past-cosine",
        "stopping.cap past the cosine schedule's end",
        lambda e: e.run("stopping.cap=50", method="infcop_if"),
        "stopping.cap: 50 epochs run past the end of the cosine",
    ),
    Fault(
        "milestones-outside",
        "step milestones [1.5, -2]",
        lambda e: e.run("training.schedule=step", "training.milestones=[1.5, -2]"),
        "training.milestones[0]: 1.5 is out of range; must be > 0.0 and < 1.0",
    ),
    Fault(
        "unknown-section",
        "a misspelled section",
        lambda e: e.run("trainin.epochs=1"),
        "trainin: unknown section",
    ),
    Fault(
        "unknown-key",
        "a misspelled key",
        lambda e: e.run("training.lrr=0.1"),
        "training.lrr: unknown key; allowed keys:",
    ),
    Fault(
        "unknown-model",
        "model.name not registered",
        lambda e: e.run("model.name=resnet1000"),
        "model.name: unknown value 'resnet1000'",
    ),
    Fault(
        "out-of-range",
        "pruning.fraction 1.0",
        lambda e: e.run("pruning.fraction=1.0"),
        "pruning.fraction: 1.0 is out of range",
    ),
    Fault(
        "probe-larger-than-data",
        "stopping.probe_size beyond half the training split",
        lambda e: e.run("stopping.probe_size=100000", method="infcop_if", levels=1),
        warning_recorded("stopping.probe_size: 100000 is more than half the training split"),
    ),
    # ---- paths: anything but what no path may hold; the workflow quotes the
    # rest (rows below run it)
    Fault(
        "results-dir-newline",
        "experiment.results_dir holding a newline",
        lambda e: e.run(f'experiment.results_dir="{e.tmp}/a\\nb"'),
        "holds '\\n', which no path of the harness",
    ),
    Fault(
        "results-dir-brace",
        "experiment.results_dir holding a Snakemake wildcard",
        lambda e: e.run(f"experiment.results_dir={e.tmp}/{{x}}"),
        "holds '{', which no path of the harness",
    ),
    Fault(
        "data-dir-nul",
        "data.data_dir holding a NUL",
        lambda e: e.run('data.data_dir="a\\0b"'),
        "data.data_dir: 'a\\x00b' holds '\\x00'",
    ),
    Fault(
        "tracking-dir-newline",
        "tracking.dir holding a newline",
        lambda e: e.run('tracking.dir="w\\nx"'),
        "tracking.dir: 'w\\nx' holds '\\n'",
    ),
    # ---- upper bounds: values that would exhaust time or memory
    Fault(
        "levels-huge",
        "pruning.levels: 10**9",
        lambda e: e.run("pruning.levels=1000000000"),
        "pruning.levels: 1000000000 is out of range; must be >= 1 and <= 1000",
    ),
    Fault(
        "plan-levels-huge",
        "`infcop plan` of a study with pruning.levels: 10**9 (it hung)",
        lambda e: [
            "plan",
            "--configfile",
            "configs/smoke.yaml",
            "--set",
            "pruning.levels=1000000000",
        ],
        "pruning.levels: 1000000000 is out of range",
    ),
    Fault(
        "epochs-huge",
        "training.epochs: 10**9",
        lambda e: e.run("training.epochs=1000000000"),
        "training.epochs: 1000000000 is out of range",
    ),
    Fault(
        "resize-huge",
        "data.resize: 10**6 (a 4 TB batch)",
        lambda e: e.run("data.resize=1000000"),
        "data.resize: 1000000 is out of range; must be >= 0 and <= 1024",
    ),
    Fault(
        "probe-huge",
        "stopping.probe_size: 10**9",
        lambda e: e.run("stopping.probe_size=1000000000"),
        "stopping.probe_size: 1000000000 is out of range",
    ),
    Fault(
        "bootstrap-huge",
        "study.bootstrap: 10**12",
        lambda e: e.run("study.bootstrap=1000000000000"),
        "study.bootstrap: 1000000000000 is out of range",
    ),
    Fault(
        "seed-huge",
        "a seed numpy cannot take",
        lambda e: e.run("experiment.seeds=[4294967296]"),
        "experiment.seeds[0]: 4294967296 is out of range; must be >= 0 and <= 4294967295",
    ),
    Fault(
        "seeds-too-many",
        "10,000 seeds",
        lambda e: e.run(f"experiment.seeds={list(range(10000))}"),
        "experiment.seeds: 10000 items; at most 1000 are allowed",
    ),
    Fault(
        "tag-too-long",
        "a W&B tag longer than W&B takes",
        lambda e: e.run(f"tracking.tags=[{'t' * 65}]"),
        "tracking.tags[0]: 65 characters; at most 64 are allowed",
    ),
    # ---- names checked against what exists, and names the harness keeps for itself
    Fault(
        "exclude-unknown-layer",
        "pruning.exclude_layers naming no layer of the model",
        lambda e: e.run("pruning.exclude_layers=[fc1]"),
        "pruning.exclude_layers[0]: 'fc1' is no prunable layer of lenet_300_100; its prunable "
        "layers: 1, 3, 5",
    ),
    Fault(
        "variant-named-dense",
        "a variant named like the dense rows",
        lambda e: e.run("study.methods=[{name: dense, method: lth}]"),
        "study.methods[0]: 'dense' is a name the harness uses itself",
    ),
    Fault(
        "variant-named-diagnose",
        "a variant named like another method's diagnostic run",
        lambda e: e.run("study.methods=[lth, {name: lth_diagnose, method: lth}]"),
        "study.methods[1]: 'lth_diagnose' is a name the harness uses itself",
    ),
    # ---- configuration files
    Fault(
        "config-empty-section",
        "a section written with nothing under it (null)",
        lambda e: e.config_file("training:\npruning: {levels: 1}\n"),
        "training: expected a mapping, got None",
    ),
    Fault(
        "config-null-method-params",
        "methods.<name> written with nothing under it",
        lambda e: e.config_file("methods:\n  lth:\n"),
        "methods.lth: expected a mapping of hyperparameters",
    ),
    Fault(
        "config-null-variant-params",
        "a variant's params: null",
        lambda e: e.config_file("study:\n  methods: [{name: v, method: lth, params: null}]\n"),
        "study.methods[0].params: expected a mapping of hyperparameters, got None",
    ),
    Fault(
        "config-top-level-list",
        "a config file holding a list",
        lambda e: e.config_file("- training\n- data\n"),
        "the top level must be a mapping of sections",
    ),
    Fault(
        "config-empty",
        "an empty config file",
        lambda e: e.config_file("# nothing\n"),
        "the file is empty",
    ),
    Fault(
        "config-not-yaml",
        "a config file that is not YAML",
        lambda e: e.config_file("training: [1,\n"),
        "not valid YAML",
    ),
    # Snakemake parses --configfile itself, before the workflow starts, and names no line; the
    # README points to `infcop plan --configfile`, which reads it the way the workflow does
    Fault(
        "plan-configfile-not-yaml",
        "a --configfile for Snakemake that is not YAML",
        lambda e: ["plan", "--configfile", e.config_file("experiment:\n  seeds: [0,\n")[3]],
        "bad.yaml: not valid YAML: expected the node content, but found '<stream end>' at line 3",
    ),
    Fault(
        "config-missing",
        "a config path that does not exist",
        lambda e: ["run", "--config", str(e.tmp / "nope.yaml"), "--method", "lth"],
        "config file not found",
    ),
    Fault(
        "config-duplicate-section",
        "the same section twice",
        lambda e: e.config_file("training: {epochs: 1}\ndata: {}\ntraining: {lr: 0.1}\n"),
        "'training' appears twice in the same mapping (first on line 1)",
    ),
    Fault(
        "per-model-misspelled",
        "a per_model recipe for a model that does not exist",
        lambda e: e.config_file("per_model:\n  lenet_300_10: {training: {lr: 0.1}}\n"),
        "per_model.lenet_300_10: unknown model, so this recipe would never apply",
    ),
    Fault(
        "per-dataset-misspelled",
        "a per_dataset recipe for a dataset that does not exist",
        lambda e: e.config_file("per_dataset:\n  mnsit: {data: {augment: true}}\n"),
        "per_dataset.mnsit: unknown dataset",
    ),
    # ---- dataset files: as fetched and verified (files placed by hand, no network)
    Fault(
        "idx-wrong-magic",
        "an IDX file with a wrong magic number",
        placed_mnist(patch_header("train-images-idx3-ubyte", 3, b"\x01")),
        "bad IDX magic 00000801",
    ),
    Fault(
        "idx-wrong-type",
        "an IDX file with a wrong element type byte",
        placed_mnist(patch_header("train-labels-idx1-ubyte", 2, b"\x0d")),
        "IDX dtype byte 0x0d, expected 0x08",
    ),
    Fault(
        "idx-count-vs-rows",
        "an image count that disagrees with the rows, same byte total",
        placed_mnist(patch_header("train-images-idx3-ubyte", 4, (39).to_bytes(4, "big"))),
        "train-images-idx3-ubyte: trailing bytes: dims 39x28x28",
    ),
    Fault(
        "idx-label-255",
        "a label byte of 255",
        placed_mnist(rewrite_idx("t10k-labels-idx1-ubyte", set_label(3, 255))),
        "t10k-labels-idx1-ubyte: label 255 at index 3 is not a class 0-9",
    ),
    Fault(
        "idx-half-the-labels",
        "20 labels beside 40 images, consistent headers",
        placed_mnist(rewrite_idx("train-labels-idx1-ubyte", lambda y: y[:20])),
        "train-labels-idx1-ubyte: holds 20 labels for the 40 images",
    ),
    Fault(
        "idx-truncated",
        "a truncated IDX file",
        placed_mnist(
            lambda raw: (raw / "t10k-images-idx3-ubyte").write_bytes(
                (raw / "t10k-images-idx3-ubyte").read_bytes()[:-7]
            )
        ),
        "t10k-images-idx3-ubyte: truncated",
    ),
    Fault(
        "fashion-in-mnist-folder",
        "Fashion-MNIST files in the MNIST folder",
        fashion_in_mnist_folder(stamp=False),
        "content differs from the pinned mnist data",
    ),
    # ---- dataset files: damaged after verification, found by the loader
    Fault(
        "data-flipped-byte",
        "one byte of a verified file flipped",
        stamped(
            lambda raw: (
                flip_byte(raw / "train-images-idx3-ubyte", 500),
                later(raw / "train-images-idx3-ubyte"),
            )
        ),
        "train-images-idx3-ubyte: changed since it was verified",
    ),
    Fault(
        "data-file-missing",
        "a verified file deleted",
        stamped(lambda raw: (raw / "t10k-labels-idx1-ubyte").unlink()),
        "t10k-labels-idx1-ubyte: missing (listed in the stamp)",
    ),
    Fault(
        "data-stamp-garbled",
        "the verification stamp garbled",
        stamped(lambda raw: (raw / "infcop-verified.json").write_text("{not json")),
        "unreadable stamp",
    ),
    Fault(
        "data-never-verified",
        "files placed by hand, never fetched",
        never_verified,
        "never verified",
    ),
    Fault(
        "fashion-stamp-in-mnist-folder",
        "Fashion-MNIST files and their stamp in the MNIST folder",
        fashion_in_mnist_folder(stamp=True),
        "records a hash for train-images-idx3-ubyte that is not the pinned one",
    ),
    Fault(
        "split-cache-damaged",
        "cached test labels changed in a readable cache file",
        damaged_split_cache,
        same_data_as_the_first,
    ),
    Fault(
        "split-cache-unwritable",
        "the split cache cannot be written (read-only dataset directory)",
        unwritable_split_cache,
        ran_without_a_cache,
    ),
    Fault(
        "dense-reused-on-other-data",
        "a finished dense run, then other data in data.data_dir",
        other_data_after_dense,
        fingerprint_checked,
    ),
    # ---- checkpoints and results
    Fault(
        "checkpoint-mask-flipped-byte",
        "one byte of a level checkpoint's mask flipped",
        damaged_checkpoint(flip_mask_byte),
        "fails its checksum",
        then=delete_checkpoint,
    ),
    Fault(
        "checkpoint-truncated",
        "a level checkpoint cut short",
        damaged_checkpoint(lambda p: p.write_bytes(p.read_bytes()[:1000])),
        "is corrupt or unreadable",
        then=delete_checkpoint,
    ),
    Fault(
        "checkpoint-other-config",
        "a checkpoint of another config in the run directory",
        other_config_checkpoint,
        "belongs to config",
    ),
    Fault(
        "dense-final-truncated",
        "the dense run's final.pt cut short",
        damaged_final,
        "to retrain level 0 (deleting only this file is not enough",
        then=delete_dense,
    ),
    Fault(
        "dense-record-garbled",
        "the dense record.json garbled",
        garbled_dense_record,
        "record.json is corrupt (not valid JSON",
        then=delete_dense_record,
    ),
    Fault(
        "record-hand-edited",
        "a record.json edited by hand",
        hand_edited_record,
        "fails its checksum",
        then=delete_record,
    ),
    # ---- collect: every record the config asks for, as the config asks for it
    Fault(
        "collect-training-changed",
        "training.epochs changed after the study ran",
        collect("training.epochs=2"),
        "produced by config",
    ),
    Fault(
        "collect-levels-raised",
        "pruning.levels raised after the study ran",
        collect("pruning.levels=2"),
        "record.json: 1 level(s), the study's config asks for 2",
    ),
    Fault(
        "collect-seed-deleted",
        "a seed's run directory deleted (or a seed added)",
        collect("experiment.seeds=[0, 1]"),
        "lth/seed1/record.json: missing",
    ),
    Fault(
        "collect-record-edited",
        "a record edited by hand, then collected",
        collect(
            edit=lambda res: edit_record(
                res / RUN / "record.json",
                lambda r: r.update(seed=0) or r["levels"][0].update(test_acc=0.99),
            )
        ),
        "fails its checksum",
    ),
    Fault(
        "collect-record-without-checksum",
        "a record written before records carried a checksum",
        collect(edit=lambda res: edit_record(res / RUN / "record.json", lambda r: r.pop("sha256"))),
        collected_with_a_warning,
    ),
    Fault(
        "copied-study-collect",
        "a copied study collected with its own config.yaml",
        copied_study("collect"),
        worked_in_place,
    ),
    Fault(
        "copied-study-run",
        "a copied study's run asked again with its own config.yaml",
        copied_study("run"),
        worked_in_place,
    ),
    Fault(
        "stale-temporaries",
        "temporaries left by writes killed mid-way",
        stale_temporaries,
        no_temporaries_left,
    ),
    Fault(
        "result-permissions",
        "collaborators must read results (umask 022)",
        umask_022,
        readable_results,
    ),
    Fault(
        "results-dir-is-a-file",
        "experiment.results_dir names a file",
        results_dir_is_a_file,
        "check that the path exists, is writable",
    ),
    Fault(
        "results-parent-readonly",
        "results_dir inside a read-only directory",
        readonly_parent,
        "permission denied",
        marks=(NEEDS_PERMISSIONS,),
    ),
    Fault(
        "readonly-tree-new-method",
        "a finished, read-only results tree and a new method",
        readonly_finished_tree,
        "permission denied",
        marks=(NEEDS_PERMISSIONS,),
    ),
    Fault(
        "readonly-tree-rerun",
        "a finished, read-only results tree, the same run again",
        rerun_readonly_finished,
        answered_from_disk,
    ),
    # ---- divergence is a result; one run's failure is its own
    Fault(
        "run-diverges",
        "a method whose LR makes it diverge at level 1",
        lambda e: e.run("methods={finetune: {lr: 1000.0}}", method="finetune", levels=1),
        diverged_as_a_result("finetune", 1),
    ),
    Fault(
        "dense-diverges-before-rewind",
        "dense training diverges before the rewind point (rewind.pt never written)",
        lambda e: e.run("training.lr=1000.0", levels=1),
        diverged_as_a_result("lth", 0),
    ),
    Fault(
        "network-collapses",
        "pruning.fraction 0.99: a layer without a weight after a few levels",
        lambda e: e.run("pruning.fraction=0.99", method="infcop_if", levels=3),
        collapsed_with_a_reason,
    ),
    Fault(
        "seed-job-one-run-fails",
        "one run of a seed job fails",
        one_run_of_the_seed_fails,
        the_others_kept_their_records,
    ),
    # ---- W&B directory
    Fault(
        "wandb-dir-is-a-file",
        "tracking.dir names a file",
        wandb_dir_is_a_file,
        warning_recorded("", log_fragment="W&B mirror stopped"),
    ),
    # ---- concurrent runs
    Fault(
        "lock-held-by-another-process",
        "the run directory is being written by another process",
        lock_held_elsewhere,
        waited_for_the_holder,
    ),
]


def assert_clean(env: Env) -> None:
    """The run ended as the undisturbed one did, and its record names the data it trained on."""
    record = json.loads((env.res / RUN / "record.json").read_text())
    dense = json.loads((env.res / DENSE / "record.json").read_text())
    assert record["status"] == "complete"
    assert without_wall_clock(record["levels"]) == without_wall_clock(env.clean)
    assert (
        record["provenance"]["data"]["content_sha256"]
        == dense["provenance"]["data"]["content_sha256"]
    )


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """A finished 1-level lth run (copied by rows that damage it), and the levels of an undisturbed
    2-level run: the expected outcome of every row that ends in a clean result."""
    base = tmp_path_factory.mktemp("faults")
    env = Env(base, pytest.MonkeyPatch(), base)
    assert main(env.run(levels=1)) == 0
    finished = base / "finished"
    shutil.copytree(env.res, finished)
    assert main(env.run(levels=2)) == 0
    return finished, json.loads((env.res / RUN / "record.json").read_text())["levels"]


def run_cli(argv: list[str], capsys, caplog) -> tuple[int, str, str]:
    caplog.clear()
    try:
        rc = main(argv)
    except SystemExit as exit_:  # argparse
        rc = exit_.code
    return rc, capsys.readouterr().err, caplog.text


@pytest.mark.parametrize("fault", [pytest.param(f, id=f.id, marks=f.marks) for f in CATALOGUE])
def test_fault(fault: Fault, tmp_path, monkeypatch, capsys, caplog, trees):
    env = Env(tmp_path, monkeypatch, trees[0], trees[1])
    caplog.set_level("INFO", logger="infcop")
    rc, err, env.log = run_cli(fault.prepare(env), capsys, caplog)
    assert "Traceback" not in err
    if callable(fault.expect):
        fault.expect(env, rc, err)
    elif fault.expect == CLEAN:
        assert rc == 0, err
        assert_clean(env)
    else:
        assert rc == 2 and "\nerror: " in "\n" + err, err  # after any log lines
        assert fault.expect in err, err
    if fault.then is not None:
        rc, err, _ = run_cli(fault.then(env), capsys, caplog)
        assert rc == 0, f"following the advice did not work: {err}"
        assert_clean(env)


def test_debug_shows_the_traceback(tmp_path, capsys):
    env = Env(tmp_path, None, tmp_path)
    with pytest.raises(Exception, match="is not a valid YAML value"):
        main(["--debug"] + env.run("experiment.seeds=[0,"))


# ---------------------------------------------------------------- rows that need real processes
@pytest.mark.parametrize(
    "cli, run_path, levels, kill_when",
    [
        pytest.param(
            flow_cli,
            "default/runs/digits/lenet_300_100/infcop_gf/seed0",
            10,
            "checkpoints/level2.pt",
            id="kill-after-level-2-flow-criterion",
        ),
        pytest.param(
            dropout_cli,
            "default/runs/digits/mlp_dropout/infcop_if/seed0",
            6,
            "checkpoints/level2.pt",
            id="kill-after-level-2-dropout",
        ),
        pytest.param(
            flow_cli,
            "default/runs/digits/lenet_300_100/infcop_gf/seed0",
            10,
            "default/dense/digits/lenet_300_100/seed0/rewind.pt",
            id="kill-during-dense-training",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            dropout_cli,
            "default/runs/digits/mlp_dropout/infcop_if/seed0",
            6,
            "checkpoints/level5.pt",
            id="kill-before-the-last-level-dropout",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_kill_and_resume(tmp_path, cli, run_path, levels, kill_when):
    """SIGKILL at a given point, rerun the same command: the same numbers as an uninterrupted run.
    Dropout draws from the global RNG, so its resume also proves the RNG state is restored."""
    kill_resume_and_compare(tmp_path, cli, run_path, levels, kill_when)


@pytest.mark.slow
def test_two_identical_runs_at_once_write_once(tmp_path):
    """As a preempted-and-requeued SLURM job can produce: one writes, the other waits,
    then finds it done."""
    cli = flow_cli(tmp_path, "--set", "pruning.levels=4", "--set", "tracking.mode=disabled")
    cli.remove("-q")
    procs = [
        subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    waited = [
        e for _, e in outs if "waiting for it to finish" in e or "already done; skipping" in e
    ]
    assert len(waited) == 1, "exactly one of the two must have deferred to the other"
    run = tmp_path / "default/runs/digits/lenet_300_100/infcop_gf/seed0"
    record = json.loads((run / "record.json").read_text())
    assert record["status"] == "complete" and len(record["levels"]) == 4
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["level4.pt"]


# ------------------------------------------------------ rows that run the workflow (real Snakemake)
REPO = Path(__file__).resolve().parents[1]
TINY_STUDY = {
    "experiment": {"name": "tiny", "seeds": [0]},
    "data": {"dataset": "digits"},
    "training": {"epochs": 1, "batch_size": 128},
    "pruning": {"levels": 1},
    "stopping": {"probe_size": 64, "probe_batch": 64},
    "study": {"pairs": ["digits/lenet_300_100"], "methods": ["lth"], "bootstrap": 100},
    "tracking": {"mode": "disabled"},
}


def tiny_study(**sections: dict) -> dict:
    """TINY_STUDY with some sections' keys replaced."""
    return {
        name: {**TINY_STUDY.get(name, {}), **sections.get(name, {})}
        for name in {*TINY_STUDY, *sections}
    }


def snakemake_study(work: Path, config: dict, *args: str) -> subprocess.CompletedProcess:
    work.mkdir(parents=True, exist_ok=True)
    (work / "study.yaml").write_text(yaml.safe_dump(config))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(work),
            "--configfile",
            str(work / "study.yaml"),
            "--cores",
            "2",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )


def shell_commands() -> dict[str, str]:
    """The `shell:` command of every rule in workflow/rules/*.smk, as written."""
    out = {}
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for block in path.read_text().split("shell:")[1:]:
            lines = [ln.strip() for ln in block.splitlines()[1:]]
            text = "".join(
                ln.strip('"') for ln in itertools.takewhile(lambda ln: ln.startswith('"'), lines)
            )
            out[f"{path.name}: {text[:40]}"] = text
    return out


def test_every_shell_value_is_quoted():
    """Every value a rule hands its shell goes through Snakemake's quoting (`:q`); only the thread
    count, an integer Snakemake sets, is left bare."""
    commands = shell_commands()
    assert len(commands) >= 10
    for where, text in commands.items():
        bare = [
            p for p in re.findall(r"\{([^{}]+)\}", text) if not p.endswith(":q") and p != "threads"
        ]
        assert not bare, f"{where}: unquoted {bare}"


def test_results_dir_with_shell_syntax_and_spaces_runs_literally(tmp_path):
    """A results_dir holding `$(...)`, backquotes, ';' and spaces is a directory name like any
    other: the study runs into it and no command in it runs (before, `$(touch PWNED)` ran and a
    space broke every job)."""
    name = "my results $(touch PWNED) `touch PWNED2`; x"
    out = snakemake_study(tmp_path, tiny_study(experiment={"results_dir": name}))
    assert out.returncode == 0, out.stderr[-3000:]
    assert not [
        p for p in (tmp_path, REPO, Path.cwd()) for f in ("PWNED", "PWNED2") if (p / f).exists()
    ]
    study = tmp_path / name / "tiny"
    assert (study / "summary.md").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".snakemake",
        name,
        "study.yaml",
    ]  # nothing stray


def test_a_full_disk_leaves_the_data_usable(tmp_path, monkeypatch, caplog):
    """A dataset filesystem that takes no file as large as the cache (here: RLIMIT_FSIZE below the
    cache's size, so every write past it fails as on a full disk): the splits load, with a warning,
    and no cache or temporary is left (before: a traceback)."""
    from infcop.core.data import load_splits
    from infcop.foundations.config import DataConfig

    stamped_mnist(tmp_path, "mnist", monkeypatch)
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(
        signal.SIGXFSZ, signal.SIG_IGN
    )  # a write past the limit fails instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, limit[1]))
    try:
        splits = load_splits(DataConfig(dataset="mnist", data_dir=str(tmp_path)))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        signal.signal(signal.SIGXFSZ, previous)
    assert "not written" in caplog.text and len(splits.source["content_sha256"]) == 64
    assert not list((tmp_path / "MNIST" / "splits").iterdir())


def test_a_diverging_method_under_seed_grouping_is_a_result(tmp_path):
    """`methods: {finetune: {lr: 1000.0}}` under `study.grouping: seed`: finetune diverges at
    level 1. Before, the seed job exited 3 and Snakemake deleted every record of the seed (the
    complete lth runs too) and the study never aggregated. Now the study aggregates, the tables
    count the diverged runs, and the other method's records are kept."""
    config = tiny_study(study={"grouping": "seed", "methods": ["lth", "finetune"]})
    config["methods"] = {"finetune": {"lr": 1000.0}}
    out = snakemake_study(tmp_path, config)
    assert out.returncode == 0, out.stderr[-3000:]
    study = tmp_path / "results" / "tiny"
    runs = study / "runs" / "digits" / "lenet_300_100"
    lth, finetune = (
        json.loads((runs / m / "seed0" / "record.json").read_text()) for m in ("lth", "finetune")
    )
    assert lth["status"] == "complete" and len(lth["levels"]) == 1
    assert finetune["status"] == "diverged" and finetune["diverged_at_level"] == 1
    with open(study / "summary.csv") as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert rows["finetune"]["diverged"] == "1" and rows["lth"]["diverged"] == "0"
    stats = json.loads((study / "stats.json").read_text())["pairs"]["digits/lenet_300_100"][
        "methods"
    ]
    assert stats["finetune"]["n"] == 0 and stats["lth"]["n"] == 1


@pytest.mark.slow  # two real Snakemake invocations
def test_under_seed_grouping_one_failed_run_deletes_no_other_record(tmp_path):
    """A real failure of one run of a seed job (its directory holds a garbled record): the job
    fails, but the other run's record stays (the seed job owns a marker, not the records); once the
    garbled file is deleted, as the error says, the rerun computes only the missing run."""
    config = tiny_study(study={"grouping": "seed", "methods": ["finetune", "lth"]})
    runs = tmp_path / "results" / "tiny" / "runs" / "digits" / "lenet_300_100"
    garbled = runs / "finetune" / "seed0" / "record.json"
    garbled.parent.mkdir(parents=True)
    garbled.write_text("{")
    out = snakemake_study(tmp_path, config)
    assert out.returncode != 0
    lth = (runs / "lth" / "seed0" / "record.json").read_text()
    assert json.loads(lth)["status"] == "complete"
    garbled.unlink()
    out = snakemake_study(tmp_path, config)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (runs / "lth" / "seed0" / "record.json").read_text() == lth  # not retrained
    assert json.loads(garbled.read_text())["status"] == "complete"
    assert (tmp_path / "results" / "tiny" / "summary.md").exists()


@pytest.mark.slow  # four real Snakemake invocations
def test_edits_after_a_finished_study_rerun_what_they_change(tmp_path):
    """Before, training inputs were ancient: a changed training setting or raised levels re-rendered
    the tables from the old records under a config.yaml that said otherwise. Now a changed training
    setting retrains, raised levels extend the run (the dense run is kept), and a deleted run is
    recomputed."""
    study = tmp_path / "results" / "tiny"
    dense_path = study / "dense" / "digits" / "lenet_300_100" / "seed0" / "record.json"
    run_path = study / "runs" / "digits" / "lenet_300_100" / "lth" / "seed0" / "record.json"
    assert snakemake_study(tmp_path, tiny_study()).returncode == 0
    first = json.loads(run_path.read_text())

    out = snakemake_study(tmp_path, tiny_study(training={"epochs": 2}))
    assert out.returncode == 0, out.stderr[-3000:]
    dense, run = json.loads(dense_path.read_text()), json.loads(run_path.read_text())
    assert len(dense["epochs"]) == 2 and run["config_hash"] != first["config_hash"]
    assert run["dense_config_hash"] == dense["config_hash"]

    dense_text = dense_path.read_text()
    out = snakemake_study(tmp_path, tiny_study(training={"epochs": 2}, pruning={"levels": 2}))
    assert out.returncode == 0, out.stderr[-3000:]
    extended = json.loads(run_path.read_text())
    assert [lv["level"] for lv in extended["levels"]] == [
        1,
        2,
    ] and dense_path.read_text() == dense_text
    assert without_wall_clock(extended["levels"][:1]) == without_wall_clock(run["levels"])

    shutil.rmtree(run_path.parent)
    out = snakemake_study(tmp_path, tiny_study(training={"epochs": 2}, pruning={"levels": 2}))
    assert out.returncode == 0, out.stderr[-3000:]
    assert without_wall_clock(json.loads(run_path.read_text())["levels"]) == without_wall_clock(
        extended["levels"]
    )
    with open(study / "runs.csv") as f:
        assert len(list(csv.DictReader(f))) == 2


# ---------------------------------------------------------------- random streams
def _stream_seeds(seed: int, levels: int, cap: int) -> dict[tuple, int]:
    """The seed of every generator a run with `levels` levels of at most `cap` epochs draws from."""
    from infcop.core.data import (
        PROBE_STREAM,
        PRUNE_STREAM,
        RESET_STREAM,
        epoch_generator,
        level_draw_generator,
    )

    seeds = {
        ("data", level, epoch): epoch_generator(seed, level, epoch).initial_seed()
        for level in range(levels + 1)
        for epoch in range(1, cap + 1)
    }
    seeds[("probe",)] = epoch_generator(seed, PROBE_STREAM).initial_seed()
    for level in range(1, levels + 1):
        for name, tag in (("prune", PRUNE_STREAM), ("reset", RESET_STREAM)):
            seeds[(name, level)] = level_draw_generator(seed, level, tag, cap).initial_seed()
    return seeds


@pytest.mark.parametrize("cap", [1, 6, 10, 11, 12, 13, 14, 40])
def test_no_random_stream_equals_another(cap):
    """Every stream a run draws from (data order of each epoch of each level, the probe, each
    level's pruning and reset draws) is its own, whatever the number of epochs a level trains.
    Before, the random-pruning draw of a level was the data order of its epoch 11, the
    fresh-init draw that of 13."""
    for seed in (0, 1, 12345):
        seeds = _stream_seeds(seed, levels=20, cap=cap)
        assert len(set(seeds.values())) == len(seeds)


def test_levels_below_eleven_epochs_keep_their_draws():
    """Runs whose levels train fewer epochs than a draw's tag keep the stream they drew from before
    (the default study's records, with 6-epoch levels, are unchanged)."""
    import numpy as np

    from infcop.core.data import PRUNE_STREAM, RESET_STREAM, level_draw_generator

    for tag in (PRUNE_STREAM, RESET_STREAM):
        for cap in (1, 6, tag - 1):
            before = int(
                np.random.SeedSequence([3, 2, tag]).generate_state(1)[0]
            )  # (seed, level, tag)
            assert level_draw_generator(3, 2, tag, cap).initial_seed() == before


def test_cleanup_never_follows_a_link_out_of_the_harness_files(tmp_path):
    """A run directory holding symbolic links to a folder and a temporary-named file elsewhere:
    removing its stale temporaries, or the whole directory (a run of another config), leaves
    the targets alone."""
    from infcop.foundations.storage import remove_stale_temporaries, remove_tree

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / ".precious.1a2b3c4d.tmp").write_text("not the harness's")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / ".record.json.0a0b0c0d.tmp").write_text("half a write")
    (run / "linked").symlink_to(outside, target_is_directory=True)
    (run / "checkpoints" / ".x.tmp").symlink_to(outside / ".precious.1a2b3c4d.tmp")
    assert remove_stale_temporaries(run) == 1
    remove_tree(run)
    assert (
        not run.exists() and (outside / ".precious.1a2b3c4d.tmp").read_text() == "not the harness's"
    )
    (tmp_path / "alias").symlink_to(outside, target_is_directory=True)
    remove_tree(tmp_path / "alias")
    assert outside.is_dir() and not (tmp_path / "alias").exists()
