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
//   5. old log-probs (only when num_iterations > 1; else old = detached current, as TRL) and
//      reference log-probs (only when beta > 0)
//   6. num_iterations passes over micro-batches, gradients accumulated with the full batch's
//      normaliser (so the accumulated gradient is the unsplit batch's)
//   7. AdamW with warm-up + cosine/constant schedule and grad-norm clipping (per pass)
//   8. push the new weights to the pool
//   9. metrics, samples, checkpoint
#include "grpo/trainer.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <map>

#include "core/check.h"
#include "core/fs.h"
#include "core/logging.h"
#include "core/progress.h"
#include "core/tensorboard.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "grpo/advantages.h"
#include "grpo/logprobs.h"
#include "grpo/loss.h"
#include "grpo/reward_mask.h"
#include "grpo/trainer_state.h"
#include "model/checkpoint.h"
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

// One prompt's group with its record and reward scores.
struct ScoredGroup {
  json record;
  std::string prompt_text;
  Group group;
  std::vector<rewards::SampleScore> scores;  // one per sample
  GroupValidity validity;                    // samples whose rewards all succeeded
  bool constant = false;                     // all valid totals equal (no learning signal)
};

// Rows [begin, end) of the training batch, packed for one forward.
struct MicroBatch {
  CompletionBatch batch;
  torch::Tensor advantages;  // [b] float32
  torch::Tensor loss_mask;   // [b, C] bool
  torch::Tensor old_logp;    // [b, C] (num_iterations > 1)
  torch::Tensor ref_logp;    // [b, C] (beta > 0)
};

