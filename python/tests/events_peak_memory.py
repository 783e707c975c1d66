"""Peak memory of generating spike events directly (issue 12), run in a fresh process:
``python python/tests/events_peak_memory.py N`` generates N samples of the 250 Hz stimulus as
:class:`~spikeloc.SpikeEvents` and prints, as JSON, the resident memory it added at its peak
("peak", bytes; read from /proc/self/status after resetting the high-water mark), the event
lists' own size ("events", bytes) and the size the dense array would have ("dense", bytes).
Used by test_stimulus_events.py and benchmarks/datapath.py (Linux only)."""

import json
import sys

import spikeloc as sl


def status(field: str) -> int:
    """A memory field of /proc/self/status, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def main(n: int) -> dict:
    stim = sl.Stimulus.hz250()
    stim.generate(8, seed=1, events=True)            # worker threads, code, tables
    before = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:    # resets VmHWM to the current RSS
        f.write("5")
    ipd, ev = stim.generate(n, seed=0, events=True)
    peak = status("VmHWM")
    size = sum(getattr(ev, f).nbytes for f in ("step_ptr", "step_events", "input_ptr",
                                                "input_events"))
    return {"peak": peak - before, "events": size, "dense": ev.n_samples * ev.steps * ev.n_in}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
