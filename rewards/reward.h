// The reward contract. A reward is a named function of (prompt, completion, the sample's dataset
// fields) -> score, named components and diagnostics. Rewards score batches so that plugins can
// batch requests; per-sample rewards implement score_one and get parallel batches for free.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"

namespace r1kit {
class ThreadPool;
}

namespace r1kit::rewards {

struct RewardInput {
  std::string prompt;      // the rendered prompt text
  std::string completion;  // the generated text (without the prompt)
  json fields = json::object();  // the dataset record: "answer", "tests", "numbers", "target", ...
};

struct RewardOutput {
  double score = 0.0;                         // this reward's value, before the config weight
  std::map<std::string, double> components;  // named parts, e.g. {"format": 1, "answer": 0}
  json diagnostics = json::object();         // why: extracted answer, sandbox status, ...
  // The reward could not be computed (sandbox failure, plugin crash, timeout). Never the same
  // thing as a wrong answer: counted in metrics and logged. `score` then holds the configured
  // error score (default 0).
  bool error = false;
  std::string error_message;
};

// A reward function. Implementations must be safe to call from several threads at once.
class Reward {
 public:
  virtual ~Reward() = default;
  // Scores one sample. Rewards that override score_batch instead may leave this throwing.
  virtual RewardOutput score_one(const RewardInput& input) const;
  // Scores a batch; the default runs score_one for each input on `pool` (inline when null).
  virtual std::vector<RewardOutput> score_batch(const std::vector<RewardInput>& inputs, ThreadPool* pool) const;
};

}  // namespace r1kit::rewards
