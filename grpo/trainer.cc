// The GRPO trainer as numbered steps (torchtune-recipe style: one function, no class hierarchy).
//
//   0. set up: resume point, policy (+ frozen reference when beta > 0), tokenizer, AdamW, pool
//   per step:
//   1. sample B prompts from the stream (position saved in checkpoints)
//   2. generate G completions per prompt with the rollout pool
//   3. score each group as it streams in (rewards::RewardSet); samples whose reward errored are
//      masked out (grpo/reward_mask.h) and groups left with too few valid samples dropped; DAPO
//      dynamic sampling drops groups whose rewards all agree and draws more prompts (at most
//      max_sampling_rounds extra rounds)
//   4. group-relative advantages over each group's valid samples
//   5. micro-batches of whole groups sorted by length (grpo/packed_batch.h: each prompt runs once
//      for its completions) and reference log-probs (only when beta > 0); the old log-probs are
//      the first pass's own (detached), so there is no separate recompute for any num_iterations
//   6. num_iterations passes over micro-batches, gradients accumulated with the full batch's
//      normaliser (so the accumulated gradient is the unsplit batch's)
//   7. AdamW with warm-up + cosine/constant schedule and grad-norm clipping (per pass)
//   8. copy the new weights into the pool's replicas (one copy)
//   9. metrics, samples, checkpoint
#include "grpo/trainer.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <map>
#include <thread>

#include "core/check.h"
#include "core/fs.h"
#include "core/logging.h"
#include "core/progress.h"
#include "core/tensorboard.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "grpo/advantages.h"
#include "grpo/async_rollout.h"
#include "grpo/data_parallel.h"
#include "grpo/off_policy.h"
#include "grpo/rollout_batch.h"
#include "grpo/logprobs.h"
#include "grpo/loss.h"
#include "grpo/packed_batch.h"
#include "grpo/reward_mask.h"
#include "grpo/trainer_state.h"
#include "model/checkpoint.h"
#include "model/grad_reducer.h"
#include "model/lora.h"
#include "model/master_weights.h"
#include "model/tokenizer.h"
#include "rollout/pool.h"

namespace r1kit::grpo {

double scheduled_lr(const GrpoOptions& o, int64_t step, int64_t total) {
  if (step < o.warmup_steps) return o.lr * static_cast<double>(step) / static_cast<double>(o.warmup_steps);
  if (o.lr_schedule == "constant") return o.lr;
  const double progress =
      static_cast<double>(step - o.warmup_steps) / static_cast<double>(std::max<int64_t>(1, total - o.warmup_steps));
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, progress)));
  return o.lr * (o.min_lr_ratio + (1.0 - o.min_lr_ratio) * cosine);
}

int64_t latest_checkpoint_step(const std::string& run_dir) {
  std::vector<int64_t> steps = checkpoint_steps(run_dir);
  return steps.empty() ? 0 : steps.back();
}

namespace {

// Whole groups of the training batch packed for one forward (grpo/packed_batch.h).
struct MicroBatch {
  PackedBatch batch;
  torch::Tensor advantages;  // [b] float32
  torch::Tensor loss_mask;   // [b, C] bool
  torch::Tensor old_logp;    // [b, C] (num_iterations > 1: from the first pass's own forward)
  torch::Tensor ref_logp;    // [b, C] (beta > 0)
  torch::Tensor sampler_logp;  // [b, C] the sampler's log-probs of the same tokens
};

std::vector<torch::Tensor> trainable(Transformer& model, const LoraAdapter& lora) {
  if (lora) return lora.parameters();  // the base is frozen
  std::vector<torch::Tensor> out;
  for (auto& p : model->parameters())
    if (p.requires_grad()) out.push_back(p);
  return out;
}

// What the rollout replicas load after a step: the weights, the weights with the adapter merged,
// or (adapter applied in the replicas) the adapter's tensors only.
NamedTensors pool_weights(Transformer& policy, const LoraAdapter& lora, const LoraOptions& o) {
  if (!lora) return hf_state_dict(policy);
  return o.rollout == "applied" ? lora.named_tensors() : merged_state_dict(policy);
}

}  // namespace

