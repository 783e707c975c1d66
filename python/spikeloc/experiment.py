"""Experiments as files: one TOML file holds everything a study needs, and runs with one call.

An experiment has a data section, a model, training and evaluation, and optionally a sweep::

    name = "tutorial"
    seed = 0                      # weights, shuffling and data (see "Seeds" below)

    [stimulus]                    # spikeloc.Stimulus(...)
    phase_offset = "per_sample"

    [model]                       # spikeloc.SNN.for_stimulus(stimulus, ...)
    class = "SNN"                 # or "MembraneOnly", "EPropNetwork"
    n_hidden = 100
    tau_hidden = 0.02             # seconds

    [model.dale]                  # spikeloc.Dale(...), optional
    ie_ratio = 0.5

    [training]                    # spikeloc.train(model, ...) and the data it trains on
    n_train = 4096
    epochs = 10
    lr = 0.01

    [evaluation]
    n_test = 2048

    [sweep]                       # spikeloc.sweep(...), optional
    repeats = 3
    grid."stimulus.envelope_power" = [0, 1, 2, 4, 10]

Every key is the argument of the same name of the Python API: ``[stimulus]`` of
:class:`~spikeloc.Stimulus`; ``[model]`` of ``<class>.for_stimulus`` and the class's
constructor (:class:`~spikeloc.SNN`, :class:`~spikeloc.MembraneOnly`,
:class:`~spikeloc.EPropNetwork`), with the subtables ``[model.dale]``
(:class:`~spikeloc.Dale`) and ``[model.rate_regularizer]``
(:class:`~spikeloc.RateRegularizer`); ``[training]`` of :func:`~spikeloc.train`, plus
``n_train`` and ``n_validation`` (samples; no validation set when 0); ``[evaluation]`` of
:func:`~spikeloc.evaluate` (``silence``), plus ``n_test``; ``[sweep]`` of
:func:`spikeloc.sweep` (``grid``, ``repeats``, ``workers``, ``job_threads``,
``retry_failed``), plus ``scheduler``, the address of a Dask scheduler
(``"tcp://host:8786"``) that runs the jobs. Grid keys name experiment keys as
``"section.key"``. Instead of ``[stimulus]`` an experiment may read N-MNIST event files:
``[nmnist]`` holds the arguments of :func:`spikeloc.datasets.nmnist.load` (``root``,
``steps``, ``max_per_class``, ``blocklist``, ``t_max``; the same ``max_per_class`` applies to
the Train and the Test split) and ``[model]`` gains ``dt`` (seconds per step, 1 ms as seed
003).

Defaults are the API's: a key left out takes the default of its argument, so the tutorial's
defaults live in one place. :func:`str` of an experiment is the full resolved TOML, every
key with its value (keys whose default is None are listed as comments); running that text
again gives the same results bit for bit. Unknown keys and bad values fail when the
experiment is built, before any data is generated, with a message naming the section, the
key and the closest valid key.

Seeds: ``seed`` seeds the initial weights and the shuffling; the training set is drawn from
the stimulus stream ``seed``, the test set from ``seed + 1`` and the validation set from
``seed + 2``, so no two sets share samples. A sweep gives each repeat its own seed
(:func:`spikeloc.sweep.job_seed` of ``seed`` and the repeat), the same for every combination.

Example::

    import spikeloc as sl
    exp = sl.Experiment.preset("250hz")
    print(exp)                                        # the resolved TOML
    result = exp.replace({"training.epochs": 20}).run()
    result.metrics["test_accuracy"]
    result.save("runs/250hz")                         # the run folder (see spikeloc.runs)
    table = sl.Experiment.preset("envelope_power").sweep(results="envelope.jsonl")
    print(table.summary("test_accuracy"))
"""

from __future__ import annotations

import copy
import difflib
import functools
import math
import os
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from . import _toml
from ._schema import (NMNIST_CLASSES, ExperimentError, model_classes, parse_override,
                      resolve, set_key, where)

__all__ = ["Experiment", "ExperimentError", "RunResult", "DataSet", "presets",
           "parse_override", "tutorial_experiment", "TUTORIAL_PARAMETERS"]

_PRESET_DIR = "presets"


# ---------------------------------------------------------------------------- data


