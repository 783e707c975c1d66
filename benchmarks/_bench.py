"""Small helpers shared by the benchmarks (not a benchmark itself).

* ``machine_info()``: nproc, CPU model, NumPy / OpenBLAS versions and thread counts;
* ``run_worker()``: run ``python <script> --worker ...`` in a fresh interpreter and read the JSON
  it prints on its last stdout line (the benchmarks time competing code in separate processes
  so that, e.g., OpenBLAS's spinning worker threads never share a process with spikeloc's);
* ``summary()`` / ``fmt_ratio()``: median [min, max] of a list of ratios;
* ``rss_now()`` / ``peak_rss()`` / ``mem_available()``: memory figures from /proc and getrusage.

The benchmarks are meant to be run from the repository root with ``PYTHONPATH=python`` (after
``python setup.py build_ext --inplace``); workers inherit the environment and are pointed at
the same ``spikeloc`` package as the parent.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import typing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def import_spikeloc():
    """Import spikeloc, falling back to ``<repo>/python`` when it is not on the path."""
    try:
        import spikeloc
    except ImportError:
        sys.path.insert(0, os.path.join(REPO, "python"))
        import spikeloc
    return spikeloc


def child_env() -> dict:
    """Environment for worker processes: the parent's, with the directory of the spikeloc
    package the parent uses first on PYTHONPATH."""
    env = dict(os.environ)
    sl = import_spikeloc()
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(sl.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (pkg_parent, env.get("PYTHONPATH", "")) if p)
    return env


def run_worker(script: str, args: list, timeout: float = 1800, env: dict = None) -> dict:
    """Run ``python script --worker args...`` in a fresh interpreter (``env``: extra environment
    variables); return the JSON dict of its last stdout line. Raises RuntimeError with the
    worker's stderr when it fails."""
    cmd = [sys.executable, script, "--worker", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**child_env(), **(env or {})},
                          timeout=timeout)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"worker {' '.join(cmd[1:])} failed (exit code {proc.returncode}):\n"
            f"{proc.stderr.strip()[-3000:]}")
    return json.loads(lines[-1])


def emit(result: dict) -> None:
    """What a worker prints last: one JSON line."""
    print(json.dumps(result), flush=True)


def add_worker_option(parser) -> None:
    """The hidden ``--worker NAME JSON`` option through which a script runs itself in a child."""
    parser.add_argument("--worker", nargs=2, metavar=("NAME", "JSON"), help=argparse.SUPPRESS)


def serve_worker(args, workers: dict) -> bool:
    """Runs ``workers[NAME](**JSON)`` and emits its result if this process is a worker."""
    if not args.worker:
        return False
    name, kwargs = args.worker
    emit(workers[name](**json.loads(kwargs)))
    return True


# ---------------------------------------------------------------------------- two libraries

def ab_parser(doc: str, repeats: int) -> argparse.ArgumentParser:
    """Command line of an in-process A/B script: the two libraries and ``--repeats``."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("lib_a", help="kernels library A (e.g. a build before a change)")
    parser.add_argument("lib_b", help="kernels library B")
    parser.add_argument("--repeats", type=int, default=repeats)
    return parser


def load_two_libraries(path_a: str, path_b: str) -> list:
    """Two kernels libraries loaded side by side with ctypes (for in-process A/B timings).
    RTLD_DEEPBIND: each binds to its own symbols, not to those of the kernels library that
    ``import spikeloc`` loaded globally."""
    mode = os.RTLD_LOCAL | os.RTLD_NOW | getattr(os, "RTLD_DEEPBIND", 0)
    libs = [ctypes.CDLL(os.path.abspath(path), mode=mode) for path in (path_a, path_b)]
    if libs[0]._handle == libs[1]._handle:
        raise SystemExit("the two libraries are the same file: copy one aside first")
    return libs


_CTYPES = {"int32_t": ctypes.c_int32, "int64_t": ctypes.c_int64, "uint64_t": ctypes.c_uint64,
           "double": ctypes.c_double}


def c_struct(value):
    """A ctypes copy of one of spikeloc._abi's NamedTuples (arrays as data pointers), to pass
    by reference to a library loaded with ctypes."""
    hints = typing.get_type_hints(type(value), include_extras=True)
    fields = [(name, _CTYPES.get(hints[name].__metadata__[0], ctypes.c_void_p))
              for name in value._fields]
    struct = type(type(value).__name__, (ctypes.Structure,), {"_fields_": fields})
    return struct(*[v.ctypes.data if hasattr(v, "ctypes") else v for v in value])


def data_pointer(array):
    """An array's data as a ctypes pointer (None for None)."""
    return None if array is None else array.ctypes.data_as(ctypes.c_void_p)


