"""The seed notebooks ported as a user ports them: their cells, with the PyTorch definitions
replaced by ``from spikeloc.tutorial import *``, run in a fresh namespace (as a notebook's),
in a small mode. Each workflow changes a parameter the seed's way and checks the run changed.

Seed 002 (the Cosyne tutorial), seed 001 (Dale's law) and seed 000 (250 Hz) each set their
parameters as the seed does: lower-case names after the import (seed 002), capitals
(seeds 000/001).
"""

import textwrap

import numpy as np
import pytest

import spikeloc.tutorial as tut


def notebook(*cells) -> dict:
    """Run the cells in one fresh namespace, like a notebook's kernel; returns it."""
    namespace = {"__name__": "__main__"}
    for cell in cells:
        exec(textwrap.dedent(cell), namespace)
    return namespace


IMPORT = "from spikeloc.tutorial import *\nimport numpy as np\n"

SEED_002_PARAMETERS = """
    set_seed(2)
    anf_per_ear = 8
    input_size = 2 * anf_per_ear
    duration = .02 * second
    duration_steps = int(np.round(duration / dt))
    batch_size = 16
    n_training_batches = 4
    n_testing_batches = 2
    num_samples = batch_size * n_training_batches
    num_hidden = 12
    nb_epochs = 2
"""

SEED_002_WORKFLOW = """
    ipds, spikes, theta = random_ipd_input_signal(num_samples)
    W1, W2, loss_hist = train_snn(ipds, spikes, verbose=False)
    ipds_test, spikes_test, _ = random_ipd_input_signal(batch_size * n_testing_batches)
    run_func = lambda x: snn(x, W1, W2)
    acc, acc_std, err, err_std = analyse(ipds_test, spikes_test, "Test", run=run_func,
                                         plot_analysis=0)
    w1 = W1.detach().cpu().numpy()                       # the seed's weight analysis
    output = run_func(spikes_test[:batch_size])
    m = np.mean(output, 1)
    log_p = log_softmax_fn(m)
    loss = loss_fn(log_p, discretise(ipds_test[:batch_size]))
    raster = spikes[0, :, [0]].T                         # the seed's one-fibre raster
"""


def test_seed_002_parameters_set_the_seeds_way_reach_the_functions(capsys):
    nb = notebook(IMPORT, SEED_002_PARAMETERS, SEED_002_WORKFLOW)
    assert nb["spikes"].shape == (64, 20, 16)                 # duration, anf_per_ear
    assert nb["W1"].shape == (16, 12) and nb["W2"].shape == (12, 12)   # num_hidden
    assert len(nb["loss_hist"]) == 2                          # nb_epochs
    assert type(nb["w1"]) is np.ndarray and np.array_equal(nb["w1"], nb["W1"])
    assert nb["raster"].shape == (1, 20)                      # torch's indexing
    assert np.allclose(np.exp(nb["log_p"]).sum(axis=1), 1.0)  # over the classes
    assert nb["loss"] == pytest.approx(-np.mean(nb["log_p"][
        np.arange(16), tut.discretise(nb["ipds_test"][:16])]))
    assert "Test classifier accuracy" in capsys.readouterr().out
    # the module itself was not changed: the parameters came from the notebook
    assert tut.num_hidden == 100 and tut.batch_size == 64


def test_seed_002_envelope_power_project_changes_the_run():
    """The tutorial's "try this" project: envelope_power set the seed's way changes the data
    (it reached random_ipd_input_signal) and so the training."""
    base = notebook(IMPORT, SEED_002_PARAMETERS, SEED_002_WORKFLOW)
    sharper = notebook(IMPORT, SEED_002_PARAMETERS, "envelope_power = 10\n", SEED_002_WORKFLOW)
    assert sharper["spikes"].mean() < 0.7 * base["spikes"].mean()
    assert sharper["loss_hist"] != base["loss_hist"]
    # batches of 32: half as many steps per epoch on the same 64 samples (num_samples was
    # computed before, as in the seed)
    bigger = notebook(IMPORT, SEED_002_PARAMETERS, "batch_size = 32\n", SEED_002_WORKFLOW)
    assert bigger["spikes"].shape[0] == 64 and bigger["loss_hist"] != base["loss_hist"]


def test_seed_002_traps_fail_loudly(monkeypatch):
    with pytest.raises(ValueError, match="ipd_indices must be class indices in \\[0, 12\\)"):
        notebook(IMPORT, "continuise([99])")
    with pytest.raises(ValueError, match="nb_epochs must be >= 0"):
        notebook(IMPORT, SEED_002_PARAMETERS, """
            ipds, spikes, theta = random_ipd_input_signal(num_samples)
            train_snn(ipds, spikes, nb_epochs=-1, verbose=False)
        """)
    monkeypatch.setattr(tut, "num_hidden", 50)      # set on the module AND in the notebook
    with pytest.raises(ValueError, match="num_hidden = 12 but spikeloc.tutorial.num_hidden "
                                         "= 50; set it in one place"):
        notebook(IMPORT, SEED_002_PARAMETERS, "W1, W2 = init_weight_matrices()")


