"""The C ABI as Python sees it (spikeloc._abi) agrees with the header it mirrors.

spikeloc.h is read as text: its structs (field names, order, C types) against the NamedTuples,
its codes against the extension's constants and the tables built from them; the extension's
own struct tables are checked through its error messages, which name the field each tuple
position lands in.
"""

import re
import typing
from pathlib import Path

import numpy as np
import pytest

import spikeloc as sl
from spikeloc import _abi, _native
from spikeloc import reference as ref
from spikeloc.reference import eprop as ref_eprop
from spikeloc.reference import general as ref_general
from spikeloc.reference import network as ref_network
from spikeloc.reference import variants as ref_variants

HEADER = (Path(__file__).resolve().parents[2] / "Sources" / "CSpikeLoc" / "include"
          / "spikeloc.h").read_text()


def header_structs() -> dict:
    """{struct name: [(field, C type)]} of the header's typedef structs."""
    structs = {}
    for body, name in re.findall(r"typedef struct \{(.*?)\}\s*(spk_\w+);", HEADER, re.S):
        fields = []
        for decl in re.sub(r"/\*.*?\*/", "", body, flags=re.S).split(";"):
            if decl.strip():
                ctype, names = re.match(r"\s*((?:const\s+)?\w+)\s+(.*)", decl, re.S).groups()
                for field in names.split(","):
                    stars = field.count("*")
                    fields.append((field.replace("*", "").strip(), ctype + " *" * stars))
        structs[name] = fields
    return structs


def header_codes() -> dict:
    """{NAME: value} of the header's integer #defines SPK_NAME."""
    codes = {}
    for name, expr in re.findall(r"#define SPK_(\w+)\s+(.+?)\s*(?:/\*.*)?$", HEADER, re.M):
        expr = re.sub(r"U?INT64_C\((\w+)\)", r"\1", expr).replace("INT64_MAX", str(2**63 - 1))
        codes[name] = eval(expr, {})  # integer arithmetic on literals only
    return codes


def test_every_struct_of_the_header_has_its_named_tuple_with_the_same_fields_and_types():
    structs = header_structs()
    assert set(structs) == set(_abi.STRUCTS)
    for name, fields in structs.items():
        cls = _abi.STRUCTS[name]
        hints = typing.get_type_hints(cls, include_extras=True)
        assert [(f, hints[f].__metadata__[0]) for f in cls._fields] == fields, name


# the argument each struct is passed as, in a call that is valid apart from it
def _calls():
    stim = sl.Stimulus(duration=0.01, anf_per_ear=2, num_classes=2)
    ipd, spikes = stim.generate(2, seed=0, threads=1)
    ev = sl.SpikeEvents.from_dense(spikes)
    ep = sl.EPropNetwork.for_stimulus(stim, n_hidden=3, threads=1)
    deep = sl.SNN.for_stimulus(stim, n_hidden=[3, 2], threads=1, recurrent=True,
                               delays=sl.Delays(max_steps=2))
    T, f32 = stim.steps, (lambda n: np.zeros(n, np.float32))
    snn = sl.SNN.for_stimulus(stim, n_hidden=3, threads=1)
    snn_args = [snn._abi_config(T), ev._abi(), None, 2, snn.w1, snn.w2, f32(2 * stim.num_classes)]
    return {
        "spk_stimulus_params": ("params", 0, _native.stimulus_noisy, [
            stim._params(), ipd, np.zeros(2), 0, 0, 0.0, np.zeros(spikes.size, np.uint8)]),
        "spk_net_config": ("config", 0, _native.snn_forward, snn_args),
        "spk_events": ("events", 0, _native.events_to_dense, [ev._abi(),
                                                              np.zeros(spikes.size, np.uint8)]),
        "spk_eprop_config": ("config", 0, _native.eprop_forward, [
            ep._abi_config(T), ev._abi(), None, 2, None, ep.w_in, ep.w_rec, ep.w_out, ep.b,
            None, f32(2 * stim.num_classes)]),
        "spk_network": ("net", 0, _native.network_forward, [
            deep._general.abi(T), ev._abi(), None, 2, deep._general_params(), deep._signs_flat,
            f32(2 * stim.num_classes)]),
    }


@pytest.mark.parametrize("struct", sorted(_abi.STRUCTS))
def test_the_extension_reads_each_tuple_position_as_the_named_tuples_field(struct):
    prefix, position, fn, args = _calls()[struct]
    fn(*args)  # valid as it is
    value = args[position]
    assert isinstance(value, _abi.STRUCTS[struct])
    for i, field in enumerate(value._fields):
        bad = list(args)
        bad[position] = tuple(value[:i]) + ("not a value",) + tuple(value[i + 1:])
        with pytest.raises(TypeError, match=rf"^{prefix}\.{field} must be "):
            fn(*bad)
    with pytest.raises(TypeError, match=rf"^{prefix} must be a tuple of its {len(value)} fields"):
        fn(*(args[:position] + [tuple(value)[:-1]] + args[position + 1:]))


