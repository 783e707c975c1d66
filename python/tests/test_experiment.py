"""spikeloc.Experiment: experiment files, presets, validation, runs, sweeps, run folders."""

import functools
import json
import os
import pickle

import numpy as np
import pytest

import spikeloc as sl
from spikeloc import _toml
from spikeloc.experiment import (DataShape, Experiment, ExperimentError, parse_override,
                                 preset_text, presets, run_job)

#: Sizes that make any IPD preset run in a fraction of a second (a "small mode").
SMALL = {"stimulus.anf_per_ear": 8, "stimulus.duration": 0.02, "training.n_train": 96,
         "training.batch_size": 32, "training.epochs": 2, "evaluation.n_test": 64}


def small(exp: Experiment) -> Experiment:
    """``exp`` shrunk: fewer fibres, steps, samples, epochs and units; a validation set as
    small as the rest; sweeps with one repeat."""
    cfg = exp.config
    changes = dict(SMALL)
    if cfg["stimulus"]["dt"] < 1e-3:          # the 250 Hz study: 200 steps of 0.1 ms
        changes["stimulus.duration"] = 0.02
    if cfg["training"]["n_validation"]:
        changes["training.n_validation"] = 64
    if "n_hidden" in cfg["model"]:
        changes["model.n_hidden"] = min(cfg["model"]["n_hidden"], 8)
    if exp.has_sweep:
        changes["sweep.repeats"] = 1
    return exp.replace(changes)


IPD_PRESETS = [p for p in presets() if p != "eprop_nmnist"]


def test_the_presets_are_shipped():
    assert set(presets()) == {"tutorial", "membrane_only", "250hz", "250hz_tau_grid",
                              "envelope_power", "dale", "learnable_tau", "eprop",
                              "eprop_nmnist"}
    for name in presets():
        text = preset_text(name)
        assert text.startswith("#") and f'name = "{name}"' in text


@pytest.mark.parametrize("name", presets())
def test_presets_load_validate_and_round_trip(name):
    exp = Experiment.preset(name)
    assert exp.name == name and exp.config["description"]
    text = str(exp)
    # the resolved TOML lists every key of every section, and reads back to the same thing
    again = Experiment.from_toml(text)
    assert again == exp and str(again) == text
    assert str(Experiment.load(name)) == text


@pytest.mark.parametrize("name", IPD_PRESETS)
def test_presets_run_in_small_mode(name):
    exp = small(Experiment.preset(name))
    result = exp.run(progress=False, threads=1)
    assert result.history.epochs == 2 and result.status == "completed"
    for key in ("train_accuracy", "test_accuracy", "train_error_deg", "test_error_deg",
                "final_loss"):
        assert np.isfinite(result.metrics[key]), key
    assert 0 <= result.metrics["test_accuracy"] <= 1
    assert result.test.n == 64 and result.train.n == 96
    # the run is a function of the experiment: again, with other threads, bit for bit
    assert exp.run(progress=False, threads=2).metrics == result.metrics


def test_presets_set_what_the_seeds_set():
    hz = Experiment.preset("250hz").config
    assert hz["stimulus"]["dt"] == 1e-4 and hz["stimulus"]["freq"] == 250.0
    assert (hz["model"]["n_hidden"], hz["model"]["tau_hidden"], hz["model"]["tau_output"]) == \
        (5, 5e-4, 5e-4)
    assert hz["training"]["epochs"] == 50 and hz["training"]["n_validation"] == 4096
    dale = Experiment.preset("dale")
    assert dale.config["model"]["dale"] == {"ie_ratio": 0.5, "inhibitory": "random",
                                            "layers": ["w1", "w2"], "excitatory_only": []}
    model = dale.model()
    assert model.dale == sl.Dale(0.5, inhibitory="random")
    grid = Experiment.preset("250hz_tau_grid").config["sweep"]["grid"]
    assert set(grid) == {"model.tau_hidden", "model.tau_output"} and len(
        grid["model.tau_hidden"]) * len(grid["model.tau_output"]) == 18
    assert Experiment.preset("envelope_power").config["sweep"]["grid"][
        "stimulus.envelope_power"][-1] == 100.0
    nm = Experiment.preset("eprop_nmnist").config
    assert nm["model"]["conventions"] == "nest" and nm["training"]["lr"] == 5e-3
    assert nm["model"]["reg_c"] == 2 / 300 and nm["model"]["n_hidden"] == 150
    assert (nm["model"]["sparsity_in"], nm["model"]["sparsity_rec"]) == (0.75, 0.99)