SEED_001_PARAMETERS = """
    set_seed(1)
    DT = 1 * ms
    ANF_PER_EAR = 8
    DURATION = .02 * second
    DURATION_STEPS = int(np.round(DURATION / DT))
    INPUT_SIZE = 2 * ANF_PER_EAR
    NUM_CLASSES = 180 // 15
    NUM_HIDDEN = 10
    batch_size = 16
    n_training_batches = 4
    n_testing_batches = 2
    num_samples = batch_size * n_training_batches
"""

SEED_001_WORKFLOW = """
    ipds_training, spikes_training, _ = random_ipd_input_signal(num_samples)
    ipds_validation, spikes_validation, _ = random_ipd_input_signal(num_samples)
    ipds_test, spikes_test, _ = random_ipd_input_signal(batch_size * n_testing_batches)
    w1, w2, signs = init_weight_matrices(ie_ratio=0.5)
    w1_trained, w2_trained, signs = train(w1, w2, signs, ipds_training, spikes_training,
                                          ipds_validation, spikes_validation, n_epochs=3)
    run_func = lambda x: snn(x, w1_trained, w2_trained, signs)
    accuracy = analyse_accuracy(ipds_test, spikes_test, run_func, "Test", plot_analysis=0)
"""


def test_seed_001_dales_law_workflow(capsys):
    nb = notebook(IMPORT, SEED_001_PARAMETERS, SEED_001_WORKFLOW)
    w1, w2, signs = nb["w1_trained"], nb["w2_trained"], nb["signs"]
    assert w1.shape == (16, 10) and w2.shape == (10, 12)      # INPUT_SIZE, NUM_HIDDEN
    assert signs[0].shape == (16, 10) and (signs[0] == -1).all(axis=1).sum() == 8
    # Dale's law held through training: every weight has its row's sign (or is 0)
    assert np.all(w1 * signs[0] >= 0) and np.all(w2 * signs[1] >= 0)
    assert 0 <= nb["accuracy"] <= 100
    assert "Test classifier accuracy" in capsys.readouterr().out
    # snn(x, w1, w2, signs) is the network with |w| * sign (seed 001's tau 5 ms)
    x = nb["spikes_test"][:4]
    direct = tut.snn(x, np.abs(w1) * signs[0], np.abs(w2) * signs[1], tau=5 * tut.ms)
    assert np.array_equal(nb["run_func"](x), direct)
    # a changed parameter changes the run
    wider = notebook(IMPORT, SEED_001_PARAMETERS, "NUM_HIDDEN = 6\n", SEED_001_WORKFLOW)
    assert wider["w1_trained"].shape == (16, 6)


SEED_000_PARAMETERS = """
    set_seed(0)
    DT = .1 * ms
    ANF_PER_EAR = 8
    DURATION = .01 * second
    DURATION_STEPS = int(np.round(DURATION / DT))
    INPUT_SIZE = 2 * ANF_PER_EAR
    f = 250 * Hz                        # seed 000's stimulus_frequency
    NUM_HIDDEN = 5
    DALES_LAW = False
    batch_size = 16
    num_samples = 64
"""

SEED_000_WORKFLOW = """
    ipds_training, spikes_training, _ = random_ipd_input_signal(num_samples)
    ipds_validation, spikes_validation, _ = random_ipd_input_signal(num_samples)
    w1, w2, signs = init_weight_matrices(ie_ratio=0.5, inhibitory="first")
    tau_hidden, tau_output = 0.5 * ms, 0.5 * ms
    w1_trained, w2_trained, signs = train(w1, w2, signs, ipds_training, spikes_training,
                                          ipds_validation, spikes_validation, tau_hidden,
                                          tau_output, lr=0.01, n_epochs=3)
    run_func = lambda x: snn(x, w1_trained, w2_trained, signs, tau_hidden, tau_output, epoch=0)
    output = run_func(spikes_training[:batch_size])
"""


def test_seed_000_250hz_workflow_and_its_dales_law_switch():
    free = notebook(IMPORT, SEED_000_PARAMETERS, SEED_000_WORKFLOW)
    assert free["spikes_training"].shape == (64, 100, 16)     # DT, DURATION, ANF_PER_EAR
    assert free["w1_trained"].shape == (16, 5)
    assert free["output"].shape == (16, 100, 12)
    # without DALES_LAW the signs are ignored: weights of both signs in every row
    assert np.any(free["w1_trained"] * free["signs"][0] < 0)
    # seed 000's "first" rule: the first half of the rows inhibitory
    assert np.all(free["signs"][0][:8] == -1) and np.all(free["signs"][0][8:] == 1)
    dale = notebook(IMPORT, SEED_000_PARAMETERS, "DALES_LAW = True\n", SEED_000_WORKFLOW)
    assert np.all(dale["w1_trained"] * dale["signs"][0] >= 0)
    assert not np.array_equal(dale["output"], free["output"])
