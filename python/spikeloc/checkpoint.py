"""Checkpoints: a model's weights and configuration in one ``.npz`` file, written atomically
and read without trusting the file.

Every model class (:class:`~spikeloc.SNN`, :class:`~spikeloc.MembraneOnly`,
:class:`~spikeloc.EPropNetwork`) saves to and loads from this one format: ``model.save(path)``
and :func:`save` write it, :func:`load` reads any of them back, ``SNN.load(path)`` (and the
other classes' ``load``) one class. The format, the atomic write and the checks made while
reading are described in :mod:`spikeloc.checkpoint_io`, the layer below the models that does
the work.

A save that is interrupted (an exception, a kill, a power cut after the rename is durable)
leaves either the previous file or the new one, never a mix. Loading raises
:class:`CheckpointError` (a ``ValueError``) naming the file for anything wrong with it, and
checks every size before allocating, so that a small hostile file cannot exhaust memory.
"""

from __future__ import annotations

from typing import Any

from .checkpoint_io import (FORMAT_NAME, FORMAT_VERSION, HEADER_KEY, SUPPORTED_VERSIONS,
                            CheckpointError, read_header, read_model, write_model)
from .eprop import EPropNetwork
from .network import MembraneOnly, SNN

__all__ = ["CheckpointError", "save", "load", "load_with_metadata", "read_header",
           "FORMAT_NAME", "FORMAT_VERSION", "SUPPORTED_VERSIONS", "HEADER_KEY", "MODELS"]

#: The model classes a checkpoint may hold, by the name stored in its header.
MODELS = {cls.__name__: cls for cls in (SNN, MembraneOnly, EPropNetwork)}


def save(model, path, *, stimulus=None, extra: Any = None) -> str:
    """Write ``model`` (an :class:`~spikeloc.SNN`, :class:`~spikeloc.MembraneOnly` or
    :class:`~spikeloc.EPropNetwork`) to the checkpoint file ``path``, atomically.

    Parameters
    ----------
    model : SNN, MembraneOnly or EPropNetwork
    path : str or os.PathLike
        Target file, written exactly as given (no extension is added; ``.npz`` is customary).
        An existing file is replaced only once the new one is complete; a target that exists
        and is not a regular file (a directory, a device) is refused.
    stimulus : Stimulus or None
        The stimulus the model was trained on, restored by :func:`load_with_metadata`.
    extra : JSON-serialisable, optional
        Anything else worth keeping (NumPy scalars/arrays and dataclasses are converted),
        e.g. a training-history summary. Stored in the header under ``"extra"``.

    Returns the path written (``str``). Raises ``TypeError`` for a wrong model, stimulus or
    a non-serialisable ``extra``, ``ValueError`` for non-finite weights or a target that is
    not a regular file (nothing is written then), and ``OSError`` from the file system (the
    previous file is left intact).
    """
    if type(model).__name__ not in MODELS or not isinstance(model, MODELS[type(model).__name__]):
        raise TypeError(f"model must be a spikeloc {', '.join(MODELS)}, got "
                        f"{type(model).__name__}")
    return write_model(model, path, stimulus=stimulus, extra=extra)


def load_with_metadata(path, *, threads=None):
    """Read a checkpoint: returns ``(model, header, stimulus)``.

    model : SNN, MembraneOnly or EPropNetwork with the saved configuration and weights
    header : dict, the JSON header (``header["extra"]`` holds what was passed as ``extra``)
    stimulus : Stimulus or None, the stimulus saved with the model
    threads : worker threads of the returned model (None: the default)

    Raises ``FileNotFoundError`` if ``path`` does not exist and :class:`CheckpointError`
    (a ``ValueError``) naming the file for anything wrong with its contents.
    """
    return read_model(path, MODELS, threads=threads)


def load(path, *, threads=None):
    """Read a checkpoint and return the model (see :func:`load_with_metadata`)."""
    return load_with_metadata(path, threads=threads)[0]
