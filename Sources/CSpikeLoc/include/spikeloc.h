/*
 * spikeloc.h: the C ABI of the spikeloc Swift kernels.
 *
 * Conventions (see docs/MODEL.md, "What spikeloc computes", for the mathematics):
 *   - Every entry point returns SPK_OK (0) or a negative status code and, on failure, stores a
 *     message retrievable with spk_last_error() (thread-local, valid until the next failing
 *     call on the same thread). No entry point aborts on bad input.
 *   - Arrays are C-contiguous. Shapes are given in the comments: B batch, T time steps,
 *     N_in inputs, N_h hidden units, C classes. Times are in seconds, rates in Hz.
 *   - `threads`: number of worker threads; 0 means one per online CPU. Results are
 *     bit-identical for every thread count (work is split into fixed chunks of samples and
 *     reduced in index order).
 *   - Optional output pointers may be NULL.
 */
#ifndef SPIKELOC_H
#define SPIKELOC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ------------------------------------------------------------------ */
#define SPK_OK 0
#define SPK_ERR_VALUE (-1)  /* bad value or shape (Python: ValueError) */
#define SPK_ERR_TYPE (-2)   /* missing/NULL required argument (Python: TypeError) */
#define SPK_ERR_MEMORY (-3) /* allocation failed or size overflow (Python: MemoryError) */

/* Message of the last failing call on this thread ("" if none). */
const char *spk_last_error(void);
/* Used by the kernels to store the message; copies at most 1023 bytes. */
void spk_set_error(const char *message);

/* ABI version: bumped whenever a struct or signature below changes. spk_abi_version() is the
 * version of the compiled kernels; a caller compares it with the header's SPK_ABI_VERSION. */
#define SPK_ABI_VERSION 5
int32_t spk_abi_version(void);
/* Number of worker threads used for threads == 0. */
int32_t spk_default_threads(void);
/* The CPU variant these kernels were built for: "baseline" (any x86-64), "avx2" (Haswell),
 * "avx512" (skylake-avx512) or "generic" (another architecture); a static string. */
const char *spk_kernel_variant(void);

/* ---- counter-based random numbers -------------------------------------------------- */
/*
 * SplitMix64 mixing function mix64 and GAMMA = 0x9E3779B97F4A7C15 (all arithmetic mod 2^64):
 *   key(seed, index)  = mix64(mix64(seed) ^ (index * GAMMA))
 *   word(key, w)      = mix64(key + (w + 1) * GAMMA)
 * Stimulus element e (= step * N_in + input) of sample `index` uses the 24-bit integer
 *   m = e even ? word(key, e/2) >> 40 : (word(key, e/2) >> 8) & 0xFFFFFF
 * and U = m / 2^24; the input spikes iff U < p.
 * Double-precision uniforms: uniform53(key, w) = (word(key, w) >> 11) / 2^53 in [0, 1).
 */
#define SPK_WORD_IPD (UINT64_C(1) << 62)          /* word of a sample's IPD draw */
#define SPK_WORD_PHASE ((UINT64_C(1) << 62) + 1)  /* word of a sample's phase-offset draw */
#define SPK_SET_INDEX (INT64_MAX)                 /* stream index of a per-set draw */

/* out[b] = uniform53(key(seed, first_index + b), word), b < n. first_index + b must not overflow. */
int32_t spk_uniform53(uint64_t seed, int64_t first_index, uint64_t word, int64_t n, double *out);
/* out[e] = U of stimulus element e of sample `index`, e < n (float32, exact). A hook for the
 * Swift tests (Python's reference draws the same numbers: spikeloc.reference.rng). */
int32_t spk_stimulus_uniforms(uint64_t seed, int64_t index, int64_t n, float *out);

/* ---- IPD stimulus (MODEL.md section 1) --------------------------------------------- */
typedef struct {
    double dt;                 /* time step (s), > 0 */
    int64_t steps;             /* T >= 1 */
    double freq;               /* tone frequency f (Hz), finite */
    int64_t anf_per_ear;       /* N_a >= 1; N_in = 2 N_a */
    double rate_max;           /* peak Poisson rate (Hz), >= 0 */
    double envelope_power;     /* k >= 0 */
    int32_t null_phase_delays; /* nonzero: psi_j = 0 for all fibres (control) */
} spk_stimulus_params;

/*
 * spikes[b, n, i] (uint8 0/1, shape n x T x 2 N_a) for sample b with IPD ipd[b] (rad, finite)
 * and phase offset phase[b] (cycles, finite), random stream key(seed, first_index + b), with
 * phase-delay noise of standard deviation delay_noise (rad, finite, >= 0; 0: none, the seeds'
 * stimulus; see "data options" below). The spike uniforms do not depend on delay_noise.
 */