class DataShape(NamedTuple):
    """What ``<model class>.for_stimulus`` reads of a data set that is not a Stimulus."""

    n_in: int
    num_classes: int
    dt: float
    steps: int


@dataclass
class DataSet:
    """One data set of an experiment: ``spikes`` (:class:`~spikeloc.SpikeEvents`), ``labels``
    int64 (n,), and ``ipd`` float64 (n,) [rad] (None for N-MNIST)."""

    spikes: Any
    labels: np.ndarray
    ipd: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.labels)


# ---------------------------------------------------------------------------- results


@dataclass
class RunResult:
    """What :meth:`Experiment.run` returns.

    Attributes
    ----------
    experiment : Experiment
        The experiment that ran (its resolved configuration).
    model : SNN, MembraneOnly or EPropNetwork
        The trained model.
    history : History
        What :func:`spikeloc.train` recorded.
    metrics : dict
        Floats: ``train_accuracy``, ``test_accuracy`` (fractions), ``train_error_deg``,
        ``test_error_deg`` (degrees; IPD experiments), ``final_loss`` (nats).
    train, test : Evaluation or None
        The evaluations on the training and test sets (IPD experiments; None for N-MNIST).
    stimulus : Stimulus or None
        The stimulus (None for N-MNIST).
    status : str
        ``history.stop_reason``: "completed", "early_stopping", "interrupted (...)", ...
    seconds : dict
        Wall-clock seconds of "data", "training", "evaluation" and "total".
    data : dict
        The :class:`DataSet` s: "train", "validation" (if any), "test".
    """

    experiment: "Experiment"
    model: Any
    history: Any
    metrics: dict
    train: Any = None
    test: Any = None
    stimulus: Any = None
    status: str = ""
    seconds: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict, repr=False)

    @property
    def interrupted(self) -> bool:
        """Training was stopped by Ctrl-C (the metrics are those of the weights reached)."""
        return bool(self.history.interrupted)

    def summary(self) -> str:
        """One line: the experiment, test accuracy (and error), epochs, status, time."""
        m = self.metrics
        text = f"{self.experiment.name or 'experiment'}: test accuracy " \
               f"{100 * m['test_accuracy']:.1f}%"
        if "test_error_deg" in m:
            text += f", error {m['test_error_deg']:.1f} deg"
        text += f" (train {100 * m['train_accuracy']:.1f}%), {self.history.epochs} epochs, " \
                f"{self.status}, {self.seconds.get('total', math.nan):.1f} s"
        return text

    def save(self, path, *, environment=None) -> str:
        """Write the run folder ``path`` atomically (see :mod:`spikeloc.runs`); returns it."""
        from .runs import write_run
        return write_run(path, self, environment=environment)


# ---------------------------------------------------------------------------- experiment


def _preset_files():
    return resources.files("spikeloc").joinpath(_PRESET_DIR)


def presets() -> list:
    """Names of the presets shipped with spikeloc (``Experiment.preset(name)``)."""
    return sorted(p.name[:-5] for p in _preset_files().iterdir() if p.name.endswith(".toml"))