def test_defaults_come_from_the_api():
    exp = Experiment({})
    cfg = exp.config
    assert cfg["stimulus"] == {k: getattr(sl.Stimulus(), k) for k in cfg["stimulus"]}
    assert cfg["model"]["class"] == "SNN" and cfg["model"]["n_hidden"] == 100
    assert cfg["model"]["init"] == "seeds" and cfg["model"]["tau_output"] is None
    assert cfg["training"]["lr"] == 0.01 and cfg["training"]["optimizer"] == "adam"
    assert cfg["stimulus"]["phase_offset"] == "per_sample"
    # keys whose default is None are listed as comments
    assert "# tau_output = (not set)" in str(exp)
    assert repr(exp).startswith("Experiment(") and "SNN on IPD stimulus" in repr(exp)


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize("change, fragments", [
    ({"model.n_hiden": 3}, ["[model]", "'n_hiden'", "did you mean 'n_hidden'"]),
    ({"stimulus.envelope_pow": 3}, ["[stimulus]", "did you mean 'envelope_power'"]),
    ({"training.epoch": 3}, ["[training]", "did you mean 'epochs'"]),
    ({"evaluation.n_tests": 3}, ["[evaluation]", "did you mean 'n_test'"]),
    ({"modle.n_hidden": 3}, ["top-level", "did you mean 'model'"]),
    ({"model.dale.ie_rato": 0.3}, ["[model.dale]", "did you mean 'ie_ratio'"]),
    ({"model.class": "SNNN"}, ["[model] class", "did you mean 'SNN'"]),
    ({"model.n_hidden": 0}, ["[model]", "n_hidden must be >= 1"]),
    ({"model.tau_hidden": -0.02}, ["[model]", "tau_hidden must be > 0"]),
    ({"model.readout": "median"}, ["[model]", "readout must be one of"]),
    ({"model.init": "xavier"}, ["[model]", "init must be one of"]),
    ({"stimulus.dt": 0.0}, ["[stimulus]", "dt must be > 0"]),
    ({"stimulus.phase_offset": "sometimes"}, ["[stimulus]", "phase_offset must be"]),
    ({"training.epochs": -1}, ["[training]", "epochs must be >= 0"]),
    ({"training.epochs": 2.5}, ["[training]", "epochs must be an int"]),
    ({"training.lr": -0.1}, ["[training]", "lr must be >= 0"]),
    ({"training.optimizer": "adagrad"}, ["[training]", "optimizer must be"]),
    ({"training.n_train": 10}, ["[training]", "smaller than batch_size"]),
    ({"training.patience": 2}, ["[training]", "need a validation set"]),
    ({"evaluation.n_test": 0}, ["[evaluation]", "n_test must be >= 1"]),
    ({"evaluation.silence": [100]}, ["[evaluation]", "silence must hold"]),
    ({"seed": -1}, ["seed must be an integer"]),
    ({"model.dale.ie_ratio": 1.5}, ["[model]", "ie_ratio must be in [0, 1]"]),
])
def test_bad_keys_and_values_name_section_and_key(change, fragments):
    with pytest.raises(ExperimentError) as info:
        Experiment.preset("tutorial").replace(change)
    message = str(info.value)
    assert message.startswith("preset 'tutorial'")
    for fragment in fragments:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize("sweep, fragment", [
    ({"grid": {"model.n_hidden": []}}, "is empty"),
    ({"grid": {"model.nhidden": [1, 2]}}, "did you mean 'n_hidden'"),
    ({"grid": {"n_hidden": [1, 2]}}, "must be 'section.key'"),
    ({"grid": {"model.n_hidden": [5, -1]}}, "n_hidden must be >= 1"),
    ({"grid": {"model.n_hidden": [5]}, "repeats": 0}, "repeats must be >= 1"),
    ({"grid": {"model.n_hidden": [5]}, "scheduler": 8786}, "scheduler must be"),
])
def test_bad_sweeps_fail_before_running(sweep, fragment):
    raw = _toml.loads(preset_text("tutorial"))
    raw["sweep"] = sweep
    with pytest.raises(ExperimentError, match="sweep|n_hidden") as info:
        Experiment(raw)
    assert fragment in str(info.value)


def test_files_that_are_not_experiments(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nn_hidden = 3\n")
    with pytest.raises(ExperimentError, match="bad.toml: not valid TOML"):
        Experiment.from_file(bad)
    with pytest.raises(ExperimentError, match="cannot read"):
        Experiment.from_file(tmp_path / "missing.toml")
    with pytest.raises(ExperimentError, match="is a directory"):
        Experiment.from_file(tmp_path)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ExperimentError, match="not a UTF-8"):
        Experiment.from_file(binary)
    with pytest.raises(ExperimentError, match="did you mean 'tutorial'"):
        Experiment.preset("tutorail")
    with pytest.raises(ExperimentError, match="either \\[stimulus\\]"):
        Experiment({"stimulus": {}, "nmnist": {}})


