"""How an experiment file is read: the keys of each section and their defaults (taken from
the signatures of the API they are passed to), and the resolution of a file into the full
configuration, with errors that name the section, the key and the closest valid key.
:mod:`spikeloc.experiment` builds on it.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect

from . import _toml

__all__ = ["ExperimentError", "resolve", "parse_override", "set_key", "where",
           "model_classes", "subtables", "NMNIST_CLASSES", "NMNIST_DT", "TUTORIAL_N_TRAIN",
           "TUTORIAL_N_TEST", "TUTORIAL_EPOCHS"]

#: Number of classes of N-MNIST (digits 0-9).
NMNIST_CLASSES = 10
#: Time step [s] of an N-MNIST step when the file does not say (seed 003: 1 ms).
NMNIST_DT = 1e-3
#: The tutorial's data sizes: 64 training batches and 32 test batches of 64 samples.
TUTORIAL_N_TRAIN = 4096
TUTORIAL_N_TEST = 2048
#: Epochs when an experiment does not say (the tutorial's).
TUTORIAL_EPOCHS = 10



class ExperimentError(ValueError):
    """An experiment is invalid: the message names the file, the section and the key."""


# ---------------------------------------------------------------------------- the schema
# Which keys each section has and their defaults, read from the API's own signatures.


def _defaults(func, skip=()) -> dict:
    """name -> default of ``func``'s parameters that have one (in signature order)."""
    out = {}
    for p in inspect.signature(func).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in skip:
            continue
        if p.default is not p.empty:
            out[p.name] = p.default
    return out


def model_classes() -> dict:
    from .eprop import EPropNetwork
    from .network import MembraneOnly, SNN
    return {"SNN": SNN, "MembraneOnly": MembraneOnly, "EPropNetwork": EPropNetwork}


def subtables() -> dict:
    """Model keys whose value is a table of a dataclass's fields."""
    from .variants import Dale, RateRegularizer
    return {"dale": Dale, "rate_regularizer": RateRegularizer}


#: Constructor arguments an experiment sets itself (sizes and time step from the data, the
#: seed from ``seed``, threads at run time) or that are arrays.
_MODEL_SKIP = ("stimulus", "n_in", "n_out", "dt", "seed", "threads", "mask_in", "mask_rec",
               "mask_out")


def _model_schema(name: str, source: str) -> dict:
    cls = model_classes()[name]
    keys = {"class": name}
    keys.update(_defaults(cls.for_stimulus, _MODEL_SKIP))
    for key, value in _defaults(cls.__init__, _MODEL_SKIP).items():
        keys.setdefault(key, value)
    if source == "nmnist":
        keys["dt"] = NMNIST_DT
    return keys


def _stimulus_schema() -> dict:
    from .stimulus import Stimulus
    return {f.name: f.default for f in dataclasses.fields(Stimulus)}


def _nmnist_schema() -> dict:
    from .datasets import nmnist
    return {"root": None, **_defaults(nmnist.load, ("root", "split"))}


def _training_schema(source: str) -> dict:
    from .training import train
    keys = {"n_train": TUTORIAL_N_TRAIN, "n_validation": 0} if source == "stimulus" else {}
    keys["epochs"] = TUTORIAL_EPOCHS
    keys.update(_defaults(train, ("labels", "stimulus", "validation", "seed", "progress",
                                  "callback", "regenerate")))
    return keys


def _evaluation_schema(source: str) -> dict:
    from .evaluation import evaluate
    keys = {"n_test": TUTORIAL_N_TEST} if source == "stimulus" else {}
    keys.update(_defaults(evaluate, ("stimulus", "labels")))
    return keys


def _sweep_schema() -> dict:
    from .sweep import sweep
    keys = {"grid": {}}
    keys.update(_defaults(sweep, ("executor", "progress", "results", "seed")))
    keys["scheduler"] = None
    return keys


_TOP = {"name": "", "description": "", "seed": 0}
_SECTIONS = ("stimulus", "nmnist", "model", "training", "evaluation", "sweep")


# ---------------------------------------------------------------------------- resolution


def _suggest(key: str, valid) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (valid keys: {', '.join(sorted(valid))})"


def where(origin: str, section: str) -> str:
    return f"{origin}: [{section}]" if section else f"{origin}:"


def _section(raw, schema: dict, section: str, origin: str) -> dict:
    """``schema`` with the values of ``raw`` (a dict); unknown keys fail."""
    if not isinstance(raw, dict):
        raise ExperimentError(f"{where(origin, section)} must be a table of keys, got "
                              f"{type(raw).__name__} {raw!r}")
    for key in raw:
        if key not in schema:
            raise ExperimentError(f"{where(origin, section)} unknown key {key!r}"
                                  f"{_suggest(key, schema)}")
    out = dict(schema)
    out.update(raw)
    return out


def _flatten(grid, prefix: str = "") -> dict:
    """A sweep grid as {"section.key": values}: nested tables (dotted TOML keys) flattened."""
    out = {}
    for key, value in grid.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and name.count(".") < 2:
            out.update(_flatten(value, name))
        else:
            out[name] = value
    return out