class Experiment:
    """A validated experiment: data, model, training, evaluation, optional sweep.

    Build one with :meth:`preset`, :meth:`from_file`, :meth:`from_toml`, :meth:`load` (a
    preset name or a file) or ``Experiment(config_dict)`` (nested dicts as the TOML has
    them); each checks every key and value before returning. Experiments are immutable:
    :meth:`replace` returns a changed copy.
    """

    def __init__(self, config: dict, *, origin: str = "experiment"):
        self._origin = origin
        self._config = resolve(copy.deepcopy(config), origin)
        self._validate()

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    def from_toml(cls, text: str, *, origin: str = "<string>") -> "Experiment":
        """An experiment from TOML text."""
        try:
            raw = _toml.loads(text)
        except _toml.TOMLDecodeError as exc:
            raise ExperimentError(f"{origin}: not valid TOML ({exc})") from None
        return cls(raw, origin=origin)

    @classmethod
    def from_file(cls, path) -> "Experiment":
        """An experiment from a TOML file."""
        path = os.fspath(path)
        if os.path.isdir(path):
            raise ExperimentError(f"{path}: is a directory, not an experiment file (a run "
                                  f"folder holds its experiment in config.toml)")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ExperimentError(f"{path}: cannot read the experiment file "
                                  f"({exc.strerror or exc})") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ExperimentError(f"{path}: not a UTF-8 text file") from None
        return cls.from_toml(text, origin=path)

    @classmethod
    def preset(cls, name: str) -> "Experiment":
        """A preset shipped with spikeloc (:func:`presets` lists them)."""
        return cls.from_toml(preset_text(name), origin=f"preset {name!r}")

    @classmethod
    def load(cls, name_or_path) -> "Experiment":
        """A preset name or the path of a TOML file (what the command line takes)."""
        text = os.fspath(name_or_path)
        if os.path.exists(text) or text.endswith(".toml") or os.sep in text:
            return cls.from_file(text)
        return cls.preset(text)

    # -- views -------------------------------------------------------------------------------
    @property
    def config(self) -> dict:
        """The resolved configuration (a deep copy)."""
        return copy.deepcopy(self._config)

    @property
    def name(self) -> str:
        """The experiment's ``name`` ("" if the file gives none)."""
        return self._config["name"]

    @property
    def seed(self) -> int:
        """The experiment's ``seed`` (weights, shuffling; data streams seed, seed + 1, + 2)."""
        return self._config["seed"]

    @property
    def source(self) -> str:
        """"stimulus" (the IPD task) or "nmnist"."""
        return "nmnist" if "nmnist" in self._config else "stimulus"

    @property
    def has_sweep(self) -> bool:
        """Whether the experiment has a ``[sweep]`` section (:meth:`sweep` runs it)."""
        return "sweep" in self._config

    def replace(self, overrides) -> "Experiment":
        """A copy with some keys changed: ``overrides`` maps ``"section.key"`` (or
        ``"section.subtable.key"``, ``"seed"``) to values, or is a list of
        ``"section.key=value"`` strings (the command line's ``--set``)."""
        config = self.config
        items = (overrides.items() if isinstance(overrides, dict)
                 else (parse_override(text) for text in overrides))
        for path, value in items:
            parts = path.split(".") if isinstance(path, str) else list(path)
            set_key(config, parts, value)
        return Experiment(config, origin=self._origin)

    def to_toml(self) -> str:
        """The full resolved TOML text (what :func:`str` gives)."""
        return _toml.dumps(self._config, header="spikeloc experiment, every key resolved "
                                                "(spikeloc run FILE runs it)")

    __str__ = to_toml

    def save(self, path) -> str:
        """Write :meth:`to_toml` to ``path``; returns the path."""
        path = os.fspath(path)
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_toml())
        return path

    def __repr__(self) -> str:
        c = self._config
        data = "N-MNIST" if self.source == "nmnist" else "IPD stimulus"
        sweep = ""
        if self.has_sweep:
            grid = c["sweep"]["grid"]
            keys = list(grid) if isinstance(grid, dict) else list(dict.fromkeys(
                k for combo in grid if isinstance(combo, dict) for k in combo))
            sweep = f", sweep over {keys}"
        return (f"Experiment({self.name or self._origin!r}: {c['model']['class']} on {data}, "
                f"{c['training']['epochs']} epochs, seed {self.seed}{sweep})")

    def __eq__(self, other) -> bool:
        return isinstance(other, Experiment) and self._config == other._config

    # -- building blocks ---------------------------------------------------------------------
    def _fail(self, section: str, exc: Exception) -> ExperimentError:
        return ExperimentError(f"{where(self._origin, section)} {exc}")

    def stimulus(self):
        """The :class:`~spikeloc.Stimulus` (None for N-MNIST experiments)."""
        if self.source != "stimulus":
            return None
        from .stimulus import Stimulus
        try:
            return Stimulus(**self._config["stimulus"])
        except (TypeError, ValueError) as exc:
            raise self._fail("stimulus", exc) from None

    def _shape(self):
        """The stimulus, or the DataShape of the N-MNIST inputs (no file is read)."""
        if self.source == "stimulus":
            return self.stimulus()
        from .datasets import nmnist
        cfg = self._config["nmnist"]
        try:
            n_in = int(nmnist.active_pixels(cfg["blocklist"]).size)
            steps = nmnist._check_steps(cfg["steps"])
            nmnist._check_t_max(cfg["t_max"])
        except (TypeError, ValueError, OSError) as exc:
            raise self._fail("nmnist", exc) from None
        return DataShape(n_in, NMNIST_CLASSES, self._config["model"]["dt"], steps)

    def model(self, *, threads=None, seed=None):
        """A fresh, untrained model (``seed``: the experiment's by default)."""
        cfg = dict(self._config["model"])
        cls = model_classes()[cfg.pop("class")]
        cfg.pop("dt", None)
        cfg = {k: v for k, v in cfg.items() if v is not None}
        try:
            return cls.for_stimulus(self._shape(), **cfg, seed=self.seed if seed is None
                                    else seed, threads=threads)
        except ExperimentError:
            raise
        except (TypeError, ValueError) as exc:
            raise self._fail("model", exc) from None

    def _validate(self) -> None:
        """Every check that needs no data: build the stimulus and the model, check the
        training, evaluation and sweep values, find the N-MNIST files."""
        from .training import _make_optimizer, check_options
        if not isinstance(self._config["seed"], int) or isinstance(self._config["seed"], bool) \
                or not 0 <= self._config["seed"] < 2**63:
            raise ExperimentError(f"{self._origin}: seed must be an integer in [0, 2**63), "
                                  f"got {self._config['seed']!r}")
        for key in ("name", "description"):
            if not isinstance(self._config[key], str):
                raise ExperimentError(f"{self._origin}: {key} must be a string, got "
                                      f"{self._config[key]!r}")
        model = self.model(threads=1)
        tr = self._config["training"]
        try:
            n_validation = 0
            if self.source == "stimulus":
                from ._native_api import check_int
                n_train = check_int(tr["n_train"], "n_train", minimum=1)
                n_validation = check_int(tr["n_validation"], "n_validation", minimum=0)
            check_options(epochs=tr["epochs"], batch_size=tr["batch_size"],
                          early_stopping=tr["early_stopping"], patience=tr["patience"],
                          validation=n_validation > 0 or self.source == "nmnist")
            if self.source == "stimulus" and tr["epochs"] and n_train < tr["batch_size"]:
                raise ValueError(f"n_train={n_train} is smaller than batch_size="
                                 f"{tr['batch_size']}: no complete batch")
            if not isinstance(tr["restore_best"], bool):
                raise TypeError(f"restore_best must be true or false, got "
                                f"{tr['restore_best']!r}")
            _make_optimizer(tr["optimizer"], model, tr["lr"])
        except (TypeError, ValueError) as exc:
            raise self._fail("training", exc) from None
        if self.source == "nmnist" and (tr["early_stopping"] or tr["patience"]):
            raise ExperimentError(f"{where(self._origin, 'training')} early_stopping and "
                                  f"patience need a validation set, which N-MNIST experiments "
                                  f"do not draw")
        ev = self._config["evaluation"]
        try:
            if self.source == "stimulus":
                from ._native_api import check_int
                check_int(ev["n_test"], "n_test", minimum=1)
            if ev["silence"] is not None:
                from .silencing import check_units, hidden_size
                check_units(ev["silence"], hidden_size(model))
        except (TypeError, ValueError) as exc:
            raise self._fail("evaluation", exc) from None
        if self.has_sweep:
            self._check_sweep()

    def check_files(self) -> None:
        """Check that the files the experiment reads exist (N-MNIST: the root with its
        Train/ and Test/ splits); :meth:`data`, :meth:`run` and :meth:`sweep` call it first.
        An experiment without its data folder can still be built, shown and edited."""
        if self.source != "nmnist":
            return
        from .datasets import nmnist
        cfg = self._config["nmnist"]
        if cfg["root"] is None:
            raise ExperimentError(f"{where(self._origin, 'nmnist')} root: give the N-MNIST "
                                  f"directory (holding Train/<label>/*.bin and Test/<label>/"
                                  f"*.bin), e.g. --set nmnist.root=/data/N-MNIST")
        try:
            for split in ("Train", "Test"):
                nmnist.list_files(cfg["root"], split, max_per_class=cfg["max_per_class"])
        except (TypeError, ValueError, OSError) as exc:
            raise self._fail("nmnist", exc) from None

    def _check_sweep(self) -> None:
        from .sweep import expand_grid
        from ._native_api import check_int
        sw = self._config["sweep"]
        try:
            combos = expand_grid(sw["grid"])
            check_int(sw["repeats"], "repeats", minimum=1)
            check_int(sw["job_threads"], "job_threads", minimum=0)
            if sw["workers"] is not None:
                check_int(sw["workers"], "workers", minimum=1)
            if sw["scheduler"] is not None and not isinstance(sw["scheduler"], str):
                raise TypeError(f"scheduler must be the address of a Dask scheduler "
                                f"(\"tcp://host:8786\"), got {sw['scheduler']!r}")
            if not isinstance(sw["retry_failed"], bool):
                raise TypeError(f"retry_failed must be true or false, got "
                                f"{sw['retry_failed']!r}")
        except (TypeError, ValueError) as exc:
            raise self._fail("sweep", exc) from None
        for combo in combos:        # every point of the grid is a valid experiment
            self.without_sweep().replace(combo)

    def without_sweep(self) -> "Experiment":
        """The experiment without its ``[sweep]`` section: the point every sweep job starts
        from."""
        config = self.config
        config.pop("sweep", None)
        return Experiment(config, origin=self._origin)

    # -- data --------------------------------------------------------------------------------
    def data(self, *, threads=None, sets=("train", "validation", "test")) -> dict:
        """The experiment's data sets, name -> :class:`DataSet` ("validation" only with
        ``n_validation > 0``). IPD sets are drawn from the stimulus streams ``seed``
        (train), ``seed + 1`` (test) and ``seed + 2`` (validation)."""
        from .events import SpikeEvents
        self.check_files()
        out = {}
        if self.source == "nmnist":
            from .datasets import nmnist
            cfg = dict(self._config["nmnist"])
            root = cfg.pop("root")
            for name, split in (("train", "Train"), ("test", "Test")):
                if name in sets:
                    spikes, labels = nmnist.load(root, split, **cfg)
                    out[name] = DataSet(SpikeEvents.from_dense(spikes, threads=threads),
                                        labels)
            return out
        stim = self.stimulus()
        sizes = {"train": (self._config["training"]["n_train"], 0),
                 "test": (self._config["evaluation"]["n_test"], 1),
                 "validation": (self._config["training"]["n_validation"], 2)}
        for name in sets:
            n, offset = sizes[name]
            if n == 0:
                continue
            # events straight from the draws: no dense array (a tenth of its memory at 250 Hz)
            ipd, events = stim.generate(n, seed=self.seed + offset, threads=threads, events=True)
            out[name] = DataSet(events, stim.labels(ipd), ipd)
        return out

    # -- running -----------------------------------------------------------------------------
    def run(self, *, progress: bool = True, threads=None,
            log: Optional[Callable[[str], None]] = None) -> RunResult:
        """Generate (or read) the data, train, evaluate; returns a :class:`RunResult`.

        Parameters
        ----------
        progress : bool
            A tqdm bar over the training batches (on stderr).
        threads : int or None
            Kernel threads (None: ``SPIKELOC_NUM_THREADS`` or all cores; results are the same
            for every count).
        log : callable or None
            Called with a line of text at each stage (e.g. ``print``).

        Notes
        -----
        Ctrl-C stops training at the next batch (the result then has ``interrupted``); a
        second Ctrl-C raises KeyboardInterrupt. A non-finite loss raises
        :class:`~spikeloc.NonFiniteLossError`.
        """
        from .training import train
        say = log or (lambda text: None)
        tr = self._config["training"]
        start = time.perf_counter()
        data = self.data(threads=threads)
        stim = self.stimulus()
        train_set = data["train"]
        density = train_set.spikes.density
        say(f"data: {len(train_set)} training"
            + (f", {len(data['validation'])} validation" if "validation" in data else "")
            + f" and {len(data['test'])} test samples, T={train_set.spikes.steps}, "
              f"N_in={train_set.spikes.n_in}, spike density {density:.3f} "
              f"({time.perf_counter() - start:.2f} s)")
        t_data = time.perf_counter()
        model = self.model(threads=threads)
        say(f"model: {model}")
        regenerate = None
        if stim is not None and stim.phase_offset == "per_epoch":
            regenerate = stim.regenerator(train_set.ipd, seed=self.seed, threads=threads,
                                          events=True)
        validation = None
        if "validation" in data:
            v = data["validation"]
            validation = (v.ipd, v.spikes, v.labels)
        history = train(model, train_set.ipd, train_set.spikes, labels=train_set.labels,
                        stimulus=stim, epochs=tr["epochs"], lr=tr["lr"],
                        batch_size=tr["batch_size"], optimizer=tr["optimizer"],
                        validation=validation, early_stopping=tr["early_stopping"],
                        patience=tr["patience"], restore_best=tr["restore_best"],
                        seed=self.seed, progress=progress, regenerate=regenerate)
        t_train = time.perf_counter()
        metrics, evals = self.evaluate(model, data)
        metrics["final_loss"] = history.train_loss[-1] if history.train_loss else math.nan
        end = time.perf_counter()
        return RunResult(experiment=self, model=model, history=history, metrics=metrics,
                         train=evals.get("train"), test=evals.get("test"), stimulus=stim,
                         status=history.stop_reason, data=data,
                         seconds={"data": t_data - start, "training": t_train - t_data,
                                  "evaluation": end - t_train, "total": end - start})

    def evaluate(self, model, data: dict) -> tuple:
        """Score ``model`` on the "train" and "test" sets of ``data`` (:meth:`data`) as
        :meth:`run` does, with ``[evaluation] silence``: returns ``(metrics, evaluations)``,
        metrics ``{train,test}_accuracy`` and, for IPD experiments,
        ``{train,test}_error_deg``; evaluations the :class:`~spikeloc.Evaluation` s (IPD
        experiments only)."""
        from .evaluation import evaluate
        stim, silence = self.stimulus(), self._config["evaluation"]["silence"]
        metrics, evals = {}, {}
        for name in ("train", "test"):
            d = data[name]
            if stim is not None:
                evals[name] = evaluate(model, d.ipd, d.spikes, stim, labels=d.labels,
                                       silence=silence)
                metrics[f"{name}_accuracy"] = evals[name].accuracy
                metrics[f"{name}_error_deg"] = evals[name].mean_abs_error_deg
            else:
                net = model
                if silence is not None:
                    from .silencing import silenced
                    net = silenced(model, silence)
                metrics[f"{name}_accuracy"] = float(np.mean(net.predict(d.spikes) == d.labels))
        return metrics, evals

    def sweep(self, *, results=None, progress: bool = True, executor=None, workers=None):
        """Run the ``[sweep]`` section with :func:`spikeloc.sweep`: every combination of the
        grid, ``repeats`` times (job seeds from ``seed``). Returns the
        :class:`~spikeloc.SweepResult` (metrics as :attr:`RunResult.metrics`).

        Parameters
        ----------
        results : path or None
            JSON-lines file that records each job as it finishes (run again to resume).
        progress : bool
            A progress bar over the jobs.
        executor : executor, Dask client or None
            Where the jobs run (default: the ``scheduler`` if set, else local threads).
        workers : int or None
            Threads of the local pool (default: ``[sweep] workers``, else one per core).
        """
        if not self.has_sweep:
            raise ExperimentError(f"{self._origin}: has no [sweep] section")
        self.check_files()
        from .sweep import sweep
        sw = self._config["sweep"]
        if results is not None:
            self._claim(results)
        client = None
        if executor is None and sw["scheduler"]:
            executor = client = _dask_client(sw["scheduler"])
        if executor is None and workers is None:
            workers = sw["workers"]
        try:
            return sweep(functools.partial(run_job, self.without_sweep().config), sw["grid"],
                         repeats=sw["repeats"], executor=executor, progress=progress,
                         results=results, seed=self.seed, workers=workers,
                         job_threads=sw["job_threads"], retry_failed=sw["retry_failed"])
        finally:
            if client is not None:
                client.close()


    def _claim(self, results) -> None:
        """A results file belongs to one experiment: its jobs are keyed by the grid point and
        the seed only. ``<results>.experiment.toml`` records the experiment without its sweep
        (the grid and the repeats may grow between runs); another one fails."""
        stamp = os.fspath(results) + ".experiment.toml"
        base = str(self.without_sweep())
        if os.path.exists(stamp):
            with open(stamp, encoding="utf-8") as f:
                if f.read() != base:
                    raise ExperimentError(
                        f"{self._origin}: {os.fspath(results)} holds the results of another "
                        f"experiment ({stamp} differs); use another results file")
            return
        directory = os.path.dirname(os.path.abspath(stamp))
        os.makedirs(directory, exist_ok=True)
        with open(stamp, "w", encoding="utf-8") as f:
            f.write(base)