std::vector<int64_t> to_int64(const std::vector<int32_t>& ids) { return {ids.begin(), ids.end()}; }

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

  GrpoResult result;
  TrainerState state;
  state.seed = o.seed;
  result.resumed_from = latest_checkpoint_step(run_dir);
  const std::string start_dir = result.resumed_from > 0 && !o.lora.enabled()
                                    ? checkpoint_dir(run_dir, result.resumed_from) + "/model"
                                    : in.model_dir;

  ModelConfig cfg;
  Transformer policy = load_model(start_dir, &cfg, in.device, in.dtype);
  policy->set_compute_options(in.compute);
  policy->train();
  // LoRA: only the adapter trains; the reference policy is the policy with its adapter off.
  LoraAdapter lora;
  if (o.lora.enabled()) {
    lora = attach_lora(policy, o.lora, o.seed);
    if (result.resumed_from > 0) load_peft_weights(lora, checkpoint_dir(run_dir, result.resumed_from) + "/adapter");
  }
  Transformer reference{nullptr};
  if (o.beta > 0 && !lora) {  // beta = 0: no reference model is loaded or run at all
    reference = load_model(in.model_dir, nullptr, in.device, in.dtype);
    reference->set_compute_options(in.compute);
    reference->eval();
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
  // Lines of steps after the checkpoint belong to the interrupted run: drop them.
  truncate_jsonl_after_step(metrics_path, state.step);
  truncate_jsonl_after_step(samples_path, state.step);
  MetricsWriter metrics(metrics_path, /*append=*/true);
  MetricsWriter samples_log(samples_path, /*append=*/true);
  TensorBoardWriter tb(o.tensorboard ? run_dir + "/tensorboard" : "", state.step + 1);
  ProgressOptions bar;
  bar.label = "grpo";
  bar.unit = "step";
  bar.total = o.steps;
  bar.initial = state.step;
  Progress progress(bar);

  PoolOptions pool_options;
  pool_options.num_workers = o.num_workers;
  pool_options.engine.max_batch = o.max_batch;
  pool_options.engine.token_budget = o.token_budget;
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
  ThreadPool reward_pool(static_cast<unsigned>(o.reward_threads));  // code rewards run sandboxes: score in parallel
  int64_t steps_this_call = 0;
  for (int64_t step = state.step + 1; step <= o.steps; ++step) {
    Timer step_timer;
    double generate_s = 0, reward_s = 0;
    int64_t generated_tokens = 0;

    // ---- 1-3. Prompts -> pool -> rewards (streamed per group), dynamic sampling ---------------
    std::vector<ScoredGroup> kept;
    std::vector<double> all_totals;                       // every generated sample, for the reward curve
    std::vector<std::vector<double>> all_by_reward(reward_entries.size());
    std::vector<int64_t> all_lengths;
    int64_t all_truncated = 0, dropped_groups = 0, rounds = 0, reward_errors = 0, masked_samples = 0,
            error_groups = 0;
    while (static_cast<int64_t>(kept.size()) < B) {
      const int64_t n = o.dynamic_sampling ? B - static_cast<int64_t>(kept.size()) : B;
      const int64_t first = state.data_position;
      std::vector<json> records = in.prompts(first, n);
      R1_CHECK(static_cast<int64_t>(records.size()) == n, "run_grpo: prompt source returned ", records.size(),
               " records for ", n);
      state.data_position += n;
      std::vector<ScoredGroup> round(n);
      std::vector<PromptRequest> requests(n);
      for (int64_t i = 0; i < n; ++i) {
        const json& rec = records[i];
        R1_CHECK(rec.contains(o.prompt_field) && rec[o.prompt_field].is_string(), "run_grpo: prompt record ",
                 first + i, " has no string field '", o.prompt_field, "'");
        round[i].record = rec;
        round[i].prompt_text = rec[o.prompt_field].get<std::string>();
        requests[i].id = std::to_string(first + i);
        requests[i].prompt_ids = to_int64(prompt_encoder.encode(round[i].prompt_text));
        R1_CHECK(!requests[i].prompt_ids.empty(), "run_grpo: prompt record ", first + i, " encodes to no tokens");
        requests[i].num_samples = G;
        // The seed follows the record's stream position: a resumed run draws the same samples.
        requests[i].seed = static_cast<int64_t>(derive_seed(o.seed, static_cast<uint64_t>(first + i)) >> 1);
      }
      Timer gen_timer;
      double scoring_s = 0;
      std::vector<Group> groups = pool.generate(requests, sampling, [&](const Group& g) {
        Timer t;  // score while the pool keeps generating the other groups
        std::vector<rewards::RewardInput> inputs(g.samples.size());
        for (size_t s = 0; s < g.samples.size(); ++s) {
          inputs[s].prompt = round[g.index].prompt_text;
          inputs[s].completion = g.samples[s].text;
          inputs[s].fields = round[g.index].record;
        }
        round[g.index].scores = o.rewards.score(inputs, &reward_pool);
        scoring_s += t.seconds();
      });
      generate_s += gen_timer.seconds() - scoring_s;
      reward_s += scoring_s;
      for (int64_t i = 0; i < n; ++i) {
        ScoredGroup& sg = round[i];
        sg.group = std::move(groups[i]);
        R1_CHECK(static_cast<int64_t>(sg.group.samples.size()) == G && sg.scores.size() == sg.group.samples.size(),
                 "run_grpo: group ", i, " came back with ", sg.group.samples.size(), " samples and ",
                 sg.scores.size(), " scores");
        sg.validity = group_validity(sg.scores, o.min_valid_samples);
        double lo = std::numeric_limits<double>::infinity(), hi = -lo;
        for (size_t s = 0; s < sg.scores.size(); ++s) {
          const auto& score = sg.scores[s];
          const auto& sample = sg.group.samples[s];
          all_lengths.push_back(static_cast<int64_t>(sample.completion_ids.size()));
          all_truncated += sample.finish_reason == FinishReason::kLength;
          generated_tokens += static_cast<int64_t>(sample.completion_ids.size());
          reward_errors += score.errors;
          if (!sg.validity.valid[s]) {  // not a score: kept out of the reward curves and the loss
            ++masked_samples;
            continue;
          }
          lo = std::min(lo, score.total);
          hi = std::max(hi, score.total);
          all_totals.push_back(score.total);
          for (size_t r = 0; r < reward_entries.size(); ++r) all_by_reward[r].push_back(score.outputs[r].score);
        }
        sg.constant = lo == hi;
        if (!sg.validity.keep) {
          ++error_groups;
        } else if (o.dynamic_sampling && sg.constant) {
          ++dropped_groups;
        } else if (static_cast<int64_t>(kept.size()) < B) {
          kept.push_back(std::move(sg));
        }
      }
      ++rounds;
      if (!o.dynamic_sampling || rounds > o.max_sampling_rounds) break;
    }

    // ---- 4. Advantages -------------------------------------------------------------------------
    Timer train_timer;
    const int64_t n_groups = static_cast<int64_t>(kept.size());
    std::vector<std::vector<int64_t>> prompts, completions;
    std::vector<std::vector<double>> group_totals;
    std::vector<std::vector<int64_t>> row_of(n_groups);  // [group][sample] -> training row, -1 if masked
    std::vector<bool> truncated;
    for (int64_t gi = 0; gi < n_groups; ++gi) {
      const ScoredGroup& sg = kept[gi];
      group_totals.emplace_back();
      for (size_t s = 0; s < sg.group.samples.size(); ++s) {
        row_of[gi].push_back(sg.validity.valid[s] ? static_cast<int64_t>(prompts.size()) : -1);
        if (!sg.validity.valid[s]) continue;
        prompts.push_back(sg.group.prompt_ids);
        completions.push_back(sg.group.samples[s].completion_ids);
        group_totals.back().push_back(sg.scores[s].total);
        truncated.push_back(sg.group.samples[s].finish_reason == FinishReason::kLength);
      }
    }
    const int64_t rows = static_cast<int64_t>(prompts.size());
    torch::Tensor advantages;
    if (rows > 0) advantages = ragged_group_advantages(group_totals, adv_options);

    // ---- 5. Micro-batches with old and reference log-probs ---------------------------------------
    std::vector<MicroBatch> micro;
    LossNormalizer normalizer;
    normalizer.num_rows = rows;
    for (int64_t s = 0; s < rows; s += o.micro_batch_size) {
      const int64_t e = std::min(rows, s + o.micro_batch_size);
      MicroBatch mb;
      mb.batch = make_completion_batch({prompts.begin() + s, prompts.begin() + e},
                                       {completions.begin() + s, completions.begin() + e}, in.device);
      mb.advantages = advantages.slice(0, s, e).to(torch::kFloat32).to(in.device);
      mb.loss_mask = mb.batch.completion_mask.clone();
      if (o.mask_truncated) {
        std::vector<int64_t> cut;  // DAPO overlong filtering: truncated completions get no loss
        for (int64_t r = s; r < e; ++r)
          if (truncated[r]) cut.push_back(r - s);
        if (!cut.empty()) mb.loss_mask.index_fill_(0, torch::tensor(cut, torch::kInt64).to(in.device), false);
      }
      normalizer.num_tokens += mb.loss_mask.sum().item<double>();
      normalizer.num_nonempty_rows += (mb.loss_mask.sum(1) > 0).sum().item<int64_t>();
      {
        torch::NoGradGuard no_grad;
        if (o.num_iterations > 1) mb.old_logp = completion_logprobs(policy, mb.batch, lp_options).logprobs;
        if (o.beta > 0) {
          LoraDisabled base_only(lora);
          mb.ref_logp = completion_logprobs(lora ? policy : reference, mb.batch, lp_options).logprobs;
        }
      }
      micro.push_back(std::move(mb));
    }

    // ---- 6-7. num_iterations passes: accumulate over micro-batches, clip, AdamW step -------------
    GrpoLossStats sums;  // counts summed over passes and micro-batches
    double loss_first_pass = 0, grad_norm = 0, lr = 0, entropy_sum = 0, entropy_tokens = 0;
    for (int64_t pass = 0; pass < o.num_iterations && rows > 0; ++pass) {
      optimizer.zero_grad();
      for (MicroBatch& mb : micro) {
        LogprobOptions opts = lp_options;
        opts.entropy = pass == 0;
        CompletionLogprobs cur = completion_logprobs(policy, mb.batch, opts);
        torch::Tensor old = o.num_iterations > 1 ? mb.old_logp : cur.logprobs.detach();
        GrpoLossOutput out = grpo_loss(cur.logprobs, old, mb.ref_logp, mb.advantages, mb.loss_mask, loss_options,
                                       normalizer);
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

    // ---- 8. New weights to the pool ------------------------------------------------------------
    if (rows > 0) pool.update_weights(step, pool_weights(policy, lora, o.lora));
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
    rec["groups/trained"] = n_groups;
    rec["groups/dropped"] = dropped_groups;
    rec["sampling_rounds"] = rounds;
    rec["loss"] = loss_first_pass;
    rec["clip_ratio/low"] = sums.clip_low_count / tok_denom;
    rec["clip_ratio/high"] = sums.clip_high_count / tok_denom;
    rec["clip_ratio/region"] = (sums.clip_low_count + sums.clip_high_count) / tok_denom;
    rec["clip_ratio/dual"] = sums.dual_clip_count / tok_denom;
    rec["ratio/mean"] = sums.ratio_sum / tok_denom;
    rec["kl"] = sums.kl_sum / tok_denom;
    rec["entropy"] = entropy_sum / std::max(1.0, entropy_tokens);
    rec["grad_norm"] = grad_norm;
    rec["lr"] = lr;
    rec["tokens_per_s"] = generate_s > 0 ? generated_tokens / generate_s : 0.0;
    rec["time/generate"] = generate_s;
    rec["time/reward"] = reward_s;
    rec["time/train"] = train_s;
    rec["time/step"] = step_timer.seconds();
    rec["data_position"] = state.data_position;
    metrics.write(rec);
    tb.scalars(step, rec);
    progress.add("tok", static_cast<double>(generated_tokens));
    progress.set_note(fmt::format("reward {:.3f}", reward_mean));
    progress.advance();
    spdlog::info(
        "grpo step {}/{} | reward {:.3f} ± {:.3f} | acc {:.3f} | len {:.1f} (max {}) | clip {:.3f} | kl {:.4f} | "
        "ent {:.3f} | gnorm {:.3f} | lr {:.2e} | {:.0f} tok/s | gen {:.2f}s rew {:.2f}s train {:.2f}s",
        step, o.steps, reward_mean, reward_std, rec.value("reward/accuracy", 0.0), rec["completion_length/mean"].get<double>(),
        len_max, rec["clip_ratio/region"].get<double>(), rec["kl"].get<double>(), rec["entropy"].get<double>(),
        grad_norm, lr, rec["tokens_per_s"].get<double>(), generate_s, reward_s, train_s);

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
      save_checkpoint(run_dir, state, policy, cfg, optimizer, in.model_dir, o.keep_checkpoints, &lora);
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
    save_peft_adapter(lora, run_dir + "/adapter", in.model_dir);
    merge_lora(policy);
  }
  SaveOptions save;
  save.tokenizer_dir = in.model_dir;
  save_model(policy, cfg, run_dir + "/model", save);
  result.finished = true;
  result.step = state.step;
  result.model_dir = run_dir + "/model";
  return result;
}

}  // namespace r1kit::grpo
