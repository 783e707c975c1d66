"""Data options of the follow-ups (issue 4 item 8): phase-delay noise and the per-epoch phase
offset, against the NumPy reference, plus train(regenerate=...).

Spike parity follows the stimulus fixtures' rule: a configuration is redrawn until every
uniform lies at least 1e-6 from its probability (the kernel computes p in float32), and then
every spike must be identical.
"""

import dataclasses

import numpy as np
import pytest

import spikeloc as sl
from spikeloc import _native
from spikeloc import reference as ref
from spikeloc.reference import rng as ref_rng
from spikeloc.reference import stim as ref_stim

MARGIN = 1e-6


def stim_params(s: sl.Stimulus):
    return ref_stim.StimulusParams(dt=s.dt, steps=s.steps, freq=s.freq,
                                   anf_per_ear=s.anf_per_ear, rate_max=s.rate_max,
                                   envelope_power=s.envelope_power,
                                   null_phase_delays=s.null_phase_delays)


# ---------------------------------------------------------------------------- constants, RNG

def test_header_constants_agree():
    assert _native.WORD_EPOCH_PHASE == sl.WORD_EPOCH_PHASE == ref.WORD_EPOCH_PHASE
    assert _native.WORD_DELAY_NOISE == sl.WORD_DELAY_NOISE == ref.WORD_DELAY_NOISE
    # distinct from the words already in use (IPD, phase) and far above any stimulus word
    words = {sl.WORD_IPD, sl.WORD_PHASE, sl.WORD_EPOCH_PHASE, sl.WORD_DELAY_NOISE}
    assert len(words) == 4
    assert min(sl.WORD_EPOCH_PHASE, sl.WORD_DELAY_NOISE) > 2**61


def test_delay_noise_normals_are_standard_normal():
    z = ref.delay_noise_normals(12345, np.arange(400), 500).reshape(-1)   # 200000 draws
    se = 1 / np.sqrt(z.size)
    assert abs(z.mean()) < 5 * se
    assert abs(z.std() - 1) < 5 * se * np.sqrt(0.5)
    assert abs(np.mean(np.abs(z) < 1) - 0.682689) < 5 * np.sqrt(0.68 * 0.32 / z.size)


# ---------------------------------------------------------------------------- noisy stimulus

def noisy_case(seed0, **kw):
    """A stimulus, IPDs, phases and a seed whose uniforms all lie MARGIN from p."""
    stim = sl.Stimulus(**kw)
    params = stim_params(stim)
    for seed in range(seed0, seed0 + 500):
        n = 5
        ipd = ref_stim.draw_ipd(n, seed, 3)
        phase = ref_stim.draw_phase_per_sample(n, seed, 3)
        spikes, U, p = ref_stim.stimulus(ipd, phase, params, seed, 3,
                                         delay_noise=stim.phase_delay_noise)
        if np.min(np.abs(U - p)) >= MARGIN:
            return stim, seed, ipd, phase, spikes, U, p
    raise AssertionError("no unambiguous stimulus seed")


NOISY_CONFIGS = [
    dict(duration=0.03, anf_per_ear=13, phase_delay_noise=0.3, phase_offset="per_sample"),
    dict(duration=0.02, anf_per_ear=8, phase_delay_noise=1.5, phase_offset="per_sample"),
    dict(dt=1e-4, duration=0.005, freq=250.0, anf_per_ear=5, phase_delay_noise=0.05,
         envelope_power=3.0, phase_offset="per_sample"),
    dict(duration=0.02, anf_per_ear=9, phase_delay_noise=0.7, null_phase_delays=True,
         phase_offset="per_sample", envelope_power=1.5),
]


@pytest.mark.parametrize("i", range(len(NOISY_CONFIGS)))
def test_noisy_stimulus_matches_reference(i):
    stim, seed, ipd, phase, spikes, U, p = noisy_case(100 * i, **NOISY_CONFIGS[i])
    assert 0 < spikes.mean() < 1
    for threads in (1, 2, 4):
        native = stim.spikes_for(ipd, seed, 3, threads=threads)
        assert np.array_equal(native, spikes), (i, threads)
    # the noise matters: without it the same uniforms give other spikes
    plain = stim.replace(phase_delay_noise=0.0).spikes_for(ipd, seed, 3, threads=1)
    assert not np.array_equal(plain, spikes)
    # and the spike uniforms are those of the plain stimulus (only p moved)
    Up = ref_rng.stimulus_uniforms(seed, 3 + np.arange(len(ipd)), U[0].size).reshape(U.shape)
    assert np.array_equal(U, Up)


