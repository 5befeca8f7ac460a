#include "distill/rejection_sampler.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "core/check.h"
#include "core/config.h"
#include "core/fs.h"
#include "core/jsonl_shards.h"
#include "core/logging.h"
#include "core/progress.h"
#include "core/timer.h"

namespace r1kit::distill {
namespace {

constexpr int kJobVersion = 1;
constexpr size_t kExamplesPerReason = 2;  // rejected samples kept per group and reason, for inspection

}  // namespace

// Counters of one shard (its meta "info"); summed over shards into stats.json.
json empty_counts() {
  json rejected = json::object(), failed = json::object();
  for (Reason r : rejection_reasons()) rejected[reason_name(r)] = failed[reason_name(r)] = 0;
  return {{"prompts", 0},          {"samples", 0},
          {"accepted", 0},         {"kept", 0},
          {"completion_tokens", 0}, {"kept_completion_tokens", 0},
          {"prompts_with_kept", 0}, {"rejected", rejected},
          {"failed_checks", failed},
          {"dropped", {{"exact_duplicate", 0}, {"near_duplicate", 0}, {"over_k", 0}}},
          {"reward_errors", 0},
          {"seconds", 0.0}};
}

namespace {

// a += b for every number of b (recursively); arrays of b are appended up to a bound.
void add_counts(json& a, const json& b) {
  for (auto it = b.begin(); it != b.end(); ++it) {
    if (it->is_object()) {
      if (!a.contains(it.key())) a[it.key()] = json::object();
      add_counts(a[it.key()], *it);
    } else if (it->is_number()) {
      const bool is_int = it->is_number_integer() && (!a.contains(it.key()) || a[it.key()].is_number_integer());
      if (is_int) a[it.key()] = a.value(it.key(), int64_t{0}) + it->get<int64_t>();
      else a[it.key()] = a.value(it.key(), 0.0) + it->get<double>();
    } else if (it->is_array()) {
      if (!a.contains(it.key())) a[it.key()] = json::array();
      for (const auto& e : *it)
        if (a[it.key()].size() < 20) a[it.key()].push_back(e);
    }
  }
}

// The first key path where two settings objects differ ("" when equal).
std::string first_difference(const json& a, const json& b, const std::string& path = "") {
  if (a.is_object() && b.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      const std::string p = path.empty() ? it.key() : path + "." + it.key();
      if (!b.contains(it.key())) return p;
      const std::string d = first_difference(*it, b.at(it.key()), p);
      if (!d.empty()) return d;
    }
    for (auto it = b.begin(); it != b.end(); ++it)
      if (!a.contains(it.key())) return path.empty() ? it.key() : path + "." + it.key();
    return "";
  }
  return a == b ? "" : (path.empty() ? "(root)" : path);
}

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// The order in which a group's accepted samples are considered for keeping.
std::vector<size_t> preference_order(const std::vector<size_t>& accepted, const datagen::ScoredGroup& g,
                                     const std::string& prefer) {
  std::vector<size_t> order = accepted;
  auto len = [&](size_t i) { return g.group.samples[i].completion_ids.size(); };
  auto idx = [&](size_t i) { return g.group.samples[i].sample_index; };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (prefer == "shortest" && len(a) != len(b)) return len(a) < len(b);
    if (prefer == "longest" && len(a) != len(b)) return len(a) > len(b);
    if (prefer == "highest_reward" && g.scores[a].total != g.scores[b].total) return g.scores[a].total > g.scores[b].total;
    if (prefer == "random") {
      const uint64_t ka = mix64(g.group.seed ^ mix64(idx(a))), kb = mix64(g.group.seed ^ mix64(idx(b)));
      if (ka != kb) return ka < kb;
    }
    return idx(a) < idx(b);
  });
  return order;
}

std::string clip_text(const std::string& s, size_t n = 400) { return s.size() <= n ? s : s.substr(0, n) + "..."; }

}  // namespace

