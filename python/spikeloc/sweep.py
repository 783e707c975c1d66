"""Parameter sweeps with repeats: on local threads, any ``concurrent.futures`` executor, or a
Dask cluster; results appended to a file as jobs finish, so nothing is lost.

``spikeloc.sweep`` is this module, and calling it calls :func:`sweep`: ``sl.sweep(run, grid)``
and ``import spikeloc.sweep`` both work.

Example (the tutorial's envelope-power experiment, seed 002)::

    import spikeloc as sl
    from spikeloc.experiment import tutorial_experiment

    table = sl.sweep(tutorial_experiment,
                     {"envelope_power": [0, 1, 2, 3, 4, 5, 10, 30, 40, 50, 100]},
                     repeats=3, results="envelope.jsonl")
    print(table.summary("test_accuracy"))          # mean and spread per combination
    sl.plots.errorbar(table, ["train_accuracy", "test_accuracy"], "envelope_power")
    df = table.to_pandas()                          # needs pandas

Jobs
    A job is one parameter combination and one repeat. ``run(params, seed)`` gets the
    combination as a dict and the job's seed (an int in [0, 2**63)) and returns a dict of
    metrics (numbers, strings, lists; NumPy scalars and arrays are converted).

Seeds
    The seed of repeat ``r`` is ``job_seed(seed, r) = key(seed, r + 1) >> 1``, where ``key`` is
    the counter-based key of ``spikeloc.h`` (SplitMix64: ``key(s, i) = mix64(mix64(s) ^ (i *
    GAMMA))``, all mod 2**64); the shift leaves room for ``seed + 1``, ``seed + 2`` ... (e.g. a
    test set), and ``r + 1`` keeps ``job_seed(0, 0)`` away from 0. It depends only on
    the base seed and the repeat index, not on the parameters: every combination sees the same
    seeds (common random numbers, so differences between combinations are not seed noise), and
    the same seeds give bit-identical results on any executor and thread count.

Threads
    Every job runs inside :func:`spikeloc.kernel_threads` ``(job_threads)`` (default 1): models,
    stimuli and event lists built in ``run`` use that many kernel threads unless ``run`` says
    otherwise, and the pool supplies the parallelism (one worker per core by default). This
    holds on every executor: the setting travels with the job, not with the pool.

Results file
    With ``results="sweep.jsonl"`` each finished job is appended as one JSON line (flushed and
    fsync'ed) as soon as it completes, failed jobs included (error and traceback). A sweep that
    is interrupted (Ctrl-C, a killed process, a lost cluster) keeps what finished; running it
    again with the same file skips the jobs that succeeded and runs the rest (and, with
    ``retry_failed=True``, the ones that failed). A job is identified by a stable key, a hash
    of its parameters and its seed, so the grid may be extended and the file reused. Lines
    that cannot be read (cut short, not UTF-8, not a record) are skipped with a warning
    naming the line, and their jobs run again. The file is standard JSON: NaN and infinite
    metrics are written as the strings "NaN", "Infinity" and "-Infinity" and read back as
    floats.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import numbers
import os
import sys
import time
import traceback
import types
import warnings
from typing import Callable, Iterable, List, Optional

__all__ = ["sweep", "SweepResult", "Summary", "SweepInterrupted", "job_seed", "job_key",
           "load_results", "expand_grid"]

_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
#: Field names of a record that parameters and metrics may not use.
RESERVED = ("key", "repeat", "seed", "status", "error", "traceback", "time", "worker")
_TRACEBACK_CHARS = 4000


# ---------------------------------------------------------------------------- seeds and keys


def _mix64(z: int) -> int:
    """SplitMix64's output function (spikeloc.h), on Python ints mod 2**64."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def job_seed(seed: int, repeat: int) -> int:
    """Seed of repeat ``repeat`` of a sweep with base seed ``seed``: ``key(seed, repeat + 1) >> 1``
    with ``key(s, i) = mix64(mix64(s) ^ (i * GAMMA))`` (spikeloc.h), in [0, 2**63)."""
    for name, value in (("seed", seed), ("repeat", repeat)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    if seed > _MASK64:
        raise ValueError(f"seed must be < 2**64, got {seed}")
    return _mix64(_mix64(int(seed)) ^ (((int(repeat) + 1) * _GAMMA) & _MASK64)) >> 1


def _canonical(params: dict, seed: int) -> str:
    return json.dumps({"params": params, "seed": seed}, sort_keys=True, separators=(",", ":"),
                      allow_nan=False)


def job_key(params: dict, seed: int) -> str:
    """Stable identifier of a job: the first 20 hex digits of the SHA-256 of its parameters and
    seed as canonical JSON (sorted keys). Equal parameters (``1`` and ``1.0`` differ) and seed
    give the same key in every process and Python version."""
    return hashlib.sha256(_canonical(params, seed).encode()).hexdigest()[:20]


# ---------------------------------------------------------------------------- values


def _plain(value, what: str):
    """``value`` as plain JSON-able Python (NumPy scalars/arrays converted), else TypeError."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{what}: keys must be strings, got {k!r}")
            out[k] = _plain(v, f"{what}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v, what) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars (bool_, float32, ...)
    if callable(tolist) and type(value).__module__.split(".")[0] == "numpy":
        return _plain(tolist(), what)
    raise TypeError(f"{what} must be a number, string, bool, None, list or dict (JSON), got "
                    f"{type(value).__name__}")


def _check_params(params, where: str) -> dict:
    if not isinstance(params, dict):
        raise TypeError(f"{where} must be a dict of parameter values, got "
                        f"{type(params).__name__}")
    out = {}
    for name, value in params.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"{where}: parameter names must be non-empty strings, got {name!r}")
        if name in RESERVED:
            raise ValueError(f"{where}: parameter name {name!r} is reserved (reserved: "
                             f"{', '.join(RESERVED)})")
        v = _plain(value, f"parameter {name!r}")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"parameter {name!r} must be finite, got {v}")
        out[name] = v
    return out


def expand_grid(grid) -> List[dict]:
    """The parameter combinations of ``grid``: a dict of lists gives their Cartesian product
    (the first key varies slowest, as in ``itertools.product``); a list of dicts is taken as
    is. Values must be JSON scalars (or lists of them); duplicates are an error."""
    if isinstance(grid, dict):
        names = list(grid)
        lists = []
        for name in names:
            values = grid[name]
            if isinstance(values, (str, bytes, dict)) or not isinstance(values, Iterable):
                raise TypeError(f"grid[{name!r}] must be a list of values, got "
                                f"{type(values).__name__}")
            values = list(values)
            if not values:
                raise ValueError(f"grid[{name!r}] is empty")
            lists.append(values)
        combos = [dict(zip(names, vals)) for vals in itertools.product(*lists)]
    elif isinstance(grid, (list, tuple)):
        combos = list(grid)
    else:
        raise TypeError(f"grid must be a dict of lists or a list of dicts, got "
                        f"{type(grid).__name__}")
    if not combos:
        raise ValueError("grid has no parameter combinations")
    out, seen = [], set()
    for i, combo in enumerate(combos):
        combo = _check_params(combo, f"grid[{i}]" if not isinstance(grid, dict) else "grid")
        canon = json.dumps(combo, sort_keys=True)
        if canon in seen:
            raise ValueError(f"grid has the parameter combination {combo} twice")
        seen.add(canon)
        out.append(combo)
    return out


# ---------------------------------------------------------------------------- one job


def _worker_name() -> str:
    import socket
    import threading
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"


def _run_job(run, params: dict, seed: int, job_threads: int) -> dict:
    """Runs ``run(params, seed)`` with ``job_threads`` kernel threads; returns the outcome
    ``{"status", "metrics" | "error", "traceback", "time", "worker"}``. Exceptions become
    ``status="error"``; KeyboardInterrupt and SystemExit propagate (they stop the sweep)."""
    from ._native_api import kernel_threads
    t0 = time.perf_counter()
    try:
        with kernel_threads(job_threads):
            metrics = run(dict(params), seed)
        if not isinstance(metrics, dict):
            raise TypeError(f"run must return a dict of metrics, got {type(metrics).__name__}")
        metrics = _plain(metrics, "metric")
        clash = sorted(set(metrics) & (set(params) | set(RESERVED)))
        if clash:
            raise ValueError(f"metric names {clash} clash with parameter or reserved names")
        return {"status": "ok", "metrics": metrics, "time": time.perf_counter() - t0,
                "worker": _worker_name()}
    except Exception as exc:  # noqa: BLE001 - a failing job is recorded, the sweep goes on
        return _error_outcome(exc, time.perf_counter() - t0, _worker_name())


def _error_outcome(exc: BaseException, seconds=None, worker=None) -> dict:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if len(tb) > _TRACEBACK_CHARS:
        tb = "...\n" + tb[-_TRACEBACK_CHARS:]
    return {"status": "error", "error": f"{type(exc).__name__}: {exc}", "traceback": tb,
            "time": seconds, "worker": worker}


# ---------------------------------------------------------------------------- result table


class SweepResult(list):
    """The table of a sweep: a list of records, one per job, in grid order (combinations in
    the order of :func:`expand_grid`, repeats inside each).

    A record is a flat dict: the parameters, ``repeat``, ``seed``, the metrics, ``status``
    (``"ok"`` or ``"error"``), ``error`` (None, or ``"Type: message"``), ``time`` (seconds the
    job ran) and ``key`` (:func:`job_key`). Failed jobs have no metrics. ``.tracebacks`` maps
    the key of a failed job to its traceback text.
    """

    def __init__(self, records=(), params=(), metrics=None, tracebacks=None):
        super().__init__(records)
        self.params = list(params)
        if metrics is None:
            seen = {}
            fixed = set(self.params) | set(RESERVED)
            for r in self:
                for k in r:
                    if k not in fixed:
                        seen.setdefault(k, None)
            metrics = list(seen)
        self.metrics = list(metrics)
        self.tracebacks = dict(tracebacks or {})

    # -- views -------------------------------------------------------------------------------
    @property
    def ok(self) -> "SweepResult":
        """The records of the jobs that succeeded."""
        return self._like([r for r in self if r["status"] == "ok"])

    @property
    def failed(self) -> "SweepResult":
        """The records of the jobs that failed."""
        return self._like([r for r in self if r["status"] != "ok"])

    def _like(self, records):
        return SweepResult(records, self.params, self.metrics,
                           {r["key"]: self.tracebacks[r["key"]] for r in records
                            if r["key"] in self.tracebacks})

    def combinations(self) -> List[dict]:
        """The distinct parameter combinations, in table order."""
        out, seen = [], set()
        for r in self:
            combo = {p: r.get(p) for p in self.params}
            canon = json.dumps(combo, sort_keys=True)
            if canon not in seen:
                seen.add(canon)
                out.append(combo)
        return out

    def values(self, metric: str, **where) -> list:
        """The values of ``metric`` of the successful jobs whose parameters equal ``where``."""
        self._check_metric(metric)
        return [r[metric] for r in self
                if r["status"] == "ok" and all(r.get(k) == v for k, v in where.items())]

    def _check_metric(self, metric):
        if metric not in self.metrics:
            raise KeyError(f"unknown metric {metric!r}; the table has {self.metrics}")

    # -- statistics --------------------------------------------------------------------------
    def summary(self, metrics=None, ddof: int = 0) -> "Summary":
        """Mean and spread of each metric per parameter combination.

        Returns a :class:`Summary`: one dict per combination (table order) with the
        parameters, ``n`` (successful repeats), ``failed`` (failed repeats), and for each
        numeric metric ``m``: ``m_mean``, ``m_std`` (standard deviation with ``ddof``; the
        seeds' ``np.std`` is ``ddof=0``), ``m_min``, ``m_max``; NaN where there is no value
        (and for the std of a single value with ``ddof=1``). Printing it shows a table.
        """
        if metrics is None:
            metrics = self.metrics
        elif isinstance(metrics, str):
            metrics = [metrics]
        for m in metrics:
            self._check_metric(m)
        rows = []
        for combo in self.combinations():
            recs = [r for r in self if all(r.get(p) == v for p, v in combo.items())]
            good = [r for r in recs if r["status"] == "ok"]
            row = dict(combo, n=len(good), failed=len(recs) - len(good))
            for m in metrics:
                xs = [r[m] for r in good if isinstance(r.get(m), (int, float))
                      and not isinstance(r.get(m), bool)]
                if len(xs) < len(good):
                    continue  # not a numeric metric
                mean, std, lo, hi = _stats(xs, ddof)
                row.update({f"{m}_mean": mean, f"{m}_std": std, f"{m}_min": lo, f"{m}_max": hi})
            rows.append(row)
        return Summary(rows, self.params, [m for m in metrics
                                           if any(f"{m}_mean" in r for r in rows)])

    def series(self, metric: str, param: str, ddof: int = 0, **where):
        """``(x, mean, std, n)`` lists of ``metric`` against the parameter ``param`` (sorted by
        ``x``), over the successful jobs whose other parameters equal ``where``. Every other
        parameter that varies in the table must be fixed by ``where``."""
        self._check_metric(metric)
        if param not in self.params:
            raise KeyError(f"unknown parameter {param!r}; the table has {self.params}")
        for p in self.params:
            if p != param and p not in where and len({json.dumps(r.get(p)) for r in self}) > 1:
                raise ValueError(f"parameter {p!r} varies too: fix it, e.g. "
                                 f"series({metric!r}, {param!r}, {p}=...)")
        groups = {}
        for r in self:
            if r["status"] != "ok" or any(r.get(k) != v for k, v in where.items()):
                continue
            groups.setdefault(json.dumps(r[param]), (r[param], []))[1].append(r[metric])
        items = sorted(groups.values(), key=lambda g: g[0])
        xs, means, stds, ns = [], [], [], []
        for x, vals in items:
            mean, std, _, _ = _stats(vals, ddof)
            xs.append(x)
            means.append(mean)
            stds.append(std)
            ns.append(len(vals))
        return xs, means, stds, ns

    # -- export ------------------------------------------------------------------------------
    def to_pandas(self):
        """A ``pandas.DataFrame`` with one row per job (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("SweepResult.to_pandas needs pandas (pip install pandas); the "
                              "table itself is a list of dicts") from exc
        columns = (self.params + ["repeat", "seed"] + self.metrics
                   + ["status", "error", "time", "key"])
        return pd.DataFrame([{c: r.get(c) for c in columns} for r in self], columns=columns)

    def without_timing(self) -> list:
        """The records without ``time`` (what two runs of the same sweep must agree on)."""
        return [{k: v for k, v in r.items() if k != "time"} for r in self]

    def __repr__(self) -> str:
        return (f"SweepResult({len(self)} jobs, {len(self.failed)} failed, "
                f"params={self.params}, metrics={self.metrics})")


class Summary(list):
    """The rows of :meth:`SweepResult.summary` (a list of dicts) that print as a table.

    ``str(summary)`` is an aligned text table, :meth:`to_markdown` a markdown table and
    :meth:`to_csv` CSV text; each shows, per combination, the parameters, ``n`` (and
    ``failed`` when a job failed) and each metric as mean +/- std [min, max].
    """

    def __init__(self, rows=(), params=(), metrics=()):
        super().__init__(rows)
        self.params = list(params)
        self.metrics = list(metrics)

    def _cells(self):
        failed = any(r.get("failed") for r in self)
        header = self.params + ["n"] + (["failed"] if failed else []) + self.metrics
        body = []
        for r in self:
            cells = [_fmt(r.get(p)) for p in self.params] + [str(r["n"])]
            if failed:
                cells.append(str(r["failed"]))
            for m in self.metrics:
                mean, std = r.get(f"{m}_mean", math.nan), r.get(f"{m}_std", math.nan)
                lo, hi = r.get(f"{m}_min", math.nan), r.get(f"{m}_max", math.nan)
                cells.append(f"{_fmt(mean)} +/- {_fmt(std)} [{_fmt(lo)}, {_fmt(hi)}]")
            body.append(cells)
        return header, body

    def __str__(self) -> str:
        header, body = self._cells()
        widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
                 for row in [header] + body]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """A markdown table (mean +/- std [min, max] per metric)."""
        header, body = self._cells()
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)

    def to_csv(self) -> str:
        """CSV text: one row per combination, every column of the rows (numbers at full
        precision, NaN as empty)."""
        import csv
        import io
        columns = list(dict.fromkeys(k for r in self for k in r))
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(columns)
        for r in self:
            w.writerow(["" if _missing(r.get(c)) else
                        (json.dumps(r[c]) if isinstance(r[c], (list, dict)) else r[c])
                        for c in columns])
        return out.getvalue()


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fmt(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _stats(xs, ddof):
    n = len(xs)
    if n == 0:
        return math.nan, math.nan, math.nan, math.nan
    mean = math.fsum(xs) / n
    std = (math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - ddof))
           if n - ddof > 0 else math.nan)
    return mean, std, min(xs), max(xs)


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a KeyboardInterrupt from a job) stopped :func:`sweep`.

    ``.results`` holds the table of the jobs that finished (also in the results file, if
    any); pending jobs were cancelled. Jobs already running on local threads cannot be
    stopped: they finish in the background, unrecorded (Python waits for them at exit).
    Running ``sweep`` again with the same results file resumes."""

    def __init__(self, message, results):
        super().__init__(message)
        self.results = results


# ---------------------------------------------------------------------------- results file


def _record(job, outcome) -> dict:
    params, repeat, seed, key = job
    rec = {"key": key, "params": params, "repeat": repeat, "seed": seed,
           "status": outcome["status"], "time": outcome.get("time"),
           "worker": outcome.get("worker")}
    if outcome["status"] == "ok":
        rec["metrics"] = outcome["metrics"]
    else:
        rec["error"] = outcome.get("error")
        rec["traceback"] = outcome.get("traceback")
    return rec


#: Non-finite metric values in a results file. Standard JSON has no NaN or infinity, so they
#: are written as these strings and read back as floats (a metric that is one of these
#: strings is read back as the float too).
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _finite_json(value):
    """``value`` with every non-finite float replaced by its name in :data:`NON_FINITE`."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_json(v) for v in value]
    return value