def test_noisy_stimulus_independent_of_chunking():
    stim = sl.Stimulus(duration=0.02, anf_per_ear=11, phase_delay_noise=0.4,
                       phase_offset="per_sample")
    ipd, spikes = stim.generate(10, seed=4, threads=3)
    ipd_a, a = stim.generate(6, seed=4, threads=1)
    ipd_b, b = stim.generate(4, seed=4, first_index=6, threads=2)
    assert np.array_equal(np.concatenate([ipd_a, ipd_b]), ipd)
    assert np.array_equal(np.concatenate([a, b]), spikes)


def test_noise_moves_phases_not_mean_rates():
    """Noise on the delays shifts each fibre's phase, not its mean rate: over a whole number of
    cycles the mean probability is the same with and without noise (the envelope mean does not
    depend on the phase), while the per-step probabilities change."""
    params = ref_stim.StimulusParams(dt=1e-3, steps=100, anf_per_ear=20)
    ipd = ref_stim.draw_ipd(3, 1)
    offsets = ref_stim.delay_noise_offsets(3, 1, 0, params.n_in, 0.8)
    p_noisy = ref_stim.spike_probability(ipd, 0.25, params, offsets)
    p_plain = ref_stim.spike_probability(ipd, 0.25, params)
    np.testing.assert_allclose(p_noisy.mean(axis=1), p_plain.mean(axis=1), rtol=1e-12)
    assert np.max(np.abs(p_noisy - p_plain)) > 0.05


def test_noisy_stimulus_bad_input():
    with pytest.raises(ValueError, match="phase_delay_noise"):
        sl.Stimulus(phase_delay_noise=-0.1)
    with pytest.raises(ValueError, match="phase_delay_noise"):
        sl.Stimulus(phase_delay_noise=float("nan"))
    with pytest.raises(TypeError, match="phase_delay_noise"):
        sl.Stimulus(phase_delay_noise="0.1")
    s = sl.Stimulus(anf_per_ear=4, duration=0.01)
    out = np.empty((1, s.steps, s.n_in), dtype=np.uint8)
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="delay_noise"):
            _native.stimulus_noisy(s._params(), np.zeros(1), np.zeros(1), 0, 0, bad, out)
    with pytest.raises(ValueError, match="spikes"):
        _native.stimulus_noisy(s._params(), np.zeros(2), np.zeros(2), 0, 0, 0.1, out)


def test_stimulus_with_new_fields_round_trips_as_dict():
    s = sl.Stimulus(phase_offset="per_epoch", phase_delay_noise=0.25)
    assert sl.Stimulus(**dataclasses.asdict(s)) == s
    assert sl.Stimulus().phase_delay_noise == 0.0


# ---------------------------------------------------------------------------- per-epoch phase

def test_per_epoch_phase_matches_reference():
    stim = sl.Stimulus(phase_offset="per_epoch")
    for seed in (0, 5, 2**63):
        values = [stim.phases(3, seed, epoch=e) for e in range(4)]
        for e, v in enumerate(values):
            expected = ref.draw_phase_per_epoch(seed, e)
            assert np.array_equal(v, np.full(3, expected))     # one value for the whole set
            assert 0 <= expected < 1
        assert len({float(v[0]) for v in values}) == 4          # redrawn each epoch
    assert stim.phases(2, 1, epoch=3)[0] != sl.Stimulus().phases(2, 1)[0]
    with pytest.raises(ValueError, match="epoch"):
        stim.phases(2, 1, epoch=-1)
    with pytest.raises(ValueError, match="per_epoch"):
        sl.Stimulus(phase_offset="per_epochs")


