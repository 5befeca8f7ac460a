#include "recipes/task.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <numeric>
#include <random>

#include "core/check.h"
#include "core/fs.h"

namespace r1kit::recipes {
namespace {

// A generator seeded from (seed, stream, index): record i does not depend on records before it.
std::mt19937_64 rng_for(uint64_t seed, uint64_t stream, uint64_t index) {
  std::seed_seq seq{uint32_t(seed), uint32_t(seed >> 32), uint32_t(stream), uint32_t(index), uint32_t(index >> 32)};
  return std::mt19937_64(seq);
}

class TinyChainTask : public Task {
 public:
  explicit TinyChainTask(const TinyTaskOptions& opts) : task_(opts) {}
  std::vector<json> train_prompts(uint64_t seed, int64_t first, int64_t n) const override {
    std::vector<json> out;
    for (int64_t i = first; i < first + n; ++i) {
      auto rng = rng_for(seed, 1, i);
      out.push_back(task_.prompt_record(rng));
    }
    return out;
  }
  json sft_record(uint64_t seed, int64_t index) const override {
    auto rng = rng_for(seed, 2, index);
    return task_.sft_example(rng);
  }
  json nonreasoning_record(uint64_t seed, int64_t index) const override {
    auto rng = rng_for(seed, 3, index);
    return task_.nonreasoning_example(rng);
  }
  json sample_metrics(const std::vector<json>& records, const std::vector<std::string>& completions) const override {
    BorrowStats total;
    for (size_t i = 0; i < records.size() && i < completions.size(); ++i) {
      TinyProblem p;
      if (TinyProblem::parse(records[i].value("prompt", ""), &p)) total.add(borrow_stats(p, completions[i]));
    }
    return total.to_json();
  }
  std::vector<json> eval_records(int64_t limit) const override {
    std::vector<json> out;
    for (const auto& p : task_.heldout()) {
      if (limit > 0 && static_cast<int64_t>(out.size()) >= limit) break;
      out.push_back(p.record());
    }
    return out;
  }

 private:
  TinyTask task_;
};

std::vector<json> load_jsonl(const std::string& path) {
  std::vector<json> records;
  for_each_jsonl(path, [&](const json& rec, int line) {
    R1_CHECK(rec.is_object(), "expected a JSON object");
    json r = rec;
    r["_source"] = path + ":" + std::to_string(line);
    records.push_back(std::move(r));
  });
  R1_CHECK(!records.empty(), path, ": no records");
  return records;
}

class JsonlTask : public Task {
 public:
  explicit JsonlTask(const TaskOptions& opts) : opts_(opts) {
    if (!opts_.train_file.empty()) train_ = load_jsonl(opts_.train_file);
    if (!opts_.test_file.empty()) test_ = load_jsonl(opts_.test_file);
    if (!opts_.sft_file.empty()) sft_ = load_jsonl(opts_.sft_file);
    if (!opts_.nonreasoning_file.empty()) nonreasoning_ = load_jsonl(opts_.nonreasoning_file);
  }
  std::vector<json> train_prompts(uint64_t seed, int64_t first, int64_t n) const override {
    R1_CHECK(!train_.empty(), opts_.where, ": key 'data.train_file' is needed for training prompts");
    std::vector<json> out;
    for (int64_t i = first; i < first + n; ++i) out.push_back(render(train_[shuffled(seed, i, train_.size(), 1)]));
    return out;
  }
  json sft_record(uint64_t seed, int64_t index) const override {
    R1_CHECK(!sft_.empty(), opts_.where, ": an sft stage needs 'data.sft_file'");
    json r = render(sft_[shuffled(seed, index, sft_.size(), 2)]);
    const std::string& where = r["_source"].get_ref<const std::string&>();
    R1_CHECK(r.contains(opts_.completion_field) && r[opts_.completion_field].is_string(), where,
             ": missing string field '", opts_.completion_field, "'");
    r["completion"] = r[opts_.completion_field];
    return r;
  }
  json nonreasoning_record(uint64_t seed, int64_t index) const override {
    R1_CHECK(!nonreasoning_.empty(), opts_.where, ": mixing non-reasoning data needs 'data.nonreasoning_file'");
    return nonreasoning_[shuffled(seed, index, nonreasoning_.size(), 3)];
  }
  std::vector<json> eval_records(int64_t limit) const override {
    R1_CHECK(!test_.empty(), opts_.where, ": an eval stage needs 'data.test_file'");
    std::vector<json> out;
    for (const auto& r : test_) {
      if (limit > 0 && static_cast<int64_t>(out.size()) >= limit) break;
      out.push_back(render(r));
    }
    return out;
  }

