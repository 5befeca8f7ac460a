#include "rewards/model_reward.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "core/check.h"
#include "core/config.h"
#include "core/fs.h"
#include "model/chat_template.h"
#include "model/checkpoint.h"

namespace r1kit::rewards {

std::string render_reward_template(const std::string& tmpl, const RewardInput& input) {
  std::string out;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    const char c = tmpl[i];
    if ((c == '{' || c == '}') && i + 1 < tmpl.size() && tmpl[i + 1] == c) {  // "{{" / "}}"
      out += c;
      ++i;
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    const size_t end = tmpl.find('}', i);
    R1_CHECK(end != std::string::npos, "reward template: unclosed '{' at offset ", i, " in '", tmpl.substr(0, 80), "'");
    const std::string name = tmpl.substr(i + 1, end - i - 1);
    if (name == "prompt") {
      out += input.prompt;
    } else if (name == "completion") {
      out += input.completion;
    } else {
      R1_CHECK(input.fields.contains(name), "reward template: the sample has no field '", name, "' (used as {",
               name, "})");
      const json& v = input.fields[name];
      out += v.is_string() ? v.get<std::string>() : v.dump();
    }
    i = end;
  }
  return out;
}

RewardModelReward::RewardModelReward(RewardModelOptions o) : options_(std::move(o)) {
  const std::string& dir = options_.model;
  R1_CHECK(!dir.empty(), "reward_model: option 'model' (a sequence-classification checkpoint directory) is required");
  const std::string config_path = dir + "/config.json";
  R1_CHECK(path_exists(config_path), dir, ": no config.json");
  const json config = parse_json(read_file(config_path), config_path);
  bool classifier = false;
  for (const auto& a : config.value("architectures", json::array()))
    classifier = classifier || (a.is_string() && a.get<std::string>().find("ForSequenceClassification") != std::string::npos);
  R1_CHECK(classifier, config_path, ": architectures ", config.value("architectures", json::array()).dump(),
           " is not a *ForSequenceClassification model (a decoder with a 'score' head)");
  if (config.contains("pad_token_id") && config["pad_token_id"].is_number_integer())
    pad_id_ = config["pad_token_id"].get<int64_t>();
  const torch::Device device(options_.device);
  const torch::Dtype dtype = options_.dtype == "auto" ? default_dtype(device) : parse_dtype(options_.dtype);
  DecoderLoadOptions load;
  load.extra_tensors = {"score.weight"};
  load.without_lm_head = true;
  std::map<std::string, torch::Tensor> extra;
  model_ = load_decoder(dir, nullptr, device, dtype, load, &extra);
  model_->eval();
  for (auto& p : model_->parameters()) p.set_requires_grad(false);
  score_weight_ = extra.at("score.weight");
  R1_CHECK(score_weight_.dim() == 2 && score_weight_.size(1) == model_->config().hidden_size, dir,
           ": score.weight has shape ", score_weight_.sizes(), ", expected [num_labels, ", model_->config().hidden_size, "]");
  R1_CHECK(options_.label >= 0 && options_.label < score_weight_.size(0), "reward_model: label ", options_.label,
           " is out of range: ", dir, " has ", score_weight_.size(0), " labels");
  tokenizer_ = Tokenizer::from_file(dir);
}

std::string RewardModelReward::text_of(const RewardInput& input) const {
  if (!options_.chat) return render_reward_template(options_.template_text, input);
  return render_chat({{"user", input.prompt}, {"assistant", input.completion}}, options_.model);
}

torch::Tensor RewardModelReward::head_logits(const std::vector<std::vector<int64_t>>& ids) const {
  torch::NoGradGuard no_grad;
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t n = static_cast<int64_t>(ids.size());
  torch::Tensor out = torch::empty({n, score_weight_.size(0)}, torch::kFloat32);
  // Length-sorted batches waste little on padding.
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return ids[a].size() < ids[b].size(); });
  const torch::Device device = model_->device();
  for (int64_t s = 0; s < n; s += options_.batch_size) {
    const int64_t e = std::min(n, s + options_.batch_size);
    int64_t T = 1;
    for (int64_t k = s; k < e; ++k) T = std::max<int64_t>(T, static_cast<int64_t>(ids[order[k]].size()));
    std::vector<int64_t> flat((e - s) * T, pad_id_ >= 0 ? pad_id_ : 0), pool(e - s);
    for (int64_t k = s; k < e; ++k) {
      const auto& row = ids[order[k]];
      R1_CHECK(!row.empty(), "reward_model: empty token sequence");
      std::copy(row.begin(), row.end(), flat.begin() + (k - s) * T);
      // transformers: the rightmost token that is not pad_token_id (index 0 if all are), or the last.
      int64_t idx = static_cast<int64_t>(row.size()) - 1;
      if (pad_id_ >= 0) {
        while (idx >= 0 && row[idx] == pad_id_) --idx;
        idx = std::max<int64_t>(idx, 0);
      }
      pool[k - s] = idx;
    }
    const torch::Tensor batch = torch::tensor(flat, torch::kInt64).view({e - s, T}).to(device);
    const torch::Tensor positions = torch::arange(T, torch::kInt64).expand({e - s, T}).contiguous().to(device);
    const torch::Tensor hidden = model_->forward_hidden(batch, positions);  // [b, T, C]
    const torch::Tensor rows = torch::arange(e - s, torch::kInt64).to(device);
    const torch::Tensor at = hidden.index({rows, torch::tensor(pool, torch::kInt64).to(device)});  // [b, C]
    // The head in the model's dtype, as nn.Linear would run it, then float32.
    const torch::Tensor logits = torch::nn::functional::linear(at, score_weight_).to(torch::kFloat32).cpu();
    for (int64_t k = s; k < e; ++k) out[order[k]] = logits[k - s];
  }
  return out;
}