def _restore_non_finite(value):
    """The inverse of :func:`_finite_json` (the strings of :data:`NON_FINITE` as floats)."""
    if isinstance(value, str):
        return NON_FINITE.get(value, value)
    if isinstance(value, dict):
        return {k: _restore_non_finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore_non_finite(v) for v in value]
    return value


def _parse_record(line: bytes):
    """(record, None) for a usable line of a results file, else (None, why)."""
    try:
        rec = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not UTF-8"
    except RecursionError:
        return None, "JSON nested too deeply"
    except ValueError:
        return None, "not JSON (a line cut short?)"
    if not isinstance(rec, dict):
        return None, "not a JSON object"
    if not isinstance(rec.get("key"), str) or rec.get("status") not in ("ok", "error"):
        return None, "no job key or status"
    if rec["status"] == "ok":
        if not isinstance(rec.get("metrics"), dict):
            return None, "a finished job without metrics"
        rec["metrics"] = _restore_non_finite(rec["metrics"])
    return rec, None


def load_results(path) -> dict:
    """The records of a results file, key -> record (a record that succeeded wins over failed
    ones; otherwise the last one). Unreadable lines (the last line of a process killed while
    writing, bytes that are not UTF-8, JSON nested too deeply, a record without a key, a
    status or, for a finished job, its metrics) are skipped with a RuntimeWarning naming the
    line: their jobs run again."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            rec, why = _parse_record(line)
            if rec is None:
                warnings.warn(f"{path}:{lineno}: unreadable record skipped ({why})",
                              RuntimeWarning, stacklevel=2)
                continue
            key, status = rec["key"], rec["status"]
            if status == "ok" or out.get(key, {}).get("status") != "ok":
                out[key] = rec
    return out


class _Appender:
    """Appends one JSON line per record, flushed and fsync'ed (a killed process loses at most
    the line it was writing)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        self.f = open(self.path, "a+b")
        self.f.seek(0, os.SEEK_END)
        if self.f.tell() > 0:
            self.f.seek(-1, os.SEEK_END)
            if self.f.read(1) != b"\n":  # a torn last line: start a fresh one
                self.f.seek(0, os.SEEK_END)
                self.f.write(b"\n")

    def write(self, rec: dict):
        line = json.dumps(_finite_json(rec), separators=(",", ":"), allow_nan=False) + "\n"
        self.f.write(line.encode("utf-8"))
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self):
        self.f.close()