int32_t spk_stimulus_noisy(const spk_stimulus_params *params, const double *ipd,
                           const double *phase, int64_t n, uint64_t seed, int64_t first_index,
                           double delay_noise, uint8_t *spikes, int32_t threads);

/* ---- data options: per-epoch phase offset, phase-delay noise ------------------------ */
/*
 * Per-epoch phase offset (cycles): phi0(seed, epoch) = uniform53(key(seed, epoch),
 * SPK_WORD_EPOCH_PHASE), one value for every sample of a set in that epoch (use spk_uniform53
 * with first_index = epoch, n = 1).
 * Phase-delay noise: input i (0 <= i < N_in) of sample `index` has its phase delay shifted by
 * sigma z_i [rad], z_i = sqrt(-2 ln(1 - u1)) cos(2 pi u2) (standard normal, Box-Muller),
 * u1 = uniform53(key(seed, index), SPK_WORD_DELAY_NOISE + 2 i),
 * u2 = uniform53(key(seed, index), SPK_WORD_DELAY_NOISE + 2 i + 1).
 */
#define SPK_WORD_EPOCH_PHASE ((UINT64_C(1) << 62) + (UINT64_C(1) << 40))
#define SPK_WORD_DELAY_NOISE ((UINT64_C(1) << 62) + (UINT64_C(1) << 61))

/* out[i] = z_i of sample `index` (standard normals of the phase-delay noise), i < n. A hook for
 * the Swift tests, like spk_stimulus_uniforms. */
int32_t spk_delay_noise_normals(uint64_t seed, int64_t index, int64_t n, double *out);

/* ---- spike data as event lists ------------------------------------------------------ */
/*
 * A data set of binary spikes x (n_samples x T x N_in) held twice as event lists:
 *   by step:  the inputs that spike in (sample s, step t) are
 *             step_events[step_ptr[s*T + t] .. step_ptr[s*T + t + 1]), in increasing order;
 *   by input: the steps at which (sample s, input i) spikes are
 *             input_events[input_ptr[s*N_in + i] .. input_ptr[s*N_in + i + 1]), increasing.
 * step_ptr has n_samples*T + 1 entries, input_ptr n_samples*N_in + 1, both start at 0 and end
 * at n_events. T and N_in are at most 65535. Kernels check the parts they read.
 */
typedef struct {
    int64_t n_samples, steps, n_in, n_events;
    const int64_t *step_ptr;
    const uint16_t *step_events;
    const int64_t *input_ptr;
    const uint16_t *input_events;
} spk_events;

/* Pass 1: fills step_ptr (n*T + 1) and input_ptr (n*N_in + 1) from dense x (bytes 0 or 1). */
int32_t spk_events_index(const uint8_t *x, int64_t n, int64_t steps, int64_t n_in,
                         int64_t *step_ptr, int64_t *input_ptr, int32_t threads);
/* Pass 2: fills the two event arrays (n_events = step_ptr[n*T] entries each). */
int32_t spk_events_fill(const uint8_t *x, int64_t n, int64_t steps, int64_t n_in,
                        const int64_t *step_ptr, const int64_t *input_ptr,
                        uint16_t *step_events, uint16_t *input_events, int32_t threads);
/*
 * Event lists built in one pass, into storage from the caller: alloc(context, bytes) returns
 * `bytes` bytes (8-byte aligned) that the caller owns, or NULL if it has none (the kernel then
 * fails with SPK_ERR_MEMORY). The kernel calls it on the calling thread, after checking every
 * argument, exactly once per array in the order step_ptr (n*T + 1 int64), input_ptr (n*N_in + 1
 * int64), step_events, input_events (n_events uint16 each; n_events = the size of step_events
 * / 2); on failure the caller frees what it handed out. Extra peak memory: about the event
 * lists' own size for spk_stimulus_events (no dense array, no second copy); up to ~1.4x it
 * for spk_events_from_dense, whose per-sample records live until the four arrays are written.
 */
typedef void *(*spk_alloc)(void *context, int64_t bytes);
/* The spikes of spk_stimulus_noisy (same arguments, same draws) as event lists. */
int32_t spk_stimulus_events(const spk_stimulus_params *params, const double *ipd,
                            const double *phase, int64_t n, uint64_t seed, int64_t first_index,
                            double delay_noise, spk_alloc alloc, void *context, int32_t threads);
/* Event lists of dense x (bytes 0 or 1), reading x once (spk_events_index + fill in one). */
int32_t spk_events_from_dense(const uint8_t *x, int64_t n, int64_t steps, int64_t n_in,
                              spk_alloc alloc, void *context, int32_t threads);
