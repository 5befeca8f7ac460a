// Benchmark evaluation with a model: problems -> prompts (instruction, optional "<think>\n" start)
// -> k samples per problem through datagen::generate_and_score (the rollout pool, the benchmark's
// checker scoring groups while generation goes on) -> per-sample / per-problem files, summary,
// plots. Behind `r1kit eval` and `kind: eval` stages with a `benchmark` key.
//
// Resumable: samples are written in shards (core/jsonl_shards.h) under OUT/<benchmark>/shards
// (greedy samples under shards_greedy), one per chunk of problems; a rerun after kill -9 skips the
// finished problems and draws the rest with the same per-problem seeds, so it ends with the files an
// uninterrupted run writes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "eval/benchmarks.h"
#include "eval/report.h"
#include "model/tokenizer_prompt.h"
#include "model/transformer.h"
#include "rollout/pool.h"

namespace r1kit::recipes {

struct BenchmarkEvalOptions {
  std::string data_dir;             // "" = eval::default_data_dir()
  int64_t k = 16;                   // samples per problem (pass@k for powers of two <= k)
  double temperature = 0.6;         // 0 = greedy (then k should be 1)
  double top_p = 0.95;
  int64_t max_new_tokens = 1024;
  bool think_prefix = true;         // the response starts after "<think>\n"
  bool greedy = false;              // also one greedy sample per problem ("greedy" metric)
  int64_t limit = 0;                // first N problems (0 = all)
  uint64_t seed = 0;                // base of the per-problem seeds
  int64_t chunk_problems = 16;      // problems per shard
  PromptFormat prompt_format;       // plain or chat template
  PoolOptions pool;                 // workers, devices, engine sizes
  int progress = -1;                // progress bar: -1 auto, 0 off, 1 on
  std::string preset;               // recorded in the settings ("r1", "greedy", "")
};

// Applies a preset (eval::find_preset) to `o`: temperature, top_p, k, think_prefix.
void apply_preset(const eval::Preset& preset, BenchmarkEvalOptions& o);

// Evaluates `model` on one benchmark into out_dir (OUT/<benchmark>). `tokenizer_dir` holds
// tokenizer.json (+ tokenizer_config.json for chat prompts).
eval::BenchmarkResult evaluate_benchmark(Transformer model, const std::string& tokenizer_dir, const eval::BenchmarkSpec& spec,
                                         const BenchmarkEvalOptions& options, const std::string& out_dir);

// Scores samples already generated (eval score) and writes the same files as evaluate_benchmark.
eval::BenchmarkResult score_and_write(std::vector<eval::Sample> samples, const eval::BenchmarkSpec& spec,
                                      const json& settings, const std::string& out_dir);

// out_dir/plots/pass_at_k.svg (pass@k and maj@k vs k) and response_length.svg (histogram of
// completion tokens); returns the files written.
std::vector<std::string> write_eval_plots(const std::string& out_dir, const eval::BenchmarkResult& result,
                                          const std::vector<eval::Sample>& samples);

// Writes OUT/report.md from every OUT/*/summary.json (so several runs into one OUT share a report).
std::string write_eval_report(const std::string& out_root);

}  // namespace r1kit::recipes