GroupSelection select_from_group(const datagen::ScoredGroup& g, const json& prompt_messages, const DataJobOptions& o,
                                 const rewards::RewardSet& set, DedupIndex& dataset_index) {
  GroupSelection sel;
  json& c = sel.counts;
  c = empty_counts();
  auto inc = [](json& v, int64_t n = 1) { v = v.get<int64_t>() + n; };
  R1_CHECK(g.scores.size() == g.group.samples.size(), "select_from_group: ", g.scores.size(), " scores for ",
           g.group.samples.size(), " samples");
  inc(c["prompts"]);
  // 1. Filters.
  std::vector<size_t> accepted;
  std::map<std::string, size_t> examples_of;
  for (size_t s = 0; s < g.group.samples.size(); ++s) {
    const Sample& sample = g.group.samples[s];
    inc(c["samples"]);
    inc(c["completion_tokens"], static_cast<int64_t>(sample.completion_ids.size()));
    inc(c["reward_errors"], g.scores[s].errors);
    const FilterVerdict v = check_sample(o.filters, set, sample, g.scores[s]);
    for (Reason r : v.failed) inc(c["failed_checks"][reason_name(r)]);
    if (v.accepted()) {
      accepted.push_back(s);
      continue;
    }
    const std::string reason = reason_name(v.reason);
    inc(c["rejected"][reason]);
    if (examples_of[reason]++ < kExamplesPerReason)
      sel.examples.push_back({{"prompt_id", g.prompt->id}, {"sample_index", sample.sample_index}, {"reason", reason},
                              {"completion", clip_text(sample.text)}});
  }
  inc(c["accepted"], static_cast<int64_t>(accepted.size()));
  // 2. Up to k by preference, skipping duplicates of kept samples (this prompt's, or the dataset's).
  DedupOptions prompt_dedup = o.dedup;
  prompt_dedup.near = o.dedup.near && o.near_scope == "prompt";
  DedupIndex group_index(prompt_dedup);
  int64_t kept = 0;
  for (size_t s : preference_order(accepted, g, o.prefer)) {
    const Sample& sample = g.group.samples[s];
    if (o.keep_per_prompt > 0 && kept >= o.keep_per_prompt) {
      inc(c["dropped"]["over_k"]);
      continue;
    }
    json messages = prompt_messages;
    messages.push_back({{"role", "assistant"}, {"content", sample.text}});
    const std::string text = dedup_text(messages);
    auto verdict = group_index.check(sample.text);
    if (verdict == DedupIndex::Verdict::kUnique) verdict = dataset_index.check(text);
    if (verdict != DedupIndex::Verdict::kUnique) {
      inc(c["dropped"][verdict_name(verdict)]);
      continue;
    }
    group_index.add(sample.text);
    dataset_index.add(text);
    ++kept;
    json rewards_of = json::object();
    for (size_t e = 0; e < set.entries().size(); ++e) rewards_of[set.entries()[e].label] = g.scores[s].outputs[e].score;
    sel.records.push_back({{"messages", std::move(messages)},
                           {"prompt_id", g.prompt->id},
                           {"sample_index", sample.sample_index},
                           {"policy", o.policy},
                           {"seed", g.group.seed},
                           {"reward", g.scores[s].total},
                           {"rewards", rewards_of},
                           {"completion_tokens", sample.completion_ids.size()},
                           {"finish_reason", finish_reason_name(sample.finish_reason)},
                           {"source", "generated"}});
    inc(c["kept_completion_tokens"], static_cast<int64_t>(sample.completion_ids.size()));
  }
  inc(c["kept"], kept);
  if (kept > 0) inc(c["prompts_with_kept"]);
  return sel;
}

void read_data_job_options(ConfigNode& node, DataJobOptions& o) {
  node.read("samples_per_prompt", o.driver.samples_per_prompt);
  node.read("keep_per_prompt", o.keep_per_prompt);
  node.read_enum("prefer", o.prefer, {"shortest", "longest", "highest_reward", "first", "random"});
  node.read("chunk_prompts", o.driver.chunk_prompts);
  node.read("reward_threads", o.driver.reward_threads);
  node.read("temperature", o.driver.sampling.temperature);
  node.read("top_p", o.driver.sampling.top_p);
  node.read("top_k", o.driver.sampling.top_k);
  node.read("max_new_tokens", o.driver.sampling.max_new_tokens);
  node.read("seed", o.driver.sampling.seed);
  if (o.driver.samples_per_prompt < 1) node.fail("samples_per_prompt", "must be >= 1");
  if (o.keep_per_prompt < 0) node.fail("keep_per_prompt", "must be >= 0 (0 = every accepted sample)");
  if (o.driver.chunk_prompts < 1) node.fail("chunk_prompts", "must be >= 1");
  try {
    o.driver.sampling.validate();
  } catch (const Error& e) {
    R1_FAIL(node.where(), ": ", node.key_path("temperature/top_p/top_k/max_new_tokens"), ": ", e.what());
  }
  if (node.has("filters")) {
    ConfigNode f = node.child("filters");
    o.filters = read_filter_options(f);
  } else {
    node.ignore("filters");
  }
  if (node.has("rewards")) {
    o.extra_rewards = rewards::RewardSet::from_config(node);
  } else {
    node.ignore("rewards");
  }
  ConfigNode d = node.child("dedup");
  d.read("exact", o.dedup.exact);
  d.read("near", o.dedup.near);
  d.read_enum("near_scope", o.near_scope, {"prompt", "dataset"});
  d.read("threshold", o.dedup.threshold);
  d.read_enum("unit", o.dedup.unit, {"words", "chars"});
  d.read("shingle", o.dedup.shingle);
  d.read("num_perm", o.dedup.num_perm);
  d.read("bands", o.dedup.bands);
  d.finish();
  try {
    validate_dedup_options(o.dedup, d.where());
  } catch (const Error& e) {
    R1_FAIL(e.what(), " (key '", node.key_path("dedup"), "')");
  }
}