/* Dense x (n_samples x T x N_in bytes) back from events. */
int32_t spk_events_to_dense(const spk_events *events, uint8_t *x, int32_t threads);

/* ---- networks (MODEL.md sections 2 and 3) ------------------------------------------ */
#define SPK_READOUT_MEAN 0 /* m = mean over the T recorded output membranes */
#define SPK_READOUT_SUM 1  /* m = 0.01 * sum over time (the tutorial's membrane-only model) */
#define SPK_READOUT_MAX 2  /* m = max over time (gradient to the first maximum) */

typedef struct {
    int64_t n_in;      /* N_in */
    int64_t n_hidden;  /* N_h; 0: no hidden layer (the membrane-only network, see below) */
    int64_t n_out;     /* C */
    int64_t steps;     /* T */
    double dt;         /* s, > 0 */
    double tau_hidden; /* s, > 0 (ignored without a hidden layer) */
    double tau_output; /* s, > 0 */
    int32_t readout;   /* SPK_READOUT_* */
    double beta;       /* sigmoid surrogate steepness, > 0 (ignored without a hidden layer) */
} spk_net_config;

/*
 * The batch is samples index[0 .. batch) of `x` (index NULL: samples 0 .. batch).
 * labels: int64 in [0, C). Weights: w1 N_in x N_h, w2 N_h x C (float32, finite).
 * logits: batch x C. hidden_spikes: batch x T x N_h (0/1). output_membrane: batch x T x C.
 * loss: mean over the batch of -log softmax(m)[label]; grad_*: same shapes as the weights.
 * N_h = 0 is the membrane-only network: the readout driven directly by the inputs through
 * w2, N_in x C (the readout's fan-in is the last layer's width, here the inputs'); w1,
 * hidden_spikes and grad_w1 have N_in x 0 = 0 elements and are neither read nor written.
 */
int32_t spk_snn_forward(const spk_net_config *config, const spk_events *x, const int64_t *index,
                        int64_t batch, const float *w1, const float *w2, float *logits,
                        uint8_t *hidden_spikes, float *output_membrane, int32_t threads);
int32_t spk_snn_loss_grad(const spk_net_config *config, const spk_events *x,
                          const int64_t *index, int64_t batch, const int64_t *labels,
                          const float *w1, const float *w2, double *loss, float *grad_w1,
                          float *grad_w2, float *logits, int32_t threads);

/* ---- research variants (MODEL.md section 4): codes of spk_network below --------------- */
/*
 * SPK_READOUT_SPIKE_COUNT: spiking output units (LIF with the same reset and surrogate,
 * threshold 1) whose spike counts over the T steps are the logits.
 */
#define SPK_READOUT_SPIKE_COUNT 3
#define SPK_RESET_DELAYED 0     /* s_{n+1} = H(v_n - theta_n), v_{n+1} = (a v_n + I_n)(1 - s_n) */
#define SPK_RESET_SAME_STEP 1   /* s_n = H(v_n - theta_n),     v_{n+1} = (a v_n + I_n)(1 - s_n) */
#define SPK_RESET_SUBTRACTIVE 2 /* s_n = H(v_n - theta_n),     v_{n+1} = a v_n + I_n - s_n theta_n */
#define SPK_RESET_ZERO 3        /* s_n = H(v_n - theta_n),     v_{n+1} = a v_n (1 - s_n) + I_n (NIR's LIF) */
#define SPK_SURROGATE_SIGMOID 0          /* beta sig(beta x)(1 - sig(beta x)) */
#define SPK_SURROGATE_FAST_SIGMOID 1     /* 1 / (1 + beta |x|)^2 */
#define SPK_SURROGATE_ARCTAN 2           /* (beta / 2) / (1 + (pi beta x / 2)^2) */
#define SPK_SURROGATE_PIECEWISE_LINEAR 3 /* beta max(0, 1 - |x|) */

/* ---- optimisers (in place, float32) -------------------------------------------------- */
/* torch.optim.Adam (no weight decay, no amsgrad); step t >= 1 is the step being taken. */
int32_t spk_adam_step(float *w, const float *grad, float *m, float *v, int64_t n, double lr,
                      double beta1, double beta2, double eps, int64_t step);
/* w -= lr * grad */
int32_t spk_sgd_step(float *w, const float *grad, int64_t n, double lr);

