"""What makes porting a seed notebook a change of imports (used by :mod:`spikeloc.tutorial`).

Two things a notebook relies on that a module does not give by itself:

* **Parameters set the notebook's way.** A seed notebook defines ``num_hidden = 100`` in its
  own namespace and its functions read that global when called; after
  ``from spikeloc.tutorial import *`` the notebook's ``num_hidden = 30`` would only rebind
  the notebook's copy. :class:`Parameters` therefore reads a parameter from the namespace of
  the code that called a tutorial function, when that namespace imported the tutorial's
  functions, and from the module otherwise; seeds 000/001 spell some of them in capitals
  (``NUM_HIDDEN``, ``DT``, ...), which count too. If the notebook and the module were both
  changed and disagree, the call fails (never a silent choice).
* **Torch methods and torch indexing.** :class:`TensorArray` is a NumPy array that also
  answers ``.detach()``, ``.cpu()`` and ``.numpy()``, and indexes like torch where torch and
  NumPy differ: an integer index mixed with a list index, as in the seed's one-fibre raster
  ``spikes[i, :, [0]].T``, selects the integer first (shape ``(T, 1)`` before ``.T``, where
  NumPy would give ``(1, T)``).
"""

from __future__ import annotations

import numbers
import sys

import numpy as np

__all__ = ["Parameters", "TensorArray", "as_tensor"]


class Parameters:
    """Parameter lookup for the functions of ``module`` (see the module docstring).

    ``aliases`` maps a parameter to other names the notebooks use for it (capitals).
    ``defaults`` are the values at import, to tell a changed parameter from a copy.
    """

    def __init__(self, module_name: str, names, aliases: dict):
        self.module = sys.modules[module_name]
        self.names = tuple(names)
        self.aliases = aliases
        self.defaults = {name: getattr(self.module, name) for name in self.names}

    def _caller_globals(self):
        """The globals of the first frame outside the module, if that code imported the
        module's functions by name (``from spikeloc.tutorial import *`` or ``import snn``)."""
        frame = sys._getframe(2)
        while frame is not None and frame.f_globals.get("__name__") == self.module.__name__:
            frame = frame.f_back
        if frame is None:
            return None
        g = frame.f_globals
        public = getattr(self.module, "__all__", ())
        if any(callable(getattr(self.module, n, None)) and g.get(n) is getattr(self.module, n)
               for n in public):
            return g
        return None

    def __call__(self, name: str):
        module_value = getattr(self.module, name)
        g = self._caller_globals()
        if g is None:
            return module_value
        default = self.defaults[name]
        found = [(n, g[n]) for n in (name, *self.aliases.get(name, ())) if n in g]
        changed = [(n, v) for n, v in found if not _same(v, default)]
        if not changed:
            return module_value
        if len({repr(v) for _, v in changed}) > 1:
            raise ValueError(f"tutorial parameter {name}: the notebook sets "
                             + " and ".join(f"{n} = {v!r}" for n, v in changed)
                             + "; set one of them")
        value = changed[0][1]
        if not _same(module_value, default) and not _same(module_value, value):
            raise ValueError(
                f"tutorial parameter {name}: the notebook sets {changed[0][0]} = {value!r} but "
                f"spikeloc.tutorial.{name} = {module_value!r}; set it in one place")
        return value


def _same(a, b) -> bool:
    """Equal parameter values (numbers by value, ``2 == 2.0``; anything else also by type)."""
    if isinstance(a, numbers.Real) and isinstance(b, numbers.Real):
        return a == b
    return type(a) is type(b) and a == b


def _is_int(key) -> bool:
    return isinstance(key, (numbers.Integral, np.integer)) and not isinstance(key, bool)


def _is_advanced(key) -> bool:
    return isinstance(key, (list, np.ndarray)) and not _is_int(key)


class TensorArray(np.ndarray):
    """A NumPy array with the torch methods a ported notebook calls, and torch's indexing
    where an integer and a list index are mixed (see the module docstring)."""

    def detach(self):
        """The array itself (there is no autograd graph to detach from)."""
        return self

    def cpu(self):
        """The array itself (it is in main memory)."""
        return self

    def numpy(self):
        """A plain ``numpy.ndarray`` view."""
        return self.view(np.ndarray)

    def __getitem__(self, key):
        if (isinstance(key, tuple) and any(_is_int(k) for k in key)
                and any(_is_advanced(k) for k in key)
                and not any(k is Ellipsis or k is None for k in key)):
            selected = super().__getitem__(tuple(k if _is_int(k) else slice(None) for k in key))
            return selected[tuple(k for k in key if not _is_int(k))]
        return super().__getitem__(key)


def as_tensor(array) -> TensorArray:
    """``array`` as a :class:`TensorArray` view (no copy)."""
    return np.asarray(array).view(TensorArray)
