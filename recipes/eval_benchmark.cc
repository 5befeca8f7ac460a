#include "recipes/eval_benchmark.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <thread>

#include "core/check.h"
#include "core/fs.h"
#include "core/jsonl_shards.h"
#include "core/logging.h"
#include "core/progress.h"
#include "core/thread_pool.h"
#include "datagen/generate_and_score.h"
#include "eval/score.h"
#include "model/tokenizer.h"
#include "recipes/plot.h"

namespace r1kit::recipes {
namespace {

json settings_json(const BenchmarkEvalOptions& o) {
  json s = {{"k", o.k}, {"temperature", o.temperature}, {"top_p", o.top_p}, {"max_new_tokens", o.max_new_tokens},
            {"think_prefix", o.think_prefix}, {"seed", o.seed}};
  if (!o.preset.empty()) s["preset"] = o.preset;
  if (o.greedy) s["greedy"] = true;
  if (o.limit > 0) s["limit"] = o.limit;
  return s;
}

// Generates `n` samples per unfinished problem into `shards`, checked by `checker`.
void generate_into(RolloutPool& pool, const eval::BenchmarkSpec& spec, const rewards::Reward& checker,
                   const std::vector<datagen::PromptItem>& items, SamplingOptions sampling, int64_t n, bool greedy,
                   int64_t chunk, JsonlShards& shards, Progress& progress) {
  std::vector<datagen::PromptItem> todo;
  for (const auto& it : items)
    if (!shards.done(it.id)) todo.push_back(it);
  if (todo.empty()) return;
  // The checker goes in as a non-owning reward set entry (it outlives the call).
  rewards::RewardSet set;
  rewards::RewardEntry entry;
  entry.label = entry.name = "check";
  entry.reward = std::shared_ptr<const rewards::Reward>(&checker, [](const rewards::Reward*) {});
  set.add(entry);
  datagen::DriverOptions o;
  o.samples_per_prompt = n;
  o.sampling = sampling;
  o.chunk_prompts = chunk;
  datagen::generate_and_score(pool, &set, todo, o, [&](std::vector<datagen::ScoredGroup>&& groups) {
    std::vector<json> records;
    std::vector<std::string> keys;
    for (auto& g : groups) {
      keys.push_back(g.prompt->id);
      for (size_t i = 0; i < g.group.samples.size(); ++i) {
        const auto& s = g.group.samples[i];
        eval::Sample e;
        e.problem_id = g.prompt->id;
        e.index = s.sample_index;
        e.greedy = greedy;
        e.completion = s.text;
        e.tokens = static_cast<int64_t>(s.completion_ids.size());
        e.finish_reason = finish_reason_name(s.finish_reason);
        eval::apply_check(e, g.scores[i].outputs.at(0), spec.checker);
        records.push_back(e.to_json());
      }
    }
    shards.write(records, keys);
  }, &progress);
}

std::vector<eval::Sample> read_shards(const JsonlShards& shards, const std::map<std::string, const eval::Problem*>& by_id) {
  std::vector<eval::Sample> out;
  shards.for_each_record([&](const json& r, const std::string& where) {
    R1_CHECK(by_id.count(r.at("problem_id").get<std::string>()), where, ": problem '", r["problem_id"],
             "' is not in the benchmark (a shard from another benchmark or limit?)");
    eval::Sample s;
    s.problem_id = r["problem_id"].get<std::string>();
    s.index = r.at("sample").get<int64_t>();
    s.greedy = r.at("greedy").get<bool>();
    s.completion = r.at("completion").get<std::string>();
    s.tokens = r.value("tokens", int64_t{-1});
    s.finish_reason = r.value("finish_reason", std::string());
    s.correct = r.at("correct").get<bool>();
    if (r.at("extracted").is_string()) s.answer = r["extracted"].get<std::string>();
    s.error = r.value("error", std::string());
    out.push_back(std::move(s));
  });
  return out;
}

}  // namespace

void apply_preset(const eval::Preset& p, BenchmarkEvalOptions& o) {
  o.temperature = p.temperature;
  o.top_p = p.top_p;
  o.k = p.k;
  o.think_prefix = p.think_prefix;
  o.preset = p.name;
}

eval::BenchmarkResult evaluate_benchmark(Transformer model, const std::string& tokenizer_dir, const eval::BenchmarkSpec& spec,
                                         const BenchmarkEvalOptions& o, const std::string& out_dir) {
  R1_CHECK(o.k >= 1, "eval: k must be >= 1");
  // 1. Problems and their prompts.
  const std::vector<eval::Problem> problems =
      eval::load_problems(spec, o.data_dir.empty() ? eval::default_data_dir() : o.data_dir, o.limit);
  const Tokenizer tok = Tokenizer::from_file(tokenizer_dir);
  PromptFormat format = o.prompt_format;
  if (format.chat) format.think_prefill = o.think_prefix ? 1 : 0;
  const PromptEncoder encoder(tok, tokenizer_dir, format);
  std::vector<datagen::PromptItem> items;
  std::map<std::string, const eval::Problem*> by_id;
  for (const auto& p : problems) {
    datagen::PromptItem it;
    it.id = p.id;
    it.text = format.chat || !o.think_prefix ? p.prompt : p.prompt + "\n<think>\n";
    const std::vector<int32_t> ids = encoder.encode(it.text);
    it.ids.assign(ids.begin(), ids.end());
    it.record = p.record;
    items.push_back(std::move(it));
    by_id[p.id] = &p;
  }

  // 2. Generate and check (resuming from the shards), sampled then optionally greedy.
  make_dirs(out_dir);
  JsonlShards sampled(out_dir + "/shards"), greedy(out_dir + "/shards_greedy");
  const auto checker = eval::make_checker(spec);
  const int64_t total = static_cast<int64_t>(items.size()) * (o.greedy ? 2 : 1);
  const int64_t done = static_cast<int64_t>(sampled.done_keys().size() + (o.greedy ? greedy.done_keys().size() : 0));
  if (done < total) {
    RolloutPool pool(model, o.pool, [&tok](const std::vector<int64_t>& ids) {
      return tok.decode(std::vector<int32_t>(ids.begin(), ids.end()), /*skip_special_tokens=*/true);
    });
    ProgressOptions bar;
    bar.label = "eval " + spec.name;
    bar.unit = "problem";
    bar.total = total;
    bar.initial = done;
    bar.enabled = o.progress;
    Progress progress(bar);
    SamplingOptions s;
    s.temperature = o.temperature;
    s.top_p = o.top_p;
    s.max_new_tokens = o.max_new_tokens;
    s.seed = o.seed;
    generate_into(pool, spec, *checker, items, s, o.k, false, o.chunk_problems, sampled, progress);
    if (o.greedy) {
      s.temperature = 0.0;
      s.top_p = 1.0;
      generate_into(pool, spec, *checker, items, s, 1, true, o.chunk_problems, greedy, progress);
    }
    progress.finish();
  }

  // 3. Measure and write the outputs.
  std::vector<eval::Sample> samples = read_shards(sampled, by_id);
  if (o.greedy) {
    std::vector<eval::Sample> g = read_shards(greedy, by_id);
    samples.insert(samples.end(), g.begin(), g.end());
  }
  return score_and_write(std::move(samples), spec, settings_json(o), out_dir);
}

eval::BenchmarkResult score_and_write(std::vector<eval::Sample> samples, const eval::BenchmarkSpec& spec,
                                      const json& settings, const std::string& out_dir) {
  bool unchecked = false;
  for (const auto& s : samples) unchecked |= !s.correct.has_value();
  if (unchecked) {
    const auto checker = eval::make_checker(spec);
    ThreadPool threads(std::max(1u, std::thread::hardware_concurrency()));
    eval::check_samples(*checker, spec, samples, &threads);
  }
  const auto problems = eval::measure_problems(samples, spec.checker, eval::math_answer_equiv());
  json s = settings;
  s["checker"] = eval::checker_name(spec.checker);
  eval::BenchmarkResult r = eval::write_benchmark_outputs(out_dir, spec.name, s, samples, problems);
  write_eval_plots(out_dir, r, samples);
  return r;
}

std::vector<std::string> write_eval_plots(const std::string& out_dir, const eval::BenchmarkResult& r,
                                          const std::vector<eval::Sample>& samples) {
  make_dirs(out_dir + "/plots");
  std::vector<std::string> files;
  // pass@k and maj@k against k (log2 k on the x axis keeps powers of two evenly spaced).
  PlotSeries pass{"pass@k", {}, {}}, maj{"maj@k", {}, {}};
  for (const auto& [name, v] : r.summary.metrics) {
    const size_t at = name.find('@');
    if (at == std::string::npos) continue;
    const double x = std::log2(static_cast<double>(std::stoll(name.substr(at + 1))));
    PlotSeries& series = name.compare(0, at, "pass") == 0 ? pass : maj;
    series.x.push_back(x);
    series.y.push_back(100.0 * v.mean);
  }
  std::vector<PlotSeries> lines{pass};
  if (!maj.x.empty()) lines.push_back(maj);
  PlotOptions po;
  po.title = r.benchmark + ": pass@k and maj@k";
  po.x_label = "log2 k";
  po.y_label = "%";
  po.y_from_zero = true;
  files.push_back(out_dir + "/plots/pass_at_k.svg");
  write_line_chart(files.back(), lines, po);
  // Response-length histogram: 20 bins over [0, max tokens].
  int64_t max_tokens = 0;
  for (const auto& s : samples) max_tokens = std::max(max_tokens, s.tokens);
  if (max_tokens > 0) {
    const int bins = 20;
    const double width = std::max(1.0, std::ceil(static_cast<double>(max_tokens + 1) / bins));
    PlotSeries hist{"samples", {}, {}};
    std::vector<double> counts(bins, 0.0);
    for (const auto& s : samples)
      if (s.tokens >= 0) counts[std::min<int64_t>(bins - 1, static_cast<int64_t>(s.tokens / width))] += 1;
    for (int b = 0; b < bins; ++b) {
      // Step outline: each bin is a flat segment.
      hist.x.push_back(b * width);
      hist.y.push_back(counts[b]);
      hist.x.push_back((b + 1) * width);
      hist.y.push_back(counts[b]);
    }
    PlotOptions ho;
    ho.title = r.benchmark + ": response length";
    ho.x_label = "completion tokens";
    ho.y_label = "samples";
    ho.y_from_zero = true;
    files.push_back(out_dir + "/plots/response_length.svg");
    write_line_chart(files.back(), {hist}, ho);
  }
  return files;
}

std::string write_eval_report(const std::string& out_root) {
  std::vector<eval::BenchmarkResult> results;
  std::vector<std::filesystem::path> dirs;
  for (const auto& e : std::filesystem::directory_iterator(out_root))
    if (e.is_directory() && path_exists((e.path() / "summary.json").string())) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) {
    const std::string path = (d / "summary.json").string();
    results.push_back(eval::BenchmarkResult::from_json(parse_json(read_file(path), path), path));
  }
  const std::string md = eval::report_markdown(results);
  write_file_atomic(out_root + "/report.md", md);
  return md;
}

}  // namespace r1kit::recipes