def test_parse_override():
    assert parse_override("model.n_hidden=30") == (["model", "n_hidden"], 30)
    assert parse_override("training.lr=1e-3") == (["training", "lr"], 1e-3)
    assert parse_override("model.readout=sum") == (["model", "readout"], "sum")
    assert parse_override('model.readout="sum"') == (["model", "readout"], "sum")
    assert parse_override("model.learn_tau=true") == (["model", "learn_tau"], True)
    assert parse_override("evaluation.silence=[1, 2]") == (["evaluation", "silence"], [1, 2])
    assert parse_override("model.dale.ie_ratio=0.3") == (["model", "dale", "ie_ratio"], 0.3)
    for bad in ("model.n_hidden", "n_hidden=3", ".x=1", "model.=1"):
        with pytest.raises(ExperimentError, match="section.key=value"):
            parse_override(bad)


def test_replace_and_the_file_agree(tmp_path):
    exp = Experiment.preset("tutorial").replace(["model.n_hidden=30", "training.lr=0.005",
                                                 "model.dale.ie_ratio=0.25"])
    assert exp.config["model"]["n_hidden"] == 30 and exp.config["training"]["lr"] == 0.005
    assert exp.config["model"]["dale"]["ie_ratio"] == 0.25
    path = exp.save(tmp_path / "exp.toml")
    assert Experiment.from_file(path) == exp == Experiment.load(str(path))
    assert exp != Experiment.preset("tutorial")


# ---------------------------------------------------------------------------- data and seeds


def test_data_sets_never_share_samples():
    exp = small(Experiment.preset("250hz"))
    data = exp.data(threads=1)
    assert set(data) == {"train", "validation", "test"}
    ipds = [data[k].ipd for k in ("train", "validation", "test")]
    # different streams: no IPD (a 53-bit uniform) of one set appears in another
    assert not set(ipds[0]) & set(ipds[1]) and not set(ipds[0]) & set(ipds[2])
    assert not set(ipds[1]) & set(ipds[2])
    dense = {k: data[k].spikes.to_dense() for k in data}
    assert not np.array_equal(dense["train"][:64], dense["test"][:64])
    # the seed moves every set
    other = exp.replace({"seed": 1}).data(threads=1, sets=("test",))["test"]
    assert not np.array_equal(other.ipd, data["test"].ipd)
    # and the training set is what the stimulus gives for stream `seed`
    ipd, spikes = exp.stimulus().generate(96, seed=0)
    assert np.array_equal(ipd, data["train"].ipd)
    assert np.array_equal(spikes, dense["train"])


def test_model_is_built_as_the_api_builds_it():
    exp = Experiment.preset("learnable_tau").replace({"seed": 3})
    model = exp.model()
    direct = sl.SNN.for_stimulus(sl.Stimulus(), n_hidden=30, tau_hidden=2e-3, readout="mean",
                                 learn_tau=True, tau_sigma=1e-4, tau_min=1e-3,
                                 tau_var_penalty=0.1, seed=3)
    for k, v in direct.parameters().items():
        assert np.array_equal(model.parameters()[k], v), k
    assert model.config == direct.config


# ---------------------------------------------------------------------------- sweeps


def test_sweep_of_an_experiment(tmp_path):
    exp = small(Experiment.preset("envelope_power")).replace(
        {"sweep.grid": {"stimulus.envelope_power": [1.0, 8.0]}, "sweep.repeats": 2})
    results = tmp_path / "results.jsonl"
    table = exp.sweep(results=results, progress=False, workers=2)
    assert len(table) == 4 and not table.failed
    assert table.params == ["stimulus.envelope_power"]
    # each job is the experiment at that point, with the sweep's seed
    first = table[0]
    again = exp.replace({"stimulus.envelope_power": 1.0, "seed": first["seed"]})
    direct = again.without_sweep().run(progress=False).metrics
    assert {k: first[k] for k in direct} == direct
    # resuming from the results file runs nothing again
    assert exp.sweep(results=results, progress=False).without_timing() == \
        table.without_timing()
    assert len(results.read_text().splitlines()) == 4
    # more repeats resume into the same file; another experiment may not use it
    assert len(exp.replace({"sweep.repeats": 3}).sweep(results=results, progress=False)) == 6
    with pytest.raises(ExperimentError, match="holds the results of another experiment"):
        exp.replace({"training.lr": 0.5}).sweep(results=results, progress=False)
    text = str(table.summary("test_accuracy"))
    assert "stimulus.envelope_power" in text and "test_accuracy" in text and "+/-" in text
    # jobs travel to process pools and Dask workers
    job = functools.partial(run_job, exp.without_sweep().config)
    assert pickle.loads(pickle.dumps(job)).args == job.args


