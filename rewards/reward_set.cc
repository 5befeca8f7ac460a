#include "rewards/reward_set.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "core/check.h"
#include "core/thread_pool.h"
#include "rewards/registry.h"

namespace r1kit::rewards {

RewardSet RewardSet::from_config(ConfigNode& node) {
  json list;
  node.require("rewards", list);
  const std::string path = node.key_path("rewards");
  R1_CHECK(list.is_array() && !list.empty(), node.where(), ": key '", path,
           "' must be a non-empty list of rewards, e.g. [{name: accuracy, weight: 1.0}]");
  RewardSet set;
  std::set<std::string> labels;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string item_path = path + "[" + std::to_string(i) + "]";
    json item = list[i];
    if (item.is_string()) item = json{{"name", item}};
    R1_CHECK(item.is_object(), node.where(), ": key '", item_path, "' must be a reward name or an object");
    ConfigNode entry_node(item, node.where(), item_path);
    RewardEntry e;
    std::string name;
    entry_node.require("name", name);
    const auto& registry = RewardRegistry::global();
    if (!registry.contains(name)) {
      std::string known;
      for (const auto& info : registry.list()) known += (known.empty() ? "" : ", ") + info.name;
      entry_node.fail("name", str_cat("unknown reward '", name, "' (registered: ", known, ")"));
    }
    e.name = registry.canonical(name);
    e.label = name;
    entry_node.read("label", e.label);
    entry_node.read("weight", e.weight);
    if (!std::isfinite(e.weight)) entry_node.fail("weight", "must be a finite number");
    entry_node.read("error_score", e.error_score);
    entry_node.read("timeout_s", e.timeout_s);
    if (!(e.timeout_s >= 0)) entry_node.fail("timeout_s", "must be >= 0 (0 = no limit)");
    if (!labels.insert(e.label).second)
      entry_node.fail("label", str_cat("reward label '", e.label, "' used twice; give one a different 'label'"));
    ConfigNode options = entry_node.child("options");
    e.reward = registry.create(e.name, options);
    entry_node.finish();
    set.add(std::move(e));
  }
  return set;
}

void RewardSet::add(RewardEntry entry) {
  R1_CHECK(entry.reward != nullptr, "reward set: entry '", entry.label, "' has no reward");
  for (const auto& e : entries_) R1_CHECK(e.label != entry.label, "reward set: label '", entry.label, "' used twice");
  entries_.push_back(std::move(entry));
}

namespace {

RewardOutput error_output(const RewardEntry& e, const std::string& message) {
  RewardOutput o;
  o.error = true;
  o.error_message = message;
  o.score = e.error_score;
  return o;
}

}  // namespace

std::vector<RewardOutput> RewardSet::score_entry(const RewardEntry& e, const std::vector<RewardInput>& inputs,
                                                 ThreadPool* pool) {
  try {
    std::vector<RewardOutput> out = e.reward->score_batch(inputs, pool);
    R1_CHECK(out.size() == inputs.size(), "reward '", e.label, "' returned ", out.size(), " outputs for ",
             inputs.size(), " samples");
    return out;
  } catch (const std::exception& batch_error) {
    // Find the sample(s) that throw; the others keep their real scores.
    std::vector<RewardOutput> out(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      try {
        out[i] = e.reward->score_one(inputs[i]);
      } catch (const std::exception& ex) {
        out[i] = error_output(e, ex.what());
      }
    }
    return out;
  }
}

namespace {

// One reward's batch running on its own (detached) thread, with everything it reads owned here.
struct TimedBatch {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::vector<RewardOutput> out;
  std::vector<RewardInput> inputs;
  RewardEntry entry;
};

}  // namespace

