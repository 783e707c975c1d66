"""Files spikeloc reads and writes: only regular files are read, and writes replace their
target atomically.

Reading a path that names a FIFO blocks until a writer appears, and reading a device such as
``/dev/zero`` never ends; :func:`open_regular` refuses both before reading a byte.
:func:`replace_atomically` writes a complete new file next to the target and renames it over
the target, so that an interrupted write (an exception, a kill, a power cut) leaves either
the previous file or the new one.
"""

from __future__ import annotations

import os
import secrets
import stat
from typing import BinaryIO, Callable

__all__ = ["open_regular", "replace_atomically"]


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str, error: type, what: str) -> BinaryIO:
    """``path`` opened for binary reading, if it is a regular file (symbolic links are
    followed); otherwise ``error(f"{path}: is a directory, not {what}")`` (or a FIFO, a
    device, ...). ``FileNotFoundError`` (naming the path) for a missing one.

    The file is opened without blocking (a FIFO would block in ``open`` until a writer
    appears) and checked with ``fstat`` on the open descriptor, so a path swapped between a
    check and the open cannot slip through.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) \
        | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except IsADirectoryError:  # Windows; POSIX opens directories and fstat tells below
        raise error(f"{path}: is a directory, not {what}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{path}: is {_kind(mode)}, not {what}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _check_replaceable(path: str) -> None:
    """Refuse to replace anything but a regular file (a rename over a device node, as root,
    would replace the device with a file)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path}: is {_kind(mode)}; refusing to replace it with a file")


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
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) \
        | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        return tmp, fd
    raise FileExistsError(f"could not create a temporary file in {directory!r}")


def replace_atomically(path: str, write: Callable[[BinaryIO], None]) -> str:
    """Write a file with ``write(f)`` and put it at ``path`` atomically; returns the path
    written (symbolic links are followed: a link to a file keeps pointing at the new file).

    ``write`` fills a new temporary file in the target's directory (a unique name, so that
    several writers of one path never share it); the file is flushed and fsync'ed, renamed
    onto the target with :func:`os.replace`, and the directory is fsync'ed. An exception
    (from ``write`` or the file system) removes the temporary file and leaves the previous
    target untouched. A target that exists and is not a regular file (a directory, a device
    such as ``/dev/full``, a FIFO) is refused with ``ValueError`` before anything is written.
    """
    target = os.path.realpath(path)
    _check_replaceable(target)
    directory = os.path.dirname(target)
    tmp, fd = _open_temporary(directory, os.path.basename(target))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        _check_replaceable(target)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)
    return path