def _dask_client(address: str):
    try:
        from distributed import Client
    except ImportError:
        raise ExperimentError("[sweep] scheduler needs dask.distributed (pip install "
                              "'spikeloc[cluster]')") from None
    try:
        return Client(address, timeout=10)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ExperimentError(f"[sweep] scheduler {address!r}: cannot connect "
                              f"({type(exc).__name__}: {exc})") from None


def run_job(config: dict, params: dict, seed: int) -> dict:
    """One sweep job: the experiment ``config`` with ``params`` (``"section.key"`` -> value)
    and ``seed``, run without a progress bar; returns its metrics. A module-level function,
    so that process pools and Dask workers can run it (``functools.partial(run_job, config)``).
    """
    exp = Experiment(config, origin="sweep job").replace(dict(params, seed=seed))
    return exp.run(progress=False).metrics


#: The parameters of :func:`tutorial_experiment` and the keys of the ``tutorial`` experiment
#: preset they set (``tau`` sets both layers' time constant).
TUTORIAL_PARAMETERS = {
    "envelope_power": ("stimulus.envelope_power",), "rate_max": ("stimulus.rate_max",),
    "anf_per_ear": ("stimulus.anf_per_ear",), "duration": ("stimulus.duration",),
    "phase_offset": ("stimulus.phase_offset",), "n_hidden": ("model.n_hidden",),
    "tau": ("model.tau_hidden", "model.tau_output"), "readout": ("model.readout",),
    "n_train": ("training.n_train",), "epochs": ("training.epochs",), "lr": ("training.lr",),
    "batch_size": ("training.batch_size",), "n_test": ("evaluation.n_test",)}


