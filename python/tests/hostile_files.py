"""Builders of hostile checkpoint files (for test_checkpoint_hostile.py and the fuzzing in
fuzz_robustness.py): headers announcing absurd sizes, members of absurd decompressed size,
damaged zip directories and .npy headers, JSON nested too deeply.

Every builder takes the bytes of a genuine checkpoint (``model.save(path)``) and returns the
bytes of a damaged one; the zip archives are assembled here byte by byte, so that they can
say anything (sizes, offsets, counts) a parser might believe.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
import zipfile

import numpy as np

HEADER_KEY = "__spikeloc_header__"

_LOCAL = struct.Struct("<4s5H3I2H")        # local file header, 30 bytes
_CENTRAL = struct.Struct("<4s6H3I5H2I")    # central directory entry, 46 bytes
_END = struct.Struct("<4s4H2IH")           # end of central directory, 22 bytes


class Member:
    """One zip member: ``payload`` as stored in the archive (raw deflate data for method 8),
    with the CRC and uncompressed size the directory declares (defaults: those of the
    payload)."""

    def __init__(self, name, payload, method=0, crc=None, size=None):
        self.name, self.payload, self.method = name, payload, method
        self.crc = zlib.crc32(payload) if crc is None else crc
        self.size = len(payload) if size is None else size


def members_of(data: bytes) -> list:
    """The members of a genuine (uncompressed) archive, in order."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [Member(info.filename, z.read(info)) for info in z.infolist()]


def archive(members, *, entries=None, directory_size=None, aliases=()) -> bytes:
    """A zip archive of ``members``. ``entries`` / ``directory_size`` override the counts of
    the end record; ``aliases`` are (name, index) pairs: extra directory entries pointing at
    the data of member ``index`` (no data of their own)."""
    out, central, offsets = bytearray(), bytearray(), []

    def entry(m, name, at):
        return _CENTRAL.pack(b"PK\x01\x02", 20, 20, 0, m.method, 0, 33, m.crc, len(m.payload),
                             m.size, len(name), 0, 0, 0, 0, 0, at) + name

    for m in members:
        offsets.append(len(out))
        name = m.name.encode()
        out += _LOCAL.pack(b"PK\x03\x04", 20, 0, m.method, 0, 33, m.crc, len(m.payload), m.size,
                           len(name), 0) + name + m.payload
        central += entry(m, name, offsets[-1])
    for name, index in aliases:
        central += entry(members[index], name.encode(), offsets[index])
    n = len(members) + len(aliases) if entries is None else entries
    size = len(central) if directory_size is None else directory_size
    return bytes(out + central + _END.pack(b"PK\x05\x06", 0, 0, n & 0xFFFF, n & 0xFFFF, size,
                                           len(out), 0))


def npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
    return buf.getvalue()


