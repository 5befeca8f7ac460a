// Where a recipe's problems come from. A task hands out dataset records whose "prompt" field is the
// rendered prompt text the model continues (the other fields -- "answer", "final", ... -- are kept
// for the rewards), SFT records ({"prompt", "completion"}), and held-out evaluation records.
// Records are pure functions of (seed, index), so a resumed stage sees the same data.
//
//   data:
//     kind: tiny_chain          # generated (recipes/tiny_task.h); or
//     kind: jsonl               # train/test JSONL files + a prompt template (e.g. GSM8K, MATH)
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/json.h"
#include "model/tokenizer_prompt.h"
#include "recipes/tiny_task.h"

namespace r1kit::recipes {

struct TaskOptions {
  std::string kind = "tiny_chain";  // "tiny_chain" | "jsonl"
  TinyTaskOptions tiny;             // kind tiny_chain: the generator (`tiny_chain:` section)
  // kind jsonl:
  std::string train_file;           // RL prompts (JSONL records)
  std::string test_file;            // held-out evaluation records (JSONL)
  std::string sft_file;             // SFT records with prompt_field and completion_field ("" = no SFT data)
  std::string nonreasoning_file;    // non-reasoning SFT records (messages or prompt/completion) to mix in
  std::string prompt_template = "{question}";  // "{field}" placeholders filled from each record
  std::string completion_field = "completion";  // SFT target text in sft_file records
  // How the rendered prompt becomes token ids (model/tokenizer_prompt.h): `chat: true` for chat-tuned
  // models puts it through the chat template (+ `system_prompt`, `chat_template` name); otherwise it
  // is encoded as-is with BOS where the tokenizer asks for it.
  PromptFormat prompt_format;
  std::string where;                // the recipe file, for errors
};

// Reads the recipe's `data` section; errors name the file and key.
TaskOptions read_task_options(ConfigNode& node);

class Task {
 public:
  virtual ~Task() = default;
  // `n` training prompt records starting at stream position `first` (an endless stream: generated,
  // or the training file reshuffled every epoch with `seed`). Each has "prompt" plus the data fields.
  virtual std::vector<json> train_prompts(uint64_t seed, int64_t first, int64_t n) const = 0;
  // SFT record number `index` of an endless stream: {"prompt", "completion", ...}. Error when the
  // task has no SFT data.
  virtual json sft_record(uint64_t seed, int64_t index) const = 0;
  // Non-reasoning SFT record number `index` of an endless stream ({"messages": ...} or
  // {"prompt", "completion"}), mixed into rejection-sampling data the way DeepSeek-R1 mixes
  // writing / QA / translation data. Error when the task has none.
  virtual json nonreasoning_record(uint64_t seed, int64_t index) const = 0;
  // Held-out evaluation records (never used for training), at most `limit` (0 = all).
  virtual std::vector<json> eval_records(int64_t limit) const = 0;
  // Task-specific statistics of completions of `records` (pairwise), merged into GRPO step metrics
  // and eval.json (the tiny task: how borrows are handled). Default: none.
  virtual json sample_metrics(const std::vector<json>& records, const std::vector<std::string>& completions) const {
    (void)records, (void)completions;
    return json::object();
  }
};

std::unique_ptr<Task> make_task(const TaskOptions& opts);

// Replaces each "{field}" in `tmpl` with record[field] (strings as-is, other values as JSON);
// "{{" and "}}" are literal braces. A missing field is an Error naming `where`.
std::string render_template(const std::string& tmpl, const json& record, const std::string& where);

}  // namespace r1kit::recipes
