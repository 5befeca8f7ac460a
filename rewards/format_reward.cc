#include "rewards/format_reward.h"

#include <string_view>

namespace r1kit::rewards {

namespace {

bool is_blank(std::string_view s) { return s.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos; }

std::string_view trim_left(std::string_view s) {
  auto p = s.find_first_not_of(" \t\r\n\f\v");
  return p == std::string_view::npos ? std::string_view() : s.substr(p);
}

std::string_view trim_right(std::string_view s) {
  auto p = s.find_last_not_of(" \t\r\n\f\v");
  return p == std::string_view::npos ? std::string_view() : s.substr(0, p + 1);
}

RewardOutput verdict(bool ok, const std::string& reason, json diagnostics) {
  RewardOutput out;
  out.score = ok ? 1.0 : 0.0;
  diagnostics["reason"] = ok ? "ok" : reason;
  out.diagnostics = std::move(diagnostics);
  return out;
}

}  // namespace

RewardOutput FormatReward::score_one(const RewardInput& input) const {
  const std::string_view text = input.completion;
  const bool prefilled = is_prefilled(options_.think_prefilled, input);
  const std::size_t n_open = count_occurrences(text, "<think>");
  const std::size_t n_close = count_occurrences(text, "</think>");
  json diag = {{"think_open", n_open}, {"think_close", n_close}, {"prefilled", prefilled}};

  std::string_view after_open;
  if (prefilled) {
    if (n_open != 0) return verdict(false, "<think> inside a completion whose thought is pre-filled", diag);
    after_open = text;
  } else {
    if (n_open != 1) return verdict(false, n_open == 0 ? "no <think>" : "more than one <think>", diag);
    std::string_view lead = trim_left(text);
    if (lead.substr(0, 7) != "<think>") return verdict(false, "text before <think>", diag);
    after_open = lead.substr(7);
  }
  if (n_close != 1) return verdict(false, n_close == 0 ? "no </think>" : "more than one </think>", diag);
  const std::size_t close = after_open.find("</think>");
  if (close == std::string_view::npos) return verdict(false, "</think> before <think>", diag);
  const std::string_view thought = after_open.substr(0, close);
  const std::string_view rest = after_open.substr(close + 8);
  if (options_.require_thought && is_blank(thought)) return verdict(false, "empty thought", diag);

  if (!options_.answer_tags) {
    if (options_.require_answer && is_blank(rest)) return verdict(false, "no answer after </think>", diag);
    return verdict(true, "", diag);
  }
  const std::size_t n_aopen = count_occurrences(text, "<answer>");
  const std::size_t n_aclose = count_occurrences(text, "</answer>");
  diag["answer_open"] = n_aopen;
  diag["answer_close"] = n_aclose;
  if (n_aopen != 1 || n_aclose != 1) return verdict(false, "need exactly one <answer> and one </answer>", diag);
  const std::string_view body = trim_right(trim_left(rest));
  if (body.substr(0, 8) != "<answer>") return verdict(false, "text between </think> and <answer>", diag);
  if (body.size() < 17 || body.substr(body.size() - 9) != "</answer>")
    return verdict(false, "text after </answer>", diag);
  const std::string_view answer = body.substr(8, body.size() - 17);
  if (options_.require_answer && is_blank(answer)) return verdict(false, "empty <answer>", diag);
  return verdict(true, "", diag);
}

RewardOutput TagCountReward::score_one(const RewardInput& input) const {
  const std::string_view text = input.completion;
  const bool prefilled = is_prefilled(options_.think_prefilled, input);
  const bool nl = options_.newlines;
  struct Tag {
    const char* name;
    std::string_view needle;
    std::size_t expected;
  };
  std::vector<Tag> tags = {
      {"think_open", nl ? "<think>\n" : "<think>", prefilled ? 0u : 1u},
      {"think_close", nl ? "\n</think>\n" : "</think>", 1},
  };
  if (options_.answer_tags) {
    tags.push_back({"answer_open", nl ? "\n<answer>\n" : "<answer>", 1});
    tags.push_back({"answer_close", nl ? "\n</answer>" : "</answer>", 1});
  }
  RewardOutput out;
  const double credit = 1.0 / static_cast<double>(tags.size());
  for (const auto& tag : tags) {
    // Pre-filled: any "<think>" in the completion is wrong, with or without its newline.
    const std::size_t n = count_occurrences(text, prefilled && tag.expected == 0 ? "<think>" : tag.needle);
    const bool ok = n == tag.expected;
    out.components[tag.name] = ok ? 1.0 : 0.0;
    out.diagnostics[std::string(tag.name) + "_count"] = n;
    if (ok) out.score += credit;
  }
  return out;
}

std::unique_ptr<Reward> make_format_reward(ConfigNode& node) {
  FormatOptions o;
  read_prefill(node, "think_prefilled", o.think_prefilled);
  node.read("answer_tags", o.answer_tags);
  node.read("require_answer", o.require_answer);
  node.read("require_thought", o.require_thought);
  return std::make_unique<FormatReward>(o);
}

std::unique_ptr<Reward> make_tag_count_reward(ConfigNode& node) {
  TagCountOptions o;
  read_prefill(node, "think_prefilled", o.think_prefilled);
  node.read("answer_tags", o.answer_tags);
  node.read("newlines", o.newlines);
  return std::make_unique<TagCountReward>(o);
}

}  // namespace r1kit::rewards
