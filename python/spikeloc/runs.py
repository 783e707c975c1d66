"""Run folders: a finished run as its own record.

``spikeloc run ... --out DIR`` and :meth:`spikeloc.experiment.RunResult.save` write:

====================  ==========================================================================
``config.toml``       the experiment, fully resolved (``spikeloc run DIR/config.toml`` repeats
                      the run and reproduces ``metrics.json`` bit for bit)
``status.json``       how the run ended: ``status`` ("completed", "early_stopping",
                      "interrupted" or "failed"), ``stop_reason``, ``message``, ``seconds``,
                      ``summary`` (the one-line summary)
``metrics.json``      ``test_accuracy``, ``train_accuracy`` (fractions), ``test_error_deg``,
                      ``train_error_deg`` (IPD runs), ``final_loss`` (NaN as null)
``environment.json``  spikeloc, NumPy and Python versions, the C ABI version and build
                      information, platform, CPU model, cores, kernel threads, the command line
``history.json``      :meth:`spikeloc.History.to_json`; ``history.csv`` one row per epoch
``model.npz``         the trained model (:func:`spikeloc.load`)
``*.png``             figures: loss curve, test-set IPD histograms and confusion matrix, input
                      examples, weight matrices and W1 profiles (SNN); none without matplotlib
====================  ==========================================================================

A run folder is written **atomically**: everything goes into a hidden staging folder
``.<name>.partial-<random>`` beside ``DIR``, which is renamed to ``DIR`` once complete. A run
stopped before that (an error, a second Ctrl-C, a killed process) leaves no ``DIR``; the
command line removes its staging folder on the way out (a killed process leaves it behind,
hidden and named ``partial``). A run stopped by a first Ctrl-C or ended by a non-finite loss
is still written, with ``status.json`` saying so. ``DIR`` must not exist yet or be an empty
folder; it is checked (and its parent created) before any data is generated.

A sweep folder (``spikeloc sweep ... --out DIR``) is written as the sweep goes, so that it can
be resumed: ``config.toml``, ``environment.json`` and ``status.json`` ("running", then
"completed" or "interrupted") first, ``results.jsonl`` one line per finished job (and
``results.jsonl.experiment.toml``, the experiment it belongs to), and at the
end ``summary.csv``, ``summary.md`` (mean, standard deviation, min and max of each metric per
combination) and ``sweep.png`` (the error-bar figure). Running the same sweep into the same
folder again skips the jobs already recorded.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import secrets
import shutil
import sys

import numpy as np

__all__ = ["RunFolder", "write_run", "environment", "read_json", "write_json",
           "write_sweep_summary", "FIGURES"]

#: Figures of an IPD run (file name -> what it shows).
FIGURES = {"loss.png": "training (and validation) loss per epoch",
           "test_ipd.png": "test set: true and estimated IPD histograms, confusion matrix",
           "stimulus.png": "input spikes of the first training samples",
           "weights.png": "weight matrices, hidden units sorted by preferred phase",
           "w1_profiles.png": "W1 of a few hidden units against the fibres' phase delays"}


class OutputError(ValueError):
    """``--out`` names a place where a run folder cannot be written."""


def _clean(value):
    """JSON-ready: NaN and infinities as null, NumPy scalars as Python numbers."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path, value) -> None:
    """Write ``value`` as indented JSON (NaN and infinities as null)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(_clean(value), f, indent=2, allow_nan=False)
        f.write("\n")


def read_json(path):
    """Read a JSON file (UTF-8)."""
    with open(path, "r", encoding="utf-8") as f:
        return json.load(f)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(threads=None) -> dict:
    """Where and with what a run ran: versions, CPU, threads, command line, time (UTC)."""
    import spikeloc
    from ._native_api import resolve_threads
    resolved = resolve_threads(threads)
    env = {"spikeloc": spikeloc.__version__, "abi_version": spikeloc.abi_version(),
           "numpy": np.__version__, "python": platform.python_version(),
           "implementation": platform.python_implementation(), "platform": platform.platform(),
           "machine": platform.machine(), "cpu": _cpu_model(), "cores": os.cpu_count(),
           "threads": resolved or spikeloc.default_threads(),
           "SPIKELOC_NUM_THREADS": os.environ.get("SPIKELOC_NUM_THREADS"),
           "command": list(sys.argv),
           "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    env["build"] = spikeloc.build_info().as_dict()  # the kernel variant and why
    return env


class RunFolder:
    """A run folder written atomically (see the module docstring).

    Creating it checks ``path`` (not a file, not under a file, new or an empty folder,
    parent writable) and creates the staging folder, so that a bad ``--out`` fails before
    any work. :meth:`commit` renames the staging folder to ``path``; :meth:`discard` removes
    it. Used as a context manager it discards unless committed.
    """

    def __init__(self, path):
        path = os.path.abspath(os.fspath(path))
        self.path = path
        if os.path.lexists(path):
            if not os.path.isdir(path) or os.path.islink(path):
                raise OutputError(f"--out {path}: exists and is not a folder")
            if os.listdir(path):
                raise OutputError(f"--out {path}: the folder exists and is not empty (a run "
                                f"folder is written once; choose a new name)")
        parent = os.path.dirname(path)
        try:
            os.makedirs(parent, exist_ok=True)
        except FileExistsError:
            raise OutputError(f"--out {path}: {_first_file(parent)} is a file, not a "
                            f"folder") from None
        except NotADirectoryError:
            raise OutputError(f"--out {path}: {_first_file(parent)} is a file, not a "
                            f"folder") from None
        except OSError as exc:
            raise OutputError(f"--out {path}: cannot create {parent} "
                            f"({exc.strerror or exc})") from None
        self.staging = os.path.join(parent, f".{os.path.basename(path)}.partial-"
                                          f"{secrets.token_hex(4)}")
        try:
            os.mkdir(self.staging)
            probe = os.path.join(self.staging, ".probe")
            with open(probe, "w") as f:
                f.write("ok")
            os.remove(probe)
        except OSError as exc:
            self.discard()
            raise OutputError(f"--out {path}: cannot write in {parent} "
                            f"({exc.strerror or exc})") from None
        self.committed = False

    def file(self, name: str) -> str:
        """Path of ``name`` inside the staging folder."""
        return os.path.join(self.staging, name)

    def commit(self) -> str:
        """Make the run folder appear, complete, at ``path``."""
        if os.path.isdir(self.path) and not os.listdir(self.path):
            os.rmdir(self.path)   # an empty folder given as --out: replaced by the run
        os.rename(self.staging, self.path)
        self.committed = True
        return self.path

    def discard(self) -> None:
        """Remove the staging folder and what is in it."""
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self.committed:
            self.discard()
        return False


def _first_file(path: str) -> str:
    """The first component of ``path`` that exists and is not a folder."""
    parts = os.path.abspath(path).split(os.sep)
    for i in range(2, len(parts) + 1):
        candidate = os.sep.join(parts[:i])
        if os.path.lexists(candidate) and not os.path.isdir(candidate):
            return candidate
    return path


def _status(result=None, *, status=None, message="", seconds=None, summary="",
            stop_reason=None) -> dict:
    if result is not None:
        status = "interrupted" if result.history.interrupted else result.status or "completed"
        seconds = result.seconds
        summary = result.summary()
        message = message or summary
        stop_reason = result.status
    return {"status": status, "stop_reason": stop_reason or status,
            "message": message, "seconds": seconds or {}, "summary": summary}


def write_run(path, result, *, environment=None, folder: RunFolder = None) -> str:
    """Write the run folder of a :class:`~spikeloc.experiment.RunResult` at ``path``
    (atomically); returns the folder's path. ``folder``: a :class:`RunFolder` made earlier
    for ``path`` (the command line makes it before the data)."""
    owned = folder is None
    folder = RunFolder(path) if owned else folder
    try:
        _write_record(folder, result.experiment, environment, result.history,
                      _status(result))
        write_json(folder.file("metrics.json"), result.metrics)
        _save_model(result, folder.file("model.npz"))
        _write_figures(folder, result)
        return folder.commit()
    finally:
        if owned and not folder.committed:
            folder.discard()


def write_failed(folder: RunFolder, experiment, *, message: str, history=None,
                 environment=None) -> str:
    """A run folder for a run that failed (e.g. a non-finite loss): the experiment, the
    environment, the history up to the failure and ``status.json`` with the message."""
    _write_record(folder, experiment, environment, history,
                  _status(status="failed", message=message,
                        stop_reason=getattr(history, "stop_reason", None)))
    return folder.commit()


def _write_record(folder, experiment, env, history, status) -> None:
    with open(folder.file("config.toml"), "w", encoding="utf-8") as f:
        f.write(experiment.to_toml())
    write_json(folder.file("environment.json"), env if env is not None else environment())
    write_json(folder.file("status.json"), status)
    if history is not None:
        history.to_json(folder.file("history.json"))
        history.to_csv(folder.file("history.csv"))


def _save_model(result, path) -> None:
    extra = {"metrics": _clean(result.metrics), "experiment": result.experiment.name}
    result.model.save(path, stimulus=result.stimulus, extra=extra)


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _write_figures(folder, result) -> list:
    """The run's figures as PNG files; none (and no error) without matplotlib."""
    plt = _pyplot()
    if plt is None:
        return []
    from . import plots
    figures = {"loss.png": plots.loss_curves(result.history)}
    if result.test is not None:
        figures["test_ipd.png"] = plots.ipd_histograms(result.test)
    if result.stimulus is not None:
        # the first training samples again (a sample depends only on the seed and its index)
        n = min(8, result.experiment.config["training"]["n_train"])
        ipd, spikes = result.stimulus.generate(n, seed=result.experiment.seed)
        figures["stimulus.png"] = plots.stimulus_examples(ipd, spikes, result.stimulus)
    if hasattr(result.model, "w1"):
        figures["weights.png"] = plots.weight_matrices(result.model, sort_by_phase=True)
        if result.stimulus is not None:
            figures["w1_profiles.png"] = plots.w1_profiles(result.model,
                                                         stimulus=result.stimulus)
    for name, fig in figures.items():
        fig.savefig(folder.file(name), dpi=100)
        plt.close(fig)
    return list(figures)


