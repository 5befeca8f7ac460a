// The tiny R1-Zero task: a chain of single-digit +/- operations mod 10, worked step by step.
//
//   prompt      Q:6-6-0-4+8+7-6=<think>
//   completion  6,0,0c6c4c1c5</think><answer>5</answer><eos>
//
// The thought lists the running value after each step, each preceded by a marker: 'c' when the step
// wraps (x+d >= 10, or x-d with x < d, a borrow), ',' otherwise. Prompt and thought both spend two
// characters per operation, so each operand sits at a fixed distance from where it is used; a few-
// million-parameter model learns that lookup in ~100 SFT steps (../shared/notes/tiny-r1-zero.md).
//
// The SFT teacher is deliberately buggy: on a borrow (x-d with x < d) it forgets the borrow with
// probability `bug_probability` and writes d-x, then carries on from that wrong value. Greedy
// decoding of the SFT model then always takes the majority (buggy) branch, while sampling takes the
// correct one often enough for GRPO's groups to contain both: RL sharpens a behaviour the SFT policy
// can already sample, which is the R1-Zero mechanism this demo shows.
//
// Torch-free; also writes the tiny tokenizer that the whole pipeline loads like any HF tokenizer.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/json.h"

namespace r1kit::recipes {

struct TinyTaskOptions {
  int n_ops = 6;                 // operations per problem (the chain length)
  double bug_probability = 0.6;  // teacher forgets the borrow with this probability (0 = correct teacher)
  int n_heldout = 1000;          // fixed evaluation problems, never sampled for training
  uint64_t heldout_seed = 20250101;  // seed of the held-out set (fixed so every run evaluates the same problems)
};

// One problem: a start digit and n_ops (sign, digit) steps.
struct TinyProblem {
  int start = 0;
  std::vector<char> signs;  // '+' or '-'
  std::vector<int> digits;  // 0..9
  std::string prompt() const;  // "Q:6-6-0-4+8+7-6=<think>"
  int answer() const;          // the correct final value
  // The worked thought and answer, as the teacher writes it; `bugged` (may be null) records
  // whether any step took the buggy branch.
  std::string completion(double bug_probability, std::mt19937_64& rng, bool* bugged = nullptr) const;
  // Dataset record used by rollouts, rewards and evaluation: {"prompt", "answer", "completion"?}.
  json record() const;
};

class TinyTask {
 public:
  explicit TinyTask(TinyTaskOptions opts = {});
  const TinyTaskOptions& options() const { return opts_; }

  // The fixed held-out problems (same for every seed of training).
  const std::vector<TinyProblem>& heldout() const { return heldout_; }

  // A uniformly random problem that is not in the held-out set.
  TinyProblem sample(std::mt19937_64& rng) const;

  // SFT example {"prompt", "completion", "answer"} with the teacher's (possibly buggy) completion.
  json sft_example(std::mt19937_64& rng) const;

  // A non-reasoning record, answered directly without <think>: reversing a 3-8 digit number,
  //   {"prompt": "R:40213=", "completion": "31204<eos>"}
  // (the tiny stand-in for the writing / QA data DeepSeek-R1 mixes into its rejection-sampling SFT).
  json nonreasoning_example(std::mt19937_64& rng) const;

  // Prompt-only records for RL: {"prompt", "answer"}.
  json prompt_record(std::mt19937_64& rng) const { return sample(rng).record(); }

  bool is_heldout(const std::string& prompt) const { return heldout_prompts_.count(prompt) > 0; }

 private:
  TinyProblem random_problem(std::mt19937_64& rng) const;
  TinyTaskOptions opts_;
  std::vector<TinyProblem> heldout_;
  std::unordered_set<std::string> heldout_prompts_;
};

// Writes tokenizer.json (Hugging Face format: byte-level BPE whose vocabulary is the printable ASCII
// characters, no merges, and <think> </think> <answer> </answer> <eos> <pad> as added tokens, so
// every tag is one token) and tokenizer_config.json into `dir`. Loaded by the normal Tokenizer class.
void write_tiny_tokenizer(const std::string& dir);

// The tiny tokenizer's vocabulary size (for the model config).
int64_t tiny_tokenizer_vocab_size();

}  // namespace r1kit::recipes