# ---------------------------------------------------------------------------- executors


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _is_dask_client(obj) -> bool:
    return (type(obj).__module__.split(".")[0] == "distributed"
            and callable(getattr(obj, "get_executor", None))
            and callable(getattr(obj, "submit", None)))


def _executor_for(executor, workers):
    """(concurrent.futures.Executor, owned)."""
    import concurrent.futures as cf
    if executor is None:
        if workers is None:
            workers = _default_workers()
        if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        return cf.ThreadPoolExecutor(max_workers=int(workers),
                                     thread_name_prefix="spikeloc-sweep"), True
    if workers is not None:
        raise ValueError("workers applies to the default thread pool; size your executor "
                         "instead")
    if _is_dask_client(executor):
        # distributed's concurrent.futures interface; pure=False: every job really runs
        return executor.get_executor(pure=False), False
    if isinstance(executor, cf.Executor):
        return executor, False
    raise TypeError(f"executor must be None, a concurrent.futures.Executor or a "
                    f"dask.distributed.Client, got {type(executor).__name__}")


class _Progress:
    def __init__(self, total, done, enabled):
        self.bar = None
        self.enabled = enabled
        self.total, self.done, self.failed = total, done, 0
        if not enabled or total == 0:
            self.enabled = False
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return
        self.bar = tqdm(total=total, initial=done, unit="job", desc="sweep")

    def update(self, ok: bool):
        self.done += 1
        self.failed += 0 if ok else 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
            if self.failed:
                self.bar.set_postfix(failed=self.failed, refresh=False)
        else:
            print(f"sweep: {self.done}/{self.total} jobs done"
                  + (f" ({self.failed} failed)" if self.failed else ""), file=sys.stderr,
                  flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------- sweep


def sweep(run: Callable, grid, *, repeats: int = 1, executor=None, progress: bool = True,
          results=None, seed: int = 0, workers: Optional[int] = None, job_threads: int = 1,
          retry_failed: bool = True) -> SweepResult:
    """Run ``run(params, seed)`` for every parameter combination of ``grid`` and every repeat.

    Parameters
    ----------
    run : callable ``(params: dict, seed: int) -> dict``
        One job: returns metrics (JSON-able values; NumPy scalars/arrays are converted). For
        process pools and Dask it must be picklable (a module-level function).
    grid : dict of lists or list of dicts
        Parameter combinations (see :func:`expand_grid`).
    repeats : int >= 1
        Jobs per combination; repeat ``r`` has seed :func:`job_seed` ``(seed, r)``.
    executor : None, concurrent.futures.Executor or dask.distributed.Client
        None: a local thread pool with ``workers`` threads (default: one per core), closed at
        the end. An executor or client you pass is used and left open.
    progress : bool
        A tqdm bar over jobs (or one line per job on stderr without tqdm).
    results : path, optional
        JSON-lines file: each finished job is appended (flush + fsync) as it completes; jobs
        already recorded there as successful are skipped (and, with ``retry_failed``, failed
        ones rerun).
    seed : int
        Base seed of the job seeds.
    workers : int, optional
        Threads of the default pool.
    job_threads : int >= 0
        Kernel threads of each job (:func:`spikeloc.kernel_threads`; 0: all cores).
    retry_failed : bool
        Rerun jobs that a results file records as failed (else keep their error).

    Returns
    -------
    SweepResult
        One record per job in grid order. A job that raises is recorded as failed (error and
        traceback) and the others go on; KeyboardInterrupt (Ctrl-C, or from a job) cancels the
        pending jobs and raises :class:`SweepInterrupted` carrying the finished part.
    """
    if not callable(run):
        raise TypeError(f"run must be callable (params, seed) -> dict, got "
                        f"{type(run).__name__}")
    if isinstance(repeats, bool) or not isinstance(repeats, numbers.Integral) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    if (isinstance(job_threads, bool) or not isinstance(job_threads, numbers.Integral)
            or job_threads < 0):
        raise ValueError(f"job_threads must be an integer >= 0, got {job_threads!r}")
    combos = expand_grid(grid)
    params = list(dict.fromkeys(k for c in combos for k in c))
    seeds = [job_seed(seed, r) for r in range(int(repeats))]
    jobs = [(c, r, s, job_key(c, s)) for c in combos for r, s in enumerate(seeds)]

    done = load_results(results) if results is not None else {}
    outcomes = {}
    for job in jobs:
        rec = done.get(job[3])
        if rec is not None and (rec["status"] == "ok" or not retry_failed):
            outcomes[job[3]] = rec
    todo = [job for job in jobs if job[3] not in outcomes]

    def table():
        records, tracebacks = [], {}
        for c, r, s, key in jobs:
            rec = outcomes.get(key)
            if rec is None:
                continue
            flat = dict(c, repeat=r, seed=s)
            if rec["status"] == "ok":
                flat.update(rec["metrics"])
            else:
                tracebacks[key] = rec.get("traceback")
            flat.update(status=rec["status"], error=rec.get("error"), time=rec.get("time"),
                        key=key)
            records.append(flat)
        return SweepResult(records, params, tracebacks=tracebacks)

    if not todo:
        return table()

    import concurrent.futures as cf
    pool, owned = _executor_for(executor, workers)
    appender = _Appender(results) if results is not None else None
    bar = _Progress(len(jobs), len(jobs) - len(todo), progress)
    futures = {}
    try:
        for job in todo:
            futures[pool.submit(_run_job, run, job[0], job[2], int(job_threads))] = job
        for fut in cf.as_completed(futures):
            job = futures.pop(fut)
            try:
                outcome = fut.result()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # noqa: BLE001 - the executor failed this job
                outcome = _error_outcome(exc)
            rec = _record(job, outcome)
            outcomes[job[3]] = rec
            if appender is not None:
                appender.write(rec)
            bar.update(rec["status"] == "ok")
    except KeyboardInterrupt as exc:
        for fut in futures:
            fut.cancel()
        if owned:
            pool.shutdown(wait=False, cancel_futures=True)
            owned = False
        finished = table()
        raise SweepInterrupted(
            f"sweep interrupted after {len(finished)} of {len(jobs)} jobs"
            + (f"; rerun with results={results!r} to resume" if results is not None else ""),
            finished) from exc
    finally:
        bar.close()
        if appender is not None:
            appender.close()
        if owned:
            pool.shutdown(wait=True)
    return table()


# ---------------------------------------------------------------------------- tutorial job


# ---------------------------------------------------------------------------- callable module


class _CallableModule(types.ModuleType):
    """The module ``spikeloc.sweep``, callable as the function :func:`sweep`."""

    def __call__(self, run, grid, **kwargs):
        return sweep(run, grid, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
