// GenerationEngine: batched, continuously batched generation over a Transformer and a KvCache.
//
// The cache has a fixed number of rows ("slots", bounded by the token budget). Each prompt is
// prefilled once into a slot (prompts of equal length share one forward); its K/V are then copied
// to one free slot per sample, and its last logits are kept so that all G samples draw their first
// token without another forward. Every step decodes one token for every busy slot; when a sample
// finishes, its slot is handed at once to the next waiting sample or prompt, so no slot idles while
// work waits and nothing is padded to the longest sample.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "model/kv_cache.h"
#include "model/static_decode.h"
#include "model/transformer.h"
#include "rollout/rollout.h"
#include "rollout/sampler.h"
#include "rollout/stop.h"

namespace r1kit {

struct EngineOptions {
  int64_t max_batch = 64;             // slots: sequences decoded together in one step
  int64_t token_budget = 65536;       // KV-cache capacity in tokens (slots x slot length); bounds memory
  int64_t max_prefill_tokens = 4096;  // tokens per prefill forward (longer prompts are chunked)
  bool cuda_graphs = true;            // CUDA: decode steps replay a captured graph (model/static_decode.h)
};

// Counters since construction or reset_stats().
struct EngineStats {
  int64_t prefill_forwards = 0;      // model calls made by prefill (a call may hold several prompts / a chunk)
  int64_t prefill_tokens = 0;        // prompt tokens run through the model
  int64_t prefix_copies = 0;         // slots filled by copying a prompt's K/V instead of recomputing it
  int64_t decode_steps = 0;          // batched decode forwards
  int64_t decode_tokens = 0;         // tokens produced by decode steps (first tokens come from prefill logits)
  int64_t generated_tokens = 0;      // all completion tokens
  double prefill_s = 0;              // time in prefill forwards
  double decode_s = 0;               // time in decode forwards (model only)
  double sample_s = 0;               // time drawing tokens (all steps)
  double run_s = 0;                  // wall time inside run()
  std::map<int64_t, int64_t> prefills_per_request;  // request index -> times its prompt was prefilled
};

// One unit of work for run(): a prompt request with its options, seed and policy version.
struct EngineRequest {
  int64_t index = 0;                                 // copied to Group::index
  PromptRequest prompt;
  std::shared_ptr<const SamplingOptions> options;    // shared by the requests of one call
  uint64_t seed = 0;                                 // the request's seed (see PromptRequest::seed)
  int64_t weight_version = 0;                        // copied to Group::weight_version
};

class GenerationEngine {
 public:
  // `decode` (optional) turns ids into text: needed for stop strings and Sample::text.
  explicit GenerationEngine(Transformer model, EngineOptions options = {}, DecodeFn decode = nullptr);

  // Generates G samples for every request; calls on_group (if set) as each group finishes, in
  // finish order, and returns the groups in request order. Errors (bad ids, a request that
  // cannot fit in the token budget) are raised before any work starts.
  std::vector<Group> generate(const std::vector<PromptRequest>& requests, const SamplingOptions& options,
                              const std::function<void(const Group&)>& on_group = nullptr);

  // Streaming form (used by the pool): pulls requests from `next` while slots are free until it
  // returns false, and hands each finished group to `done`. Every request must fit in slots of
  // `slot_len` tokens; `max_rows` caps the slots (0: as many as the budget allows).
  using RequestSource = std::function<bool(EngineRequest&)>;
  using GroupSink = std::function<void(Group&&)>;
  void run(const RequestSource& next, const GroupSink& done, int64_t slot_len, int64_t max_rows = 0);

  // KV-cache tokens a request needs: prompt + max_new_tokens - 1 (the last token is never fed back).
  static int64_t tokens_needed(const PromptRequest& request, const SamplingOptions& options);
  // Slots of `slot_len` tokens the budget allows (capped by max_batch).
  int64_t slots_for(int64_t slot_len) const;
  // Throws Error naming the request when its ids are invalid or it cannot fit the budget.
  void check_request(const PromptRequest& request, const SamplingOptions& options, int64_t index) const;

  const EngineStats& stats() const { return stats_; }
  void reset_stats() { stats_ = EngineStats(); }
  Transformer& model() { return model_; }
  const EngineOptions& options() const { return options_; }
  void set_decoder(DecodeFn decode) { decode_ = std::move(decode); }

 private:
  struct GroupState;
  struct Seq;
  class Run;

  Transformer model_;
  EngineOptions options_;
  DecodeFn decode_;
  EngineStats stats_;
  std::unique_ptr<KvCache> cache_;  // kept between runs when the shape fits
  std::unique_ptr<StaticDecoder> static_decoder_;  // CUDA decode steps (options_.cuda_graphs)
  torch::Tensor seen_;              // [slots, V] bool, for repetition penalties (allocated on demand)
  torch::Tensor logits_;            // CPU decode steps' logits, reused while the batch size holds
};

}  // namespace r1kit
