#include "grpo/rollout_batch.h"

#include <limits>

#include "core/check.h"
#include "core/timer.h"
#include "rollout/sampler.h"

namespace r1kit::grpo {
namespace {
std::vector<int64_t> to_int64(const std::vector<int32_t>& ids) { return {ids.begin(), ids.end()}; }
}  // namespace

RolloutBatch generate_rollout_batch(const RolloutContext& c, int64_t position) {
  const GrpoOptions& o = c.options;
  const int64_t G = o.group_size, B = o.prompts_per_step;
  const auto& reward_entries = o.rewards.entries();
  RolloutBatch b;
  b.all_by_reward.resize(reward_entries.size());
  while (static_cast<int64_t>(b.kept.size()) < B) {
    const int64_t global_n = o.dynamic_sampling ? B - static_cast<int64_t>(b.kept.size()) : B;
    const auto [shard_begin, shard_end] = c.dp.shard(global_n);  // this rank's share of the global batch
    const int64_t first = position + shard_begin, n = shard_end - shard_begin;
    std::vector<json> records = c.prompts(first, n);
    R1_CHECK(static_cast<int64_t>(records.size()) == n, "run_grpo: prompt source returned ", records.size(),
             " records for ", n);
    position += global_n;
    std::vector<ScoredGroup> round(n);
    std::vector<PromptRequest> requests(n);
    for (int64_t i = 0; i < n; ++i) {
      const json& rec = records[i];
      R1_CHECK(rec.contains(o.prompt_field) && rec[o.prompt_field].is_string(), "run_grpo: prompt record ",
               first + i, " has no string field '", o.prompt_field, "'");
      round[i].record = rec;
      round[i].prompt_text = rec[o.prompt_field].get<std::string>();
      requests[i].id = std::to_string(first + i);
      requests[i].prompt_ids = to_int64(c.encoder.encode(round[i].prompt_text));
      R1_CHECK(!requests[i].prompt_ids.empty(), "run_grpo: prompt record ", first + i, " encodes to no tokens");
      requests[i].num_samples = G;
      // The seed follows the record's stream position: a resumed run draws the same samples.
      requests[i].seed = static_cast<int64_t>(derive_seed(o.seed, static_cast<uint64_t>(first + i)) >> 1);
    }
    Timer gen_timer;
    double scoring_s = 0;
    std::vector<Group> groups = c.pool.generate(requests, c.sampling, [&](const Group& g) {
      Timer t;  // score while the pool keeps generating the other groups
      std::vector<rewards::RewardInput> inputs(g.samples.size());
      for (size_t s = 0; s < g.samples.size(); ++s) {
        inputs[s].prompt = round[g.index].prompt_text;
        inputs[s].completion = g.samples[s].text;
        inputs[s].fields = round[g.index].record;
      }
      round[g.index].scores = o.rewards.score(inputs, &c.reward_pool);
      scoring_s += t.seconds();
    });
    b.generate_s += gen_timer.seconds() - scoring_s;
    b.reward_s += scoring_s;
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
        b.all_lengths.push_back(static_cast<int64_t>(sample.completion_ids.size()));
        b.all_truncated += sample.finish_reason == FinishReason::kLength;
        b.generated_tokens += static_cast<int64_t>(sample.completion_ids.size());
        b.reward_errors += score.errors;
        if (!sg.validity.valid[s]) {  // not a score: kept out of the reward curves and the loss
          ++b.masked_samples;
          continue;
        }
        lo = std::min(lo, score.total);
        hi = std::max(hi, score.total);
        b.all_totals.push_back(score.total);
        for (size_t r = 0; r < reward_entries.size(); ++r) b.all_by_reward[r].push_back(score.outputs[r].score);
      }
      sg.constant = lo == hi;
      if (!sg.validity.keep) {
        ++b.error_groups;
      } else if (o.dynamic_sampling && sg.constant) {
        ++b.dropped_groups;
      } else if (static_cast<int64_t>(b.kept.size()) < B) {
        b.kept.push_back(std::move(sg));
      }
    }
    ++b.rounds;
    if (!o.dynamic_sampling || b.rounds > o.max_sampling_rounds) break;
  }
  b.data_position_end = position;
  b.oldest_weight_version = -1;
  for (const ScoredGroup& sg : b.kept) {
    if (b.oldest_weight_version < 0 || sg.group.weight_version < b.oldest_weight_version)
      b.oldest_weight_version = sg.group.weight_version;
  }
  return b;
}

}  // namespace r1kit::grpo
