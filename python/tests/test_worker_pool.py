"""The kernels' worker threads: a thread that cannot be started never hangs a call, a forked
child can run parallel kernels, and concurrent callers share the helpers.

Each scenario runs in a fresh interpreter with a timeout, so that a hang fails the test
instead of the suite.
"""

import os
import resource
import subprocess
import sys
import textwrap

import pytest

import spikeloc as sl

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(sl.__file__)))


STACK = 8 * 2**20  # the default stack of new threads (glibc: the soft RLIMIT_STACK at start)


def eight_megabyte_stacks():
    _, hard = resource.getrlimit(resource.RLIMIT_STACK)
    resource.setrlimit(resource.RLIMIT_STACK, (STACK, hard))


def run_script(code, timeout=60):
    """Runs `code` in a fresh interpreter importing this test run's spikeloc, whose threads
    get 8 MB stacks; returns its stdout. A timeout (a hang) or a non-zero exit fails the
    test."""
    env = {**os.environ, "PYTHONPATH": PACKAGE_PARENT}
    try:
        result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                                capture_output=True, text=True, timeout=timeout,
                                preexec_fn=eight_megabyte_stacks)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the script hung (no exit within {timeout} s)")
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("threads", [None, 2])
def test_no_hang_when_worker_threads_cannot_start(threads):
    """With the address space limited to what the process has mapped plus 6 MB, no helper
    thread can get its stack (8 MB): the call still returns the spikes the single-threaded
    call gives, or raises MemoryError. (Dispatch retried forever here, ignoring Ctrl-C.)"""
    out = run_script(f"""
        import resource
        import numpy as np
        import spikeloc as sl

        stim = sl.Stimulus.tutorial()
        expected = stim.generate(64, seed=0, threads=1)[1]

        def status(key):
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) for l in f if l.startswith(key))

        before = status("Threads:")
        limit = status("VmSize:") * 1024 + 6 * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
        try:
            spikes = stim.generate(64, seed=0, threads={threads!r})[1]
            outcome = "same" if np.array_equal(spikes, expected) else "different"
        except MemoryError:
            outcome = "MemoryError"
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)
        print(outcome, status("Threads:") - before)
    """)
    outcome, started = out.split()
    assert outcome in ("same", "MemoryError")
    assert started == "0"  # no helper could start: the fall-back was exercised


def test_forked_child_runs_parallel_kernels():
    """A child of fork() has none of the parent's helper threads (and may inherit the pool's
    lock held): its parallel calls start afresh and give the parent's results."""
    out = run_script("""
        import os
        import numpy as np
        import spikeloc as sl

        stim = sl.Stimulus.tutorial()
        expected = stim.generate(32, seed=4, threads=2)[1]  # the helpers exist now
        pid = os.fork()
        if pid == 0:
            same = np.array_equal(stim.generate(32, seed=4, threads=2)[1], expected)
            os._exit(0 if same else 1)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """)
    assert out.split() == ["0"]


def test_concurrent_callers_share_the_helpers():
    """Eight Python threads training steps with threads=4 at once give the results of the
    calls one after another, and the process never holds more helpers than CPUs - 1."""
    out = run_script("""
        from concurrent.futures import ThreadPoolExecutor
        import numpy as np
        import spikeloc as sl

        def threads_now():
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) for l in f if l.startswith("Threads:"))

        stim = sl.Stimulus(duration=0.05, anf_per_ear=20, phase_offset="per_sample")
        ipd, spikes = stim.generate(40, seed=8, threads=1)
        x, labels = sl.SpikeEvents.from_dense(spikes, threads=1), stim.labels(ipd)
        net = sl.SNN.for_stimulus(stim, n_hidden=16, seed=0, threads=4)
        net.w1 = net.w1 * 6
        before = threads_now()
        batches = [np.arange(k, 40, 3) for k in range(3)]
        expected = [net.loss_and_grad(x, labels[b], index=b) for b in batches]
        helpers = threads_now() - before
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(
                lambda k: net.loss_and_grad(x, labels[batches[k % 3]], index=batches[k % 3]),
                range(24)))
            during = threads_now()
        same = all(loss == expected[k % 3][0] and
                   all(np.array_equal(g, expected[k % 3][1][n]) for n, g in grads.items())
                   for k, (loss, grads) in enumerate(results))
        print(same, helpers, during - before, sl.default_threads())
    """, timeout=120)
    same, helpers, extra_during, cpus = out.split()
    assert same == "True"
    # the calls started helpers, at most CPUs - 1 however many were asked for (threads=4)
    # and however many threads called at once
    assert int(helpers) == max(int(cpus) - 1, 0)
    assert int(extra_during) <= 8 + max(int(cpus) - 1, 0)