def test_codes_come_from_the_header():
    codes = header_codes()
    assert {name for name in dir(_native) if name.isupper()} == set(codes)
    for name, value in codes.items():
        assert getattr(_native, name) == value, name
    assert _abi.READOUTS == {"mean": codes["READOUT_MEAN"], "sum": codes["READOUT_SUM"],
                             "max": codes["READOUT_MAX"],
                             "spike_count": codes["READOUT_SPIKE_COUNT"],
                             "window": codes["READOUT_WINDOW"]}
    assert _abi.TIMINGS == {"seeds": codes["TIMING_SEEDS"], "eprop": codes["TIMING_EPROP"]}
    assert _abi.DELAYS == {"none": codes["DELAYS_NONE"], "input": codes["DELAYS_INPUT"],
                           "synapse": codes["DELAYS_SYNAPSE"]}
    assert _abi.RATES == {"none": codes["RATE_NONE"], "upper": codes["RATE_UPPER"],
                          "target": codes["RATE_TARGET"]}
    assert _abi.RESETS == {"delayed": codes["RESET_DELAYED"], "same_step": codes["RESET_SAME_STEP"],
                           "subtractive": codes["RESET_SUBTRACTIVE"], "zero": codes["RESET_ZERO"]}
    assert _abi.SURROGATES == {
        "sigmoid": codes["SURROGATE_SIGMOID"], "fast_sigmoid": codes["SURROGATE_FAST_SIGMOID"],
        "arctan": codes["SURROGATE_ARCTAN"], "piecewise_linear": codes["SURROGATE_PIECEWISE_LINEAR"]}
    assert _abi.EPROP_LOSSES == {"cross_entropy": codes["EPROP_CROSS_ENTROPY"],
                                 "mse": codes["EPROP_MSE"]}
    assert codes["ABI_VERSION"] == _abi.ABI_VERSION == _native.abi_version() == sl.abi_version()
    for name in ("WORD_IPD", "WORD_PHASE", "WORD_EPOCH_PHASE", "WORD_DELAY_NOISE", "SET_INDEX"):
        assert getattr(sl, name) == getattr(_abi, name) == codes[name], name


def test_the_reference_keeps_its_own_copies_of_the_codes_and_they_agree():
    """The NumPy reference does not import the code it checks; its copies must agree."""
    for name in ("WORD_IPD", "WORD_PHASE", "WORD_EPOCH_PHASE", "WORD_DELAY_NOISE", "SET_INDEX"):
        assert getattr(ref, name) == getattr(_abi, name), name
    assert ref_network.READOUTS == ("mean", "sum", "max")
    assert all(_abi.READOUTS[r] == i for i, r in enumerate(ref_variants.VARIANT_READOUTS))
    assert ref_general.HEADS == tuple(_abi.READOUTS)
    assert ref_general.TIMINGS == tuple(_abi.TIMINGS)
    assert ref_general.WINDOW_LOSSES == tuple(_abi.EPROP_LOSSES)
    assert ref_variants.VARIANT_READOUTS == tuple(_abi.READOUTS)[:4]
    assert ref_variants.RESETS == tuple(_abi.RESETS)
    assert ref_variants.SURROGATES == tuple(_abi.SURROGATES)
    assert ref_eprop.LOSSES == tuple(_abi.EPROP_LOSSES)
    assert sl.variants.RESETS is _abi.RESETS and sl.variants.SURROGATES is _abi.SURROGATES
    assert sl.eprop.LOSSES is _abi.EPROP_LOSSES


def test_models_pass_named_structs(small_data):
    stim, ipd, spikes, ev, labels = small_data
    T = stim.steps
    snn = sl.SNN.for_stimulus(stim, n_hidden=3, threads=1)
    variant = sl.SNN.for_stimulus(stim, n_hidden=3, threads=1, reset="subtractive")
    mo = sl.MembraneOnly.for_stimulus(stim, threads=1)
    ep = sl.EPropNetwork.for_stimulus(stim, n_hidden=3, threads=1)
    deep = sl.SNN.for_stimulus(stim, n_hidden=[3, 2], threads=1, recurrent=True,
                               delays=sl.Delays(max_steps=2))
    assert type(stim._params()) is _abi.StimulusParams
    assert type(ev._abi()) is _abi.Events
    for model in (snn, mo):
        assert type(model._abi_config(T)) is _abi.NetConfig
    assert type(ep._abi_config(T)) is _abi.EPropConfig
    # a research variant runs on the general network (spk_network), the tutorial's on its own
    assert snn._general is None
    assert type(variant._general.abi(T)) is _abi.Network
    assert variant._general.abi(T).reset == _abi.RESETS["subtractive"]


def test_the_extension_is_the_limited_api_build():
    assert _native.__file__.endswith(".abi3.so")


def test_an_unknown_readout_is_refused_naming_every_readout():
    with pytest.raises(ValueError) as info:
        sl.SNN(4, 3, 2, dt=1e-3, tau_hidden=0.01, tau_output=0.01, readout="bogus")
    for readout in _abi.READOUTS:  # all but the general network's e-prop head "window"
        assert (repr(readout) in str(info.value)) == (readout != "window")
    with pytest.raises(ValueError) as info:  # the membrane-only network has no spiking output
        sl.MembraneOnly(4, 2, dt=1e-3, tau=0.01, readout="spike_count")
    assert all(repr(r) in str(info.value) for r in ("mean", "sum", "max"))
    assert "spike_count" not in str(info.value).split("got")[0]


def test_reading_the_dropout_seed_does_not_advance_the_dropout_masks(small_data):
    stim, ipd, spikes, ev, labels = small_data
    net = sl.SNN.for_stimulus(stim, n_hidden=3, threads=1, dropout=0.3)
    first = net._dropout_seed()
    assert net._dropout_seed() == first  # no hidden side effect
    assert net._general.abi(stim.steps).dropout_seed == 0  # forward passes: no dropout
    net.loss_and_grad(ev, labels)  # a training step draws its masks, then advances
    second = net._dropout_seed()
    assert second != first
    net.forward(ev)
    net.logits(ev)
    assert net._dropout_seed() == second