/* ---- e-prop (MODEL.md section 5) ---------------------------------------------------- */
/*
 * Recurrent LIF layer (reset by subtraction of v_th) with a leaky readout, trained online with
 * e-prop. Weights are [presynaptic, postsynaptic]: w_in N_in x N_h, w_rec N_h x N_h (only with
 * recurrent != 0; may be NULL otherwise), w_out N_h x C, b C, feedback N_h x C (the learning-
 * signal weights: w_out itself for symmetric e-prop). All float32, finite.
 * Loss of a sample: mean over the last `window` steps of the per-step loss (cross-entropy of
 * softmax(y) or 0.5 sum (y - onehot)^2), plus 0.5 reg_c mean_j (f_j - f_target)^2 with f_j the
 * unit's rate in Hz; the batch loss is the mean over samples. Logits: the readout averaged
 * over the window. Memory per sample does not depend on T.
 */
#define SPK_EPROP_CROSS_ENTROPY 0
#define SPK_EPROP_MSE 1

typedef struct {
    int64_t n_in, n_hidden, n_out, steps;
    int64_t window;    /* learning window: the last `window` steps, 1 <= window <= steps */
    double dt;         /* s, > 0 */
    double tau_m;      /* membrane time constant (s), > 0 */
    double tau_out;    /* readout time constant (s), > 0 */
    double v_th;       /* threshold, > 0 */
    double gamma;      /* pseudo-derivative height, >= 0 */
    double reg_c;      /* firing-rate regularisation strength (1/Hz^2), >= 0 */
    double f_target;   /* target rate (Hz) */
    int32_t loss;      /* SPK_EPROP_* */
    int32_t recurrent; /* nonzero: recurrent weights w_rec */
} spk_eprop_config;

/*
 * Forward pass: logits (batch x C) and optional recordings (NULL to skip), batch x T x N_h:
 * voltage, spikes (0/1), psi (pseudo-derivative), learning_signal (in the window; needs
 * labels and feedback; 0 elsewhere; without the regulariser's term), and readout (batch x T x C).
 * labels (batch, may be NULL) and feedback (may be NULL) are needed only for learning_signal.
 */
int32_t spk_eprop_forward(const spk_eprop_config *config, const spk_events *x,
                          const int64_t *index, int64_t batch, const int64_t *labels,
                          const float *w_in, const float *w_rec, const float *w_out,
                          const float *b, const float *feedback, float *logits, float *voltage,
                          uint8_t *spikes, float *psi, float *learning_signal, float *readout,
                          int32_t threads);
/*
 * Mean loss over the batch and its e-prop gradients (shaped like the weights). mask_* (bytes,
 * nonzero = synapse present, may be NULL) zero the gradients of absent synapses.
 */
int32_t spk_eprop_loss_grad(const spk_eprop_config *config, const spk_events *x,
                            const int64_t *index, int64_t batch, const int64_t *labels,
                            const float *w_in, const float *w_rec, const float *w_out,
                            const float *b, const float *feedback, const uint8_t *mask_in,
                            const uint8_t *mask_rec, const uint8_t *mask_out, double *loss,
                            float *grad_w_in, float *grad_w_rec, float *grad_w_out,
                            float *grad_b, float *logits, int32_t threads);

/* ---- the general network: delays, recurrence, depth (MODEL.md section 7) ------------ */
/*
 * Inputs -> L hidden LIF layers (each optionally recurrent: s_n Wrec adds to the current of
 * step n + 1) -> a readout, with every option of the research variants, trainable delays on
 * the first weight matrix and e-prop's readout and loss. L = 0: the readout reads the inputs
 * (the membrane-only network). The readout membrane is R_0 = 0,
 * R_m = a_o R_{m-1} + J_{m-lag} + b (m >= 1), read at T recorded steps:
 *   SPK_TIMING_SEEDS: lag 1, recorded R_0 .. R_{T-1} (the u of the networks above);
 *   SPK_TIMING_EPROP: the kernel runs T + 1 steps, lag 0, recorded R_1 .. R_T (e-prop's
 *   y_n = kappa y_{n-1} + z_n W + b; the hidden spikes recorded are s_1 .. s_T).
 * Heads: SPK_READOUT_MEAN / SUM / MAX / SPIKE_COUNT as above, or SPK_READOUT_WINDOW: the
 * per-step loss (window_loss: SPK_EPROP_CROSS_ENTROPY or SPK_EPROP_MSE) averaged over the last
 * `window` recorded steps, logits the mean of R over them.
 * Delays d (steps, in [0, max_delay]): the input spike at step t adds (1 - f) W_ij to the
 * current of step t + k and f W_ij to step t + k + 1 (k = floor(d), f = d - k).
 * Rate penalty on every hidden layer, r_j = spikes / (T dt) [Hz]: SPK_RATE_UPPER
 * c mean_j (max(0, r_j - rate_ref) / rate_ref)^2; SPK_RATE_TARGET 0.5 c mean_j (r_j - rate_ref)^2.
 *
 * Parameters are one float32 vector, in this order (sizes from the config):
 *   for l = 1 .. L: w_l (rows x N_l; rows N_in for l = 1, N_{l-1} after), then w_rec_l
 *     (N_l x N_l) if layer l is recurrent;
 *   w_out (N_L x C; N_in x C without hidden layers); b (C) if bias;
 *   the delays (N_in per input; N_in x columns of the first matrix per synapse) if any;
 *   tau_1 .. tau_L (N_l each), tau_out (C): time constants (s, > 0).
 * Signs (Dale's law, NULL: none): one float per row of each weight matrix in the same order
 * (w_1, w_rec_1, ..., w_out): +1 or -1 (W_eff = |W| sign) or 0 (the row is free).
 * Gradients have the layout of the parameters (dL/dtau in 1/s; weights raw, Dale applied).
 */
