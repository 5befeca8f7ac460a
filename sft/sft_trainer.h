// Supervised fine-tuning: masked next-token cross-entropy on the target tokens of SftExamples,
// AdamW with linear warm-up and cosine decay, gradient clipping, gradient accumulation, metrics
// JSONL, and checkpoints that a re-run resumes from (same data order, no repeated metric lines).
//
//   auto source = [&](int64_t step, int64_t n) { return my_examples(step, n); };
//   SftRunResult r = run_sft(model, source, opts, "runs/x/sft", pad_id);
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/data_parallel.h"
#include "model/lora.h"
#include "model/transformer.h"
#include "sft/sft_dataset.h"

namespace r1kit::sft {

struct SftOptions {
  int64_t steps = 500;             // optimiser steps
  int64_t batch_size = 64;         // examples per optimiser step
  int64_t micro_batch_size = 0;    // examples per forward/backward (gradient accumulation); 0 = batch_size
  double lr = 2e-3;                // peak learning rate (after warm-up)
  double min_lr = 2e-4;            // cosine decays to this at the last step
  int64_t warmup_steps = 50;       // linear warm-up from lr/warmup_steps to lr
  double beta1 = 0.9;              // AdamW
  double beta2 = 0.99;             // AdamW
  double adam_eps = 1e-8;          // AdamW
  double weight_decay = 0.0;       // AdamW decoupled weight decay
  double grad_clip = 1.0;          // clip the global gradient norm to this (0 = off)
  int64_t checkpoint_every = 100;  // save model + optimizer every N steps (0 = only at the end)
  int64_t log_every = 25;          // console log every N steps (metrics.jsonl gets every step)
  int64_t loss_chunk = 4096;       // target positions per lm_head chunk (bounds the N x V logits memory)
  bool tensorboard = true;         // also write every metric to <out_dir>/tensorboard (event files)
  // Micro-batches computed at the same time, each on its own thread with one intra-op thread (CPU,
  // float32 parameters, one process): on a small model this uses the cores far better than intra-op
  // threads. 0 = one per intra-op thread (the recipe's `threads`), 1 = one after another. Without a
  // micro_batch_size the batch is split into this many micro-batches. The gradients are summed in a
  // fixed order, so a run is deterministic for a given value.
  int64_t parallel_micro_batches = 0;
  // Sequence packing (sft/sft_packing.h, TRL's packing=True): each rank's examples of a step are
  // packed best-fit decreasing into rows of at most packing_length tokens, every example attending
  // only to itself with positions from 0, and micro_batch_size then counts packed rows (0: all rows
  // in one, or split over parallel_micro_batches). The loss is still divided by the step's target
  // tokens, so a packed step equals the unpacked one up to float rounding, with less padding.
  // Unpacked micro-batches whose rows all open with the same untargeted tokens run those once
  // (mark_shared_prefix in sft/sft_dataset.h) with the fused CPU float32 training ops: the same loss
  // up to float rounding, less work. Elsewhere ignored (the prefix attention would need a mask).
  bool share_prefix = true;
  bool packing = false;
  int64_t packing_length = 0;      // tokens per packed row; 0 = the longest example of the step
  LoraOptions lora;                // r > 0: train a LoRA adapter (model/lora.h) on the frozen model
};

// The examples of optimiser step `step`. Must be a pure function of (step, n) so that a resumed run
// trains on exactly the data the interrupted one would have.
using SftBatchSource = std::function<std::vector<SftExample>(int64_t step, int64_t n)>;

// Learning rate at a 0-based step: linear warm-up, then cosine from lr to min_lr.
double sft_learning_rate(const SftOptions& opts, int64_t step);

// One micro-batch: forward, masked cross-entropy summed over target tokens and divided by
// `normalizer` (the target-token count of the whole accumulated batch), backward. Returns the
// summed (not divided) cross-entropy. Gradients accumulate into the parameters' .grad.
// `before_last_backward` runs right before the micro-batch's last backward call (the one through the
// decoder; data parallel arms the gradient all-reduce there, model/grad_reducer.h).
double sft_loss_backward(Transformer& model, const SftBatch& batch, double normalizer, int64_t loss_chunk = 4096,
                         const std::function<void()>& before_last_backward = nullptr);

// The same loss, but its gradients with respect to `params` are added into `grads` (same order;
// undefined entries start at zero) instead of the parameters' .grad, so several micro-batches can run
// at once on different threads. Returns the summed cross-entropy.
double sft_loss_grads(Transformer& model, const SftBatch& batch, double normalizer, int64_t loss_chunk,
                      const std::vector<torch::Tensor>& params, std::vector<torch::Tensor>& grads);

// Mean masked cross-entropy without gradients (for tests and evaluation).
double sft_eval_loss(Transformer& model, const SftBatch& batch);

// The final-normed hidden states [B,T,C] of a batch on the model's device: the packed forward
// when the batch is packed (batch.segments defined), else the plain one. With `rows` ([N] int64
// indices into the B*T flattened positions) only those: [N,C] (Transformer::forward_hidden_rows,
// which spares the last layer's o_proj and MLP on the other rows).
torch::Tensor sft_forward_hidden(Transformer& model, const SftBatch& batch, const torch::Tensor& rows = {});

// The training objective of one micro-batch, for trainers that reuse this loop with another loss
// (distill/: logit KD, on-policy distillation). Same contract as sft_loss_backward: accumulate
// gradients of (summed loss / normalizer) and return the summed loss. With packing the batch is
// packed: the loss must run the model through sft_forward_hidden (as distill/kd_trainer does).
using SftLossFn = std::function<double(Transformer& model, const SftBatch& batch, double normalizer)>;

struct SftRunResult {
  int64_t steps_done = 0;     // == opts.steps on success
  int64_t resumed_from = 0;   // step restored from a checkpoint (0 = fresh start)
  double first_loss = 0;      // loss of the first step run in this call
  double last_loss = 0;       // loss of the last step
  double seconds = 0;
};

// Trains `model` in place. Writes <out_dir>/metrics.jsonl (one record per step: step, loss, lr,
// grad_norm, tokens (targets), tokens_per_s, seconds, packing_efficiency = real tokens / tokens the
// micro-batches hold with their padding), the same scalars to <out_dir>/tensorboard/, and <out_dir>/checkpoint/ (HF model + optimizer.pt + state.json);
// when that checkpoint exists, training resumes from it (metrics after it are dropped first).
// With LoRA (opts.lora.r > 0, or an adapter already attached to `model`) only the adapter is
// trained and checkpointed (checkpoint/adapter/, PEFT format); the model keeps it attached.
// `tokenizer_dir` is copied into checkpoints so they are complete HF directories.
// Data parallel (`dp` active, docs/distributed.md): every rank calls run_sft with the same source;
// rank r trains on examples [r·B/W, (r+1)·B/W) of each step's batch_size B (a multiple of W; with
// packing, packed after this split), the
// gradients are summed over ranks in buckets overlapped with backward, and only rank 0 writes
// metrics and checkpoints (between barriers). The result's losses are the global batch's.
// `loss` replaces the masked cross-entropy when given (single process only).
SftRunResult run_sft(Transformer& model, const SftBatchSource& source, const SftOptions& opts,
                     const std::string& out_dir, int64_t pad_id, const std::string& tokenizer_dir = "",
                     const DataParallel& dp = DataParallel(), const SftLossFn& loss = nullptr);

}  // namespace r1kit::sft