def tutorial_experiment(params: dict, seed: int) -> dict:
    """The Cosyne tutorial's training run as a sweep job (seed 002's envelope-power project).

    The ``tutorial`` experiment preset (:class:`spikeloc.Experiment`) with ``seed`` and the
    parameters in ``params`` (:data:`TUTORIAL_PARAMETERS`: ``envelope_power`` (k),
    ``rate_max`` [Hz], ``anf_per_ear``, ``duration`` [s], ``phase_offset`` (cycles, or
    "per_sample"/"per_set"), ``n_hidden``, ``tau`` [s] (both layers), ``readout``,
    ``n_train``, ``epochs``, ``lr``, ``batch_size``, ``n_test``); the preset gives the rest.
    The training set uses stream ``seed``, the test set ``seed + 1``; the initial weights
    and the shuffling use ``seed``. (The seed notebook's sweep never passed k on to its
    stimulus; here it does.) For any other key, sweep an experiment file instead
    (``[sweep]``, :meth:`spikeloc.Experiment.sweep`).

    Returns :attr:`spikeloc.experiment.RunResult.metrics`: ``train_accuracy``,
    ``test_accuracy`` (fractions), ``train_error_deg``, ``test_error_deg`` (degrees) and
    ``final_loss`` (mean loss of the last epoch, nats).
    """
    unknown = sorted(set(params) - set(TUTORIAL_PARAMETERS))
    if unknown:
        raise ValueError(f"tutorial_experiment: unknown parameters {unknown}; known: "
                         f"{sorted(TUTORIAL_PARAMETERS)}")
    overrides = {key: value for name, value in params.items()
                 for key in TUTORIAL_PARAMETERS[name]}
    overrides["seed"] = seed
    return Experiment.preset("tutorial").replace(overrides).run(progress=False).metrics


def preset_text(name: str) -> str:
    """The TOML text of a preset, as shipped (with its comments)."""
    if not isinstance(name, str) or not name:
        raise ExperimentError(f"a preset name must be a non-empty string, got {name!r}")
    names = presets()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ExperimentError(f"unknown preset {name!r}{hint} (presets: {', '.join(names)}; "
                              f"or give the path of a .toml file)")
    return _preset_files().joinpath(f"{name}.toml").read_text(encoding="utf-8")