#define SPK_READOUT_WINDOW 4
#define SPK_TIMING_SEEDS 0
#define SPK_TIMING_EPROP 1
#define SPK_DELAYS_NONE 0
#define SPK_DELAYS_INPUT 1   /* one delay per input (N_in) */
#define SPK_DELAYS_SYNAPSE 2 /* one delay per synapse of the first weight matrix */
#define SPK_RATE_NONE 0
#define SPK_RATE_UPPER 1
#define SPK_RATE_TARGET 2

typedef struct {
    int64_t n_in, n_out, steps;  /* N_in, C, T (data steps) */
    int64_t n_layers;            /* hidden layers L, 0 .. 64 */
    const int64_t *hidden;       /* L layer sizes N_l, 1 .. 65536 (NULL when L = 0) */
    const uint8_t *recurrent;    /* L flags, 0 or 1 (NULL when L = 0) */
    double dt;                   /* s, > 0 */
    double beta;                 /* scale of the surrogate, > 0 */
    int32_t reset;               /* SPK_RESET_* */
    int32_t surrogate;           /* SPK_SURROGATE_* */
    int32_t detach_reset;        /* nonzero: the reset is constant in the gradient */
    double adapt_tau;            /* adaptive threshold of the hidden layers (s; 0: off) */
    double adapt_strength;       /* beta_a >= 0 */
    int32_t readout;             /* SPK_READOUT_MEAN .. SPK_READOUT_WINDOW */
    int64_t window;              /* SPK_READOUT_WINDOW: 1 .. steps */
    int32_t window_loss;         /* SPK_EPROP_CROSS_ENTROPY or SPK_EPROP_MSE */
    int32_t timing;              /* SPK_TIMING_* */
    int32_t bias;                /* nonzero: a readout bias b */
    int32_t delays;              /* SPK_DELAYS_* */
    int64_t max_delay;           /* delays lie in [0, max_delay] steps */
    int32_t rate;                /* SPK_RATE_* */
    double rate_c;               /* >= 0 */
    double rate_ref;             /* r_max (> 0) or f_target (Hz) */
    double dropout;              /* probability in [0, 1) of dropping a top-layer spike (loss_grad) */
    uint64_t dropout_seed;       /* unit j of sample s at kernel step n dropped iff
                                    uniform53(key(dropout_seed, s), n N_L + j) < dropout */
} spk_network;

/* Lengths of the parameter vector (= the gradient vector) and of the sign vector. */
int32_t spk_network_sizes(const spk_network *net, int64_t *n_params, int64_t *n_signs);
/* Forward pass (no dropout): logits (batch x C); hidden_spikes (batch x T x sum of N_l, 0/1,
 * layer after layer) and output_membrane (batch x T x C: R, or the output voltages of the
 * spike count) at the recorded steps, may be NULL. */
int32_t spk_network_forward(const spk_network *net, const spk_events *x, const int64_t *index,
                            int64_t batch, const float *params, int64_t n_params,
                            const float *signs, int64_t n_signs, float *logits,
                            uint8_t *hidden_spikes, float *output_membrane, int32_t threads);
/* Mean loss over the batch (plus the rate penalty) and its gradient (n_params floats). */
int32_t spk_network_loss_grad(const spk_network *net, const spk_events *x, const int64_t *index,
                              int64_t batch, const int64_t *labels, const float *params,
                              int64_t n_params, const float *signs, int64_t n_signs,
                              double *loss, float *grads, float *logits, int32_t threads);

#ifdef __cplusplus
}
#endif
#endif /* SPIKELOC_H */
