#include "datagen/generate_and_score.h"

#include <set>

#include "core/check.h"
#include "core/hash.h"
#include "core/progress.h"
#include "core/thread_pool.h"
#include "core/timer.h"

namespace r1kit::datagen {

int64_t prompt_seed(uint64_t base_seed, const std::string& id) {
  return static_cast<int64_t>(derive_seed(base_seed, fnv1a(id)) >> 1);
}

DriverStats generate_and_score(RolloutPool& pool, const rewards::RewardSet* rewards,
                               const std::vector<PromptItem>& prompts, const DriverOptions& options,
                               const std::function<void(std::vector<ScoredGroup>&&)>& on_chunk, Progress* progress) {
  R1_CHECK(options.samples_per_prompt >= 1, "generate_and_score: samples_per_prompt must be >= 1");
  R1_CHECK(options.chunk_prompts >= 1, "generate_and_score: chunk_prompts must be >= 1");
  options.sampling.validate();
  {
    std::set<std::string> seen;
    for (size_t i = 0; i < prompts.size(); ++i) {
      R1_CHECK(!prompts[i].id.empty(), "generate_and_score: prompt ", i, " has an empty id");
      R1_CHECK(seen.insert(prompts[i].id).second, "generate_and_score: prompt id '", prompts[i].id,
               "' appears twice");
      R1_CHECK(!prompts[i].ids.empty(), "generate_and_score: prompt '", prompts[i].id, "' has no tokens");
    }
  }
  const bool score = rewards != nullptr && !rewards->empty();
  ThreadPool reward_pool(static_cast<unsigned>(std::max(1, options.reward_threads)));
  DriverStats stats;
  const auto n = static_cast<int64_t>(prompts.size());
  for (int64_t first = 0; first < n; first += options.chunk_prompts) {
    const int64_t last = std::min(n, first + options.chunk_prompts);
    // 1. One pool call per chunk; each request seeded by its prompt's id.
    std::vector<PromptRequest> requests;
    for (int64_t i = first; i < last; ++i) {
      PromptRequest r;
      r.id = prompts[i].id;
      r.prompt_ids = prompts[i].ids;
      r.num_samples = options.samples_per_prompt;
      r.seed = prompt_seed(options.sampling.seed, prompts[i].id);
      requests.push_back(std::move(r));
    }
    std::vector<ScoredGroup> chunk(last - first);
    Timer gen_timer;
    double score_s = 0;
    // 2. Score each group as it streams in.
    std::vector<Group> groups = pool.generate(requests, options.sampling, [&](const Group& g) {
      ScoredGroup& sg = chunk[g.index];
      const PromptItem& item = prompts[first + g.index];
      if (score) {
        Timer t;
        std::vector<rewards::RewardInput> inputs(g.samples.size());
        for (size_t s = 0; s < g.samples.size(); ++s) {
          inputs[s].prompt = item.text;
          inputs[s].completion = g.samples[s].text;
          inputs[s].fields = item.record;
        }
        sg.scores = rewards->score(inputs, &reward_pool);
        score_s += t.seconds();
      }
      if (progress) {
        progress->add("tok", static_cast<double>(g.completion_tokens()));
        progress->advance(1);
      }
    });
    stats.generate_s += gen_timer.seconds() - score_s;
    stats.score_s += score_s;
    // 3. Hand the chunk over in prompt order.
    for (int64_t i = first; i < last; ++i) {
      ScoredGroup& sg = chunk[i - first];
      sg.prompt = &prompts[i];
      sg.group = std::move(groups[i - first]);
      stats.prompts += 1;
      stats.samples += static_cast<int64_t>(sg.group.samples.size());
      stats.completion_tokens += sg.group.completion_tokens();
      for (const auto& s : sg.scores) stats.reward_errors += s.errors;
    }
    on_chunk(std::move(chunk));
  }
  return stats;
}

}  // namespace r1kit::datagen
