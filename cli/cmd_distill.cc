// `r1kit distill`: distillation data at scale, on the one generate-and-score driver.
//
//   r1kit distill generate --teacher DIR --prompts IN.jsonl -n 4 --out DIR [--config job.yaml]
//       the teacher's samples of every prompt, filtered (correct, formatted, language-consistent,
//       no degenerate repetition, length bounds), every accepted sample kept (-k 0) unless -k says
//       otherwise, duplicates removed
//   r1kit distill reject --model RL_CKPT --prompts IN.jsonl -n 16 -k 1 --out DIR [--mix SFT.jsonl --mix-ratio 0.33]
//       rejection sampling: N samples of the policy per prompt, up to k kept (default: the shortest
//       correct one), optionally mixed with non-reasoning SFT records
//
// Both write DIR/shards (resumable after kill -9: re-run the same command), DIR/data.jsonl (chat
// records with provenance) and DIR/stats.json (counts per rejection reason), and draw a progress
// bar (prompts/s, records/s, tokens/s, ETA). The config file (YAML/JSON) holds the job keys of
// distill/rejection_sampler.h (filters, rewards, dedup, sampling); flags override it.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>
#include <random>

#include "cli/command.h"
#include "cli/model_options.h"
#include "core/config.h"
#include "core/fs.h"
#include "core/hash.h"
#include "datagen/prompt_file.h"
#include "distill/rejection_sampler.h"
#include "model/tokenizer.h"
#include "rollout/pool.h"

