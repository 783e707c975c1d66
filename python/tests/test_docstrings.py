"""Every public name has a docstring, and the main classes and functions state the units of
their physical parameters.

Public names: ``spikeloc.__all__`` and the ``__all__`` of the public submodules. A class or
function needs a docstring of its own (not one inherited from ``object`` or a builtin); a
constant (a number, a dict, a tuple) needs a ``#:`` comment on the line before its assignment
or a mention (``name``) in its module's docstring, which is where Sphinx and readers find it.
"""

import importlib
import inspect
import re
from pathlib import Path

import pytest

import spikeloc as sl

PUBLIC_MODULES = ["spikeloc", "spikeloc.stimulus", "spikeloc.events", "spikeloc.network",
                  "spikeloc.variants", "spikeloc.general", "spikeloc.optim", "spikeloc.training",
                  "spikeloc.evaluation", "spikeloc.analysis", "spikeloc.silencing",
                  "spikeloc.checkpoint", "spikeloc.checkpoint_io",
                  "spikeloc.sweep", "spikeloc.eprop", "spikeloc.plots", "spikeloc.tutorial",
                  "spikeloc.datasets", "spikeloc.datasets.nmnist", "spikeloc.reference",
                  "spikeloc.experiment", "spikeloc.runs"]
OPTIONAL = {"spikeloc.plots": "matplotlib", "spikeloc.nir": "nir"}


def _public_names():
    for modname in PUBLIC_MODULES + ["spikeloc.nir"]:
        if modname in OPTIONAL:
            pytest.importorskip(OPTIONAL[modname])
        module = importlib.import_module(modname)
        for name in module.__all__:
            yield modname, name


def _own_doc(obj):
    doc = inspect.getdoc(obj)
    if doc is None:
        return None
    if inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj):
        return doc if obj.__doc__ else None
    return None  # a value: its docstring would be its type's


PACKAGE = Path(sl.__file__).resolve().parent


def _constant_documented(module, name) -> bool:
    """A ``#:`` comment before an assignment of ``name`` in the package (the module itself
    or the one it re-exports from), or ``name`` in the module's docstring."""
    if f"``{name}``" in (module.__doc__ or ""):
        return True
    pattern = re.compile(rf"^#:.*\n(?:#:.*\n)*{re.escape(name)}\s*[:=]", re.M)
    return any(pattern.search(path.read_text()) for path in PACKAGE.rglob("*.py"))


def test_every_public_name_has_a_docstring():
    missing = []
    for modname, name in _public_names():
        module = importlib.import_module(modname)
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj):
            if not _own_doc(obj):
                missing.append(f"{modname}.{name}")
        elif not _constant_documented(module, name):
            missing.append(f"{modname}.{name} (constant)")
    assert not missing, "public names without documentation: " + ", ".join(missing)


def test_public_methods_of_public_classes_have_docstrings():
    missing = []
    for modname, name in _public_names():
        obj = getattr(importlib.import_module(modname), name)
        if not inspect.isclass(obj) or obj.__module__.split(".")[0] != "spikeloc":
            continue
        for attr, value in vars(obj).items():
            if attr.startswith("_"):
                continue
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if (inspect.isfunction(value) or isinstance(value, property)) and not value.__doc__:
                missing.append(f"{modname}.{name}.{attr}")
    assert not missing, "public methods without a docstring: " + ", ".join(sorted(set(missing)))


SECONDS = r"\[s\]|seconds|\bs\)"
#: object -> the units its docstring (class docstring and __init__) must state
UNITS = {
    "Stimulus": (SECONDS, r"\bHz\b", r"rad"),
    "Stimulus.generate": (r"rad",),
    "SNN": (SECONDS,),
    "MembraneOnly": (SECONDS,),
    "EPropNetwork": (SECONDS,),
    "RateRegularizer": (r"\bHz\b",),
    "evaluate": (r"deg",),
    "Evaluation": (r"deg",),
    "tuning_curves": (r"\bHz\b",),
    "train": (r"epoch",),
    "nir.export": (SECONDS,),
    "nir.load": (SECONDS,),
    "datasets.nmnist.load": (r"steps", r"micro|µs|us\b"),
}


@pytest.mark.parametrize("qualname", sorted(UNITS))
def test_main_docstrings_state_units(qualname):
    if qualname.startswith("nir."):
        pytest.importorskip("nir")
    obj = sl
    for part in qualname.split("."):
        obj = getattr(obj, part)
    text = inspect.getdoc(obj) or ""
    if inspect.isclass(obj):
        text += "\n" + (inspect.getdoc(obj.__init__) or "") if obj.__init__.__doc__ else ""
        text += "\n" + (inspect.getmodule(obj).__doc__ or "")
    for pattern in UNITS[qualname]:
        assert re.search(pattern, text), f"{qualname}: no unit matching {pattern!r} in its docstring"
