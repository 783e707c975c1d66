"""Checkpoint files: the format, atomic writing, and reading that checks every size before
it allocates. :mod:`spikeloc.checkpoint` is the public interface; this module sits below the
models (they save and load themselves through it), so it never imports them: the model
classes a file may hold are handed to :func:`read_model`.

Format (``spikeloc-checkpoint``, version 1): an uncompressed NumPy ``.npz`` archive (a zip of
``.npy`` members, as :func:`numpy.savez` writes it, readable with ``allow_pickle=False``)
holding

* the model's arrays under their names: the weights (``w1``, ``w2`` for
  :class:`~spikeloc.SNN`, ``w`` for :class:`~spikeloc.MembraneOnly`; an SNN with learned time
  constants also holds ``tau_hidden`` / ``tau_output``, in units of its time step dt;
  ``w_in``, ``w_rec``, ``w_out``, ``b`` for :class:`~spikeloc.EPropNetwork`, with its
  connectivity masks ``mask_in``, ``mask_rec``, ``mask_out`` (uint8 0/1) and its fixed
  ``feedback`` weights), float32 unless stated, C order;
* ``__spikeloc_header__``: a uint8 array, the UTF-8 bytes of a JSON object::

      {"format": "spikeloc-checkpoint", "format_version": 1, "spikeloc_version": "0.1.0",
       "model": "SNN", "config": {"n_in": 200, "n_hidden": 100, ...},
       "params": {"w1": {"shape": [200, 100], "dtype": "float32"}, ...},
       "stimulus": {...} or null, "extra": ... or null}

  ``config`` holds the model's constructor arguments (``model.config`` without ``"model"``),
  ``params`` the shapes of its trainable parameters, ``stimulus`` the fields of a
  :class:`~spikeloc.Stimulus` (``dataclasses.asdict``) and ``extra`` any JSON-serialisable
  value (a training-history summary, say).

Writing goes through :func:`spikeloc._files.replace_atomically`: a unique temporary file in
the target's directory, fsync'ed, renamed onto the target, the directory fsync'ed; a failure
removes the temporary file and leaves the previous file; a target that is not a regular file
is refused. Non-finite weights are refused before anything is written.

Reading trusts nothing in the file. Before any array is allocated: the file must be a
regular file; the zip directory may hold at most :data:`MAX_MEMBERS` members, all stored
(uncompressed) and together no larger than the file; the JSON header at most
:func:`max_header_bytes` bytes; the model class and configuration in the header fix the name,
dtype and shape of every array the file must hold, and each member's ``.npy`` header and
size in the zip directory must match them exactly. So a small hostile file cannot make the
reader allocate much: loading needs about twice the file's size plus the model's own
construction. Everything wrong raises :class:`CheckpointError` (a ``ValueError``) naming the
file: truncated, not a zip archive, damaged (a CRC mismatch, a broken ``.npy`` header, JSON
nested too deeply), foreign, of an unsupported format version, or inconsistent.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import json
import os
import struct
import zipfile
from typing import Any, Dict, Tuple

import numpy as np

from ._files import open_regular, replace_atomically

__all__ = ["CheckpointError", "FORMAT_NAME", "FORMAT_VERSION", "SUPPORTED_VERSIONS",
           "HEADER_KEY", "MAX_MEMBERS", "max_header_bytes", "write_model", "read_model",
           "read_header"]

#: The ``format`` field of every checkpoint header.
FORMAT_NAME = "spikeloc-checkpoint"
#: The format version this module writes (and the newest it reads).
FORMAT_VERSION = 1
#: Versions :func:`read_model` reads.
SUPPORTED_VERSIONS = (1,)
#: Reserved archive key of the JSON header.
HEADER_KEY = "__spikeloc_header__"
#: Most members a checkpoint may have (an EPropNetwork has 9).
MAX_MEMBERS = 64
#: Longest ``.npy`` member header read [bytes] (NumPy writes 128 bytes for these arrays).
MAX_NPY_HEADER = 1 << 16
#: Largest zip directory read [bytes]: MAX_MEMBERS entries of 46 bytes with a name and extra
#: fields of up to 466 bytes (spikeloc's names are below 30 bytes).
_MAX_DIRECTORY = MAX_MEMBERS * 512
#: Bytes copied from the archive at a time when reading an array.
_CHUNK = 1 << 20

_DIRECTORY_END = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_END = b"PK\x06\x06"


class CheckpointError(ValueError):
    """A file is not a readable spikeloc checkpoint (truncated, damaged, foreign, newer
    format, or inconsistent). The message names the file."""


def max_header_bytes(file_size: int) -> int:
    """Largest JSON header accepted in a file of ``file_size`` bytes: 1 MiB plus 1/32 of the
    file. Parsed JSON takes up to ~35 times its text in memory (``[[[]],[[]],...]``), so
    this bounds the header's share of the memory a load needs (35 MB + 1.1 times the file);
    a model's configuration (per-neuron time constants included) and a training history
    stay far below it, and :func:`write_model` refuses a header above it, so that every file
    written can be read back."""
    return (1 << 20) + int(file_size) // 32


def _fail(path: str, why: str) -> CheckpointError:
    return CheckpointError(f"{path}: {why}")


_BROKEN = "file is truncated or not a spikeloc checkpoint"


# ---------------------------------------------------------------------------- writing

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


def write_model(model, path, *, stimulus=None, extra: Any = None) -> str:
    """Write ``model`` (a spikeloc model: ``config``, ``parameters()`` and
    ``_checkpoint_arrays()``) to the checkpoint file ``path``, atomically; returns the path.

    Raises ``TypeError`` for a stimulus that is not a :class:`~spikeloc.Stimulus` or a
    non-serialisable ``extra``, ``ValueError`` for non-finite weights or a target that is not
    a regular file (nothing is written then), and ``OSError`` from the file system (the
    previous file is left intact).
    """
    from . import __version__
    from .stimulus import Stimulus

    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    config = dict(model.config)
    name = config.pop("model")
    arrays = {key: np.ascontiguousarray(arr) for key, arr in model._checkpoint_arrays().items()}
    for key, arr in arrays.items():
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ValueError(
                f"cannot save the model: weight {key!r} contains NaN or infinite values")
    stim = None
    if stimulus is not None:
        if not isinstance(stimulus, Stimulus):
            raise TypeError(
                f"stimulus must be a spikeloc.Stimulus or None, got {type(stimulus).__name__}")
        stim = dataclasses.asdict(stimulus)
    header = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
              "spikeloc_version": __version__, "model": name, "config": config,
              "params": {key: {"shape": list(arr.shape), "dtype": str(arr.dtype)}
                         for key, arr in model.parameters().items()},
              "stimulus": stim, "extra": extra}
    try:
        text = json.dumps(header, default=_json_default, sort_keys=True).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise TypeError(f"extra must be JSON-serialisable: {e}") from None
    least_size = len(text) + sum(arr.nbytes for arr in arrays.values())
    if len(text) > max_header_bytes(least_size):
        raise ValueError(f"cannot save the model: the JSON header (configuration, stimulus "
                         f"and extra) has {len(text)} bytes, more than a checkpoint of this "
                         f"size may hold ({max_header_bytes(least_size)}); make extra smaller")
    arrays[HEADER_KEY] = np.frombuffer(text, dtype=np.uint8)
    return replace_atomically(path, lambda f: np.savez(f, **arrays))


# ---------------------------------------------------------------------------- reading

@contextlib.contextmanager
def _damage_is_checkpoint_error(path: str):
    """Turn any failure of the zip and .npy parsers on this file's bytes into a
    CheckpointError naming the file (a MemoryError still propagates: it is not damage)."""
    try:
        yield
    except (CheckpointError, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - zipfile, struct, ast, zlib: all mean damage here
        raise _fail(path, f"{_BROKEN} ({type(e).__name__}: {e})") from e


class _Archive:
    """An open checkpoint file whose zip directory has been checked (member count, stored
    members, sizes within the file)."""

    def __init__(self, path: str):
        self.path = path
        self.file = open_regular(path, CheckpointError, "a spikeloc checkpoint file")
        try:
            with _damage_is_checkpoint_error(path):
                self.size = os.fstat(self.file.fileno()).st_size
                self._check_directory_end()
                self.zip = zipfile.ZipFile(self.file)
            self.members = self._check_members()
        except BaseException:
            self.file.close()
            raise

    def close(self):
        self.zip.close()
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _check_directory_end(self) -> None:
        """Bound the zip directory before :mod:`zipfile` parses it (it builds one object per
        entry). NumPy writes no archive comment, so the end record is the last 22 bytes; a
        zip64 end record before it (files over 4 GB) is checked the same way."""
        f, size = self.file, self.size
        f.seek(0)
        if size < 22 or f.read(4) != b"PK\x03\x04":
            raise _fail(self.path, f"{_BROKEN} (not a zip/npz archive)")
        f.seek(size - 22)
        end = f.read(22)
        if end[:4] != _DIRECTORY_END or end[20:22] != b"\0\0":
            raise _fail(self.path, f"{_BROKEN} (no zip end record at its end)")
        (entries, directory_size) = struct.unpack("<xxxxxxxxxxHI", end[:16])
        counts = [(entries, directory_size)]
        if size >= 22 + 20 + 56:
            f.seek(size - 22 - 20)
            if f.read(4) == _ZIP64_LOCATOR:
                f.seek(size - 22 - 20 - 56)
                record = f.read(56)
                if record[:4] == _ZIP64_END:
                    counts.append(struct.unpack("<QQ", record[32:48]))
        if any(n > MAX_MEMBERS or nbytes > _MAX_DIRECTORY for n, nbytes in counts):
            raise _fail(self.path, f"the zip directory announces {max(n for n, _ in counts)} "
                                   f"entries in {max(b for _, b in counts)} bytes; a spikeloc "
                                   f"checkpoint has at most {MAX_MEMBERS} entries in "
                                   f"{_MAX_DIRECTORY} bytes")

    def _check_members(self) -> Dict[str, zipfile.ZipInfo]:
        infos = self.zip.infolist()
        if len(infos) > MAX_MEMBERS:
            raise _fail(self.path, f"{len(infos)} archive members; a spikeloc checkpoint has "
                                   f"at most {MAX_MEMBERS}")
        members, total = {}, 0
        for info in infos:
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if key in members:
                raise _fail(self.path, f"archive member {info.filename!r} appears twice")
            if info.compress_type != zipfile.ZIP_STORED:
                raise _fail(self.path, f"archive member {info.filename!r} is compressed "
                                       f"(method {info.compress_type}); spikeloc checkpoints "
                                       f"are uncompressed archives (numpy.savez)")
            if (info.file_size != info.compress_size
                    or info.header_offset + info.compress_size > self.size):
                raise _fail(self.path, f"{_BROKEN} (member {info.filename!r} declares "
                                       f"{info.file_size} bytes beyond the file's "
                                       f"{self.size})")
            total += info.file_size
            members[key] = info
        if total > self.size:
            raise _fail(self.path, f"archive members declare {total} bytes in all, more than "
                                   f"the file's {self.size}; the archive is damaged")
        return members

    def _npy_header(self, key: str, f) -> Tuple[str, tuple]:
        """(dtype descr, shape) of the .npy member open as ``f``, from at most
        MAX_NPY_HEADER bytes; the size of the member must be the header plus the data."""
        with _damage_is_checkpoint_error(self.path):
            magic = f.read(8)
            if len(magic) != 8 or magic[:6] != b"\x93NUMPY" or magic[6] not in (1, 2, 3):
                raise _fail(self.path, f"member {key!r} is not a .npy array")
            width = 2 if magic[6] == 1 else 4
            (length,) = struct.unpack("<H" if width == 2 else "<I", f.read(width))
            if length > MAX_NPY_HEADER:
                raise _fail(self.path, f"member {key!r} has a .npy header of {length} bytes "
                                       f"(at most {MAX_NPY_HEADER})")
            text = f.read(length)
            if len(text) != length:
                raise _fail(self.path, f"member {key!r} is truncated")
            d = ast.literal_eval(text.decode("utf-8" if magic[6] == 3 else "latin1"))
            if (not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}
                    or not isinstance(d["descr"], str) or d["fortran_order"] is not False
                    or not isinstance(d["shape"], tuple)
                    or not all(isinstance(n, int) and n >= 0 for n in d["shape"])):
                raise _fail(self.path, f"member {key!r} has an unsupported .npy header {d!r} "
                                       f"(a C-ordered array of plain numbers is expected)")
            nbytes = np.dtype(d["descr"]).itemsize * int(np.prod(d["shape"], dtype=object))
            if 8 + width + length + nbytes != self.members[key].file_size:
                raise _fail(self.path, f"member {key!r} has {self.members[key].file_size} "
                                       f"bytes, but its .npy header announces {nbytes} bytes "
                                       f"of data; the archive is damaged")
        return d["descr"], d["shape"]

    def _read_data(self, key: str, f, dtype, shape) -> np.ndarray:
        out = np.empty(shape, dtype=dtype)
        view = memoryview(out).cast("B")
        with _damage_is_checkpoint_error(self.path):
            pos = 0
            while pos < len(view):
                chunk = f.read(min(_CHUNK, len(view) - pos))
                if not chunk:
                    raise _fail(self.path, f"member {key!r} is truncated")
                view[pos:pos + len(chunk)] = chunk
                pos += len(chunk)
            f.read(1)  # reaching the member's end checks its CRC
        return out

    def header(self) -> dict:
        """The JSON header (a dict; format and version checked)."""
        if HEADER_KEY not in self.members:
            old = " (an EPropNetwork file of a pre-release spikeloc?)" \
                if "header" in self.members else ""
            raise _fail(self.path, f"is an npz archive without a spikeloc header "
                                   f"({HEADER_KEY!r}); not a spikeloc checkpoint{old}")
        limit = max_header_bytes(self.size)
        with _damage_is_checkpoint_error(self.path):
            with self.zip.open(self.members[HEADER_KEY]) as f:
                descr, shape = self._npy_header(HEADER_KEY, f)
                if np.dtype(descr) != np.uint8 or len(shape) != 1:
                    raise _fail(self.path, f"header {HEADER_KEY!r} must be a 1-d uint8 array, "
                                           f"got {np.dtype(descr)} with shape {shape}")
                if shape[0] > limit:
                    raise _fail(self.path, f"header has {shape[0]} bytes, more than a file "
                                           f"of {self.size} bytes may hold ({limit})")
                raw = self._read_data(HEADER_KEY, f, np.uint8, shape)
        try:
            header = json.loads(raw.tobytes().decode("utf-8"))
        except RecursionError:
            raise _fail(self.path, "header is not valid JSON (nested too deeply)") from None
        except ValueError as e:  # UnicodeDecodeError and JSONDecodeError
            raise _fail(self.path, f"header is not valid UTF-8 JSON ({e})") from None
        if not isinstance(header, dict):
            raise _fail(self.path, "header is not a JSON object")
        _check_header(self.path, header)
        return header

    def arrays(self, layout: Dict[str, Tuple[tuple, np.dtype]]) -> Dict[str, np.ndarray]:
        """The arrays named in ``layout`` (name -> (shape, dtype)), after checking that the
        archive holds exactly these members with exactly these shapes and dtypes."""
        present = sorted(set(self.members) - {HEADER_KEY})
        if present != sorted(layout):
            raise _fail(self.path, f"must hold the arrays {sorted(layout)}, found {present}")
        with contextlib.ExitStack() as stack:
            opened = {}
            for key in sorted(layout):
                shape, dtype = layout[key]
                with _damage_is_checkpoint_error(self.path):
                    f = stack.enter_context(self.zip.open(self.members[key]))
                descr, found = self._npy_header(key, f)
                if np.dtype(descr) != np.dtype(dtype):
                    raise _fail(self.path, f"weight {key!r} must be {np.dtype(dtype)}, got "
                                           f"{np.dtype(descr)}")
                if found != tuple(shape):
                    raise _fail(self.path, f"weight {key!r} has shape {found} but the "
                                           f"configuration needs {tuple(shape)}")
                opened[key] = f
            # every size is now known to match: only now allocate and read
            return {key: self._read_data(key, f, np.dtype(layout[key][1]), layout[key][0])
                    for key, f in opened.items()}


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


def _as_path(path) -> str:
    path = os.fspath(path)
    return os.fsdecode(path) if isinstance(path, bytes) else path


def read_header(path) -> dict:
    """The JSON header of a checkpoint (format name and version checked); the arrays are not
    read."""
    path = _as_path(path)
    with _Archive(path) as archive:
        return archive.header()


def read_model(path, classes: dict, *, threads=None):
    """Read a checkpoint holding one of ``classes`` (class name -> model class): returns
    ``(model, header, stimulus)``.

    Each class provides ``_checkpoint_layout(config)`` (array name -> (shape, dtype), from
    the configuration alone) and ``_from_checkpoint(config, arrays, threads)``. Raises
    ``FileNotFoundError`` for a missing file and :class:`CheckpointError` for anything wrong
    with the file, including a model class not in ``classes``.
    """
    from .stimulus import Stimulus

    path = _as_path(path)
    with _Archive(path) as archive:
        header = archive.header()
        name = header["model"]
        if name not in classes:
            if len(classes) == 1 and isinstance(name, str) and name.isidentifier():
                raise _fail(path, f"holds a {name}, not a {next(iter(classes))}")
            raise _fail(path, f"unknown model class {name!r} (expected one of "
                              f"{sorted(classes)})")
        cls = classes[name]
        config = dict(header["config"])
        config.pop("model", None)
        try:
            layout = cls._checkpoint_layout(config)
        except (TypeError, ValueError) as e:
            raise _fail(path, f"invalid {name} configuration {config}: {e}") from e
        arrays = archive.arrays(layout)
    for key, info in header["params"].items():
        if key not in arrays or not isinstance(info, dict) or not isinstance(
                info.get("shape"), list) or tuple(info["shape"]) != arrays[key].shape:
            raise _fail(path, f"header entry for weight {key!r} ({info!r}) does not match "
                              f"the stored arrays")
    for key, arr in arrays.items():
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise _fail(path, f"weight {key!r} contains NaN or infinite values")
    try:
        model = cls._from_checkpoint(config, arrays, threads)
    except (TypeError, ValueError) as e:
        raise _fail(path, f"invalid {name} configuration {config}: {e}") from e
    stimulus = None
    if header.get("stimulus") is not None:
        fields = header["stimulus"]
        if not isinstance(fields, dict):
            raise _fail(path, "header field 'stimulus' must be an object or null")
        try:
            stimulus = Stimulus(**fields)
        except (TypeError, ValueError) as e:
            raise _fail(path, f"invalid stimulus configuration {fields}: {e}") from e
    return model, header, stimulus
