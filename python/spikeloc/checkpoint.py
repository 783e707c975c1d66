"""Checkpoints: a model's weights and configuration in one ``.npz`` file, written atomically.

Format (``spikeloc-checkpoint``, version 1): an uncompressed NumPy ``.npz`` archive (a zip of
``.npy`` files, written by :func:`numpy.savez`, readable with ``allow_pickle=False``) holding

* the weight arrays under their parameter names (``w1``, ``w2`` for :class:`~spikeloc.SNN`,
  ``w`` for :class:`~spikeloc.MembraneOnly`), float32, C order (an SNN with learned time
  constants also holds ``tau_hidden`` / ``tau_output``, in units of its time step dt);
* ``__spikeloc_header__``: a uint8 array, the UTF-8 bytes of a JSON object::

      {"format": "spikeloc-checkpoint", "format_version": 1, "spikeloc_version": "0.1.0",
       "model": "SNN", "config": {"n_in": 200, "n_hidden": 100, ...},
       "params": {"w1": {"shape": [200, 100], "dtype": "float32"}, ...},
       "stimulus": {...} or null, "extra": ... or null}

  ``config`` holds the model's constructor arguments (``model.config`` without ``"model"``),
  ``stimulus`` the fields of a :class:`~spikeloc.Stimulus` (``dataclasses.asdict``) and
  ``extra`` any JSON-serialisable value (a training-history summary, say).

Writing is atomic: the archive goes to a temporary file in the target's directory, is flushed
and fsync'ed, then renamed onto the target with :func:`os.replace` (and the directory is
fsync'ed where the platform allows). A save that is interrupted (an exception, a kill, a power
cut after the rename is durable) leaves either the previous file or the new one, never a mix;
an exception also removes the temporary file.

Loading checks everything it reads and raises :class:`CheckpointError` (a ``ValueError``)
naming the file when it is truncated, not a zip archive, not a spikeloc checkpoint, of an
unsupported format version, or inconsistent (shapes, dtypes, configuration).
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import zipfile
import zlib
from typing import Any, Tuple

import numpy as np

__all__ = ["CheckpointError", "save", "load", "load_with_metadata", "read_header",
           "FORMAT_NAME", "FORMAT_VERSION", "HEADER_KEY"]

#: The ``format`` field of every checkpoint header.
FORMAT_NAME = "spikeloc-checkpoint"
#: The format version this module writes (and the newest it reads).
FORMAT_VERSION = 1
#: Versions :func:`load` reads.
SUPPORTED_VERSIONS = (1,)
#: Reserved archive key of the JSON header.
HEADER_KEY = "__spikeloc_header__"


class CheckpointError(ValueError):
    """A file is not a readable spikeloc checkpoint (truncated, foreign, newer format, or
    inconsistent). The message names the file."""


def _model_classes() -> dict:
    from .network import MembraneOnly, SNN
    return {"SNN": SNN, "MembraneOnly": MembraneOnly}


def _json_default(obj):
    """JSON encoding of NumPy values and dataclasses inside ``extra``."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def _header(model, stimulus, extra) -> dict:
    classes = _model_classes()
    name = type(model).__name__
    if name not in classes or not isinstance(model, classes[name]):
        raise TypeError(
            f"model must be a spikeloc SNN or MembraneOnly, got {type(model).__name__}")
    from . import __version__
    config = dict(model.config)
    config.pop("model", None)
    params = {}
    for pname, arr in model.parameters().items():
        if not np.isfinite(arr).all():
            raise ValueError(
                f"cannot save the model: weight {pname!r} contains NaN or infinite values")
        params[pname] = {"shape": list(arr.shape), "dtype": "float32"}
    stim = None
    if stimulus is not None:
        from .stimulus import Stimulus
        if not isinstance(stimulus, Stimulus):
            raise TypeError(
                f"stimulus must be a spikeloc.Stimulus or None, got {type(stimulus).__name__}")
        stim = dataclasses.asdict(stimulus)
    return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
            "spikeloc_version": __version__, "model": name, "config": config,
            "params": params, "stimulus": stim, "extra": extra}