void validate_data_job(const DataJobOptions& o, const std::string& where) {
  const std::vector<std::string> prefs = {"shortest", "longest", "highest_reward", "first", "random"};
  R1_CHECK(std::find(prefs.begin(), prefs.end(), o.prefer) != prefs.end(), where, ": prefer '", o.prefer,
           "' is not one of shortest, longest, highest_reward, first, random");
  R1_CHECK(o.near_scope == "prompt" || o.near_scope == "dataset", where, ": near_scope must be prompt or dataset, got '",
           o.near_scope, "'");
  R1_CHECK(o.keep_per_prompt >= 0, where, ": keep_per_prompt must be >= 0 (0 = every accepted sample)");
  R1_CHECK(o.mix_ratio >= 0 && std::isfinite(o.mix_ratio), where, ": mix ratio must be >= 0");
  R1_CHECK(o.mix_ratio == 0 || o.mix_records, where, ": a mix ratio needs a source of non-reasoning records");
  validate_dedup_options(o.dedup, where);
}

std::string dedup_text(const json& messages) {
  std::string s;
  for (const auto& m : messages) {
    if (!s.empty()) s += "\n";
    s += m.at("content").get<std::string>();
  }
  return s;
}

json to_messages_record(const json& record, const std::string& where) {
  R1_CHECK(record.is_object(), where, ": expected a JSON object");
  if (record.contains("messages")) {
    const json& m = record.at("messages");
    R1_CHECK(m.is_array() && !m.empty(), where, ": \"messages\" must be a non-empty list");
    for (size_t i = 0; i < m.size(); ++i)
      R1_CHECK(m[i].is_object() && m[i].contains("role") && m[i]["role"].is_string() && m[i].contains("content") &&
                   m[i]["content"].is_string(),
               where, ": messages[", i, "] must be {\"role\": string, \"content\": string}");
    return record;
  }
  R1_CHECK(record.contains("prompt") && record["prompt"].is_string() && record.contains("completion") &&
               record["completion"].is_string(),
           where, ": needs \"messages\", or \"prompt\" and \"completion\" strings");
  json out = record;
  out.erase("prompt");
  out.erase("completion");
  out["messages"] = json::array({{{"role", "user"}, {"content", record["prompt"]}},
                                 {{"role", "assistant"}, {"content", record["completion"]}}});
  return out;
}