# ---------------------------------------------------------------------------- sweeps


def sweep_figure(table, metrics=("train_accuracy", "test_accuracy")):
    """The sweep's error-bar figure: mean +/- std over repeats of ``metrics`` [%] per
    combination. One varying numeric parameter: against its values
    (:func:`spikeloc.plots.errorbar`); otherwise one point per combination, labelled."""
    plt = _pyplot()
    if plt is None:
        return None
    from . import plots
    metrics = [m for m in metrics if m in table.metrics]
    varying = [p for p in table.params
               if len({json.dumps(r.get(p), sort_keys=True) for r in table}) > 1]
    numeric = len(varying) == 1 and all(
        isinstance(r.get(varying[0]), (int, float)) and not isinstance(r.get(varying[0]), bool)
        for r in table)
    if numeric:
        fixed = {p: table[0].get(p) for p in table.params if p not in varying}
        fig = plots.errorbar(table, metrics, varying[0], scale=100, ylabel="accuracy (%)",
                           **fixed)
        return fig
    rows = table.summary(metrics)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(rows)), 5), layout="constrained")
    x = np.arange(len(rows))
    for i, metric in enumerate(metrics):
        mean = np.array([r.get(f"{metric}_mean", math.nan) for r in rows]) * 100
        std = np.array([r.get(f"{metric}_std", math.nan) for r in rows]) * 100
        ax.errorbar(x + 0.1 * (i - (len(metrics) - 1) / 2), mean, yerr=std, fmt="o",
                    capsize=5, label=metric)
    ax.set_xticks(x, ["\n".join(f"{p.split('.')[-1]}={r.get(p)}" for p in varying)
                      for r in rows], fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.legend(loc="best")
    return fig


def write_sweep_summary(directory, table) -> list:
    """``summary.csv``, ``summary.md`` and ``sweep.png`` of a sweep table in ``directory``."""
    summary = table.summary()
    written = []
    with open(os.path.join(directory, "summary.csv"), "w", encoding="utf-8", newline="") as f:
        f.write(summary.to_csv())
    written.append("summary.csv")
    with open(os.path.join(directory, "summary.md"), "w", encoding="utf-8") as f:
        f.write(summary.to_markdown() + "\n")
    written.append("summary.md")
    fig = sweep_figure(table) if len(table.ok) else None
    if fig is not None:
        import matplotlib.pyplot as plt
        fig.savefig(os.path.join(directory, "sweep.png"), dpi=100)
        plt.close(fig)
        written.append("sweep.png")
    return written
