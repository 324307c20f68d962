/* peqa — the fine-tuning loop (internal API, not installed). Reports through a callback; never
 * prints.
 *
 * What trains (src/model.h): in quantized mode the scales of every linear (PEQA, SPEC §4), and
 * with train_zeros their zero points too; the integer codes never change. In full-precision
 * mode every tensor trains (used to pretrain small models and as the full fine-tuning baseline).
 *
 * One optimizer step, step index i = 0, 1, …, total − 1:
 *   lr_i = peqa_lr_at(schedule, lr, min_lr_ratio, warmup, total, i)      (src/optim.h)
 *   for a = 0 .. A−1 (micro-batches):
 *       B windows from the sampler (below) → tokens (B×T), targets = the next tokens
 *       loss_a = peqa_model_forward(...);   non-finite → PEQA_ERR_NONFINITE
 *       peqa_model_backward(dloss = 1.0f / (float)A, accumulate = a > 0)
 *   loss = (((loss_0 + loss_1) + …) + loss_{A−1}) / (float)A            (binary32, a ascending)
 *   sumsq = Σ over trainable tensors in parameter order of peqa_sumsq(grad)   (binary64)
 *           non-finite → PEQA_ERR_NONFINITE naming the first tensor and element
 *   grad_norm = √sumsq;  gscale = peqa_clip_scale(sumsq, clip)
 *   AdamW (peqa_adamw_begin, then peqa_adamw_update per tensor in parameter order) with weight
 *   decay on 2-D weight tensors and on scales only (never on norms, zero points), applied to the
 *   fp32 master values: the model's own scales (read, updated, checked finite, written back) or
 *   fp32 weights in place.
 * Everything above is a fixed sequence of IEEE operations on values that are themselves
 * bit-identical across ISAs and thread counts (src/model.h), so the whole trajectory — every
 * loss, every scale, the optimizer state — is bit-identical across ISA levels and thread counts.
 *
 * Data order (the sampler). The training array of n tokens is cut into W = ⌊(n − 1)/T⌋ windows of
 * T + 1 tokens with stride T, starting at an offset o: window w covers [o + w·T, o + w·T + T]
 * (input = first T tokens, targets = last T). Each epoch draws, from one xoshiro256** stream
 * seeded by splitmix64(seed): first o uniform in [0, n − 1 − W·T] (so every token can be seen
 * over epochs), then a permutation of the W windows by Fisher–Yates (i = W−1 down to 1, swap i
 * with a uniform j in [0, i]); uniform integers by rejection (no modulo bias). Windows are then
 * consumed in permuted order, B per micro-batch, continuing into the next epoch as needed. The
 * state is (the stream's state at the start of the current epoch, epoch index, windows consumed
 * in it): a checkpoint stores it, and resuming regenerates the epoch's order from it, so data
 * order continues exactly.
 *
 * Checkpoints: a safetensors file (atomic: PATH.tmp, fsync, rename) with tensors
 *     param.<name>, adam_m.<name>, adam_v.<name>   F32, for each trainable tensor <name>
 *                                                 ("model.layers.0.self_attn.q_proj.scales", …)
 * and metadata (strings): "peqa.format" "checkpoint", "peqa.version" "1", "peqa.pack_format",
 * "peqa.mode" ("quantized" | "full"), "peqa.config" (config.json text), for quantized models
 * "peqa.bits", "peqa.group", "peqa.codes_hash"; "peqa.data_tokens" and "peqa.data_hash" (FNV-1a 64
 * of the training tokens as u32 little-endian); "peqa.step", "peqa.total_steps", "peqa.loss";
 * "peqa.adam_step", "peqa.adam_b1t", "peqa.adam_b2t"; "peqa.rng", "peqa.epoch_rng" (four u64 in
 * hex, comma-separated), "peqa.epoch", "peqa.epoch_pos"; and the hyperparameters "peqa.hp.*"
 * (batch, seq, accum, warmup, seed, train_zeros, schedule in decimal / name; lr, min_lr_ratio,
 * weight_decay, clip, beta1, beta2, eps as C99 hexadecimal floats, exact).
 * Resuming checks all of it against the model, the data and the options (a differing value is
 * refused, naming it), restores parameters, moments, step and sampler, and continues: a run of
 * 10 steps equals 5 steps + resume + 5 steps bit for bit.
 */
#ifndef PEQA_TRAIN_H
#define PEQA_TRAIN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include "model.h"
#include "optim.h"
#include "peqa.h"

#define PEQA_CKPT_VERSION 1

typedef enum peqa_train_event_kind {
    PEQA_TRAIN_EV_START = 0, /* setup and resume checks passed; the run begins at `step` */
    PEQA_TRAIN_EV_STEP,     /* an optimizer step finished */
    PEQA_TRAIN_EV_VAL,      /* a validation pass finished */
    PEQA_TRAIN_EV_CKPT      /* a checkpoint was written */
} peqa_train_event_kind;

