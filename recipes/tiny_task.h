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
// probability `bug_probability` and writes d-x, then carries on from that wrong value. By default
// (bug_marker ',') it writes the whole step as if no borrow happened -- the marker ',' then d-x --
// so the bug-or-fix choice is one two-way token (',' vs 'c') at every borrow, which GRPO can fix
// for all borrows at once (../shared/notes/tiny-r1-zero.md); bug_marker 'c' keeps the borrow
// marker and gets only the digit wrong, which must be unlearned digit by digit. Greedy decoding of
// the SFT model then always takes the majority (buggy) branch, while sampling takes the correct one
// often enough for GRPO's groups to contain both: RL sharpens a behaviour the SFT policy can
// already sample, which is the R1-Zero mechanism this demo shows.
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
  char bug_marker = ',';         // marker the buggy step is written with: ',' (as if no borrow) or 'c' 
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
  // whether any step took the buggy branch, written with `bug_marker`.
  std::string completion(double bug_probability, std::mt19937_64& rng, bool* bugged = nullptr,
                         char bug_marker = ',') const;
  // The problem of a prompt() string; false when `prompt` is not one.
  static bool parse(const std::string& prompt, TinyProblem* out);
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

// How a completion handles the borrows of its problem. A step counts when it subtracts d from the
// completion's own previous value x with x < d and d - x != 5 (where the bug and the fix write the
// same digit); the value written after it is the fix ((x - d) mod 10), the teacher's bug (d - x),
// or something else. Markers: 'c' (correct) or ',' (the bug's) before that value.
struct BorrowStats {
  int64_t steps = 0, correct = 0, bug = 0, other = 0;
  int64_t carry_marker = 0, comma_marker = 0;
  void add(const BorrowStats& o);
  // {"borrow/steps", "borrow/correct", "borrow/bug", "borrow/other", "borrow/carry_marker"}: the
  // last four as fractions of steps (0 when there are none).
  json to_json() const;
};
BorrowStats borrow_stats(const TinyProblem& problem, const std::string& completion);

// Writes tokenizer.json (Hugging Face format: byte-level BPE whose vocabulary is the printable ASCII
// characters, no merges, and <think> </think> <answer> </answer> <eos> <pad> as added tokens, so
// every tag is one token) and tokenizer_config.json into `dir`. Loaded by the normal Tokenizer class.
void write_tiny_tokenizer(const std::string& dir);

// The tiny tokenizer's vocabulary size (for the model config).
int64_t tiny_tokenizer_vocab_size();

}  // namespace r1kit::recipes