def test_list_grids_and_nested_grid_tables():
    raw = _toml.loads(preset_text("dale"))
    exp = small(Experiment(raw))
    grid = exp.config["sweep"]["grid"]
    assert grid[1] == {"model.dale.excitatory_only": ["w1"]} and len(grid) == 4
    nested = Experiment.from_toml('[sweep.grid]\nmodel.n_hidden = [3, 4]\n')
    assert nested.config["sweep"]["grid"] == {"model.n_hidden": [3, 4]}
    table = exp.replace({"sweep.grid": [{"model.dale.excitatory_only": ["w1"]},
                                        {"model.dale.layers": []}]}).sweep(progress=False)
    assert [r["status"] for r in table] == ["ok", "ok"]


# ---------------------------------------------------------------------------- N-MNIST


def nmnist_folder(root, per_label=2):
    """A tiny N-MNIST folder: each digit's events sit in its own band of rows."""
    from test_nmnist import encode
    rng = np.random.default_rng(0)
    for split in ("Train", "Test"):
        for label in range(10):
            folder = os.path.join(root, split, str(label))
            os.makedirs(folder, exist_ok=True)
            for k in range(per_label):
                n = 200
                x, y = rng.integers(0, 34, n), 3 * label + rng.integers(0, 3, n)
                t = np.sort(rng.integers(0, 336040, n))
                with open(os.path.join(folder, f"{k:03d}.bin"), "wb") as f:
                    f.write(encode(x, y, t, rng.integers(0, 2, n)))
    return root


def test_nmnist_experiment(tmp_path):
    exp = Experiment.preset("eprop_nmnist")
    with pytest.raises(ExperimentError, match=r"\[nmnist\] root: give the N-MNIST"):
        exp.run()
    root = nmnist_folder(str(tmp_path / "nmnist"))
    small_exp = exp.replace({"nmnist.root": root, "nmnist.steps": 30, "nmnist.max_per_class": 2,
                             "model.window": 5, "model.n_hidden": 20, "training.epochs": 2})
    shape = small_exp._shape()
    assert shape == DataShape(2312, 10, 1e-3, 30)
    result = small_exp.run(progress=False, threads=1)
    assert result.stimulus is None and result.test is None
    assert set(result.metrics) == {"train_accuracy", "test_accuracy", "final_loss"}
    assert len(result.data["train"]) == 20 and result.history.epochs == 2
    assert np.isfinite(result.metrics["final_loss"])
    with pytest.raises(ExperimentError, match="does not exist"):
        exp.replace({"nmnist.root": str(tmp_path / "nowhere")}).run()


# ---------------------------------------------------------------------------- run folders


def test_run_folder_is_complete_and_reproducible(tmp_path):
    exp = small(Experiment.preset("tutorial"))
    result = exp.run(progress=False)
    folder = result.save(tmp_path / "run")
    names = set(os.listdir(folder))
    assert {"config.toml", "status.json", "metrics.json", "environment.json", "history.json",
            "history.csv", "model.npz", "loss.png", "test_ipd.png"} <= names
    assert not [n for n in os.listdir(tmp_path) if "partial" in n]   # no staging left
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics == result.metrics
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["status"] == "completed" and "test accuracy" in status["summary"]
    env = json.loads((tmp_path / "run" / "environment.json").read_text())
    assert env["spikeloc"] == sl.__version__ and env["numpy"] == np.__version__
    assert env["threads"] >= 1 and env["cpu"]
    again = Experiment.from_file(tmp_path / "run" / "config.toml").run(progress=False)
    assert again.metrics == metrics
    model = sl.load(tmp_path / "run" / "model.npz")
    assert np.array_equal(model.w1, result.model.w1)
    with pytest.raises(ValueError, match="not empty"):
        result.save(tmp_path / "run")


def test_an_eprop_run_folder_reloads_and_evaluates_the_same(tmp_path, capsys):
    from spikeloc.__main__ import main
    result = small(Experiment.preset("eprop")).run(progress=False)
    folder = result.save(tmp_path / "eprop")
    assert main(["evaluate", folder]) == 0
    assert "identical to metrics.json" in capsys.readouterr().out