std::vector<SampleScore> RewardSet::score(const std::vector<RewardInput>& inputs, ThreadPool* pool) const {
  std::vector<std::vector<RewardOutput>> per_entry(entries_.size());
  // Entries with a time limit run on detached threads (one per reward; not pool tasks: a reward
  // waiting on pool tasks from inside the pool could deadlock it); the samples of each reward go
  // to the pool. Entries without one run on the calling thread (or joined threads).
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<TimedBatch>> timed(entries_.size());
  for (std::size_t k = 0; k < entries_.size(); ++k) {
    if (entries_[k].timeout_s <= 0) continue;
    auto batch = std::make_shared<TimedBatch>();
    batch->inputs = inputs;
    batch->entry = entries_[k];
    timed[k] = batch;
    std::thread([batch, pool] {
      std::vector<RewardOutput> out = score_entry(batch->entry, batch->inputs, pool);
      std::lock_guard<std::mutex> lock(batch->mu);
      batch->out = std::move(out);
      batch->done = true;
      batch->cv.notify_all();
    }).detach();
  }
  std::vector<std::thread> threads;
  for (std::size_t k = 0; k < entries_.size(); ++k) {
    if (timed[k]) continue;
    if (pool != nullptr && k + 1 < entries_.size())
      threads.emplace_back([&, k] { per_entry[k] = score_entry(entries_[k], inputs, pool); });
    else
      per_entry[k] = score_entry(entries_[k], inputs, pool);
  }
  for (auto& t : threads) t.join();
  for (std::size_t k = 0; k < entries_.size(); ++k) {
    if (!timed[k]) continue;
    TimedBatch& b = *timed[k];
    const auto deadline = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                      std::chrono::duration<double>(entries_[k].timeout_s));
    std::unique_lock<std::mutex> lock(b.mu);
    if (b.cv.wait_until(lock, deadline, [&] { return b.done; })) {
      per_entry[k] = std::move(b.out);
    } else {
      const std::string message = str_cat("reward '", entries_[k].label, "' timed out after ", entries_[k].timeout_s,
                                          " s (timeout_s); its batch of ", inputs.size(), " was abandoned");
      per_entry[k].assign(inputs.size(), error_output(entries_[k], message));
    }
  }
  std::vector<SampleScore> out(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    SampleScore& s = out[i];
    s.outputs.reserve(entries_.size());
    for (std::size_t k = 0; k < entries_.size(); ++k) {
      RewardOutput& o = per_entry[k][i];
      s.total += entries_[k].weight * o.score;
      if (o.error) ++s.errors;
      s.outputs.push_back(std::move(o));
    }
  }
  for (std::size_t k = 0; k < entries_.size(); ++k) {
    int errors = 0;
    const RewardOutput* first = nullptr;
    for (const auto& s : out)
      if (s.outputs[k].error && errors++ == 0) first = &s.outputs[k];
    if (errors > 0)
      spdlog::warn("reward '{}': {} of {} samples could not be scored; first error: {}", entries_[k].label, errors,
                   inputs.size(), first->error_message.substr(0, 300));
  }
  return out;
}

json RewardSet::to_json(const SampleScore& s) const {
  json j;
  j["reward"] = s.total;
  json scores = json::object(), components = json::object(), diagnostics = json::object(), errors = json::object();
  for (std::size_t k = 0; k < entries_.size() && k < s.outputs.size(); ++k) {
    const RewardOutput& o = s.outputs[k];
    const std::string& label = entries_[k].label;
    scores[label] = o.score;
    if (!o.components.empty()) components[label] = o.components;
    if (!o.diagnostics.empty()) diagnostics[label] = o.diagnostics;
    if (o.error) errors[label] = o.error_message;
  }
  j["rewards"] = std::move(scores);
  j["reward_components"] = std::move(components);
  j["reward_diagnostics"] = std::move(diagnostics);
  if (!errors.empty()) j["reward_errors"] = std::move(errors);
  return j;
}

RewardStats::RewardStats(const RewardSet& set) {
  for (const auto& e : set.entries()) columns_.push_back(Column{e.label});
  columns_.push_back(Column{"total"});
}

double RewardStats::Column::std() const { return n > 0 ? std::sqrt(m2 / static_cast<double>(n)) : 0.0; }

void RewardStats::push(Column& c, double v, bool error) {
  if (error) ++c.errors;
  ++c.n;
  const double delta = v - c.mean;
  c.mean += delta / static_cast<double>(c.n);
  c.m2 += delta * (v - c.mean);
  c.min = c.n == 1 ? v : std::min(c.min, v);
  c.max = c.n == 1 ? v : std::max(c.max, v);
}

void RewardStats::add(const std::vector<SampleScore>& batch) {
  for (const auto& s : batch) {
    R1_CHECK(s.outputs.size() + 1 == columns_.size(), "reward stats: sample has ", s.outputs.size(),
             " outputs, expected ", columns_.size() - 1);
    for (std::size_t k = 0; k < s.outputs.size(); ++k) push(columns_[k], s.outputs[k].score, s.outputs[k].error);
    push(columns_.back(), s.total, s.errors > 0);
  }
}

json RewardStats::to_json() const {
  json j = json::object();
  for (const auto& c : columns_) {
    j[c.label + "/mean"] = c.mean;
    j[c.label + "/std"] = c.std();
    j[c.label + "/min"] = c.min;
    j[c.label + "/max"] = c.max;
    j[c.label + "/errors"] = c.errors;
  }
  return j;
}

std::string RewardStats::table() const {
  std::size_t width = 6;
  for (const auto& c : columns_) width = std::max(width, c.label.size());
  std::string out;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-*s %8s %10s %10s %10s %10s %8s\n", static_cast<int>(width), "reward", "n", "mean",
                "std", "min", "max", "errors");
  out += buf;
  for (const auto& c : columns_) {
    std::snprintf(buf, sizeof buf, "%-*s %8lld %10.4f %10.4f %10.4f %10.4f %8lld\n", static_cast<int>(width),
                  c.label.c_str(), c.n, c.mean, c.std(), c.min, c.max, c.errors);
    out += buf;
  }
  return out;
}

}  // namespace r1kit::rewards
