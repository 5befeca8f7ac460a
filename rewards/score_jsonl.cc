#include "rewards/score_jsonl.h"

#include <cstdio>

#include "core/check.h"
#include "core/fs.h"
#include "core/progress.h"

namespace r1kit::rewards {

namespace {
bool is_output_key(const std::string& k) {
  return k == "reward" || k == "rewards" || k.rfind("reward_", 0) == 0;
}
}  // namespace

RewardInput reward_input_from_record(const json& rec) {
  R1_CHECK(rec.is_object(), "expected a JSON object per line");
  RewardInput in;
  if (rec.contains("prompt") && !rec["prompt"].is_null()) {
    R1_CHECK(rec["prompt"].is_string(), "key 'prompt' must be a string");
    in.prompt = rec["prompt"].get<std::string>();
  }
  R1_CHECK(rec.contains("completion"), "missing key 'completion'");
  R1_CHECK(rec["completion"].is_string(), "key 'completion' must be a string");
  in.completion = rec["completion"].get<std::string>();
  if (rec.contains("fields")) {
    R1_CHECK(rec["fields"].is_object(), "key 'fields' must be an object");
    in.fields = rec["fields"];
  } else {
    in.fields = json::object();
    for (auto it = rec.begin(); it != rec.end(); ++it)
      if (it.key() != "prompt" && it.key() != "completion" && !is_output_key(it.key())) in.fields[it.key()] = *it;
  }
  return in;
}

RewardStats score_jsonl_file(const RewardSet& set, const std::string& in_path, const std::string& out_path,
                             ThreadPool* pool, const ScoreFileOptions& options) {
  R1_CHECK(!set.empty(), "reward set is empty");
  R1_CHECK(options.batch_size > 0, "batch size must be > 0");
  RewardStats stats(set);
  ProgressOptions bar;
  bar.label = "reward";
  bar.unit = "sample";
  bar.enabled = options.progress;
  if (options.progress != 0) {  // the total, for the bar and ETA: count the lines first
    const std::string text = read_file(in_path);
    for (char c : text) bar.total += c == '\n';
    bar.total += !text.empty() && text.back() != '\n';
  }
  Progress progress(bar);
  write_file_atomic(out_path, [&](std::FILE* out) {
    std::vector<json> records;
    std::vector<RewardInput> inputs;
    auto flush = [&] {
      if (inputs.empty()) return;
      const std::vector<SampleScore> scores = set.score(inputs, pool);
      stats.add(scores);
      progress.advance(static_cast<int64_t>(scores.size()));
      for (std::size_t i = 0; i < records.size(); ++i) {
        json rec = std::move(records[i]);
        for (auto it = rec.begin(); it != rec.end();) it = is_output_key(it.key()) ? rec.erase(it) : std::next(it);
        rec.update(set.to_json(scores[i]));
        const std::string line = dump_line(rec) + "\n";
        R1_CHECK(std::fwrite(line.data(), 1, line.size(), out) == line.size(), out_path, ": short write");
      }
      records.clear();
      inputs.clear();
    };
    for_each_jsonl(in_path, [&](const json& rec, int) {
      inputs.push_back(reward_input_from_record(rec));
      records.push_back(rec);
      if (inputs.size() >= options.batch_size) flush();
    });
    flush();
  });
  return stats;
}

}  // namespace r1kit::rewards