namespace {

using namespace r1kit;

struct DistillArgs {
  std::string mode;                 // "generate" | "reject"
  cli::ModelArgs model;             // --teacher / --model
  std::string prompts, out, config;
  int64_t n = 0, k = -1;            // 0 / -1: the mode's default
  std::string prefer;
  double temperature = std::numeric_limits<double>::quiet_NaN(), top_p = std::numeric_limits<double>::quiet_NaN();
  int64_t top_k = -1, max_new_tokens = 0, chunk = 0;
  int64_t seed = -1;
  bool chat = false;
  std::string chat_template;
  std::string mix;                  // non-reasoning SFT records (JSONL)
  double mix_ratio = 0;
  bool no_progress = false;
  int workers = 1;
  EngineOptions engine;
};

// n records of the mix file: a seeded permutation, cycled when the file has fewer than n.
std::vector<json> mix_records(const std::string& path, uint64_t seed, int64_t n) {
  std::vector<json> all;
  for_each_jsonl(path, [&](const json& rec, int line) {
    all.push_back(distill::to_messages_record(rec, "mix record"));
    all.back()["mix_source"] = path + ":" + std::to_string(line);
  });
  R1_CHECK(!all.empty() || n == 0, path, ": no records to mix in");
  std::vector<size_t> order(all.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(seed ^ 0x6d69785fULL);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<json> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(all[order[i % order.size()]]);
  return out;
}

void print_stats(const json& stats, const std::string& out) {
  std::printf("prompts %lld, samples %lld, accepted %lld (%.1f%%), kept %lld, mixed %lld -> %s/data.jsonl (%lld records)\n",
              static_cast<long long>(stats["prompts"].get<int64_t>()), static_cast<long long>(stats["samples"].get<int64_t>()),
              static_cast<long long>(stats["accepted"].get<int64_t>()), 100 * stats["acceptance_rate"].get<double>(),
              static_cast<long long>(stats["kept"].get<int64_t>()),
              static_cast<long long>(stats["mixed_nonreasoning"].get<int64_t>()), out.c_str(),
              static_cast<long long>(stats["records"].get<int64_t>()));
  std::printf("rejected:");
  for (auto it = stats["rejected"].begin(); it != stats["rejected"].end(); ++it)
    if (it->get<int64_t>() > 0) std::printf(" %s %lld", it.key().c_str(), static_cast<long long>(it->get<int64_t>()));
  std::printf("\ndropped:");
  for (auto it = stats["dropped"].begin(); it != stats["dropped"].end(); ++it)
    std::printf(" %s %lld", it.key().c_str(), static_cast<long long>(it->get<int64_t>()));
  std::printf("\nstats: %s/stats.json\n", out.c_str());
}

int run_distill(const DistillArgs& a) {
  const bool reject = a.mode == "reject";
  const std::string role = reject ? "--model" : "--teacher";
  R1_CHECK(path_exists(a.model.model + "/config.json"), role, ": ", reject ? "policy" : "teacher", " model not found: ",
           a.model.model, "/config.json does not exist");
  R1_CHECK(path_exists(a.prompts), "--prompts: file not found: ", a.prompts);
  R1_CHECK(a.mix.empty() == (a.mix_ratio == 0), "--mix FILE and --mix-ratio R go together");
  if (!a.mix.empty()) R1_CHECK(path_exists(a.mix), "--mix: file not found: ", a.mix);

  // 1. The job: mode defaults, then the config file, then flags.
  distill::DataJobOptions o;
  o.driver.samples_per_prompt = reject ? 8 : 4;
  o.keep_per_prompt = reject ? 1 : 0;
  o.prefer = reject ? "shortest" : "first";
  o.driver.sampling.temperature = reject ? 1.0 : 0.6;
  o.driver.sampling.top_p = reject ? 1.0 : 0.95;
  o.driver.sampling.max_new_tokens = 1024;
  json config_raw = json::object();
  if (!a.config.empty()) {
    ConfigNode node = ConfigNode::load(a.config);
    config_raw = node.raw();
    distill::read_data_job_options(node, o);
    node.finish();
  }
  if (a.n > 0) o.driver.samples_per_prompt = a.n;
  if (a.k >= 0) o.keep_per_prompt = a.k;
  if (!a.prefer.empty()) o.prefer = a.prefer;
  if (!std::isnan(a.temperature)) o.driver.sampling.temperature = a.temperature;
  if (!std::isnan(a.top_p)) o.driver.sampling.top_p = a.top_p;
  if (a.top_k >= 0) o.driver.sampling.top_k = a.top_k;
  if (a.max_new_tokens > 0) o.driver.sampling.max_new_tokens = a.max_new_tokens;
  if (a.seed >= 0) o.driver.sampling.seed = static_cast<uint64_t>(a.seed);
  if (a.chunk > 0) o.driver.chunk_prompts = a.chunk;
  o.driver.sampling.validate();
  o.policy = a.model.model;
  o.mix_ratio = a.mix_ratio;
  o.progress = !a.no_progress;
  const uint64_t mix_seed = o.driver.sampling.seed;
  if (!a.mix.empty()) o.mix_records = [&a, mix_seed](int64_t n) { return mix_records(a.mix, mix_seed, n); };
  const auto& sp = o.driver.sampling;
  o.settings = {{"mode", a.mode},
                {"policy", a.model.model},
                {"prompts", a.prompts},
                {"prompts_fnv1a", fnv1a(read_file(a.prompts))},
                {"samples_per_prompt", o.driver.samples_per_prompt},
                {"keep_per_prompt", o.keep_per_prompt},
                {"prefer", o.prefer},
                {"sampling", {{"temperature", sp.temperature}, {"top_p", sp.top_p}, {"top_k", sp.top_k},
                              {"max_new_tokens", sp.max_new_tokens}, {"seed", sp.seed}}},
                {"chat", a.chat},
                {"chat_template", a.chat_template},
                {"config", config_raw},
                {"mix", a.mix},
                {"mix_ratio", a.mix_ratio}};
  distill::validate_data_job(o, "r1kit distill " + a.mode);

  // 2. Model, tokenizer, prompts (errors name the file and line).
  ModelConfig cfg;
  Transformer model = cli::load_model_from_args(a.model, &cfg);
  R1_CHECK(path_exists(a.model.model + "/tokenizer.json"), role, ": ", a.model.model, "/tokenizer.json does not exist");
  const Tokenizer tok = Tokenizer::from_file(a.model.model);
  datagen::PromptFileOptions pf;
  pf.chat = a.chat;
  pf.tokenizer_dir = a.model.model;
  pf.chat_template = a.chat_template;
  const std::vector<datagen::PromptItem> prompts = datagen::read_prompt_file(a.prompts, tok, pf);
  const datagen::PromptBuilder builder(tok, pf);

  // 3. The job on a rollout pool (one replica per GPU with --workers).
  PoolOptions po;
  po.num_workers = a.workers;
  po.engine = a.engine;
  if (model->device().is_cuda())
    for (int i = 0; i < a.workers; ++i) po.devices.emplace_back(torch::kCUDA, static_cast<c10::DeviceIndex>(i));
  RolloutPool pool(model, po, [&tok](const std::vector<int64_t>& ids) {
    return tok.decode(std::vector<int32_t>(ids.begin(), ids.end()), /*skip_special_tokens=*/true);
  });
  model = Transformer(nullptr);  // the replicas hold the weights now
  const distill::DataJobResult r = distill::run_data_job(
      pool, prompts, [&builder](const datagen::PromptItem& p) { return builder.messages_of(p.record); }, o, a.out);
  print_stats(r.stats, a.out);
  return r.complete ? 0 : 1;
}

void add_job_options(CLI::App& sub, DistillArgs& a) {
  sub.add_option("--prompts", a.prompts, "JSONL: \"prompt\" text or \"messages\", optional \"id\", fields the rewards read")
      ->required();
  sub.add_option("--out", a.out, "output directory (re-run the same command to resume)")->required();
  sub.add_option("--config", a.config, "YAML/JSON job config: filters, rewards, dedup, sampling (flags override)");
  sub.add_option("-n,--num-samples", a.n, "samples per prompt")->check(CLI::PositiveNumber);
  sub.add_option("-k,--keep", a.k, "kept samples per prompt (0 = every accepted one)")->check(CLI::NonNegativeNumber);
  sub.add_option("--prefer", a.prefer, "which accepted samples to keep: shortest|longest|highest_reward|first|random");
  sub.add_option("--temperature", a.temperature, "sampling temperature");
  sub.add_option("--top-p", a.top_p, "nucleus sampling mass");
  sub.add_option("--top-k", a.top_k, "top-k sampling (0 = off)");
  sub.add_option("--max-new-tokens", a.max_new_tokens, "completion length bound (default 1024)");
  sub.add_option("--seed", a.seed, "base seed (a prompt's samples are seeded by it and the prompt id)");
  sub.add_option("--chunk", a.chunk, "prompts per shard (default 64): a kill loses at most one chunk");
  sub.add_flag("--chat", a.chat, "render \"prompt\" strings as a user turn with the chat template");
  sub.add_option("--chat-template", a.chat_template, "chat template name (default: the tokenizer's)");
  sub.add_flag("--no-progress", a.no_progress, "no progress bar");
  sub.add_option("--workers", a.workers, "rollout workers (policy replicas; one per GPU)")->check(CLI::PositiveNumber);
  sub.add_option("--max-batch", a.engine.max_batch, "sequences decoded together")->check(CLI::PositiveNumber);
  sub.add_option("--token-budget", a.engine.token_budget, "KV-cache tokens per worker")->check(CLI::PositiveNumber);
  sub.add_option("--device", a.model.device, "cpu | cuda | cuda:N");
  sub.add_option("--dtype", a.model.dtype, "float32 | bfloat16 | float16 (default: bf16 on CUDA, f32 on CPU)");
}

r1kit::cli::Registrar reg{
    "distill", "distillation data: teacher generation (generate) and rejection sampling (reject), filtered and resumable",
    [](CLI::App& sub) {
      auto gen = std::make_shared<DistillArgs>();
      auto rej = std::make_shared<DistillArgs>();
      gen->mode = "generate";
      rej->mode = "reject";
      sub.require_subcommand(1);
      CLI::App* g = sub.add_subcommand("generate", "teacher samples of every prompt -> filtered chat records (sharded, resumable)");
      g->add_option("--teacher", gen->model.model, "teacher model directory (HF checkpoint)")->required();
      add_job_options(*g, *gen);
      CLI::App* r = sub.add_subcommand("reject", "rejection sampling: N policy samples per prompt, keep up to k correct ones");
      r->add_option("--model", rej->model.model, "policy checkpoint (e.g. the RL model)")->required();
      add_job_options(*r, *rej);
      r->add_option("--mix", rej->mix, "non-reasoning SFT records (JSONL: messages or prompt/completion) to mix in");
      r->add_option("--mix-ratio", rej->mix_ratio, "non-reasoning records per kept record (e.g. 0.33)")
          ->check(CLI::NonNegativeNumber);
      return [g, gen, rej]() -> int { return run_distill(g->parsed() ? *gen : *rej); };
    }};

}  // namespace
