#include "rewards/builtin_rewards.h"

#include "rewards/code_reward.h"
#include "rewards/countdown_reward.h"
#include "rewards/format_reward.h"
#include "rewards/language_reward.h"
#include "rewards/length_reward.h"
#include "rewards/math_reward.h"
#include "rewards/model_judge.h"
#include "rewards/model_reward.h"
#include "rewards/plugin.h"
#include "rewards/registry.h"

namespace r1kit::rewards {

void register_builtin_rewards(RewardRegistry& r) {
  r.add({"accuracy", {"math"},
         "Math accuracy (rewards/math_reward.h): correct_score (1) when the completion's final answer is "
         "equivalent to the gold field, else wrong_score (0); a missing gold field is an error. Options: "
         "gold_field (answer), gold_format (auto|latex|gsm8k|int), correct_score, wrong_score, float_rounding, "
         "strict, allow_set_relation, fallbacks: {answer_tag, answer_phrase, last_math, last_number}.",
         make_math_accuracy_reward});
  r.add({"code", {},
         "Code accuracy (rewards/code_reward.h): extracts the program from the completion, runs the sample's "
         "tests (HumanEval/MBPP asserts or stdio tests) in the sandbox and scores the fraction passed; sandbox "
         "failures are errors. Options: language (python|cpp|auto), test_style (auto|assert|stdio), "
         "all_or_nothing, float_tolerance, time_limit_s, memory_mb, fence, accept_untagged_fence, max_tests, "
         "max_stdout_bytes, parallel, error_score, sandbox: {...}.",
         make_code_reward});
  r.add({"format", {},
         "1 if the completion is '<think>thought</think>answer' with exactly one of each tag, else 0. Options: "
         "think_prefilled (true|false|\"auto\": the prompt ends with <think>, so the completion has only "
         "</think>; default auto), answer_tags (require <answer>..</answer> after </think>; false), "
         "require_answer (non-blank answer; true), require_thought (non-blank thought; false).",
         make_format_reward});
  r.add({"tag_count", {},
         "Partial format credit (open-r1 tag_count_reward): 1/k per expected tag string found exactly once "
         "(k=4: 0.25 each). Options: think_prefilled (auto), answer_tags (true), newlines (count '<think>\\n', "
         "'\\n</think>\\n', '\\n<answer>\\n', '\\n</answer>' as open-r1; true).",
         make_tag_count_reward});
  r.add({"language", {"language_consistency"},
         "Share of the chain of thought's words in the target language, by script (DeepSeek-R1). Options: "
         "language (en|zh|ja|ko|ru|ar; en), language_field (sample field naming the target), scope "
         "(thought|completion), unit (words|chars), think_prefilled (auto), empty_score (0).",
         make_language_reward});
  r.add({"cosine", {"cosine_length"},
         "Cosine-scaled length reward (Demystifying Long CoT / open-r1): short correct answers earn most, short "
         "wrong ones lose most. Options: min_value_wrong (-1), max_value_wrong (-0.5), min_value_correct (0.5), "
         "max_value_correct (1), max_len (1000), length_unit (chars|tokens), chars_per_token (4), "
         "correctness ({name: accuracy, options: {}}), correct_threshold (1).",
         make_cosine_reward});
  r.add({"overlong", {"soft_overlong"},
         "DAPO soft overlong penalty in tokens: 0 up to max_len-cache_len, linear to -1 at max_len, -1 beyond. "
         "Length from field completion_tokens, else code points / chars_per_token. Options: max_len (20480), "
         "cache_len (4096), chars_per_token (4).",
         make_overlong_reward});
  r.add({"repetition", {"repetition_penalty"},
         "n-gram repetition penalty (open-r1): (1 - distinct/total n-grams) * max_penalty. Options: ngram_size "
         "(3), max_penalty (-1), unit (words|chars).",
         make_repetition_reward});
  r.add({"countdown", {},
         "Countdown (TinyZero): the last <answer> equation uses each of fields nums/numbers once with + - * / "
         "and parentheses and equals fields target (exact). 1 correct, format_score (0.1) for a wrong equation, 0 "
         "with no <answer>. Options: score (1), format_score (0.1), allow_unary (true), max_equation_chars (4096).",
         make_countdown_reward});
  r.add({"plugin", {},
         "An external reward program speaking JSON lines (docs/reward_plugins.md). Options: command (argv, "
         "required), config (sent in the handshake), name, timeout_s (30), startup_timeout_s (10), "
         "max_batch_size (64), max_response_bytes, error_score (0).",
         make_plugin_reward});
  r.add({"reward_model", {"rm"},
         "A Hugging Face sequence-classification checkpoint (rewards/model_reward.h): the 'score' head at the last "
         "non-pad token of the prompt+completion text, as transformers computes it. Options: model (required), "
         "template ({prompt}{completion}; {field} for sample fields), chat (the checkpoint's chat template over "
         "user/assistant turns instead), label (0), activation (none|sigmoid|softmax), batch_size (8), max_length "
         "(4096; longer is an error, never truncated), device (cpu), dtype (auto).",
         make_reward_model_reward});
  r.add({"llm_judge", {"judge"},
         "A local causal LM asked about each sample (rewards/model_judge.h): the filled template (as a user turn of "
         "its chat template unless chat: false) is generated greedily and verdict_regex's capture is mapped through "
         "labels ({yes: 1, no: 0}) or read as a number times scale; no verdict is an error. Options: model "
         "(required), template, chat, verdict_regex, labels, scale, last_match, max_new_tokens (64), temperature "
         "(0), stop_strings, batch_size (16), device, dtype.",
         make_judge_reward});
}

}  // namespace r1kit::rewards