typedef struct peqa_train_event {
    peqa_train_event_kind kind;
    int64_t step, total;  /* steps done so far (counting steps before a resume), steps of the run */
    float loss;           /* STEP: the step's mean loss */
    float lr;             /* STEP: the learning rate used */
    float grad_norm;      /* STEP: global gradient norm before clipping (√sumsq as float) */
    int64_t tokens;       /* tokens trained on so far (all sessions) */
    double epoch;         /* epochs completed (fractional) */
    double tokens_per_s;  /* this session: trained tokens / training time (validation and checkpoint time excluded) */
    double elapsed_s;     /* this session's wall time */
    double eta_s;         /* remaining steps × mean step time of this session */
    float val_loss;       /* VAL: mean per-token loss */
    double val_ppl;       /* VAL: exp(val_loss) (reporting only) */
    int64_t val_tokens;   /* VAL: tokens predicted */
    const char *ckpt_path; /* CKPT */
} peqa_train_event;

/* Return nonzero to stop the run after this event, as an interruption (checkpoint, stopped). */
typedef int (*peqa_train_callback)(const peqa_train_event *ev, void *user);

typedef struct peqa_train_options {
    int64_t batch;       /* B: sequences per micro-batch (>= 1) */
    int64_t seq;         /* T: tokens per sequence (1 .. max_position_embeddings) */
    int64_t accum;       /* A: micro-batches per step (>= 1) */
    int64_t steps;       /* optimizer steps of the run; 0: from epochs */
    double epochs;       /* steps = ⌈epochs·W / (B·A)⌉ when steps == 0 (W: windows, see above) */
    float lr;            /* peak learning rate */
    float min_lr_ratio;  /* the schedule decays to lr·min_lr_ratio */
    peqa_sched_kind schedule;
    int64_t warmup;      /* warm-up steps; < 0: 3 % of the run's steps */
    float weight_decay;
    float clip;          /* global gradient-norm clip; 0: off */
    float beta1, beta2, eps;
    uint64_t seed;       /* data order */
    int train_zeros;     /* quantized: train the zero points too */
    /* validation (when val tokens are given): at the start of the session, every val_every steps
     * (0: no intermediate passes) and after the last step; non-overlapping windows of
     * min(T, nval − 1) + 1 tokens in file order, at most val_max_tokens predicted (0: all). */
    int64_t val_every;
    int64_t val_max_tokens;
    /* checkpoints */
    const char *ckpt_path; /* NULL: none (an interruption then stops without one) */
    int64_t ckpt_every;    /* 0: only on interruption (and at the end with ckpt_final) */
    int ckpt_final;        /* also write one after the last step */
    const char *resume;    /* a checkpoint to continue from, or NULL */
    int64_t stop_after;    /* > 0: stop (as interrupted) once this many steps are done */
    volatile sig_atomic_t *stop; /* checked between steps; nonzero stops the run (SIGINT handler) */
    peqa_train_callback callback;
    void *user;
} peqa_train_options;

/* Defaults: batch 4, seq 256, accum 1, steps 0 with epochs 1, lr 2e-5, min_lr_ratio 0, cosine,
 * warmup −1 (3 %), weight decay 0, clip 1, betas 0.9 / 0.999, eps 1e-8, seed 0, scales only,
 * val_every 0, no checkpoints. */
void peqa_train_options_default(peqa_train_options *o);

typedef struct peqa_train_result {
    int64_t steps_done, total_steps, warmup;
    int stopped;          /* 1: ended early (stop flag, callback, stop_after) */
    int ckpt_written;     /* a checkpoint was written when the run stopped or finished */
    float last_loss;      /* of the last step (NaN if no step ran) */
    int has_val;          /* a validation pass ran this session */
    float val_loss;       /* of the last validation pass */
    double val_ppl;
    int64_t tokens;       /* trained tokens, all sessions */
    double elapsed_s, tokens_per_s; /* this session */
    int64_t resumed_from; /* step of the checkpoint resumed from (0 if none) */
} peqa_train_result;

/* The run's shape: total steps and resolved warm-up for these options and ntrain tokens, and the
 * number of windows per epoch. Validates the options (PEQA_ERR_ARG naming the option). */
peqa_status peqa_train_plan(const peqa_train_options *o, const peqa_model *m, size_t ntrain, int64_t *total,
                            int64_t *warmup, int64_t *windows);

/* Trains m on train[0, ntrain) (token ids < vocab), validating on val[0, nval) if val != NULL.
 * Returns PEQA_OK when the run finished or was stopped (res->stopped tells which; a stopped run
 * wrote a checkpoint when ckpt_path is set, see res->ckpt_written); PEQA_ERR_NONFINITE when a
 * loss, gradient or updated parameter is not finite (the message names the step; checkpoints
 * already written are untouched; the model's parameters are then unspecified); any other error
 * from the model, the files or the options. res may be NULL. */
peqa_status peqa_train(peqa_ctx *ctx, peqa_model *m, const uint32_t *train, size_t ntrain, const uint32_t *val,
                       size_t nval, const peqa_train_options *o, peqa_train_result *res);

/* Reads the hyperparameters of a checkpoint into o (batch, seq, accum, steps (= the run's total),
 * lr, min_lr_ratio, schedule, warmup, weight_decay, clip, betas, eps, seed, train_zeros; other
 * fields untouched) and the step it holds. For a CLI that fills unspecified options from the
 * checkpoint before resuming. */
peqa_status peqa_train_ckpt_options(const char *path, peqa_train_options *o, int64_t *step);

/* "cosine" / "linear" / "constant", and back (-1 if unknown). */
const char *peqa_sched_name(peqa_sched_kind k);
int peqa_sched_from_name(const char *s);

#endif