# ---------------------------------------------------------------------------- statistics

def summary(values) -> tuple:
    """(median, min, max) of a non-empty list."""
    values = list(values)
    return statistics.median(values), min(values), max(values)


def fmt_ratio(values, digits: int = 3) -> str:
    """'median [min, max]' of a list of ratios."""
    med, lo, hi = summary(values)
    return f"{med:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def fmt_mean_range(values) -> str:
    """'mean [min, max]' of a list of accuracies (or any values), 3 decimals."""
    values = list(values)
    return f"{statistics.fmean(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


#: A measurement is "quiet" when other processes kept at most this many cores busy meanwhile.
QUIET = 0.25


def fmt_time(values) -> str:
    """'median s [min, max]' of a list of times in seconds."""
    med, lo, hi = summary(values)
    return f"{med:.3f} s [{lo:.3f}, {hi:.3f}]"


def _system_busy() -> float:
    """CPU seconds all processes of the machine have been busy since boot (/proc/stat)."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()[1:]
    except OSError:
        return float("nan")
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class Timer:
    """``with Timer() as t: ...``, then

    * ``t.seconds``: wall time (perf_counter);
    * ``t.cpu``: CPU time of this process, all its threads (process_time);
    * ``t.others``: mean number of cores busy with *other* processes meanwhile (from
      /proc/stat, 10 ms resolution): a noise indicator, ~0 on a quiet machine.
    """

    def __enter__(self):
        self._busy = _system_busy()
        self._cpu = time.process_time()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._start
        self.cpu = time.process_time() - self._cpu
        others = (_system_busy() - self._busy - self.cpu) / max(self.seconds, 1e-9)
        self.others = max(0.0, others)
        return False


# ---------------------------------------------------------------------------- memory

def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def rss_now() -> int:
    """Current resident set size of this process [bytes]."""
    return _status_kib("VmRSS") * 1024


def vm_size() -> int:
    """Current virtual address space of this process [bytes]."""
    return _status_kib("VmSize") * 1024


def hwm_since_reset() -> int:
    """Peak resident set size [bytes] since the last :func:`reset_hwm` (VmHWM, Linux)."""
    return _status_kib("VmHWM") * 1024


def reset_hwm() -> None:
    """Reset the peak-RSS counter VmHWM to the current RSS (Linux: /proc/self/clear_refs)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def peak_rss() -> int:
    """Peak resident set size of this process so far [bytes] (getrusage ru_maxrss, KiB on
    Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def mem_available() -> int:
    """MemAvailable from /proc/meminfo [bytes]."""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("MemAvailable not found in /proc/meminfo")


GB = 1e9
MB = 1e6


# ---------------------------------------------------------------------------- machine

def _openblas() -> tuple:
    """(config string, threads) of the OpenBLAS that NumPy loaded, or (None, None)."""
    import numpy  # noqa: F401  (loads OpenBLAS)
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "openblas" in line.lower()}
    except OSError:
        return None, None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        config = threads = None
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                if config is None and hasattr(lib, f"{prefix}_get_config{suffix}"):
                    f = getattr(lib, f"{prefix}_get_config{suffix}")
                    f.restype = ctypes.c_char_p
                    config = f().decode()
                if threads is None and hasattr(lib, f"{prefix}_get_num_threads{suffix}"):
                    threads = int(getattr(lib, f"{prefix}_get_num_threads{suffix}")())
        if config is not None:
            return config, threads
    return None, None


def machine_info() -> dict:
    import numpy as np
    sl = import_spikeloc()
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    config, threads = _openblas()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_total_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "openblas": config or "?",
        "openblas_threads": threads,
        "spikeloc": sl.__version__,
        "spikeloc_threads": sl.default_threads(),
        "kernels": sl.build_info().variant,
        "loadavg": os.getloadavg(),
    }


def print_machine(info: dict) -> None:
    print(f"machine: nproc={info['nproc']}, CPU {info['cpu']!r}, "
          f"{info['mem_total_gb']:.1f} GB RAM")
    print(f"         Python {info['python']}, NumPy {info['numpy']}, {info['openblas']} "
          f"(threads {info['openblas_threads']}), spikeloc {info['spikeloc']} "
          f"(default threads {info['spikeloc_threads']}, {info['kernels']} kernels)")
    print("         load average at start: " + ", ".join(f"{x:.2f}" for x in info["loadavg"]))