def _encode_header(header: dict) -> np.ndarray:
    try:
        text = json.dumps(header, default=_json_default, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise TypeError(f"extra must be JSON-serialisable: {e}") from None
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()


def _fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable (POSIX); a no-op where directories cannot be
    opened (Windows)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _open_temporary(directory: str, base: str):
    """A new file ``.<base>.<random>.tmp`` in ``directory``, opened exclusively for writing
    (mode 0o666 minus the umask, like an ordinary new file)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        return tmp, fd
    raise FileExistsError(f"could not create a temporary file in {directory!r}")


def save(model, path, *, stimulus=None, extra: Any = None) -> str:
    """Write ``model`` (an :class:`~spikeloc.SNN` or :class:`~spikeloc.MembraneOnly`) to the
    checkpoint file ``path``, atomically.

    Parameters
    ----------
    model : SNN or MembraneOnly
    path : str or os.PathLike
        Target file, written exactly as given (no extension is added; ``.npz`` is customary).
        An existing file is replaced only once the new one is complete.
    stimulus : Stimulus or None
        The stimulus the model was trained on, restored by :func:`load_with_metadata`.
    extra : JSON-serialisable, optional
        Anything else worth keeping (NumPy scalars/arrays and dataclasses are converted),
        e.g. a training-history summary. Stored in the header under ``"extra"``.

    Returns the path written (``str``). Raises ``TypeError`` for a wrong model, stimulus or
    a non-serialisable ``extra``, ``ValueError`` for non-finite weights (nothing is written
    then), and ``OSError`` from the file system (the previous file is left intact).
    """
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    header = _encode_header(_header(model, stimulus, extra))
    arrays = {name: np.ascontiguousarray(arr, dtype=np.float32)
              for name, arr in model.parameters().items()}
    arrays[HEADER_KEY] = header
    directory = os.path.dirname(os.path.abspath(path))
    tmp, fd = _open_temporary(directory, os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)
    return path


def _fail(path: str, why: str) -> CheckpointError:
    return CheckpointError(f"{path}: {why}")


def _read(path: str) -> Tuple[dict, dict]:
    """(header dict, arrays dict) of a checkpoint file, with the archive-level checks."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    if os.path.isdir(path):
        raise _fail(path, "is a directory, not a spikeloc checkpoint file")
    broken = "file is truncated or not a spikeloc checkpoint"
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic != b"PK\x03\x04":
            raise _fail(path, f"{broken} (not a zip/npz archive)")
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            if HEADER_KEY not in keys:
                raise _fail(path, "is an npz archive without a spikeloc header "
                                  f"({HEADER_KEY!r}); not a spikeloc checkpoint")
            arrays = {key: npz[key] for key in keys}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, KeyError,
            NotImplementedError, zlib.error) as e:
        # NotImplementedError, zlib.error: a damaged compression method or deflate stream
        raise _fail(path, f"{broken} ({type(e).__name__}: {e})") from e
    raw = arrays.pop(HEADER_KEY)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _fail(path, f"header {HEADER_KEY!r} must be a 1-d uint8 array, got "
                          f"{raw.dtype} with shape {raw.shape}")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise _fail(path, f"header is not valid UTF-8 JSON ({e})") from e
    if not isinstance(header, dict):
        raise _fail(path, "header is not a JSON object")
    return header, arrays


def _check_header(path: str, header: dict) -> None:
    if header.get("format") != FORMAT_NAME:
        raise _fail(path, f"header format is {header.get('format')!r}, expected "
                          f"{FORMAT_NAME!r}; not a spikeloc checkpoint")
    version = header.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise _fail(path, f"format_version must be an integer, got {version!r}")
    if version not in SUPPORTED_VERSIONS:
        newer = " (written by a newer spikeloc?)" if version > FORMAT_VERSION else ""
        raise _fail(path, f"unsupported checkpoint format version {version}{newer}; this "
                          f"spikeloc reads versions {list(SUPPORTED_VERSIONS)}")
    for key, kind in (("model", str), ("config", dict), ("params", dict)):
        if not isinstance(header.get(key), kind):
            raise _fail(path, f"header field {key!r} is missing or not a {kind.__name__}")


def read_header(path) -> dict:
    """The JSON header of a checkpoint (validated: format name and version)."""
    path = os.fspath(path)
    header, _ = _read(path)
    _check_header(path, header)
    return header


def load_with_metadata(path, *, threads=None):
    """Read a checkpoint: returns ``(model, header, stimulus)``.

    model : SNN or MembraneOnly with the saved configuration and weights
    header : dict, the JSON header (``header["extra"]`` holds what was passed as ``extra``)
    stimulus : Stimulus or None, the stimulus saved with the model
    threads : worker threads of the returned model (None: the default)

    Raises ``FileNotFoundError`` if ``path`` does not exist and :class:`CheckpointError`
    (a ``ValueError``) naming the file for anything wrong with its contents.
    """
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    header, arrays = _read(path)
    _check_header(path, header)
    classes = _model_classes()
    name = header["model"]
    if name not in classes:
        raise _fail(path, f"unknown model class {name!r} (expected one of {sorted(classes)})")
    cls = classes[name]
    config = dict(header["config"])
    config.pop("model", None)
    try:
        model = cls(**config, threads=threads)
    except (TypeError, ValueError) as e:
        raise _fail(path, f"invalid {name} configuration {config}: {e}") from e
    expected = model.parameters()
    if set(arrays) != set(expected):
        raise _fail(path, f"{name} checkpoint must hold the weights {sorted(expected)}, "
                          f"found {sorted(arrays)}")
    declared = header["params"]
    for pname, target in expected.items():
        arr = arrays[pname]
        if arr.dtype != np.float32:
            raise _fail(path, f"weight {pname!r} must be float32, got {arr.dtype}")
        if arr.shape != target.shape:
            raise _fail(path, f"weight {pname!r} has shape {arr.shape} but the configuration "
                              f"{config} needs {target.shape}")
        info = declared.get(pname)
        if not isinstance(info, dict) or tuple(info.get("shape", ())) != arr.shape:
            raise _fail(path, f"header entry for weight {pname!r} ({info!r}) does not match "
                              f"the stored array of shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise _fail(path, f"weight {pname!r} contains NaN or infinite values")
        np.copyto(target, arr)
    stimulus = None
    if header.get("stimulus") is not None:
        from .stimulus import Stimulus
        fields = header["stimulus"]
        if not isinstance(fields, dict):
            raise _fail(path, "header field 'stimulus' must be an object or null")
        try:
            stimulus = Stimulus(**fields)
        except (TypeError, ValueError) as e:
            raise _fail(path, f"invalid stimulus configuration {fields}: {e}") from e
    return model, header, stimulus


def load(path, *, threads=None):
    """Read a checkpoint and return the model (see :func:`load_with_metadata`)."""
    return load_with_metadata(path, threads=threads)[0]
