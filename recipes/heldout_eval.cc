#include "recipes/heldout_eval.h"

#include "core/check.h"
#include "rewards/registry.h"

namespace r1kit::recipes {

HeldoutEval::HeldoutEval(const Task& task, Transformer model, std::shared_ptr<const Tokenizer> tokenizer,
                         const std::string& tokenizer_dir, HeldoutEvalOptions options)
    : task_(task), tokenizer_(std::move(tokenizer)), options_(std::move(options)) {
  ConfigNode reward_node(options_.reward_options, options_.where, options_.reward_path);
  reward_ = rewards::RewardRegistry::global().create(options_.reward, reward_node);
  records_ = task.eval_records(options_.limit);
  const PromptEncoder prompt_encoder(*tokenizer_, tokenizer_dir, options_.prompt_format);
  for (size_t i = 0; i < records_.size(); ++i) {
    PromptRequest r;
    r.id = std::to_string(i);
    const std::vector<int32_t> ids = prompt_encoder.encode(records_[i].at("prompt").get<std::string>());
    r.prompt_ids.assign(ids.begin(), ids.end());
    r.num_samples = options_.samples;
    requests_.push_back(std::move(r));
  }
  EngineOptions engine_opts;
  engine_opts.max_batch = options_.max_batch;
  engine_ = std::make_unique<GenerationEngine>(model, engine_opts, [tok = tokenizer_](const std::vector<int64_t>& ids) {
    return tok->decode(std::vector<int32_t>(ids.begin(), ids.end()));
  });
}

HeldoutResult HeldoutEval::run(uint64_t seed) {
  HeldoutResult out;
  out.records = records_;
  SamplingOptions sampling = options_.sampling;
  sampling.seed = seed;
  out.groups = engine_->generate(requests_, sampling);

  std::vector<rewards::RewardInput> inputs;
  std::vector<json> sample_records;
  std::vector<std::string> texts;
  for (const auto& g : out.groups) {
    for (const auto& s : g.samples) {
      rewards::RewardInput in;
      in.prompt = records_[g.index].at("prompt").get<std::string>();
      in.completion = s.text;
      in.fields = records_[g.index];
      out.prompts.push_back(in.prompt);
      sample_records.push_back(records_[g.index]);
      texts.push_back(s.text);
      inputs.push_back(std::move(in));
    }
  }
  out.scores = reward_->score_batch(inputs, nullptr);
  double total = 0, length = 0;
  int64_t n = 0, errors = 0, k = 0;
  for (const auto& g : out.groups)
    for (const auto& s : g.samples) {
      total += out.scores[k].score;
      errors += out.scores[k].error;
      length += static_cast<double>(s.completion_ids.size());
      ++n, ++k;
    }
  R1_CHECK(n > 0, "held-out evaluation: no held-out records");
  out.summary = {{"accuracy", total / n},
                 {"n", n},
                 {"records", records_.size()},
                 {"samples_per_record", options_.samples},
                 {"temperature", sampling.temperature},
                 {"mean_completion_tokens", length / n},
                 {"reward", options_.reward},
                 {"reward_errors", errors}};
  out.summary.update(task_.sample_metrics(sample_records, texts));
  return out;
}

}  // namespace r1kit::recipes