def resolve(raw: dict, origin: str) -> dict:
    """The full configuration: every section with every key, defaults filled in."""
    if not isinstance(raw, dict):
        raise ExperimentError(f"{origin}: an experiment is a table, got {type(raw).__name__}")
    valid = set(_TOP) | set(_SECTIONS)
    for key in raw:
        if key not in valid:
            raise ExperimentError(f"{origin}: unknown top-level key or section {key!r}"
                                  f"{_suggest(key, valid)}")
    if "stimulus" in raw and "nmnist" in raw:
        raise ExperimentError(f"{origin}: give either [stimulus] (the IPD task) or [nmnist] "
                              f"(N-MNIST event files), not both")
    source = "nmnist" if "nmnist" in raw else "stimulus"
    cfg = {key: raw.get(key, default) for key, default in _TOP.items()}
    cfg[source] = _section(raw.get(source, {}), _stimulus_schema() if source == "stimulus"
                           else _nmnist_schema(), source, origin)

    model_raw = raw.get("model", {})
    if not isinstance(model_raw, dict):
        raise ExperimentError(f"{origin}: [model] must be a table, got {model_raw!r}")
    name = model_raw.get("class", "SNN")
    classes = model_classes()
    if name not in classes:
        raise ExperimentError(f"{origin}: [model] class must be one of {sorted(classes)}, got "
                              f"{name!r}" + (_suggest(name, classes).split(" (")[0]
                                             if isinstance(name, str) else ""))
    model = _section(model_raw, _model_schema(name, source), "model", origin)
    for key, kind in subtables().items():
        if isinstance(model.get(key), dict):
            schema = {f.name: f.default for f in dataclasses.fields(kind)}
            model[key] = _section(model[key], schema, f"model.{key}", origin)
            model[key] = {k: list(v) if isinstance(v, tuple) else v
                          for k, v in model[key].items()}
    cfg["model"] = model
    cfg["training"] = _section(raw.get("training", {}), _training_schema(source), "training",
                               origin)
    cfg["evaluation"] = _section(raw.get("evaluation", {}), _evaluation_schema(source),
                                 "evaluation", origin)
    if "sweep" in raw:
        sweep = _section(raw["sweep"], _sweep_schema(), "sweep", origin)
        grid = sweep["grid"]
        if isinstance(grid, dict):
            grid = _flatten(grid)
            for name_ in grid:
                _check_grid_key(name_, cfg, origin)
        elif isinstance(grid, list):
            grid = [_flatten(c) if isinstance(c, dict) else c for c in grid]
            for combo in grid:
                for name_ in (combo if isinstance(combo, dict) else {}):
                    _check_grid_key(name_, cfg, origin)
        sweep["grid"] = grid
        cfg["sweep"] = sweep
    return cfg


def _check_grid_key(name: str, cfg: dict, origin: str) -> None:
    parts = name.split(".")
    section = parts[0]
    if section not in cfg or section == "sweep" or not isinstance(cfg[section], dict):
        valid = [s for s in cfg if isinstance(cfg[s], dict) and s != "sweep"]
        raise ExperimentError(f"{origin}: [sweep] grid key {name!r} must be 'section.key' with "
                              f"a section among {valid}")
    table = cfg[section]
    if len(parts) == 3 and parts[1] in subtables():
        table = {f.name: None for f in dataclasses.fields(subtables()[parts[1]])}
        section = f"{section}.{parts[1]}"
    elif len(parts) != 2:
        raise ExperimentError(f"{origin}: [sweep] grid key {name!r} must be 'section.key'")
    if parts[-1] not in table:
        raise ExperimentError(f"{origin}: [sweep] grid key {name!r}: [{section}] has no key "
                              f"{parts[-1]!r}{_suggest(parts[-1], table)}")


def parse_override(text: str):
    """``"section.key=value"`` -> (["section", "key"], value). The value is read as a TOML
    value (``5``, ``0.5``, ``true``, ``[1, 2]``, ``"text"``); anything that is not one is taken
    as a string, so ``model.readout=sum`` needs no quotes."""
    if not isinstance(text, str) or "=" not in text:
        raise ExperimentError(f"--set expects section.key=value, got {text!r}")
    path, value = text.split("=", 1)
    path = path.strip()
    parts = path.split(".")
    if len(parts) < 2 or not all(parts):
        raise ExperimentError(f"--set expects section.key=value, got {text!r} (the key "
                              f"{path!r} has no section)")
    try:
        parsed = _toml.loads(f"v = {value.strip()}")["v"]
    except _toml.TOMLDecodeError:
        parsed = value.strip()
    return parts, parsed


def set_key(config: dict, parts, value) -> None:
    table = config
    for part in parts[:-1]:
        if not isinstance(table.get(part), dict):
            table[part] = {}
        table = table[part]
    table[parts[-1]] = value
