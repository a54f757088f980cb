"""The results contract: every file the harness writes is named here, once.

    results/<study>/
      config.yaml                          the resolved study config every job reads (Snakemake)
      study.hash                           hash of the parts of the config the aggregates read
      dense/<dataset>/<model>/seed<S>/     record.json epochs.csv init.pt rewind.pt final.pt
                                           wandb_id
      dense/<dataset>/<model>/.seed<S>.lock
      runs/<dataset>/<model>/<run>/.seed<S>.lock     one writer per run directory
                                                     (storage.file_lock)
      runs/<dataset>/<model>/<run>/seed<S>/
                                           record.json levels.csv epochs.csv wandb_id
                                           masks/level<k>.pt checkpoints/level<k>.pt
      runs.csv stats.json summary.{md,csv,tex} comparisons.csv ablation.md
      claims.{md,csv}                      a verdict per published claim the study tests
                                           (study.claims)
      figures/<dataset>__<model>.{png,pdf}
      frontier.{md,csv} figures/frontier/<dataset>__<model>.{png,pdf}
                                           (studies with study.frontier)
      frontier_budgeted.md frontier_{vs_budgeted,heldout,rules}.csv   (against budgeted retraining)
      logs/<job>/<name>.log  benchmarks/<job>/<name>.tsv  wandb/
      cache/epochs/<dataset>/<model>/seed<S>/<key>.pt
                                           trained epochs other runs of the seed may reuse
                                           (infcop/engine/reuse.py); safe to delete at any time
      jobs/<dataset>__<model>__seed<S>.done    a `study.grouping: seed` job ran every run of that
                                               seed
      jobs/<job>/<name>.identity           what a training job's record must be produced by
                                           (Snakemake)

    <data_dir>/<MNIST|FashionMNIST>/raw/infcop-verified.json
                                         the stamp of a fetched, verified dataset
                                         (infcop/core/fetch.py)

`<run>` is the method (or method variant) name, with `_diagnose` appended for diagnostic runs.
The engine, the analysis, the CLI and the Snakemake rules all take their paths from here; the
rules build wildcard patterns by passing "{dataset}"-style strings through the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
# What the harness ships beside its code (workflow/, configs/, claims/, baselines/): a
# checkout keeps them at the repository's root, a wheel inside the package (pyproject.toml
# maps one onto the other).
SHIPPED = PACKAGE if (PACKAGE / "workflow").is_dir() else PACKAGE.parent
DIAGNOSE_SUFFIX = "_diagnose"
# Names the harness gives its own rows, files and folders: a study's method or variant of that
# name (or one ending in DIAGNOSE_SUFFIX, the name of another method's diagnostic run) would be
# read as one of them.
RESERVED_NAMES = frozenset(
    {
        "dense",
        "runs",
        "figures",
        "frontier",
        "logs",
        "benchmarks",
        "wandb",
        "claims",
        "summary",
        "comparisons",
        "ablation",
        "splits",
        "jobs",
    }
)
FIGURE_FORMATS = ("png", "pdf")


def shipped(relative: str | Path) -> Path:
    """A relative path to a shipped file (`configs/smoke.yaml`, `claims/infcop.yaml`): the study
    directory's own copy when it has one (what `infcop init` writes), else the harness's."""
    path = Path(relative)
    if path.is_absolute() or path.exists():
        return path
    return SHIPPED / path


def run_name(method: str, diagnose: bool) -> str:
    """Directory name of a run: the method, marked when the run is diagnostic."""
    return f"{method}{DIAGNOSE_SUFFIX}" if diagnose else method


def pair_stem(pair: str) -> str:
    """'digits/lenet_300_100' -> 'digits__lenet_300_100' (figure file names)."""
    return pair.replace("/", "__")


@dataclass(frozen=True)
class DenseDir:
    """Level 0 of one dataset x model x seed, shared by every method."""

    root: Path

    @property
    def record(self) -> Path:
        return self.root / "record.json"

    @property
    def epochs(self) -> Path:
        return self.root / "epochs.csv"

    def snapshot(self, which: str) -> Path:
        """'init' (θ₀), 'rewind' (θ_t) or 'final' weights."""
        return self.root / f"{which}.pt"

    @property
    def warmup_gradient(self) -> Path:
        """The last warm-up minibatch's per-layer mean |gradient| at the rewind point (for the
        as-released GF)."""
        return self.root / "warmup_gradient.pt"

    @property
    def lock(self) -> Path:
        """The one-writer lock (infcop/foundations/storage.py), beside the directory so deleting
        it keeps the lock."""
        return self.root.parent / f".{self.root.name}.lock"

    @property
    def wandb_id(self) -> Path:
        return self.root / "wandb_id"


@dataclass(frozen=True)
class EpochCacheDir:
    """Trained epochs of one dataset x model x seed, by the content key of what
    they started from."""

    root: Path

    def entry(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    def entries(self) -> list[Path]:
        return list(self.root.glob("*.pt"))


@dataclass(frozen=True)
class RunDir:
    """One IMP run: a method (variant) x seed on one dataset x model."""

    root: Path

    @property
    def record(self) -> Path:
        return self.root / "record.json"

    @property
    def levels(self) -> Path:
        return self.root / "levels.csv"

    @property
    def epochs(self) -> Path:
        return self.root / "epochs.csv"

    @property
    def wandb_id(self) -> Path:
        return self.root / "wandb_id"

    @property
    def lock(self) -> Path:
        """The one-writer lock, as DenseDir.lock."""
        return self.root.parent / f".{self.root.name}.lock"

    def mask(self, level: int) -> Path:
        return self.root / "masks" / f"level{level}.pt"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, level: int) -> Path:
        return self.checkpoints / f"level{level}.pt"

    @staticmethod
    def checkpoint_level(path: Path) -> int:
        return int(path.stem.removeprefix("level"))


@dataclass(frozen=True)
class StudyDir:
    """Everything one study (experiment.name) writes under results_dir."""

    root: Path

    def dense(self, dataset: str, model: str, seed: int | str) -> DenseDir:
        return DenseDir(self.root / "dense" / dataset / model / f"seed{seed}")

    def run(self, dataset: str, model: str, run: str, seed: int | str) -> RunDir:
        return RunDir(self.root / "runs" / dataset / model / run / f"seed{seed}")

    def epoch_cache(self, dataset: str, model: str, seed: int | str) -> EpochCacheDir:
        return EpochCacheDir(self.root / "cache" / "epochs" / dataset / model / f"seed{seed}")

    @property
    def config(self) -> Path:
        return self.root / STUDY_CONFIG

    @property
    def study_hash(self) -> Path:
        return self.root / "study.hash"

    @property
    def runs_csv(self) -> Path:
        return self.root / "runs.csv"

    @property
    def stats(self) -> Path:
        return self.root / "stats.json"

    def summary(self, fmt: str) -> Path:
        """The methods table as 'md', 'csv' or 'tex'."""
        return self.root / f"summary.{fmt}"

    @property
    def comparisons(self) -> Path:
        return self.root / "comparisons.csv"

    @property
    def ablation(self) -> Path:
        return self.root / "ablation.md"

    @property
    def tables(self) -> list[Path]:
        return [
            self.summary("md"),
            self.summary("csv"),
            self.summary("tex"),
            self.comparisons,
            self.ablation,
        ]

    def frontier(self, fmt: str) -> Path:
        """The accuracy-cost frontier of the study's stopping rules, as 'md' or 'csv'."""
        return self.root / f"frontier.{fmt}"

    def frontier_budgeted(self, table: str | None = None) -> Path:
        """The frontier against budgeted retraining: frontier_budgeted.md, or one of its tables as
        CSV ('vs_budgeted', 'heldout', 'rules')."""
        return self.root / ("frontier_budgeted.md" if table is None else f"frontier_{table}.csv")

    def frontier_figure(self, pair: str, fmt: str) -> Path:
        return self.figures_dir / "frontier" / f"{pair_stem(pair)}.{fmt}"

    def frontier_figures(self, pairs: list[str] | tuple[str, ...]) -> list[Path]:
        return [self.frontier_figure(p, fmt) for p in pairs for fmt in FIGURE_FORMATS]

    def frontier_outputs(self, pairs: list[str] | tuple[str, ...]) -> list[Path]:
        return [
            self.frontier("md"),
            self.frontier("csv"),
            *self.frontier_budgeted_tables,
            *self.frontier_figures(pairs),
        ]

    @property
    def frontier_budgeted_tables(self) -> list[Path]:
        tables = ("vs_budgeted", "heldout", "rules")
        return [self.frontier_budgeted(), *(self.frontier_budgeted(t) for t in tables)]

    def claims(self, fmt: str) -> Path:
        """The verdict table of the study's claims as 'md' or 'csv'."""
        return self.root / f"claims.{fmt}"

    @property
    def figures_dir(self) -> Path:
        return self.root / "figures"

    def figure(self, pair: str, fmt: str) -> Path:
        return self.figures_dir / f"{pair_stem(pair)}.{fmt}"

    def figures(self, pairs: list[str] | tuple[str, ...]) -> list[Path]:
        return [self.figure(p, fmt) for p in pairs for fmt in FIGURE_FORMATS]

    def seed_job(self, dataset: str, model: str, seed: int | str) -> Path:
        """The marker of a `study.grouping: seed` job: every run of that dataset x model x
        seed has its record (the records themselves are not the job's outputs, so one run's
        failure deletes none)."""
        return self.root / "jobs" / f"{dataset}__{model}__seed{seed}.done"

    def identity(self, job: str, name: str) -> Path:
        """What a training job's record must have been produced by (its run hash and levels), as the
        workflow writes it: the job reruns when this file changes."""
        return self.root / "jobs" / job / f"{name}.identity"

    def log(self, job: str, name: str) -> Path:
        return self.root / "logs" / job / f"{name}.log"

    def benchmark(self, job: str, name: str) -> Path:
        return self.root / "benchmarks" / job / f"{name}.tsv"

    @property
    def wandb(self) -> Path:
        return self.root / "wandb"

    @property
    def wandb_id(self) -> Path:
        return self.root / "wandb_id"

    @property
    def wandb_synced(self) -> Path:
        return self.wandb / "synced.flag"

    @property
    def wandb_runs_tracked(self) -> Path:
        """Snakemake's mark that `infcop track --runs` mirrored the study's records to W&B."""
        return self.wandb / "runs_tracked.flag"

    @property
    def wandb_tracked(self) -> Path:
        """Snakemake's mark that `infcop track` wrote the study's summary run (records mirrored)."""
        return self.wandb / "tracked.flag"


def data_stamp(data_dir: str | Path, folder: str) -> Path:
    """The stamp `infcop data fetch` writes beside a dataset's files once they are verified, in
    torchvision's layout (`folder` is its dataset class name, e.g. MNIST)."""
    return Path(data_dir) / folder / "raw" / "infcop-verified.json"


STUDY_CONFIG = "config.yaml"


def located(raw: dict, path: str | Path) -> dict:
    """A study's own config (`<results_dir>/<name>/config.yaml`, the one its jobs read) names the
    study by where it lies, not by the results_dir written in it: a study copied or moved
    elsewhere works in place and never writes into the original. Any other config file is
    returned as it is."""
    path = Path(path)
    experiment = raw.get("experiment") if isinstance(raw.get("experiment"), dict) else {}
    if path.name != STUDY_CONFIG or path.parent.name != experiment.get("name"):
        return raw
    return {**raw, "experiment": {**experiment, "results_dir": str(path.parent.parent)}}


def study_dir(results_dir: str | Path, name: str) -> StudyDir:
    return StudyDir(Path(results_dir) / name)
