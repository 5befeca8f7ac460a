#include "sft/sft_trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <future>
#include <memory>
#include <filesystem>

#include "core/check.h"
#include "core/fs.h"
#include "core/logging.h"
#include "core/progress.h"
#include "core/thread_pool.h"
#include "core/tensorboard.h"
#include "core/timer.h"
#include "model/checkpoint.h"
#include "model/grad_reducer.h"
#include "model/master_weights.h"
#include "sft/sft_packing.h"

namespace r1kit::sft {
namespace {

constexpr int kStateVersion = 1;

// Drops metric lines of steps after `last_step` (written after the checkpoint a resumed run starts
// from), so the file has each step exactly once.
void truncate_metrics(const std::string& path, int64_t last_step) {
  if (!path_exists(path)) return;
  std::string kept;
  for_each_jsonl(path, [&](const json& rec, int) {
    if (rec.value("step", int64_t{0}) <= last_step) kept += dump_line(rec) + "\n";
  });
  write_file_atomic(path, kept);
}

void save_checkpoint(Transformer& model, const LoraAdapter& lora, const MasterWeights& optimizer, int64_t step,
                     const std::string& dir, const std::string& tokenizer_dir) {
  // Written into a temp dir and renamed, so a kill leaves the previous checkpoint intact.
  const std::string tmp = dir + ".tmp";
  std::filesystem::remove_all(tmp);
  if (lora) {
    save_peft_adapter(lora, tmp + "/adapter", tokenizer_dir);  // the base model never changes
  } else {
    SaveOptions save;
    save.tokenizer_dir = tokenizer_dir;
    save_model(model, model->config(), tmp + "/model", save);
  }
  optimizer.save_to_file(tmp + "/optimizer.pt");  // AdamW state (+ fp32 masters of a bf16 model)
  write_file_atomic(tmp + "/state.json", json{{"version", kStateVersion}, {"step", step}}.dump() + "\n");
  replace_directory(tmp, dir);
}

int64_t load_checkpoint(Transformer& model, const LoraAdapter& lora, MasterWeights& optimizer,
                        const std::string& dir) {
  const json state = parse_json(read_file(dir + "/state.json"), dir + "/state.json");
  R1_CHECK(state.value("version", 0) == kStateVersion, dir, "/state.json: unsupported version ", state.value("version", 0));
  R1_CHECK(path_exists(dir + (lora ? "/adapter" : "/model")), dir, ": checkpoint of a run ",
           lora ? "without" : "with", " LoRA; resume with the same lora settings");
  if (lora) {
    load_peft_weights(lora, dir + "/adapter");
  } else {
    Transformer saved = load_model(dir + "/model", nullptr, model->device(), model->dtype());
    load_hf_state_dict(model, hf_state_dict(saved));
  }
  optimizer.load_from_file(dir + "/optimizer.pt", model->device());
  return state.at("step").get<int64_t>();
}

}  // namespace

double sft_learning_rate(const SftOptions& opts, int64_t step) {
  if (opts.warmup_steps > 0 && step < opts.warmup_steps) return opts.lr * (step + 1) / opts.warmup_steps;
  const int64_t decay_steps = opts.steps - opts.warmup_steps;
  if (decay_steps <= 1) return opts.lr;
  const double progress = std::min(1.0, double(step - opts.warmup_steps) / double(decay_steps - 1));
  return opts.min_lr + 0.5 * (opts.lr - opts.min_lr) * (1.0 + std::cos(M_PI * progress));
}

namespace {

// The loss of one micro-batch. Only target positions go through lm_head, in chunks: the N x V logits
// are never all alive at once. The chunks backpropagate into a detached copy of the hidden states,
// whose gradient is then pushed through the decoder in one pass. With `grads` the gradients are
// returned through autograd::grad and added into it; without, they accumulate into .grad.
double sft_loss_impl(Transformer& model, const SftBatch& batch, double normalizer, int64_t loss_chunk,
                     const std::function<void()>& before_last_backward, const std::vector<torch::Tensor>* params,
                     std::vector<torch::Tensor>* grads) {
  const torch::Tensor targets = batch.targets.reshape({-1}).to(model->device());
  const torch::Tensor selected = targets.ne(-100).nonzero().squeeze(1);
  if (selected.numel() == 0) return 0.0;
  const torch::Tensor h = sft_forward_hidden(model, batch, selected);  // [n, C]
  const torch::Tensor h_leaf = h.detach().requires_grad_(true);
  const torch::Tensor tgt = targets.index_select(0, selected);
  const torch::Tensor w = model->lm_head_weight();
  // grads mode: where lm_head's weight sits in `params` (-1: not trained, e.g. under LoRA).
  int64_t w_index = -1;
  if (grads)
    for (size_t i = 0; i < params->size(); ++i)
      if ((*params)[i].is_same(w)) w_index = static_cast<int64_t>(i);
  auto add_into = [&](size_t i, const torch::Tensor& g) {
    if (!g.defined()) return;
    torch::Tensor& acc = (*grads)[i];
    acc = acc.defined() ? acc + g : g;  // out of place: autograd may hand out one tensor for two inputs
  };
  torch::Tensor h_grad;
  double total = 0;
  const int64_t chunk = std::max<int64_t>(1, loss_chunk);
  for (int64_t a = 0; a < h_leaf.size(0); a += chunk) {
    const int64_t b = std::min(h_leaf.size(0), a + chunk);
    const torch::Tensor logits = linear(h_leaf.slice(0, a, b), w, {}, model->kernels()).to(torch::kFloat32);
    const torch::Tensor ce = torch::nn::functional::cross_entropy(
        logits, tgt.slice(0, a, b), torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    total += ce.item<double>();
    if (!grads) {
      (ce / normalizer).backward();
      continue;
    }
    std::vector<torch::Tensor> inputs{h_leaf};
    if (w_index >= 0) inputs.push_back(w);
    const auto g = torch::autograd::grad({ce / normalizer}, inputs, {}, false, false, /*allow_unused=*/true);
    h_grad = h_grad.defined() ? h_grad + g[0] : g[0];
    if (w_index >= 0) add_into(static_cast<size_t>(w_index), g[1]);
  }
  if (!grads) {
    if (before_last_backward) before_last_backward();
    h.backward(h_leaf.grad());
    return total;
  }
  const auto g = torch::autograd::grad({h}, *params, {h_grad}, false, false, /*allow_unused=*/true);
  for (size_t i = 0; i < g.size(); ++i) add_into(i, g[i]);
  return total;
}

// This rank's micro-batches of a step: examples [first, last) in groups of `micro`, or with packing
// those examples packed into rows (of packing_length tokens, or of the longest example of the whole
// step, so that every rank packs into rows of one size) in groups of micro_batch_size rows (0: the
// rows split evenly over `parallel` micro-batches).
std::vector<SftBatch> micro_batches(const std::vector<SftExample>& examples, int64_t first, int64_t last,
                                    const SftOptions& opts, int64_t micro, int64_t parallel, int64_t pad_id) {
  std::vector<SftBatch> out;
  if (!opts.packing) {
    for (int64_t a = first; a < last; a += micro) {
      const std::vector<SftExample> part(examples.begin() + a, examples.begin() + std::min(last, a + micro));
      out.push_back(collate_sft(part, pad_id));
    }
    return out;
  }
  int64_t capacity = opts.packing_length;
  if (capacity == 0)
    for (const auto& e : examples) capacity = std::max(capacity, static_cast<int64_t>(e.ids.size()));
  const std::vector<SftExample> mine(examples.begin() + first, examples.begin() + last);
  const std::vector<PackedRow> rows = pack_sft_examples(mine, capacity);
  const int64_t n = static_cast<int64_t>(rows.size());
  const int64_t per = opts.micro_batch_size > 0 ? opts.micro_batch_size : (n + parallel - 1) / parallel;
  for (int64_t a = 0; a < n; a += per)
    out.push_back(collate_packed(mine, {rows.begin() + a, rows.begin() + std::min(n, a + per)}, pad_id));
  return out;
}

}  // namespace

double sft_loss_backward(Transformer& model, const SftBatch& batch, double normalizer, int64_t loss_chunk,
                         const std::function<void()>& before_last_backward) {
  return sft_loss_impl(model, batch, normalizer, loss_chunk, before_last_backward, nullptr, nullptr);
}

double sft_loss_grads(Transformer& model, const SftBatch& batch, double normalizer, int64_t loss_chunk,
                      const std::vector<torch::Tensor>& params, std::vector<torch::Tensor>& grads) {
  R1_CHECK(grads.size() == params.size(), "sft_loss_grads: ", grads.size(), " gradient slots for ", params.size(),
           " parameters");
  return sft_loss_impl(model, batch, normalizer, loss_chunk, nullptr, &params, &grads);
}

torch::Tensor sft_forward_hidden(Transformer& model, const SftBatch& batch, const torch::Tensor& rows) {
  const torch::Device device = model->device();
  const torch::Tensor ids = batch.input_ids.to(device), positions = batch.positions.to(device);
  const torch::Tensor segments = batch.segments.defined() ? batch.segments.to(device) : torch::Tensor();
  const int64_t p = batch.shared_prefix, B = ids.size(0), T = ids.size(1);
  // Only where the fused CPU training ops run: elsewhere (CUDA, bf16, autocast) the prefix attention
  // takes an explicit [B, 1, R*T, p+T] mask, more memory than the prefix saves.
  if (rows.defined() && p > 0 && !segments.defined() && model->train_ops_active()) {
    // The common prefix once, every row continuing it; rows (all at t >= p: no target before) as
    // indices into the B x (T - p) continuation rows.
    const torch::Tensor r = rows.to(device);
    return model
        ->forward_shared_prefix(ids.narrow(0, 0, 1).narrow(1, 0, p).contiguous(), {p},
                                ids.narrow(1, p, T - p).contiguous(), B, r.div(T, "floor") * (T - p) + r.remainder(T) - p)
        .completion;
  }
  if (rows.defined()) return model->forward_hidden_rows(ids, positions, segments, rows);
  if (segments.defined()) return model->forward_hidden_packed(ids, positions, segments);
  return model->forward_hidden(ids, positions);
}

double sft_eval_loss(Transformer& model, const SftBatch& batch) {
  torch::NoGradGuard no_grad;
  const torch::Tensor logits = model->logits_from_hidden(sft_forward_hidden(model, batch));
  const torch::Tensor loss = torch::nn::functional::cross_entropy(
      logits.reshape({-1, logits.size(-1)}), batch.targets.reshape({-1}).to(model->device()),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
  return loss.item<double>();
}

SftRunResult run_sft(Transformer& model, const SftBatchSource& source, const SftOptions& opts,
                     const std::string& out_dir, int64_t pad_id, const std::string& tokenizer_dir,
                     const DataParallel& dp, const SftLossFn& loss_fn) {
  R1_CHECK(opts.steps > 0 && opts.batch_size > 0, "sft: steps and batch_size must be positive");
  R1_CHECK(!loss_fn || !dp.active(), "sft: a custom loss (KD, on-policy distillation) runs in one process only");
  R1_CHECK(opts.batch_size % dp.world_size() == 0, "sft: batch_size ", opts.batch_size,
           " must be a multiple of the data-parallel world size ", dp.world_size());
  R1_CHECK(opts.parallel_micro_batches >= 0, "sft: parallel_micro_batches must be >= 0, got ", opts.parallel_micro_batches);
  R1_CHECK(opts.packing_length >= 0, "sft: packing_length must be >= 0 (0 = the longest example of the step), got ",
           opts.packing_length);
  make_dirs(out_dir);
  const std::string ckpt_dir = out_dir + "/checkpoint", metrics_path = out_dir + "/metrics.jsonl";

  model->train();
  // CPU float32 training linears through the faster of BLAS and oneDNN (model/layer_ops.h); restored on return.
  // With them the fused training ops (model/train_ops.h).
  struct KernelsScope {
    Transformer& m;
    Kernels before;
    bool train_ops_before;
    ~KernelsScope() {
      m->set_kernels(before);
      m->set_train_ops(train_ops_before);
    }
  } kernels_scope{model, model->kernels(), model->train_ops()};
  model->set_kernels(cpu_training_kernels());
  model->set_train_ops(true);
  LoraAdapter lora = find_lora(model);
  if (opts.lora.enabled() && !lora) lora = attach_lora(model, opts.lora);
  if (lora)
    spdlog::info("sft: LoRA r={} on {} layers, {} trainable parameters (base frozen)", lora.options().r,
                 lora.layers().size(), lora.num_parameters());
  dp.broadcast_parameters(model);  // identical replicas (a LoRA adapter's initialisation too)
  const std::vector<torch::Tensor> params = lora ? lora.parameters() : model->parameters();
  // Micro-batches at once on threads (SftOptions::parallel_micro_batches): one process, CPU, float32
  // parameters (a bf16 model sums its micro-batches in fp32 masters, one after another), and no LoRA
  // dropout (threads would draw its masks from the shared generator in no fixed order), and the
  // masked cross-entropy only (a custom distillation loss runs its micro-batches one after another).
  int64_t parallel = opts.parallel_micro_batches > 0 ? opts.parallel_micro_batches : at::get_num_threads();
  if (loss_fn || dp.active() || !model->device().is_cpu() || (lora && lora.options().dropout > 0) ||
      std::any_of(params.begin(), params.end(), [](const torch::Tensor& p) { return p.scalar_type() != torch::kFloat32; }))
    parallel = 1;
  const int64_t shard = opts.batch_size / dp.world_size();
  const int64_t micro = opts.micro_batch_size > 0 ? std::min(opts.micro_batch_size, opts.batch_size)
                        : parallel > 1          ? (shard + parallel - 1) / parallel
                                                : opts.batch_size;
  parallel = std::min(parallel, (shard + micro - 1) / micro);
  std::unique_ptr<ThreadPool> workers;
  // The rest of the step (gradient sums, clipping, AdamW) then runs on one thread as well: an OpenMP
  // team would spin at every small op's barrier while its other thread waits for a core.
  struct IntraOpThreadsScope {
    int before = 0;
    ~IntraOpThreadsScope() {
      if (before > 0) at::set_num_threads(before);
    }
  } intra_op_scope;
  if (parallel > 1) {
    workers = std::make_unique<ThreadPool>(static_cast<unsigned>(parallel));
    intra_op_scope.before = at::get_num_threads();
    at::set_num_threads(1);
    if (opts.packing)
      spdlog::info("sft: {} micro-batches of packed rows at a time, one thread each", parallel);
    else
      spdlog::info("sft: {} micro-batches of {} at a time, one thread each", parallel, micro);
  }
  if (opts.packing)
    spdlog::info("sft: packing examples into rows of {}", opts.packing_length > 0 ? std::to_string(opts.packing_length) + " tokens"
                                                                                  : std::string("the step's longest example"));
  // AdamW; a bf16 model trains through fp32 master weights (model/master_weights.h).
  MasterWeights optimizer(params, torch::optim::AdamWOptions(opts.lr)
                                                         .betas({opts.beta1, opts.beta2})
                                                         .eps(opts.adam_eps)
                                                         .weight_decay(opts.weight_decay));
  SftRunResult result;
  int64_t start = 0;
  if (path_exists(ckpt_dir + "/state.json")) {
    start = load_checkpoint(model, lora, optimizer, ckpt_dir);
    result.resumed_from = start;
    spdlog::info("sft: resuming from {} at step {}/{}", ckpt_dir, start, opts.steps);
  }
  // Gradients summed over data-parallel ranks in buckets during the last backward (no-op in one process).
  GradReducer reducer(dp.group_ptr(), optimizer);
  if (dp.is_main()) truncate_metrics(metrics_path, start);  // rank 0 writes the run directory
  MetricsWriter metrics(dp.is_main() ? metrics_path : "/dev/null", /*append=*/true);
  TensorBoardWriter tb(opts.tensorboard && dp.is_main() ? out_dir + "/tensorboard" : "", start + 1);
  ProgressOptions bar;
  bar.label = "sft";
  bar.unit = "step";
  bar.total = opts.steps;
  bar.initial = start;
  if (!dp.is_main()) bar.enabled = 0;  // one progress line per run, rank 0's
  Progress progress(bar);

  Timer total;
  for (int64_t step = start; step < opts.steps; ++step) {
    Timer step_timer;
    const double lr = sft_learning_rate(opts, step);
    optimizer.set_lr(lr);

    // 1. The step's examples, split into micro-batches (packed rows with packing); the loss is
    //    normalised by the target tokens of the whole step so accumulation equals one big batch.
    std::vector<SftExample> examples = source(step, opts.batch_size);
    R1_CHECK(static_cast<int64_t>(examples.size()) == opts.batch_size, "sft: the data source returned ",
             examples.size(), " examples for step ", step, ", expected ", opts.batch_size);
    //    Data parallel: this rank's share of the examples; the token counts are the global ones.
    const auto [first, last] = dp.shard(opts.batch_size);
    std::vector<SftBatch> batches = micro_batches(examples, first, last, opts, micro, parallel, pad_id);
    double n_targets = 0, n_real = 0, n_slots = 0;
    for (auto& b : batches) {
      n_targets += b.num_target_tokens;
      n_real += b.num_tokens;
      n_slots += b.input_ids.numel();
      b = drop_untargeted_tail(std::move(b));  // the last tokens predict nothing: not run
      if (opts.share_prefix) mark_shared_prefix(b);
    }
    const std::vector<double> counts = dp.sum({n_targets, n_real, n_slots});
    n_targets = counts[0];
    const double efficiency = counts[1] / std::max(counts[2], 1.0);
    R1_CHECK(n_targets > 0, "sft: step ", step, " has no target tokens");

    // 2. Forward/backward per micro-batch, clip, step. Data parallel: the last micro-batch's
    //    backward starts the gradient buckets' all-reduce; finish() waits for the global sum.
    optimizer.zero_grad();
    double loss_sum = 0;
    if (workers) {
      // Worker w takes micro-batches w, w + P, ... into its own gradient sums; they are added in worker
      // order, so the result does not depend on which thread finishes first.
      std::vector<std::vector<torch::Tensor>> sums(parallel, std::vector<torch::Tensor>(params.size()));
      std::vector<double> losses(parallel, 0.0);
      std::vector<std::future<void>> done;
      for (int64_t w = 0; w < parallel; ++w)
        done.push_back(workers->submit([&, w] {
          at::set_num_threads(1);
          for (size_t k = w; k < batches.size(); k += parallel)
            losses[w] += sft_loss_grads(model, batches[k], n_targets, opts.loss_chunk, params, sums[w]);
        }));
      for (auto& f : done) f.get();
      for (int64_t w = 0; w < parallel; ++w) {
        loss_sum += losses[w];
        for (size_t i = 0; i < params.size(); ++i) {
          if (!sums[w][i].defined()) continue;
          torch::Tensor& g = params[i].mutable_grad();
          g = g.defined() ? g + sums[w][i] : sums[w][i];
        }
      }
    } else {
      for (size_t k = 0; k < batches.size(); ++k) {
        const bool last_micro = k + 1 == batches.size();
        loss_sum += loss_fn ? loss_fn(model, batches[k], n_targets)
                            : sft_loss_backward(model, batches[k], n_targets, opts.loss_chunk,
                                                last_micro ? std::function<void()>([&] { reducer.prepare_for_backward(); })
                                                           : std::function<void()>());
        optimizer.accumulate_grads();  // bf16 model: summed in the fp32 master gradients
      }
    }
    reducer.finish();
    loss_sum = dp.sum({loss_sum})[0];
    double grad_norm = 0;
    if (opts.grad_clip > 0) grad_norm = optimizer.clip_grad_norm(opts.grad_clip);
    optimizer.step();
    const double loss = loss_sum / n_targets;
    R1_CHECK(std::isfinite(loss), "sft: loss is not finite at step ", step + 1, " (lr ", lr, ")");

    // 3. Metrics, console, checkpoint.
    if (step == start) result.first_loss = loss;
    result.last_loss = loss;
    const double seconds = step_timer.seconds();
    const json rec = {{"step", step + 1}, {"loss", loss}, {"lr", lr}, {"grad_norm", grad_norm},
                      {"tokens", n_targets}, {"tokens_per_s", n_targets / std::max(seconds, 1e-9)}, {"seconds", seconds},
                      {"packing_efficiency", efficiency}};
    metrics.write(rec);
    tb.scalars(step + 1, rec);
    progress.add("tok", n_targets);
    progress.set_note(fmt::format("loss {:.4f}", loss));
    progress.advance();
    if (dp.is_main() && opts.log_every > 0 && ((step + 1) % opts.log_every == 0 || step + 1 == opts.steps || step == start))
      spdlog::info("sft step {}/{}  loss {:.4f}  lr {:.2e}  grad_norm {:.3f}  {:.0f} ms/step", step + 1, opts.steps,
                   loss, lr, grad_norm, step_timer.seconds() * 1e3);
    if (opts.checkpoint_every > 0 && (step + 1) % opts.checkpoint_every == 0 && step + 1 < opts.steps) {
      dp.barrier();  // every rank finished the step; none reads a half-written checkpoint
      if (dp.is_main()) save_checkpoint(model, lora, optimizer, step + 1, ckpt_dir, tokenizer_dir);
      dp.barrier();
    }
  }
  result.steps_done = opts.steps;
  result.seconds = total.seconds();
  return result;
}

}  // namespace r1kit::sft
