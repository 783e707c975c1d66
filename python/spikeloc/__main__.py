"""The command line: experiments from presets or TOML files.

::

    spikeloc run PRESET|FILE [--set section.key=value ...] [--out DIR]
    spikeloc sweep PRESET|FILE [--set ...] [--out DIR] [--scheduler ADDRESS] [--workers N]
    spikeloc evaluate DIR
    spikeloc show [PRESET|FILE] [--set ...] [--raw]
    spikeloc train [--epochs N --hidden N --lr X ...]     the tutorial's run with flags

(``python -m spikeloc`` is the same program.) ``run`` trains one experiment and prints the
loss of each epoch, the train and test accuracy and a one-line summary; ``--out DIR`` writes
the run folder (:mod:`spikeloc.runs`; atomically: complete or not at all). ``sweep`` runs the
experiment's ``[sweep]`` section on local threads or a Dask cluster; ``--out DIR`` keeps its
results as they come and resumes when run again. ``evaluate`` reloads a run folder's model
and scores it again on data regenerated from its ``config.toml``. ``show`` prints an
experiment with every key resolved (``--raw``: a preset's file as shipped), or the list of
presets. Everything is checked before any data is generated; errors are one line on stderr.
Progress bars go to stderr, results to stdout.

Exit status: 0 done, 1 the run failed (e.g. a non-finite loss; the run folder says so),
2 bad arguments, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time


class _Fail(Exception):
    """A one-line error for the user; ``code`` is the exit status."""

    def __init__(self, message, code=2):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------- arguments


def _threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value}")
    return value


def _positive(text: str) -> int:
    value = _threads(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def _common(p, *, out_help: str) -> None:
    p.add_argument("experiment", metavar="PRESET|FILE",
                   help="a preset name (spikeloc show lists them) or a TOML file")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="SECTION.KEY=VALUE",
                   help="change one key (repeatable), e.g. --set model.n_hidden=30 "
                        "--set training.lr=0.005")
    p.add_argument("--out", metavar="DIR", help=out_help)
    p.add_argument("--threads", type=_threads, default=None, metavar="N",
                   help="kernel threads (default: SPIKELOC_NUM_THREADS or all cores; results "
                        "do not depend on it)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spikeloc", description="spikeloc: spiking networks for sound localisation. "
        "Run experiments from presets or TOML files.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="train and evaluate one experiment",
                       description="Train and evaluate one experiment.")
    _common(r, out_help="write the run folder DIR (config, environment, metrics, history, "
                        "model, figures); DIR must be new or empty")

    s = sub.add_parser("sweep", help="run an experiment's [sweep] section",
                       description="Run every combination of the experiment's [sweep] grid, "
                                   "with repeats.")
    _common(s, out_help="keep the results in DIR (results.jsonl as jobs finish, then "
                        "summary.csv, summary.md, sweep.png); rerun to resume")
    s.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the jobs on a Dask cluster (e.g. tcp://host:8786)")
    s.add_argument("--workers", type=_positive, default=None, metavar="N",
                   help="local worker threads (default: [sweep] workers, else one per core)")

    e = sub.add_parser("evaluate", help="reload a run folder's model and evaluate it again",
                       description="Reload DIR/model.npz, regenerate the data of "
                                   "DIR/config.toml and evaluate.")
    e.add_argument("folder", metavar="DIR", help="a run folder written by spikeloc run --out")
    e.add_argument("--threads", type=_threads, default=None, metavar="N")

    w = sub.add_parser("show", help="print an experiment with every key resolved, or list "
                                    "the presets",
                       description="Print an experiment as TOML, every key resolved (copy it "
                                   "to a file and edit); without an argument, list presets.")
    w.add_argument("experiment", nargs="?", metavar="PRESET|FILE")
    w.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="SECTION.KEY=VALUE")
    w.add_argument("--raw", action="store_true",
                   help="a preset's file as shipped, with its comments")

    t = sub.add_parser("train", help="the tutorial's training run, with flags",
                       description="Shorthand for spikeloc run tutorial (or 250hz) with flags "
                                   "for the common keys; unset flags keep the preset's values.")
    t.add_argument("--config", "--preset", dest="preset", default="tutorial",
                   choices=["tutorial", "250hz"], help="the preset (default: tutorial)")
    t.add_argument("--model", default=None, choices=["snn", "membrane"],
                   help="spiking network or the membrane-only network (default: snn)")
    t.add_argument("--epochs", type=int, default=None, help="training epochs")
    t.add_argument("--batch-size", type=int, default=None, help="batch size")
    t.add_argument("--train-batches", type=int, default=None,
                   help="training set size in batches")
    t.add_argument("--test-batches", type=int, default=None, help="test set size in batches")
    t.add_argument("--hidden", type=int, default=None, help="hidden units")
    t.add_argument("--tau-ms", type=float, default=None,
                   help="membrane time constant of both layers [ms]")
    t.add_argument("--readout", default=None, choices=["mean", "sum", "max"],
                   help="readout (default: mean for snn, sum for membrane)")
    t.add_argument("--lr", type=float, default=None, help="Adam learning rate")
    t.add_argument("--phase-offset", default=None,
                   help="per_sample (default), per_set (seeds 000/001), per_epoch (a new offset "
                        "each epoch), or a number of cycles (seed 002: 0)")
    t.add_argument("--delay-noise", type=float, default=None, metavar="RAD",
                   help="standard deviation of the noise on the fibres' phase delays [rad]")
    t.add_argument("--seed", type=int, default=None,
                   help="seed of weights and shuffling; data seeds are seed (training) and "
                        "seed + 1 (test)")
    t.add_argument("--threads", type=_threads, default=None, help="kernel threads")
    t.add_argument("--out", default=None, metavar="DIR", help="write the run folder DIR")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


# ---------------------------------------------------------------------------- helpers


def _load(target, overrides):
    from spikeloc.experiment import Experiment
    return Experiment.load(target).replace(overrides) if overrides else Experiment.load(target)


def _check_threads(threads):
    from spikeloc._native_api import resolve_threads
    try:
        return resolve_threads(threads)
    except (TypeError, ValueError) as exc:
        raise _Fail(f"--threads: {exc}") from None


def _quietly_discard(folder) -> None:
    """Remove a staging folder; a further Ctrl-C cannot interrupt the removal."""
    if folder is None or folder.committed:
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) \
        if _in_main_thread() else None
    try:
        folder.discard()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _in_main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def _print_report(result) -> None:
    print(result.history.summary())
    if result.test is not None:
        print(result.train.report("Train"))
        print(result.test.report("Test"))
    else:
        m = result.metrics
        print(f"Chance accuracy level: {100 / result.model.n_out:.1f}%")
        print(f"Train classifier accuracy: {100 * m['train_accuracy']:.1f}%")
        print(f"Test classifier accuracy: {100 * m['test_accuracy']:.1f}%")


def _phase_note(exp) -> None:
    stim = exp.config.get("stimulus")
    if stim is not None and stim["phase_offset"] == "per_set":
        print("phase offset: one draw per generated set, as in the seeds 000/001: training and "
              "test sets differ in phase, so test accuracy drops and scatters from seed to "
              "seed (the default draws one per sample)")


# ---------------------------------------------------------------------------- commands


def cmd_run(exp, out, threads, progress) -> int:
    """Run ``exp``; write the run folder ``out`` (None: none). Returns the exit status."""
    from spikeloc.runs import RunFolder, OutputError, environment, write_failed, write_run
    from spikeloc.training import NonFiniteLossError
    threads = _check_threads(threads)
    exp.check_files()
    folder = None
    if out is not None:
        try:
            folder = RunFolder(out)
        except OutputError as exc:
            raise _Fail(str(exc)) from None
    try:
        env = environment(threads)
        _phase_note(exp)
        print(f"chance level: {100 / _classes(exp):.1f}%")
        try:
            result = exp.run(progress=progress, threads=threads, log=print)
        except NonFiniteLossError as exc:
            message = f"training failed: {exc}"
            if folder is not None:
                write_failed(folder, exp, message=message, history=exc.history,
                             environment=env)
                message += f"; wrote {folder.path} (status.json says so)"
            raise _Fail(message, code=1) from None
        _print_report(result)
        if folder is not None:
            write_run(folder.path, result, environment=env, folder=folder)
            print(f"wrote {folder.path}")
        print(result.summary())
        return 130 if result.interrupted else 0
    except KeyboardInterrupt:
        _quietly_discard(folder)
        print("spikeloc: interrupted; nothing written", file=sys.stderr)
        return 130
    except (OSError, ValueError, TypeError) as exc:   # reading N-MNIST files, writing DIR
        raise _Fail(f"{type(exc).__name__}: {exc}" if isinstance(exc, OSError) else str(exc),
                    code=1) from None
    finally:
        _quietly_discard(folder)


def _classes(exp) -> int:
    from spikeloc.experiment import NMNIST_CLASSES
    stim = exp.config.get("stimulus")
    return stim["num_classes"] if stim is not None else NMNIST_CLASSES


def _sweep_folder(out, exp):
    """Create (or reopen, to resume) the sweep folder ``out``; returns its absolute path."""
    from spikeloc.runs import _first_file
    path = os.path.abspath(out)
    config = os.path.join(path, "config.toml")
    if os.path.lexists(path) and not os.path.isdir(path):
        raise _Fail(f"--out {path}: exists and is not a folder")
    if os.path.isdir(path) and os.listdir(path):
        if not os.path.isfile(config):
            raise _Fail(f"--out {path}: the folder exists, is not empty and is not a sweep "
                        f"folder (no config.toml)")
        from spikeloc.experiment import Experiment, ExperimentError
        try:
            previous = Experiment.from_file(config)
        except ExperimentError as exc:
            raise _Fail(f"--out {path}: cannot resume: {exc}") from None
        if previous.without_sweep() != exp.without_sweep():
            raise _Fail(f"--out {path}: holds another experiment (its config.toml differs "
                        f"outside [sweep]); choose a new folder to run this one")
        return path
    try:
        os.makedirs(path, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise _Fail(f"--out {path}: {_first_file(os.path.dirname(path))} is a file, not a "
                    f"folder") from None
    except OSError as exc:
        raise _Fail(f"--out {path}: cannot create it ({exc.strerror or exc})") from None
    if not os.access(path, os.W_OK):
        raise _Fail(f"--out {path}: not writable")
    return path


def cmd_sweep(exp, out, threads, progress, scheduler, workers) -> int:
    from spikeloc.experiment import ExperimentError
    from spikeloc.runs import environment, write_json, write_sweep_summary
    from spikeloc.sweep import SweepInterrupted
    if not exp.has_sweep:
        raise _Fail(f"{exp.name or 'the experiment'} has no [sweep] section (spikeloc run runs "
                    f"it once; add [sweep] with a grid to sweep it)")
    if threads is not None:
        exp = exp.replace({"sweep.job_threads": threads})
    if scheduler is not None:
        if workers is not None:
            raise _Fail("--workers sizes the local thread pool; with --scheduler the cluster "
                        "has its own workers")
        exp = exp.replace({"sweep.scheduler": scheduler})
    path = _sweep_folder(out, exp) if out is not None else None
    results = None
    if path is not None:
        exp.save(os.path.join(path, "config.toml"))
        write_json(os.path.join(path, "environment.json"), environment())
        write_json(os.path.join(path, "status.json"), {"status": "running"})
        results = os.path.join(path, "results.jsonl")
    start = time.perf_counter()
    try:
        table = exp.sweep(results=results, progress=progress, workers=workers)
    except SweepInterrupted as exc:
        table = exc.results
        if path is not None:
            write_json(os.path.join(path, "status.json"),
                       {"status": "interrupted", "message": str(exc)})
            write_sweep_summary(path, table)
        print(f"spikeloc: {exc}", file=sys.stderr)
        return 130
    except ExperimentError as exc:
        raise _Fail(str(exc), code=1) from None
    seconds = time.perf_counter() - start
    print(table.summary())
    failed = len(table.failed)
    line = (f"{exp.name or 'sweep'}: {len(table)} jobs ({failed} failed) in {seconds:.1f} s")
    if path is not None:
        written = write_sweep_summary(path, table)
        write_json(os.path.join(path, "status.json"),
                   {"status": "completed", "jobs": len(table), "failed": failed,
                    "seconds": seconds, "message": line})
        line += f"; wrote {path}: results.jsonl, " + ", ".join(written)
    for rec in table.failed[:3]:
        print(f"failed job {rec['key']}: {rec['error']}", file=sys.stderr)
    print(line)
    return 1 if failed else 0


def cmd_evaluate(folder, threads) -> int:
    from spikeloc.checkpoint import CheckpointError, load
    from spikeloc.experiment import Experiment, ExperimentError
    from spikeloc.runs import read_json
    threads = _check_threads(threads)
    folder = os.path.abspath(folder)
    if not os.path.isdir(folder):
        raise _Fail(f"{folder}: not a run folder (not a directory)")
    config, model_path = (os.path.join(folder, name) for name in ("config.toml", "model.npz"))
    for path in (config, model_path):
        if not os.path.isfile(path):
            raise _Fail(f"{folder}: not a complete run folder ({os.path.basename(path)} is "
                        f"missing)")
    try:
        exp = Experiment.from_file(config)
        model = load(model_path, threads=threads)
    except (ExperimentError, CheckpointError, OSError) as exc:
        raise _Fail(str(exc)) from None
    metrics, evals = exp.evaluate(model, exp.data(threads=threads, sets=("train", "test")))
    for name in ("train", "test"):
        if name in evals:
            print(evals[name].report(name.capitalize()))
        else:
            print(f"{name.capitalize()} classifier accuracy: "
                  f"{100 * metrics[f'{name}_accuracy']:.1f}%")
    recorded_path = os.path.join(folder, "metrics.json")
    if os.path.isfile(recorded_path):
        recorded = read_json(recorded_path)
        same = all(recorded.get(k) == v for k, v in metrics.items())
        print(f"{'identical to' if same else 'DIFFERENT from'} metrics.json "
              f"(test accuracy {100 * recorded.get('test_accuracy', float('nan')):.1f}%)")
        return 0 if same else 1
    return 0


def cmd_show(target, overrides, raw) -> int:
    from spikeloc.experiment import Experiment, preset_text, presets
    if target is None:
        width = max(len(name) for name in presets())
        for name in presets():
            print(f"{name:<{width}}  {Experiment.preset(name).config['description']}")
        return 0
    if raw:
        if overrides:
            raise _Fail("--raw prints a preset as shipped; it takes no --set")
        if os.path.exists(target) or target.endswith(".toml"):
            raise _Fail("--raw prints a preset as shipped; for a file, read the file")
        sys.stdout.write(preset_text(target))
        return 0
    sys.stdout.write(str(_load(target, overrides)))
    return 0


def train_experiment(args):
    """The experiment of ``spikeloc train``'s flags: the preset with the flags set."""
    from spikeloc import _toml
    from spikeloc.experiment import Experiment, preset_text
    cfg = _toml.loads(preset_text(args.preset))
    model, training = cfg["model"], cfg["training"]
    evaluation, stimulus = cfg["evaluation"], cfg["stimulus"]
    if args.model == "membrane":
        cfg["model"] = model = {"class": "MembraneOnly", "tau": model.get("tau_hidden", 0.02),
                                "readout": "sum"}
    if args.tau_ms is not None:
        tau = args.tau_ms * 1e-3
        if model["class"] == "MembraneOnly":
            model["tau"] = tau
        else:
            model["tau_hidden"] = model["tau_output"] = tau
    for flag, table, key in (("hidden", model, "n_hidden"), ("readout", model, "readout"),
                             ("epochs", training, "epochs"), ("lr", training, "lr"),
                             ("batch_size", training, "batch_size"),
                             ("delay_noise", stimulus, "phase_delay_noise"),
                             ("seed", cfg, "seed")):
        value = getattr(args, flag)
        if value is not None:
            table[key] = value
    if args.phase_offset is not None:
        text = args.phase_offset
        try:
            stimulus["phase_offset"] = text if text in ("per_set", "per_sample", "per_epoch") \
                else float(text)
        except ValueError:
            raise _Fail(f"--phase-offset must be per_sample, per_set, per_epoch or a number of "
                        f"cycles, got {text!r}") from None
    batch = training.get("batch_size", 64)
    if args.train_batches is not None:
        training["n_train"] = args.train_batches * batch
    if args.test_batches is not None:
        evaluation["n_test"] = args.test_batches * batch
    return Experiment(cfg, origin=f"spikeloc train (preset {args.preset!r})")


# ---------------------------------------------------------------------------- main


def main(argv=None) -> int:
    args = _build_parser().parse_args(argv)
    from spikeloc.experiment import ExperimentError
    try:
        if args.command == "run":
            return cmd_run(_load(args.experiment, args.overrides), args.out, args.threads,
                           not args.no_progress)
        if args.command == "sweep":
            return cmd_sweep(_load(args.experiment, args.overrides), args.out, args.threads,
                             not args.no_progress, args.scheduler, args.workers)
        if args.command == "evaluate":
            return cmd_evaluate(args.folder, args.threads)
        if args.command == "show":
            return cmd_show(args.experiment, args.overrides, args.raw)
        if args.command == "train":
            return cmd_run(train_experiment(args), args.out, args.threads,
                           not args.no_progress)
    except ExperimentError as exc:
        print(f"spikeloc: error: {exc}", file=sys.stderr)
        return 2
    except _Fail as exc:
        print(f"spikeloc: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("spikeloc: interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
