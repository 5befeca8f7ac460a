// What the rollout engine and pool take and give back: a prompt with the number of samples
// wanted (G), and the finished group of G samples with everything GRPO needs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace r1kit {

enum class FinishReason { kStop, kLength };

// "stop" | "length" (the names vLLM and TRL use).
inline const char* finish_reason_name(FinishReason r) { return r == FinishReason::kStop ? "stop" : "length"; }

struct PromptRequest {
  std::string id;                   // caller's key (e.g. the data set row); copied to the Group
  std::vector<int64_t> prompt_ids;  // non-empty
  int64_t num_samples = 1;          // G: completions drawn from this prompt
  int64_t seed = -1;                // >= 0: this request's seed; -1: derive_seed(options.seed, index)
};

struct Sample {
  int64_t sample_index = 0;           // 0 .. G-1 within the group (its random stream)
  std::vector<int64_t> completion_ids;  // generated ids; a stop token or the token that completed a stop string included
  std::vector<float> logprobs;          // per completion token: log_softmax(logits / T)[token] at sampling time
  std::string text;                     // decoded completion, cut before a stop string, without the stop token;
                                        // empty when the engine has no decoder
  FinishReason finish_reason = FinishReason::kLength;
  std::string stop_reason;              // the stop string, or "token:<id>"; empty for length
  double first_token_s = 0;             // from the start of the run to this sample's first token
  double decode_s = 0;                  // from its first token to its last
};

struct Group {
  int64_t index = 0;                // position of the request in the call
  std::string id;                   // PromptRequest::id
  std::vector<int64_t> prompt_ids;
  std::vector<Sample> samples;      // G samples, ordered by sample_index
  uint64_t seed = 0;                // the seed the samples were drawn with
  int64_t weight_version = 0;       // policy version that generated every sample of the group
  int worker = 0;                   // pool worker that generated it
  double queue_s = 0;               // from the start of the run to the prompt's prefill
  double prefill_s = 0;             // duration of the prefill call that included this prompt
  double total_s = 0;               // from the start of the run to the group's last token
  int64_t completion_tokens() const {
    int64_t n = 0;
    for (const auto& s : samples) n += static_cast<int64_t>(s.completion_ids.size());
    return n;
  }
};

}  // namespace r1kit
