"""Command line: ``python -m spikeloc train`` reproduces the Cosyne tutorial's training run.

It generates the tutorial's training set (64 batches of 64) and test set (32 batches of 64),
trains the spiking network (100 hidden units, tau 20 ms, mean readout, Adam lr 0.01) for 10
epochs, printing the mean loss of each epoch, then prints train and test accuracy and the
test error in degrees. Options change the preset, sizes, epochs, model and seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path



def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m spikeloc",
                                     description="spikeloc: spiking networks for sound "
                                                 "localisation (Swift kernels).")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="generate the tutorial data, train, report accuracy")
    t.add_argument("--config", "--preset", dest="preset", default="tutorial",
                   choices=["tutorial", "250hz"], help="stimulus preset (default: tutorial)")
    t.add_argument("--model", default="snn", choices=["snn", "membrane"],
                   help="spiking network or the membrane-only network (default: snn)")
    t.add_argument("--epochs", type=int, default=10, help="training epochs (default: 10)")
    t.add_argument("--batch-size", type=int, default=64, help="batch size (default: 64)")
    t.add_argument("--train-batches", type=int, default=64,
                   help="training set size in batches (default: 64)")
    t.add_argument("--test-batches", type=int, default=32,
                   help="test set size in batches (default: 32)")
    t.add_argument("--hidden", type=int, default=100, help="hidden units (default: 100)")
    t.add_argument("--tau-ms", type=float, default=20.0,
                   help="membrane time constant in ms (default: 20)")
    t.add_argument("--readout", default=None, choices=["mean", "sum", "max"],
                   help="readout (default: mean for snn, sum for membrane)")
    t.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (default: 0.01)")
    t.add_argument("--phase-offset", default="per_set",
                   help="per_set (tutorial), per_sample, per_epoch (a new offset each epoch), "
                        "or a number of cycles")
    t.add_argument("--delay-noise", type=float, default=0.0, metavar="RAD",
                   help="standard deviation of the noise on the fibres' phase delays, in "
                        "radians (default: 0)")
    t.add_argument("--seed", type=int, default=0,
                   help="seed of weights and shuffling; data seeds are seed (train) and "
                        "seed + 1 (test) (default: 0)")
    t.add_argument("--threads", type=int, default=None,
                   help="worker threads (default: SPIKELOC_NUM_THREADS or all cores)")
    t.add_argument("--out", default=None, metavar="DIR",
                   help="write the history (JSON, CSV) and the metrics into DIR")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _phase_offset(text: str):
    if text in ("per_set", "per_sample", "per_epoch"):
        return text
    try:
        return float(text)
    except ValueError:
        raise SystemExit(f"--phase-offset must be per_set, per_sample, per_epoch or a number, "
                         f"got {text!r}")


def train(args) -> dict:
    """The tutorial's training run; returns the final metrics."""
    import spikeloc as sl
    from spikeloc.evaluation import evaluate
    from spikeloc.training import train as train_model

    stim = sl.PRESETS[args.preset].replace(phase_offset=_phase_offset(args.phase_offset),
                                           phase_delay_noise=args.delay_noise)
    n_train = args.batch_size * args.train_batches
    n_test = args.batch_size * args.test_batches
    if n_train < 1 or n_test < 1:
        raise SystemExit("the training and test sets must not be empty")
    t0 = time.perf_counter()
    ipd_train, spikes_train = stim.generate(n_train, seed=args.seed, threads=args.threads)
    ipd_test, spikes_test = stim.generate(n_test, seed=args.seed + 1, threads=args.threads)
    x_train = sl.SpikeEvents.from_dense(spikes_train, threads=args.threads)
    x_test = sl.SpikeEvents.from_dense(spikes_test, threads=args.threads)
    del spikes_train, spikes_test
    y_train, y_test = stim.labels(ipd_train), stim.labels(ipd_test)
    print(f"data: {n_train} training and {n_test} test samples, T={stim.steps}, "
          f"N_in={stim.n_in}, spike density {x_train.density:.3f} "
          f"({time.perf_counter() - t0:.2f} s)")
    if stim.phase_offset == "per_set":
        print("phase offset: one draw per generated set, as in the seed notebooks: training and "
              "test sets differ in phase, so test accuracy drops and scatters from seed to seed "
              "(--phase-offset per_sample draws one offset per sample)")
    print(f"chance level: {100 / stim.num_classes:.1f}%")

    tau = args.tau_ms * sl.ms
    if args.model == "snn":
        model = sl.SNN.for_stimulus(stim, n_hidden=args.hidden, tau_hidden=tau,
                                    readout=args.readout or "mean", seed=args.seed,
                                    threads=args.threads)
    else:
        model = sl.MembraneOnly.for_stimulus(stim, tau=tau, readout=args.readout or "sum",
                                             seed=args.seed, threads=args.threads)
    print(f"model: {model}")
    regenerate = None
    if stim.phase_offset == "per_epoch":   # same samples, a new phase offset each epoch
        regenerate = stim.regenerator(ipd_train, seed=args.seed, threads=args.threads)
    history = train_model(model, ipd_train, x_train, stimulus=stim, epochs=args.epochs,
                          lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                          progress=not args.no_progress, regenerate=regenerate)
    print(history.summary())
    train_eval = evaluate(model, ipd_train, x_train, stim)
    test_eval = evaluate(model, ipd_test, x_test, stim)
    print(train_eval.report("Train"))
    print(test_eval.report("Test"))
    print(f"total {time.perf_counter() - t0:.1f} s")
    metrics = {
        "train_accuracy": train_eval.accuracy,
        "test_accuracy": test_eval.accuracy,
        "train_error_deg": train_eval.mean_abs_error_deg,
        "test_error_deg": test_eval.mean_abs_error_deg,
    }
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        history.to_json(out / "history.json")
        history.to_csv(out / "history.csv")
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        model.save(out / "model.npz", stimulus=stim, extra={"metrics": metrics})
        written = ["model.npz", "history.json", "history.csv", "metrics.json"]
        written += _write_figures(out, model, history, test_eval, ipd_train, x_train, stim)
        print(f"wrote {out}: " + ", ".join(written))
    return metrics


def _write_figures(out, model, history, test_eval, ipd, x, stim) -> list:
    """The run's figures as PNG files (skipped, with a note, without matplotlib)."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no figures (pip install 'spikeloc[plot]')")
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from spikeloc import plots
    figures = {
        "loss.png": plots.loss_curves(history),
        "test_ipd.png": plots.ipd_histograms(test_eval),
        "stimulus.png": plots.stimulus_examples(ipd[:8], x.to_dense()[:8] if len(x) >= 8
                                                else x.to_dense(), stim),
    }
    if hasattr(model, "w1"):
        figures["weights.png"] = plots.weight_matrices(model, sort_by_phase=True)
        figures["w1_profiles.png"] = plots.w1_profiles(model, stimulus=stim)
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
    return list(figures)


def main(argv=None) -> int:
    args = _build_parser().parse_args(argv)
    if args.command == "train":
        try:
            train(args)
        except (ValueError, TypeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