std::vector<RewardOutput> RewardModelReward::score_batch(const std::vector<RewardInput>& inputs, ThreadPool*) const {
  std::vector<RewardOutput> out(inputs.size());
  std::vector<std::vector<int64_t>> ids;
  std::vector<size_t> which;
  for (size_t i = 0; i < inputs.size(); ++i) {
    try {
      const std::string text = text_of(inputs[i]);
      const std::vector<int32_t> t = tokenizer_.encode(text, /*add_special_tokens=*/!options_.chat);
      R1_CHECK(!t.empty(), "reward_model: the text encodes to no tokens");
      R1_CHECK(static_cast<int64_t>(t.size()) <= options_.max_length, "reward_model: ", t.size(),
               " tokens exceed max_length ", options_.max_length, " (not truncated: the score would not be the model's)");
      ids.emplace_back(t.begin(), t.end());
      which.push_back(i);
    } catch (const std::exception& e) {
      out[i].error = true;
      out[i].error_message = e.what();
    }
  }
  if (ids.empty()) return out;
  const torch::Tensor logits = head_logits(ids);
  for (size_t k = 0; k < which.size(); ++k) {
    const torch::Tensor row = logits[static_cast<int64_t>(k)];
    double v = row[options_.label].item<double>();
    if (options_.activation == "sigmoid") v = 1.0 / (1.0 + std::exp(-v));
    if (options_.activation == "softmax") v = torch::softmax(row, 0)[options_.label].item<double>();
    RewardOutput& o = out[which[k]];
    o.score = v;
    o.diagnostics = {{"logits", std::vector<float>(row.data_ptr<float>(), row.data_ptr<float>() + row.numel())},
                     {"tokens", ids[k].size()}};
  }
  return out;
}

RewardOutput RewardModelReward::score_one(const RewardInput& input) const { return score_batch({input}, nullptr)[0]; }

std::unique_ptr<Reward> make_reward_model_reward(ConfigNode& node) {
  RewardModelOptions o;
  node.require("model", o.model);
  node.read("template", o.template_text);
  node.read("chat", o.chat);
  node.read("label", o.label);
  node.read_enum("activation", o.activation, {"none", "sigmoid", "softmax"});
  node.read("batch_size", o.batch_size);
  node.read("max_length", o.max_length);
  node.read("device", o.device);
  node.read("dtype", o.dtype);
  if (o.batch_size < 1) node.fail("batch_size", "must be >= 1");
  if (o.max_length < 1) node.fail("max_length", "must be >= 1");
  if (o.label < 0) node.fail("label", "must be >= 0");
  try {
    return std::make_unique<RewardModelReward>(o);
  } catch (const Error& e) {
    node.fail("model", e.what());
  }
}

}  // namespace r1kit::rewards