def npy_preamble(dtype, shape) -> bytes:
    """The .npy header of an array of ``dtype`` and ``shape`` (no data)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def header_of(data: bytes) -> dict:
    m = next(m for m in members_of(data) if m.name == HEADER_KEY + ".npy")
    return json.loads(np.load(io.BytesIO(m.payload)).tobytes())


def with_header(data: bytes, text: bytes) -> bytes:
    """The checkpoint ``data`` with its JSON header replaced by the bytes ``text``."""
    members = [m if m.name != HEADER_KEY + ".npy"
               else Member(m.name, npy(np.frombuffer(text, np.uint8)))
               for m in members_of(data)]
    return archive(members)


def absurd_sizes(data: bytes, n: int = 15000) -> bytes:
    """A header announcing n inputs and n hidden units (the arrays stay small)."""
    header = header_of(data)
    header["config"].update(n_in=n, n_hidden=n)
    return with_header(data, json.dumps(header).encode())


def deep_json(data: bytes, depth: int = 200_000) -> bytes:
    """A header whose ``extra`` is a list nested ``depth`` deep."""
    text = json.dumps(header_of(data)).encode()
    text = text.replace(b'"extra": null', b'"extra": ' + b"[" * depth + b"]" * depth)
    return with_header(data, text)


def _deflated_npy(dtype, n: int, chunk: int = 16 << 20) -> Member:
    """A deflated .npy member of ``n`` zeros of ``dtype``, built in milliseconds whatever its
    size: after a full flush a compressor starts afresh, so every chunk of zeros compresses
    to the same bytes, and raw deflate streams so flushed may be concatenated."""
    pre = npy_preamble(dtype, (n,))
    size = n * np.dtype(dtype).itemsize
    whole, rest = divmod(size, chunk)
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = z.compress(pre) + z.flush(zlib.Z_FULL_FLUSH)
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = z.compress(bytes(chunk)) + z.flush(zlib.Z_FULL_FLUSH) if whole else b""
    last = z.compress(bytes(rest)) + z.flush(zlib.Z_FINISH)
    crc, zeros = zlib.crc32(pre), bytes(min(size, chunk))
    for _ in range(whole):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(bytes(rest), crc)
    return Member("", head + block * whole + last, method=8, crc=crc, size=len(pre) + size)


def huge_extra_member(data: bytes, size: int = 1600 << 20) -> bytes:
    """The checkpoint with one more member: a deflated .npy of ``size`` zero bytes (the
    reported case: a 1.6 MB file holding a 1.6 GB member)."""
    big = _deflated_npy(np.uint8, size)
    big.name = "big.npy"
    return archive(members_of(data) + [big])


def huge_weight_member(data: bytes, name: str, size: int = 1600 << 20) -> bytes:
    """The checkpoint with member ``name`` replaced by a deflated float32 array of ``size``
    zero bytes."""
    big = _deflated_npy(np.float32, size // 4)
    big.name = name + ".npy"
    return archive([m if m.name != big.name else big for m in members_of(data)])


def flipped_npy_header(data: bytes, name: str = "w1") -> bytes:
    """The member ``name``'s .npy header with its opening brace turned into a quote (NumPy's
    parser then fails inside :mod:`tokenize`)."""
    members = members_of(data)
    for m in members:
        if m.name == name + ".npy":
            at = m.payload.index(b"{")
            m.payload = m.payload[:at] + b"'" + m.payload[at + 1:]
            m.crc = zlib.crc32(m.payload)
    return archive(members)


def many_members(data: bytes, count: int = 20000) -> bytes:
    """The checkpoint plus ``count`` empty members (one object each in a zip reader)."""
    return archive(members_of(data) + [Member(f"m{i}", b"") for i in range(count)])


def overlapping_members(data: bytes, copies: int = 400) -> bytes:
    """``copies`` more directory entries, all pointing at the largest member's data (each
    read would allocate the whole member again)."""
    members = members_of(data)
    big = max(range(len(members)), key=lambda i: len(members[i].payload))
    return archive(members, aliases=[(f"copy{i}.npy", big) for i in range(copies)])


def lying_sizes(data: bytes, size: int = 1 << 31) -> bytes:
    """A stored member whose directory entry claims ``size`` bytes (more than the file)."""
    members = members_of(data)
    members[0].size = size
    return archive(members)


def first_weight(data: bytes) -> str:
    """The name of the first array of a checkpoint other than its header."""
    return next(m.name[:-4] for m in members_of(data) if m.name != HEADER_KEY + ".npy")


#: name -> builder(data) of every hostile kind, for tests and fuzzing.
BUILDERS = {
    "absurd_sizes": absurd_sizes,
    "deep_json": deep_json,
    "huge_extra_member": lambda d: huge_extra_member(d, 160 << 20),
    "huge_weight_member": lambda d: huge_weight_member(d, first_weight(d), 160 << 20),
    "flipped_npy_header": lambda d: flipped_npy_header(d, first_weight(d)),
    "many_members": many_members,
    "overlapping_members": overlapping_members,
    "lying_sizes": lying_sizes,
    "huge_directory_count": lambda d: archive(members_of(d), entries=65535),
    "huge_directory_size": lambda d: archive(members_of(d), directory_size=1 << 30),
}