def test_per_epoch_spikes_keep_each_samples_draws():
    stim = sl.Stimulus(duration=0.05, anf_per_ear=12, phase_offset="per_epoch",
                       phase_delay_noise=0.2)
    ipd, spikes0 = stim.generate(8, seed=9, first_index=2)
    regenerate = stim.regenerator(ipd, seed=9, first_index=2)
    assert np.array_equal(regenerate(0), spikes0)
    s3 = regenerate(3)
    assert not np.array_equal(s3, spikes0)
    # epoch 3 is the same samples at the fixed phase of epoch 3: IPDs, uniforms, delay noise
    fixed = stim.replace(phase_offset=ref.draw_phase_per_epoch(9, 3))
    assert np.array_equal(s3, fixed.spikes_for(ipd, 9, 2))
    assert np.array_equal(s3, stim.spikes_for(ipd, 9, 2, epoch=3))
    # with a flat envelope (k = 0) the phase does not matter: every epoch is the same spikes
    flat = stim.replace(envelope_power=0.0)
    regen_flat = flat.regenerator(ipd, seed=9, first_index=2)
    assert np.array_equal(regen_flat(0), regen_flat(5))
    # the regenerator keeps its own copy of the IPDs
    ipd[:] = 0
    assert np.array_equal(regenerate(3), s3)


def test_per_epoch_reference_parity():
    stim = sl.Stimulus(duration=0.03, anf_per_ear=10, phase_offset="per_epoch",
                       phase_delay_noise=0.3)
    params = stim_params(stim)
    checked = 0
    for seed in range(50):
        ipd = ref_stim.draw_ipd(4, seed)
        phase = np.full(4, ref.draw_phase_per_epoch(seed, 2))
        spikes, U, p = ref_stim.stimulus(ipd, phase, params, seed, 0, delay_noise=0.3)
        if np.min(np.abs(U - p)) < MARGIN:
            continue
        assert np.array_equal(stim.regenerator(ipd, seed)(2), spikes)
        checked += 1
        if checked == 3:
            break
    assert checked == 3


# ---------------------------------------------------------------------------- train(regenerate)

def small_problem():
    stim = sl.Stimulus(duration=0.02, anf_per_ear=8, phase_offset="per_epoch")
    ipd, spikes = stim.generate(64, seed=1)
    return stim, ipd, spikes


def test_train_calls_regenerate_for_epochs_after_the_first():
    stim, ipd, spikes = small_problem()
    calls = []
    base = stim.regenerator(ipd, seed=1)

    def regenerate(epoch):
        calls.append(epoch)
        return base(epoch)

    net = sl.SNN.for_stimulus(stim, n_hidden=6, seed=0)
    h = sl.train(net, ipd, spikes, stimulus=stim, epochs=4, batch_size=16, progress=False,
                 regenerate=regenerate)
    assert calls == [1, 2, 3]
    assert h.epochs == 4

    # identical inputs every epoch give the run without regenerate, bit for bit
    net_a = sl.SNN.for_stimulus(stim, n_hidden=6, seed=0)
    net_b = sl.SNN.for_stimulus(stim, n_hidden=6, seed=0)
    ha = sl.train(net_a, ipd, spikes, stimulus=stim, epochs=3, batch_size=16, progress=False)
    hb = sl.train(net_b, ipd, spikes, stimulus=stim, epochs=3, batch_size=16, progress=False,
                  regenerate=lambda e: spikes)
    assert ha.train_loss == hb.train_loss
    assert np.array_equal(net_a.w1, net_b.w1)
    # and new phases each epoch change the run after the first epoch
    assert h.train_loss[0] == ha.train_loss[0]
    assert h.train_loss[1:3] != ha.train_loss[1:3]


def test_train_regenerate_errors():
    stim, ipd, spikes = small_problem()
    net = sl.SNN.for_stimulus(stim, n_hidden=4)
    with pytest.raises(TypeError, match="regenerate"):
        sl.train(net, ipd, spikes, stimulus=stim, epochs=2, progress=False, regenerate=3)
    with pytest.raises(ValueError, match=r"regenerate\(1\)"):
        sl.train(net, ipd, spikes, stimulus=stim, epochs=2, batch_size=16, progress=False,
                 regenerate=lambda e: spikes[:32])
