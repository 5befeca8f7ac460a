#include "rewards/model_judge.h"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>

#include "core/check.h"
#include "core/config.h"
#include "model/chat_template.h"
#include "model/checkpoint.h"
#include "rewards/model_reward.h"

namespace r1kit::rewards {

double parse_verdict(const std::string& answer, const JudgeOptions& o) {
  RE2 re(o.verdict_regex);
  R1_CHECK(re.ok(), "llm_judge: invalid verdict_regex '", o.verdict_regex, "': ", re.error());
  R1_CHECK(re.NumberOfCapturingGroups() >= 1, "llm_judge: verdict_regex '", o.verdict_regex,
           "' needs a capture group (the verdict)");
  re2::StringPiece rest(answer), capture;
  std::string verdict;
  bool found = false;
  while (RE2::FindAndConsume(&rest, re, &capture)) {
    verdict = std::string(capture.data(), capture.size());
    found = true;
    if (!o.last_match) break;
    if (capture.empty() && rest.empty()) break;
  }
  const std::string shown = answer.size() > 160 ? answer.substr(0, 160) + "..." : answer;
  R1_CHECK(found, "llm_judge: no verdict (", o.verdict_regex, ") in the judge's answer: '", shown, "'");
  if (!o.labels.empty()) {
    std::string key = verdict;
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    auto it = o.labels.find(key);
    R1_CHECK(it != o.labels.end(), "llm_judge: verdict '", verdict, "' is not one of the labels in the answer '", shown, "'");
    return it->second;
  }
  try {
    size_t used = 0;
    const double v = std::stod(verdict, &used);
    R1_CHECK(used == verdict.size(), "trailing text");
    return o.scale * v;
  } catch (const std::exception&) {
    R1_FAIL("llm_judge: verdict '", verdict, "' is not a number (answer '", shown, "')");
  }
}

JudgeReward::JudgeReward(JudgeOptions o) : options_(std::move(o)) {
  R1_CHECK(!options_.model.empty(), "llm_judge: option 'model' (a causal LM directory) is required");
  const torch::Device device(options_.device);
  const torch::Dtype dtype = options_.dtype == "auto" ? default_dtype(device) : parse_dtype(options_.dtype);
  ModelConfig cfg;
  Transformer model = load_model(options_.model, &cfg, device, dtype);
  model->eval();
  for (auto& p : model->parameters()) p.set_requires_grad(false);
  tokenizer_ = Tokenizer::from_file(options_.model);
  model_ = model;
  RE2 re(options_.verdict_regex);
  R1_CHECK(re.ok() && re.NumberOfCapturingGroups() >= 1, "llm_judge: verdict_regex '", options_.verdict_regex,
           "' must be a valid RE2 regex with a capture group");
}

std::string JudgeReward::prompt_of(const RewardInput& input) const {
  const std::string filled = render_reward_template(options_.template_text, input);
  if (!options_.chat) return filled;
  ChatOptions co;
  co.add_generation_prompt = true;
  return render_chat({{"user", filled}}, options_.model, co);
}

std::vector<RewardOutput> JudgeReward::score_batch(const std::vector<RewardInput>& inputs, ThreadPool*) const {
  std::vector<RewardOutput> out(inputs.size());
  std::vector<PromptRequest> requests;
  std::vector<size_t> which;
  for (size_t i = 0; i < inputs.size(); ++i) {
    try {
      const std::vector<int32_t> ids = tokenizer_.encode(prompt_of(inputs[i]), /*add_special_tokens=*/!options_.chat);
      R1_CHECK(!ids.empty(), "llm_judge: the judge prompt encodes to no tokens");
      PromptRequest r;
      r.id = std::to_string(i);
      r.prompt_ids.assign(ids.begin(), ids.end());
      r.seed = static_cast<int64_t>(i);
      requests.push_back(std::move(r));
      which.push_back(i);
    } catch (const std::exception& e) {
      out[i].error = true;
      out[i].error_message = e.what();
    }
  }
  SamplingOptions so;
  so.temperature = options_.temperature;
  so.max_new_tokens = options_.max_new_tokens;
  so.stop_strings = options_.stop_strings;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t s = 0; s < requests.size(); s += static_cast<size_t>(options_.batch_size)) {
    const size_t e = std::min(requests.size(), s + static_cast<size_t>(options_.batch_size));
    std::vector<PromptRequest> part(requests.begin() + s, requests.begin() + e);
    // A KV-cache budget that fits the whole part at once.
    int64_t need = 0;
    for (const auto& r : part) need += GenerationEngine::tokens_needed(r, so);
    EngineOptions eo;
    eo.max_batch = options_.batch_size;
    eo.token_budget = std::max<int64_t>(need, 1024);
    GenerationEngine engine(model_, eo, [this](const std::vector<int64_t>& ids) {
      return tokenizer_.decode(std::vector<int32_t>(ids.begin(), ids.end()), /*skip_special_tokens=*/true);
    });
    const std::vector<Group> groups = engine.generate(part, so);
    for (size_t k = 0; k < groups.size(); ++k) {
      RewardOutput& o = out[which[s + k]];
      const Sample& sample = groups[k].samples.at(0);
      o.diagnostics = {{"judge_answer", sample.text}, {"judge_tokens", sample.completion_ids.size()},
                       {"finish_reason", finish_reason_name(sample.finish_reason)}};
      try {
        o.score = parse_verdict(sample.text, options_);
      } catch (const std::exception& ex) {
        o.error = true;
        o.error_message = ex.what();
      }
    }
  }
  return out;
}

RewardOutput JudgeReward::score_one(const RewardInput& input) const { return score_batch({input}, nullptr)[0]; }

std::unique_ptr<Reward> make_judge_reward(ConfigNode& node) {
  JudgeOptions o;
  node.require("model", o.model);
  node.read("template", o.template_text);
  node.read("chat", o.chat);
  node.read("verdict_regex", o.verdict_regex);
  if (node.has("labels")) {
    o.labels.clear();
    node.read("labels", o.labels);
  }
  node.read("scale", o.scale);
  node.read("last_match", o.last_match);
  node.read("max_new_tokens", o.max_new_tokens);
  node.read("temperature", o.temperature);
  node.read("stop_strings", o.stop_strings);
  node.read("batch_size", o.batch_size);
  node.read("device", o.device);
  node.read("dtype", o.dtype);
  if (o.max_new_tokens < 1) node.fail("max_new_tokens", "must be >= 1");
  if (o.batch_size < 1) node.fail("batch_size", "must be >= 1");
  if (o.temperature < 0) node.fail("temperature", "must be >= 0");
  RE2 re(o.verdict_regex);
  if (!re.ok() || re.NumberOfCapturingGroups() < 1)
    node.fail("verdict_regex", "must be a valid RE2 regex with a capture group (the verdict)");
  for (auto& [k, v] : o.labels) {
    std::string lower = k;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower != k) node.fail("labels", "label '" + k + "' must be lower case (verdicts are lower-cased)");
  }
  try {
    return std::make_unique<JudgeReward>(o);
  } catch (const Error& e) {
    node.fail("model", e.what());
  }
}

}  // namespace r1kit::rewards