DataJobResult run_data_job(RolloutPool& pool, const std::vector<datagen::PromptItem>& prompts,
                           const std::function<json(const datagen::PromptItem&)>& messages_of,
                           const DataJobOptions& o, const std::string& out_dir) {
  validate_data_job(o, out_dir);
  Timer timer;
  make_dirs(out_dir);
  // 1. The job's identity: a directory started with other settings is not resumed.
  const std::string job_path = out_dir + "/job.json";
  const json job = {{"version", kJobVersion}, {"settings", o.settings}};
  if (path_exists(job_path)) {
    const json before = parse_json(read_file(job_path), job_path);
    const std::string diff = first_difference(before, job);
    R1_CHECK(diff.empty(), job_path, ": this directory holds a job with other settings ('", diff,
             "' differs); use another output directory, or delete it to start over");
  } else {
    write_file_atomic(job_path, job.dump(2) + "\n");
  }

  // 2. What is done; the dataset-wide dedup index rebuilt from the kept records, in shard order.
  JsonlShards shards(out_dir + "/shards");
  DedupOptions dataset_dedup = o.dedup;
  dataset_dedup.near = o.dedup.near && o.near_scope == "dataset";
  DedupIndex dataset_index(dataset_dedup);
  if (dataset_dedup.exact || dataset_dedup.near)
    shards.for_each_record([&](const json& rec, const std::string&) { dataset_index.add(dedup_text(rec.at("messages"))); });
  std::vector<datagen::PromptItem> todo;
  for (const auto& p : prompts)
    if (!shards.done(p.id)) todo.push_back(p);
  DataJobResult result;
  result.prompts_done_before = static_cast<int64_t>(prompts.size() - todo.size());
  result.data_path = out_dir + "/data.jsonl";

  // 3. Generate, score, filter, select, dedup; one shard per chunk.
  const rewards::RewardSet set = build_filter_rewards(o.filters, o.extra_rewards, out_dir);
  ProgressOptions bar;
  bar.label = "generate";
  bar.unit = "prompt";
  bar.total = static_cast<int64_t>(prompts.size());
  bar.initial = result.prompts_done_before;
  bar.enabled = o.progress ? -1 : 0;
  Progress progress(bar);
  progress.add("rec", 0);
  if (!todo.empty()) {
    spdlog::info("distill data job {}: {} prompts, {} already done, {} samples each", out_dir, prompts.size(),
                 result.prompts_done_before, o.driver.samples_per_prompt);
    Timer chunk_timer;  // the shard's wall time: generation, scoring and filtering of its chunk
    datagen::generate_and_score(
        pool, &set, todo, o.driver,
        [&](std::vector<datagen::ScoredGroup>&& groups) {
          json info = empty_counts();
          json examples = json::array();
          std::vector<json> records;
          std::vector<std::string> keys;
          for (const auto& g : groups) {
            keys.push_back(g.prompt->id);
            GroupSelection sel = select_from_group(g, messages_of(*g.prompt), o, set, dataset_index);
            add_counts(info, sel.counts);
            for (auto& e : sel.examples)
              if (examples.size() < 10) examples.push_back(std::move(e));
            for (auto& r : sel.records) records.push_back(std::move(r));
          }
          info["examples"] = examples;
          info["seconds"] = chunk_timer.seconds();
          shards.write(records, keys, info);
          chunk_timer.reset();
          progress.add("rec", static_cast<double>(records.size()));
        },
        &progress);
  }
  progress.finish();

  // 4. Complete: the merged dataset (+ mix) and the statistics, both rewritten atomically.
  result.complete = static_cast<int64_t>(shards.done_keys().size()) >= static_cast<int64_t>(prompts.size());
  for (const auto& p : prompts) result.complete = result.complete && shards.done(p.id);
  json stats = empty_counts();
  for (const auto& info : shards.infos()) add_counts(stats, info);
  const int64_t kept = stats["kept"].get<int64_t>();
  int64_t mixed = 0;
  if (result.complete) {
    std::vector<json> mix;
    if (o.mix_ratio > 0) {
      mix = o.mix_records(static_cast<int64_t>(std::llround(o.mix_ratio * static_cast<double>(kept))));
      mixed = static_cast<int64_t>(mix.size());
    }
    write_file_atomic(result.data_path, [&](std::FILE* f) {
      auto put = [&](const json& rec) {
        const std::string line = dump_line(rec) + "\n";
        R1_CHECK(std::fwrite(line.data(), 1, line.size(), f) == line.size(), result.data_path, ": write failed");
      };
      shards.for_each_record([&](const json& rec, const std::string&) { put(rec); });
      for (size_t i = 0; i < mix.size(); ++i) {
        json rec = to_messages_record(mix[i], "mix record " + std::to_string(i));
        rec["source"] = "nonreasoning";
        put(rec);
      }
    });
  }
  const auto samples = stats["samples"].get<int64_t>();
  stats["acceptance_rate"] = samples ? stats["accepted"].get<double>() / samples : 0.0;
  stats["kept_per_prompt"] = stats["prompts"].get<int64_t>() ? static_cast<double>(kept) / stats["prompts"].get<int64_t>() : 0.0;
  stats["mixed_nonreasoning"] = mixed;
  stats["mix_ratio"] = o.mix_ratio;
  stats["records"] = kept + mixed;
  stats["complete"] = result.complete;
  stats["prompts_total"] = prompts.size();
  const double gen_s = stats["seconds"].get<double>();
  stats["records_per_s"] = gen_s > 0 ? kept / gen_s : 0.0;
  stats["tokens_per_s"] = gen_s > 0 ? stats["completion_tokens"].get<double>() / gen_s : 0.0;
  stats["this_call_seconds"] = timer.seconds();
  stats.erase("examples");
  json examples = json::array();
  for (const auto& info : shards.infos())
    for (const auto& e : info.value("examples", json::array()))
      if (examples.size() < 20) examples.push_back(e);
  stats["rejected_examples"] = examples;
  if (result.complete) write_file_atomic(out_dir + "/stats.json", stats.dump(2) + "\n");
  result.stats = stats;
  return result;
}

}  // namespace r1kit::distill