GrpoResult run_grpo(const GrpoOptions& o, const std::string& run_dir, const GrpoInputs& in) {
  // ---- 0. Setup --------------------------------------------------------------------------------
  validate(o);
  R1_CHECK(in.prompts, "run_grpo: no prompt source");
  R1_CHECK(path_exists(in.model_dir + "/config.json"), "run_grpo: ", in.model_dir, " has no config.json");
  make_dirs(run_dir + "/checkpoints");
  const std::string metrics_path = run_dir + "/metrics.jsonl";
  const std::string samples_path = run_dir + "/samples.jsonl";
  const int64_t G = o.group_size, B = o.prompts_per_step;
  const int64_t total_opt_steps = o.steps * o.num_iterations;
  // Data parallel under torchrun/Slurm/`r1kit launch` (grpo/data_parallel.h); one process otherwise.
  const DataParallel dp = DataParallel::from_env(in.device);
  R1_CHECK(B % dp.world_size() == 0, "run_grpo: prompts_per_step ", B, " must be a multiple of the world size ",
           dp.world_size());
  R1_CHECK(!dp.active() || !o.dynamic_sampling, "run_grpo: dynamic_sampling is not supported with ",
           dp.world_size(), " data-parallel ranks yet (each rank would refill its own share differently): set "
           "dynamic_sampling: false, or run one process");

  GrpoResult result;
  TrainerState state;
  state.seed = o.seed;
  result.resumed_from = latest_checkpoint_step(run_dir);
  const std::string start_dir = result.resumed_from > 0 && !o.lora.enabled()
                                    ? checkpoint_dir(run_dir, result.resumed_from) + "/model"
                                    : in.model_dir;

  ModelConfig cfg;
  Transformer policy = load_model(start_dir, &cfg, in.device, in.dtype);
  dp.broadcast_parameters(policy);
  policy->set_compute_options(in.compute);
  policy->train();
  // LoRA: only the adapter trains; the reference policy is the policy with its adapter off.
  LoraAdapter lora;
  if (o.lora.enabled()) {
    lora = attach_lora(policy, o.lora, o.seed);
    if (result.resumed_from > 0) load_peft_weights(lora, checkpoint_dir(run_dir, result.resumed_from) + "/adapter");
  }
  policy->set_kernels(cpu_training_kernels());  // CPU float32 training linears: BLAS or oneDNN (layer_ops.h)
  policy->set_train_ops(true);                   // and fused RMSNorm/RoPE/SiLU-gate/attention (train_ops.h)
  Transformer reference{nullptr};
  if (o.beta > 0 && !lora) {  // beta = 0: no reference model is loaded or run at all
    reference = load_model(in.model_dir, nullptr, in.device, in.dtype);
    reference->set_compute_options(in.compute);
    reference->eval();
    reference->set_kernels(cpu_training_kernels());
    reference->set_train_ops(true);
    for (auto& p : reference->parameters()) p.set_requires_grad(false);
  }
  const Tokenizer tokenizer = Tokenizer::from_file(in.model_dir);
  const PromptEncoder prompt_encoder(tokenizer, in.model_dir, in.prompt_format);  // BOS, chat template

  // AdamW over the trainable parameters (the adapters only with LoRA); with a bf16 policy it runs
  // on fp32 master copies of them (model/master_weights.h).
  MasterWeights optimizer(trainable(policy, lora), torch::optim::AdamWOptions(o.lr)
                                                       .betas(std::make_tuple(o.adam_beta1, o.adam_beta2))
                                                       .eps(o.adam_eps)
                                                       .weight_decay(o.weight_decay));
  if (result.resumed_from > 0) {
    state = load_checkpoint_state(run_dir, result.resumed_from, optimizer, in.device);
    R1_CHECK(state.seed == o.seed, run_dir, ": checkpoint step-", state.step, " was trained with seed ", state.seed,
             " but the options say ", o.seed);
    spdlog::info("grpo: resuming from {} (step {}, data position {})", checkpoint_dir(run_dir, state.step),
                 state.step, state.data_position);
  }
  // Data parallel: gradients summed over ranks in buckets during each pass's last backward.
  GradReducer reducer(dp.group_ptr(), optimizer);
  // Lines of steps after the checkpoint belong to the interrupted run: drop them.
  if (dp.is_main()) {  // rank 0 writes the run directory
    truncate_jsonl_after_step(metrics_path, state.step);
    truncate_jsonl_after_step(samples_path, state.step);
  }
  MetricsWriter metrics(dp.is_main() ? metrics_path : "/dev/null", /*append=*/true);
  MetricsWriter samples_log(dp.is_main() ? samples_path : "/dev/null", /*append=*/true);
  TensorBoardWriter tb(o.tensorboard && dp.is_main() ? run_dir + "/tensorboard" : "", state.step + 1);
  ProgressOptions bar;
  bar.label = "grpo";
  bar.unit = "step";
  bar.total = o.steps;
  bar.initial = state.step;
  if (!dp.is_main()) bar.enabled = 0;  // one progress line per run, rank 0's
  Progress progress(bar);

  PoolOptions pool_options;
  pool_options.num_workers = o.num_workers;
  pool_options.engine.max_batch = o.max_batch;
  pool_options.engine.token_budget = o.token_budget;
  pool_options.threads_per_worker = at::get_num_threads();  // the trainer's (recipe's) thread count
  pool_options.with_lora = lora && o.lora.rollout == "applied";
  RolloutPool pool(policy, pool_options, [&tokenizer](const std::vector<int64_t>& ids) {
    return tokenizer.decode(std::vector<int32_t>(ids.begin(), ids.end()), /*skip_special_tokens=*/false);
  });
  if (lora && !pool_options.with_lora && state.step > 0) pool.update_weights(state.step, merged_state_dict(policy));

  SamplingOptions sampling;
  sampling.temperature = o.temperature;
  sampling.top_p = o.top_p;
  sampling.top_k = o.top_k;
  sampling.max_new_tokens = o.max_completion_length;
  sampling.stop_strings = o.stop_strings;
  sampling.seed = o.seed;
  sampling.validate();

  AdvantageOptions adv_options;
  adv_options.group_size = G;
  adv_options.scale = parse_advantage_scale(o.scale_rewards);
  adv_options.eps = o.advantage_eps;
  GrpoLossOptions loss_options;
  loss_options.policy_loss = parse_policy_loss(o.policy_loss);
  loss_options.eps_low = o.epsilon;
  loss_options.eps_high = o.epsilon_high;
  loss_options.dual_clip = o.dual_clip;
  loss_options.beta = o.beta;
  loss_options.aggregation = parse_loss_aggregation(o.loss_aggregation);
  loss_options.max_completion_length = o.max_completion_length;
  LogprobOptions lp_options;
  lp_options.temperature = o.temperature;
  lp_options.chunk_size = o.logprob_chunk_size;

  const auto& reward_entries = o.rewards.entries();
  // Code rewards run sandboxes: score in parallel, by default on the cores generation leaves free
  // (scoring overlaps generation, and OpenMP decode threads stall when a core is taken from them).
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ThreadPool reward_pool(static_cast<unsigned>(
      o.reward_threads > 0 ? o.reward_threads : std::max(1, cores - o.num_workers * pool_options.threads_per_worker)));
  int64_t steps_this_call = 0;
  // Versions in the pool are step numbers: a resumed run publishes its starting weights as state.step.
  if (state.step > 0 && pool.weight_version() < state.step) pool.update_weights(state.step, pool_weights(policy, lora, o.lora));
  const OffPolicyCorrection correction = parse_off_policy_correction(o.off_policy_correction);
  const RolloutContext rollout_context{o, in.prompts, prompt_encoder, pool, sampling, reward_pool, dp};
  AsyncRollout rollout([&rollout_context](int64_t position) { return generate_rollout_batch(rollout_context, position); },
                       state.step + 1, in.stop_after_steps > 0 ? std::min(o.steps, state.step + in.stop_after_steps)
                                                               : o.steps,
                       state.data_position, o.max_staleness, o.async_rollout);
  for (int64_t step = state.step + 1; step <= o.steps; ++step) {
    Timer step_timer;
    double generate_s = 0, reward_s = 0;
    int64_t generated_tokens = 0;

    // ---- 1-3. Prompts -> pool -> rewards (grpo/rollout_batch.h); async: generated ahead --------
    RolloutBatch batch = rollout.next(step);
    state.data_position = batch.data_position_end;
    std::vector<ScoredGroup>& kept = batch.kept;
    std::vector<double>& all_totals = batch.all_totals;
    std::vector<std::vector<double>>& all_by_reward = batch.all_by_reward;
    std::vector<int64_t>& all_lengths = batch.all_lengths;
    int64_t all_truncated = batch.all_truncated, dropped_groups = batch.dropped_groups, rounds = batch.rounds,
            reward_errors = batch.reward_errors, masked_samples = batch.masked_samples, error_groups = batch.error_groups;
    generated_tokens = batch.generated_tokens;
    generate_s = batch.generate_s;
    reward_s = batch.reward_s;
    if (dp.active()) {  // step metrics cover every rank's samples (rank order = global order)
      all_totals = dp.gather(all_totals);
      for (auto& v : all_by_reward) v = dp.gather(v);
      std::vector<double> lengths = dp.gather({all_lengths.begin(), all_lengths.end()});
      all_lengths.assign(lengths.begin(), lengths.end());
      std::vector<double> c = dp.sum({double(all_truncated), double(generated_tokens), double(reward_errors),
                                      double(masked_samples), double(error_groups)});
      all_truncated = int64_t(c[0]), generated_tokens = int64_t(c[1]), reward_errors = int64_t(c[2]);
      masked_samples = int64_t(c[3]), error_groups = int64_t(c[4]);
    }

    // ---- 4. Advantages (rows in group order: a kept group's valid samples, in sample order) -------
    Timer train_timer;
    const int64_t n_groups = static_cast<int64_t>(kept.size());
    std::vector<GroupRows> groups_rows;                   // valid samples only
    std::vector<std::vector<double>> group_totals;
    std::vector<std::vector<int64_t>> row_of(n_groups);  // [group][sample] -> training row, -1 if masked
    std::vector<bool> truncated;
    int64_t rows = 0;
    std::vector<const std::vector<float>*> sampler_logprobs;  // per training row: the sampler's log-probs
    for (int64_t gi = 0; gi < n_groups; ++gi) {
      const ScoredGroup& sg = kept[gi];
      group_totals.emplace_back();
      GroupRows gr;
      gr.prompt = sg.group.prompt_ids;
      for (size_t s = 0; s < sg.group.samples.size(); ++s) {
        row_of[gi].push_back(sg.validity.valid[s] ? rows : -1);
        if (!sg.validity.valid[s]) continue;
        gr.completions.push_back(sg.group.samples[s].completion_ids);
        gr.rows.push_back(rows++);
        sampler_logprobs.push_back(&sg.group.samples[s].logprobs);
        group_totals.back().push_back(sg.scores[s].total);
        truncated.push_back(sg.group.samples[s].finish_reason == FinishReason::kLength);
      }
      if (!gr.completions.empty()) groups_rows.push_back(std::move(gr));
    }
    torch::Tensor advantages;
    if (rows > 0) advantages = ragged_group_advantages(group_totals, adv_options);

    // ---- 5. Micro-batches: whole groups sorted by length, each prompt run once for its
    //         completions; reference log-probs (beta > 0). No old log-prob pass: the first pass's
    //         forward gives them (the policy has not stepped yet) ---------------------------------
    std::vector<MicroBatch> micro;
    LossNormalizer normalizer;
    normalizer.num_rows = rows;
    PackOptions pack;
    pack.max_rows = o.micro_batch_size;
    torch::Tensor truncated_t = torch::tensor(std::vector<int64_t>(truncated.begin(), truncated.end()), torch::kInt64);
    for (PackedBatch& packed : pack_groups(groups_rows, pack, in.device)) {
      MicroBatch mb;
      mb.batch = std::move(packed);
      const torch::Tensor row_cpu = mb.batch.row_index.cpu();
      mb.advantages = advantages.index_select(0, row_cpu).to(torch::kFloat32).to(in.device);
      mb.loss_mask = mb.batch.completion_mask.clone();
      // DAPO overlong filtering: truncated completions get no loss.
      if (o.mask_truncated) mb.loss_mask.logical_and_((truncated_t.index_select(0, row_cpu) == 0).unsqueeze(1).to(in.device));
      {
        std::vector<const std::vector<float>*> mb_sampler;  // in the packed batch's row order
        const auto* idx = row_cpu.data_ptr<int64_t>();
        for (int64_t r = 0; r < row_cpu.numel(); ++r) mb_sampler.push_back(sampler_logprobs[idx[r]]);
        mb.sampler_logp = pad_sampler_logprobs(mb_sampler, mb.batch.completion_mask.size(1), in.device);
      }
      normalizer.num_tokens += mb.loss_mask.sum().item<double>();  // this rank's; summed over ranks below
      normalizer.num_nonempty_rows += (mb.loss_mask.sum(1) > 0).sum().item<int64_t>();
      if (o.beta > 0) {
        torch::NoGradGuard no_grad;
        LoraDisabled base_only(lora);  // LoRA: the reference is the policy with its adapter off
        mb.ref_logp = completion_logprobs(lora ? policy : reference, mb.batch, lp_options).logprobs;
      }
      micro.push_back(std::move(mb));
    }
    all_reduce(dp, normalizer);  // global denominators: each rank's loss is its share of the global loss

    // ---- 6-7. num_iterations passes: accumulate over micro-batches, clip, AdamW step -------------
    GrpoLossStats sums;  // counts summed over passes and micro-batches
    MismatchStats mismatch;  // sampler vs trainer (old) log-probs, first pass
    double loss_first_pass = 0, grad_norm = 0, lr = 0, entropy_sum = 0, entropy_tokens = 0;
    // Global rows: a rank left without rows still joins every pass's gradient all-reduce (zeros).
    for (int64_t pass = 0; pass < o.num_iterations && normalizer.num_rows > 0; ++pass) {
      optimizer.zero_grad();
      for (size_t k = 0; k < micro.size(); ++k) {
        MicroBatch& mb = micro[k];
        LogprobOptions opts = lp_options;
        opts.entropy = pass == 0;  // logged from the first pass only
        CompletionLogprobs cur = completion_logprobs(policy, mb.batch, opts);
        if (pass == 0) mb.old_logp = cur.logprobs.detach();  // the policy that generated the samples
        // Off-policy correction: sampler -> trainer importance weights (grpo/off_policy.h).
        torch::Tensor is_w = importance_weights(mb.old_logp, mb.sampler_logp, mb.loss_mask, correction, o.is_cap,
                                                pass == 0 ? &mismatch : nullptr);
        if (correction == OffPolicyCorrection::kNone) is_w = torch::Tensor();
        GrpoLossOutput out = grpo_loss(cur.logprobs, mb.old_logp, mb.ref_logp, mb.advantages, mb.loss_mask,
                                       loss_options, normalizer, is_w);
        // Data parallel: the last micro-batch's backward starts the gradient buckets' all-reduce
        // as their gradients become final (the earlier ones only accumulate, model/grad_reducer.h).
        if (k + 1 == micro.size()) reducer.prepare_for_backward();
        out.loss.backward();
        optimizer.accumulate_grads();  // bf16 policy: summed in the fp32 master gradients
        if (pass == 0) {
          loss_first_pass += out.loss.item<double>();
          entropy_sum += (cur.entropy * mb.batch.completion_mask).sum().item<double>();
          entropy_tokens += mb.batch.completion_mask.sum().item<double>();
        }
        const GrpoLossStats& st = out.stats;
        sums.num_tokens += st.num_tokens;
        sums.clip_low_count += st.clip_low_count;
        sums.clip_high_count += st.clip_high_count;
        sums.dual_clip_count += st.dual_clip_count;
        sums.kl_sum += st.kl_sum;
        sums.ratio_sum += st.ratio_sum;
      }
      reducer.finish();  // waits for the buckets: the global batch's gradient on every rank
      lr = scheduled_lr(o, state.optimizer_steps, total_opt_steps);
      optimizer.set_lr(lr);
      const double max_norm = o.max_grad_norm > 0 ? o.max_grad_norm : std::numeric_limits<double>::infinity();
      grad_norm = optimizer.clip_grad_norm(max_norm);
      R1_CHECK(std::isfinite(grad_norm), "run_grpo: step ", step, ": gradient norm is ", grad_norm,
               " (non-finite loss or log-probs)");
      optimizer.step();
      ++state.optimizer_steps;
    }
    const double train_s = train_timer.seconds();
    int64_t groups_trained = n_groups;
    if (dp.active()) {
      std::vector<double> v = dp.sum({loss_first_pass, entropy_sum, entropy_tokens, double(n_groups), sums.num_tokens,
                                      sums.clip_low_count, sums.clip_high_count, sums.dual_clip_count, sums.kl_sum,
                                      sums.ratio_sum, mismatch.tokens, mismatch.abs_diff_sum, mismatch.k1_sum,
                                      mismatch.k3_sum, mismatch.weight_sum, mismatch.capped});
      loss_first_pass = v[0], entropy_sum = v[1], entropy_tokens = v[2];
      sums.num_tokens = v[4], sums.clip_low_count = v[5], sums.clip_high_count = v[6], sums.dual_clip_count = v[7];
      sums.kl_sum = v[8], sums.ratio_sum = v[9];
      mismatch = {v[10], v[11], v[12], v[13], v[14], v[15]};
      groups_trained = int64_t(v[3]);
    }

    // ---- 8. New weights to the pool: synchronous -> copied once, straight into the replicas;
    //         async -> a snapshot (generation of later steps may be running). LoRA: merged, or the
    //         adapter's tensors when the replicas apply it ------------------------------------------
    if (rows > 0) {
      if (o.async_rollout)
        pool.update_weights(step, pool_weights(policy, lora, o.lora));
      else
        pool.load_weights(step, pool_weights(policy, lora, o.lora));
    }
    rollout.weights_published(step);  // async: generation may now run up to step + 1 + max_staleness
    state.step = step;

    // ---- 9. Metrics, samples, checkpoint -------------------------------------------------------
    auto mean_std = [](const std::vector<double>& v) {
      double m = 0, s2 = 0;
      for (double x : v) m += x;
      m /= std::max<size_t>(1, v.size());
      for (double x : v) s2 += (x - m) * (x - m);
      return std::make_pair(m, v.size() > 1 ? std::sqrt(s2 / (v.size() - 1)) : 0.0);
    };
    const double tok_denom = std::max(1.0, sums.num_tokens);
    json rec = json::object();
    rec["step"] = step;
    auto [reward_mean, reward_std] = mean_std(all_totals);
    rec["reward/mean"] = reward_mean;
    rec["reward/std"] = reward_std;
    for (size_t r = 0; r < reward_entries.size(); ++r) {
      auto [m, s] = mean_std(all_by_reward[r]);
      rec["reward/" + reward_entries[r].label + "/mean"] = m;
      rec["reward/" + reward_entries[r].label + "/std"] = s;
      if (reward_entries[r].label == o.accuracy_reward) rec["reward/accuracy"] = m;
      if (reward_entries[r].label == o.format_reward) {
        int64_t ok = 0;
        for (double x : all_by_reward[r]) ok += x > 0;
        rec["format_rate"] = static_cast<double>(ok) / std::max<size_t>(1, all_by_reward[r].size());
      }
    }
    rec["reward/errors"] = reward_errors;
    rec["samples/masked"] = masked_samples;
    rec["groups/dropped_reward_errors"] = error_groups;
    int64_t len_max = 0;
    double len_sum = 0;
    for (int64_t l : all_lengths) len_sum += l, len_max = std::max(len_max, l);
    rec["completion_length/mean"] = len_sum / std::max<size_t>(1, all_lengths.size());
    rec["completion_length/max"] = len_max;
    rec["truncated_frac"] = static_cast<double>(all_truncated) / std::max<size_t>(1, all_lengths.size());
    rec["groups/trained"] = groups_trained;
    rec["groups/dropped"] = dropped_groups;
    rec["sampling_rounds"] = rounds;
    rec["loss"] = loss_first_pass;
    rec["clip_ratio/low"] = sums.clip_low_count / tok_denom;
    rec["clip_ratio/high"] = sums.clip_high_count / tok_denom;
    rec["clip_ratio/region"] = (sums.clip_low_count + sums.clip_high_count) / tok_denom;
    rec["clip_ratio/dual"] = sums.dual_clip_count / tok_denom;
    rec["ratio/mean"] = sums.ratio_sum / tok_denom;
    rec["kl"] = sums.kl_sum / tok_denom;
    const double mm_denom = std::max(1.0, mismatch.tokens);
    rec["mismatch/abs_logp_diff"] = mismatch.abs_diff_sum / mm_denom;
    rec["mismatch/kl_k1"] = mismatch.k1_sum / mm_denom;
    rec["mismatch/kl_k3"] = mismatch.k3_sum / mm_denom;
    rec["is_weight/mean"] = mismatch.weight_sum / mm_denom;
    rec["is_weight/capped_frac"] = mismatch.capped / mm_denom;
    rec["staleness"] = batch.oldest_weight_version < 0 ? 0 : step - 1 - batch.oldest_weight_version;
    rec["entropy"] = entropy_sum / std::max(1.0, entropy_tokens);
    rec["grad_norm"] = grad_norm;
    rec["lr"] = lr;
    rec["tokens_per_s"] = generate_s > 0 ? generated_tokens / generate_s : 0.0;
    rec["time/generate"] = generate_s;
    rec["time/reward"] = reward_s;
    rec["time/train"] = train_s;
    rec["time/step"] = step_timer.seconds();
    rec["data_position"] = state.data_position;
    if (in.sample_metrics) {
      std::vector<json> recs;
      std::vector<std::string> texts;
      for (const ScoredGroup& sg : kept)
        for (const Sample& sample : sg.group.samples) recs.push_back(sg.record), texts.push_back(sample.text);
      rec.update(in.sample_metrics(recs, texts));
    }
    if (in.evaluate && in.eval_every > 0 && (step % in.eval_every == 0 || step == o.steps)) {
      Timer eval_timer;
      rec.update(in.evaluate(policy));
      rec["time/eval"] = eval_timer.seconds();
    }
    metrics.write(rec);
    tb.scalars(step, rec);  // no-op off rank 0
    progress.add("tok", static_cast<double>(generated_tokens));
    progress.set_note(fmt::format("reward {:.3f}", reward_mean));
    progress.advance();
    if (dp.is_main()) spdlog::info(
        "grpo step {}/{} | reward {:.3f} ± {:.3f} | acc {:.3f} | len {:.1f} (max {}) | clip {:.3f} | kl {:.4f} | "
        "ent {:.3f} | gnorm {:.3f} | lr {:.2e} | {:.0f} tok/s | gen {:.2f}s rew {:.2f}s train {:.2f}s",
        step, o.steps, reward_mean, reward_std, rec.value("reward/accuracy", 0.0), rec["completion_length/mean"].get<double>(),
        len_max, rec["clip_ratio/region"].get<double>(), rec["kl"].get<double>(), rec["entropy"].get<double>(),
        grad_norm, lr, rec["tokens_per_s"].get<double>(), generate_s, reward_s, train_s);
    if (rec.contains("eval/accuracy"))
      spdlog::info("grpo step {}: held-out accuracy {:.1f}% ({:.1f} s)", step, 100 * rec["eval/accuracy"].get<double>(),
                   rec.value("time/eval", 0.0));

    if (o.log_samples_every > 0 && step % o.log_samples_every == 0) {
      std::vector<json> lines;
      for (size_t gi = 0; gi < kept.size() && static_cast<int64_t>(lines.size()) < o.samples_per_log; ++gi) {
        for (size_t s = 0; s < kept[gi].group.samples.size() && static_cast<int64_t>(lines.size()) < o.samples_per_log;
             ++s) {
          const Sample& sample = kept[gi].group.samples[s];
          const int64_t row = row_of[gi][s];
          json line = {{"step", step},
                       {"prompt", kept[gi].prompt_text},
                       {"completion", sample.text},
                       {"finish_reason", finish_reason_name(sample.finish_reason)},
                       {"length", sample.completion_ids.size()},
                       {"advantage", row >= 0 ? json(advantages[row].item<double>()) : json(nullptr)}};
          line.update(o.rewards.to_json(kept[gi].scores[s]));
          samples_log.write(line);
          lines.push_back(std::move(line));
        }
      }
      tb.text("samples", step, markdown_samples(lines, {"reward", "advantage", "length", "finish_reason"},
                                                 {"prompt", "completion", "reward_errors"}));
    }
    if ((o.save_every > 0 && step % o.save_every == 0) || step == o.steps) {
      dp.barrier();  // every rank finished the step; then no rank runs ahead of a half-written checkpoint
      if (dp.is_main()) save_checkpoint(run_dir, state, policy, cfg, optimizer, in.model_dir, o.keep_checkpoints, &lora);
      dp.barrier();
    }
    result.step = step;
    result.last_metrics = rec;
    if (in.on_step) in.on_step(rec);
    if (in.stop_after_steps > 0 && ++steps_this_call >= in.stop_after_steps && step < o.steps) {
      int64_t last = latest_checkpoint_step(run_dir);
      result.model_dir = last > 0 ? checkpoint_dir(run_dir, last) + (lora ? "/adapter" : "/model") : "";
      return result;
    }
  }

  // The final policy, also when a previous call already finished every step. LoRA: the adapter
  // (PEFT format) and the merged model.
  if (lora) {
    if (dp.is_main()) save_peft_adapter(lora, run_dir + "/adapter", in.model_dir);
    merge_lora(policy);
  }
  SaveOptions save;
  save.tokenizer_dir = in.model_dir;
  if (dp.is_main()) save_model(policy, cfg, run_dir + "/model", save);
  dp.barrier();
  result.finished = true;
  result.step = state.step;
  result.model_dir = run_dir + "/model";
  return result;
}

}  // namespace r1kit::grpo
