"""Command line: `infcop train | run | collect | stats | tables | bench | methods`."""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys

from infcop.config import ConfigError, load_config

USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, FileNotFoundError)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="YAML experiment config, e.g. configs/default.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set training.epochs=5 (repeatable)")
    p.add_argument("--seed", type=int, default=None, help="run seed (default: the first of experiment.seeds)")
    p.add_argument("--pair", default=None, metavar="DATASET/MODEL",
                   help="a study pair: applies per_dataset / per_model recipes from the config")


def _load(args: argparse.Namespace):
    cfg = load_config(args.config, args.overrides, args.pair)
    seed = cfg.experiment.seeds[0] if args.seed is None else args.seed
    if cfg.experiment.device != "cpu":
        from infcop.devices import pin_gpu

        pin_gpu()  # several GPUs and no scheduler choice: claim a free one before CUDA starts
    return cfg, seed


def cmd_train(args: argparse.Namespace) -> int:
    from infcop.dense import ensure_dense
    from infcop.imp import configure_threads
    from infcop.train import resolve_device

    cfg, seed = _load(args)
    configure_threads(cfg)
    run = ensure_dense(cfg, seed, resolve_device(cfg.experiment.device))
    r = run.record
    fmt = lambda x: "n/a" if x is None else f"{x:.4f}"  # noqa: E731 - a diverged run has no accuracy
    print(f"dense {r['dataset']}/{r['model']} seed {seed}: status {r['status']}, best val acc {fmt(r['best_val_acc'])}, "
          f"test acc {fmt(r['test_acc'])}, "
          f"{r['costs']['optimizer_steps']} steps, {r['costs']['train_flops']:.3g} train FLOPs -> {run.dir}")
    return 0 if run.complete else 3


def cmd_run(args: argparse.Namespace) -> int:
    from infcop.imp import run_imp

    cfg, seed = _load(args)
    if args.diagnose:
        cfg = dataclasses.replace(cfg, stopping=dataclasses.replace(cfg.stopping, diagnose=True))
    record = run_imp(cfg, args.method, seed)
    for lv in record["levels"]:
        print(f"level {lv['level']:2d}  density {lv['density']:.4f}  epochs {lv['epochs']:3d}  stop {lv['stop_reason']:8s}"
              f"  val {lv['val_acc']:.4f}  test {lv['test_acc']:.4f}")
    t = record["totals"]
    print(f"{record['method']} seed {seed}: status {record['status']}, {t['epochs']} epochs, {t['optimizer_steps']} steps, "
          f"train+monitor FLOPs {t['train_flops'] + t['monitor_flops']:.3g}, monitor {t['monitor_seconds']:.2f}s")
    return 0 if record["status"] == "complete" else 3


def _study(args: argparse.Namespace):
    from infcop.analysis import load_records

    cfg = load_config(args.config, args.overrides)
    return cfg, load_records(cfg)


def cmd_collect(args: argparse.Namespace) -> int:
    from infcop.analysis import runs_csv_path, write_runs_csv

    cfg, records = _study(args)
    write_runs_csv(records, runs_csv_path(cfg))
    print(f"wrote {runs_csv_path(cfg)}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from infcop.analysis import stats_path, study_stats
    from infcop.records import atomic_write_json

    cfg, records = _study(args)
    atomic_write_json(stats_path(cfg), study_stats(cfg, records))
    print(f"wrote {stats_path(cfg)}")
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    from infcop.analysis import runs_csv_path, stats_path
    from infcop.figures import write_figures
    from infcop.records import experiment_dir, read_json
    from infcop.tables import comparison_rows, diagnostic_rows, summary_rows, write_tables
    from infcop.tracking import Tracker

    cfg = load_config(args.config, args.overrides)
    out = experiment_dir(cfg.experiment.results_dir, cfg.experiment.name)
    stats = read_json(stats_path(cfg))
    write_tables(stats, out)
    dense = {pair: ps["dense"]["test_acc_mean"] for pair, ps in stats["pairs"].items()}
    figures = write_figures(runs_csv_path(cfg), out / "figures", dense)
    tracker = Tracker(cfg, name=f"summary-{cfg.experiment.name}", job_type="summary", group=cfg.experiment.name,
                      id_file=out / "wandb_id", config={"stats": str(stats_path(cfg))})
    tracker.log_tables({"summary": summary_rows(stats), "comparisons": comparison_rows(stats),
                        "diagnostics": diagnostic_rows(stats)}, figures)
    tracker.finish()
    print(f"wrote {out}/summary.md, summary.csv, summary.tex, comparisons.csv, ablation.md and {len(figures)} figure files")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from infcop.bench import run_bench

    result = run_bench(args.quick, args.device, Path(args.out))
    print((Path(args.out) / "bench.md").read_text())
    return 0 if result["models"] else 1


def cmd_methods(args: argparse.Namespace) -> int:
    from infcop.methods import load_builtin_methods

    for name, m in sorted(load_builtin_methods().items()):
        defaults = {f.name: f.default for f in dataclasses.fields(m.params)}
        print(f"{name:18s} {m.description}" + (f"  {json.dumps(defaults)}" if defaults else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="infcop", description="IMP / InfCoP reproducibility harness")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train the dense network (level 0) and write its record")
    _common(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("run", help="run one IMP method for one seed (reusing level 0)")
    _common(p)
    p.add_argument("--method", required=True, help="a registered method (see `infcop methods`)")
    p.add_argument("--diagnose", action="store_true", help="train every level to the cap, record when each criterion would fire")
    p.set_defaults(func=cmd_run)
    for name, func, text in (("collect", cmd_collect, "gather a study's records into runs.csv"),
                             ("stats", cmd_stats, "paired statistics over seeds -> stats.json"),
                             ("tables", cmd_tables, "summary tables (csv, md, tex) and figures from stats.json")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--config", required=True)
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
        p.set_defaults(func=func)
    p = sub.add_parser("bench", help="measure the training loop against a bare loop, and the criteria's overhead")
    p.add_argument("--quick", action="store_true", help="embedded models on CPU-sized data (under 2 minutes)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--out", default="results/bench", help="directory for bench.json and bench.md")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("methods", help="list registered methods and their hyperparameter defaults")
    p.set_defaults(func=cmd_methods)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    from infcop.dense import ConfigMismatch
    from infcop.records import CorruptFile

    try:
        return args.func(args)
    except (*USER_ERRORS, ConfigMismatch, CorruptFile) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