 private:
  json render(const json& record) const {
    json r = record;
    r["prompt"] = render_template(opts_.prompt_template, record, record["_source"].get<std::string>());
    return r;
  }
  // Position `index` of the endless stream: epoch index / n, each epoch its own permutation.
  size_t shuffled(uint64_t seed, int64_t index, size_t n, uint64_t stream) const {
    const int64_t epoch = index / static_cast<int64_t>(n);
    std::lock_guard<std::mutex> lock(mu_);
    auto& cached = perm_[stream];
    if (cached.epoch != epoch || cached.seed != seed || cached.order.size() != n) {
      cached.order.resize(n);
      std::iota(cached.order.begin(), cached.order.end(), size_t{0});
      auto rng = rng_for(seed, 100 + stream, epoch);
      std::shuffle(cached.order.begin(), cached.order.end(), rng);
      cached.epoch = epoch;
      cached.seed = seed;
    }
    return cached.order[index % n];
  }
  struct Permutation {
    int64_t epoch = -1;
    uint64_t seed = 0;
    std::vector<size_t> order;
  };
  TaskOptions opts_;
  std::vector<json> train_, test_, sft_, nonreasoning_;
  mutable std::mutex mu_;
  mutable std::map<uint64_t, Permutation> perm_;
};

}  // namespace

TaskOptions read_task_options(ConfigNode& node) {
  TaskOptions o;
  o.where = node.where();
  node.read_enum("kind", o.kind, {"tiny_chain", "jsonl"});
  ConfigNode tiny = node.child("tiny_chain");
  tiny.read("n_ops", o.tiny.n_ops);
  tiny.read("bug_probability", o.tiny.bug_probability);
  tiny.read("n_heldout", o.tiny.n_heldout);
  tiny.read("heldout_seed", o.tiny.heldout_seed);
  std::string marker(1, o.tiny.bug_marker);
  tiny.read_enum("bug_marker", marker, {",", "c"});
  o.tiny.bug_marker = marker[0];
  tiny.finish();
  if (o.tiny.n_ops < 1 || o.tiny.n_ops > 64) tiny.fail("n_ops", "must be in [1, 64]");
  if (!(o.tiny.bug_probability >= 0 && o.tiny.bug_probability <= 1)) tiny.fail("bug_probability", "must be in [0, 1]");
  if (o.tiny.n_heldout < 1) tiny.fail("n_heldout", "must be >= 1");
  node.read("train_file", o.train_file);
  node.read("test_file", o.test_file);
  node.read("sft_file", o.sft_file);
  node.read("nonreasoning_file", o.nonreasoning_file);
  node.read("prompt_template", o.prompt_template);
  node.read("completion_field", o.completion_field);
  node.read("chat", o.prompt_format.chat);
  node.read("system_prompt", o.prompt_format.system_prompt);
  node.read("chat_template", o.prompt_format.chat_template);
  node.finish();
  if (!o.prompt_format.chat && (!o.prompt_format.system_prompt.empty() || !o.prompt_format.chat_template.empty()))
    node.fail(o.prompt_format.system_prompt.empty() ? "chat_template" : "system_prompt", "needs chat: true");
  if (!o.prompt_format.chat_template.empty()) {
    const auto names = ChatTemplate::names();
    if (std::find(names.begin(), names.end(), o.prompt_format.chat_template) == names.end())
      node.fail("chat_template", "unknown template '" + o.prompt_format.chat_template + "'");
  }
  if (o.kind == "jsonl") {
    if (o.train_file.empty() && o.test_file.empty()) node.fail("train_file", "kind jsonl needs train_file and/or test_file");
    const std::pair<const char*, const std::string*> files[] = {
        {"train_file", &o.train_file}, {"test_file", &o.test_file}, {"sft_file", &o.sft_file},
        {"nonreasoning_file", &o.nonreasoning_file}};
    for (const auto& [key, file] : files)
      if (!file->empty() && !path_exists(*file)) node.fail(key, "file not found: " + *file);
  }
  return o;
}

std::unique_ptr<Task> make_task(const TaskOptions& opts) {
  if (opts.kind == "tiny_chain") return std::make_unique<TinyChainTask>(opts.tiny);
  if (opts.kind == "jsonl") return std::make_unique<JsonlTask>(opts);
  R1_FAIL(opts.where, ": key 'data.kind': unknown task kind '", opts.kind, "'");
}

std::string render_template(const std::string& tmpl, const json& record, const std::string& where) {
  std::string out;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    const char c = tmpl[i];
    if ((c == '{' || c == '}') && i + 1 < tmpl.size() && tmpl[i + 1] == c) {
      out += c;
      ++i;
    } else if (c == '{') {
      const size_t end = tmpl.find('}', i);
      R1_CHECK(end != std::string::npos, where, ": prompt template has an unclosed '{'");
      const std::string field = tmpl.substr(i + 1, end - i - 1);
      R1_CHECK(record.contains(field), where, ": prompt template field '{", field, "}' is not in the record");
      const json& v = record.at(field);
      out += v.is_string() ? v.get<std::string>() : v.dump();
      i = end;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace r1kit::recipes
