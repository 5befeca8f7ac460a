// The `eval` stage: generation on the task's held-out records through the rollout engine, scored
// by a reward from the registry (by default "accuracy", the math answer checker, which reads the
// tiny task's <answer>5</answer> like any other answer). Writes RUN_DIR/<name>/eval.json
// {accuracy, n, ...} and samples.jsonl (one line per sample: prompt, completion, score, why).
//
//   - name: eval_sft
//     kind: eval
//     limit: 0               # held-out records to use (0 = all)
//     samples: 1             # completions per record; accuracy is the mean over all of them
//     temperature: 0         # 0 = greedy
//     max_new_tokens: 32
//     reward: accuracy       # registry name; reward_options: {...} passed to it
#include <torch/torch.h>

#include "core/fs.h"
#include "core/logging.h"
#include "core/timer.h"
#include "model/checkpoint.h"
#include "model/tokenizer.h"
#include "model/tokenizer_prompt.h"
#include "recipes/stages.h"
#include "rewards/registry.h"
#include "rollout/engine.h"

namespace r1kit::recipes {
namespace {

struct EvalOptions {
  int64_t limit = 0;            // held-out records (0 = all)
  int64_t samples = 1;          // completions per record
  SamplingOptions sampling;     // temperature, top_p, top_k, max_new_tokens
  int64_t max_batch = 256;      // sequences decoded together
  std::string reward = "accuracy";
  json reward_options = json::object();
  std::string where;            // recipe file + stage, for reward option errors
  std::string reward_path;      // key path of reward_options
};

class EvalStage : public Stage {
 public:
  explicit EvalStage(EvalOptions opts) : opts_(std::move(opts)) {}

  StageResult run(const StageEnv& env) override {
    apply_recipe_threads(*env.recipe);
    torch::NoGradGuard no_grad;
    Timer timer;
    // 1. Model, tokenizer, reward.
    ModelConfig cfg;
    Transformer model = load_model(env.input_model, &cfg, recipe_device(*env.recipe), recipe_dtype(*env.recipe));
    model->set_compute_options(recipe_compute(*env.recipe));
    model->eval();
    const Tokenizer tok = Tokenizer::from_file(env.input_model);
    const PromptEncoder prompt_encoder(tok, env.input_model, env.recipe->data.prompt_format);
    ConfigNode reward_node(opts_.reward_options, opts_.where, opts_.reward_path);
    const auto reward = rewards::RewardRegistry::global().create(opts_.reward, reward_node);

    // 2. Generate for every held-out record.
    const std::vector<json> records = env.task->eval_records(opts_.limit);
    std::vector<PromptRequest> requests;
    for (size_t i = 0; i < records.size(); ++i) {
      PromptRequest r;
      r.id = std::to_string(i);
      const std::vector<int32_t> ids = prompt_encoder.encode(records[i].at("prompt").get<std::string>());
      r.prompt_ids.assign(ids.begin(), ids.end());
      r.num_samples = opts_.samples;
      requests.push_back(std::move(r));
    }
    SamplingOptions sampling = opts_.sampling;
    sampling.seed = env.seed;
    EngineOptions engine_opts;
    engine_opts.max_batch = opts_.max_batch;
    GenerationEngine engine(model, engine_opts, [&tok](const std::vector<int64_t>& ids) {
      return tok.decode(std::vector<int32_t>(ids.begin(), ids.end()));
    });
    const std::vector<Group> groups = engine.generate(requests, sampling);

    // 3. Score and write samples.jsonl + eval.json.
    std::vector<rewards::RewardInput> inputs;
    for (const auto& g : groups) {
      for (const auto& s : g.samples) {
        rewards::RewardInput in;
        in.prompt = records[g.index].at("prompt").get<std::string>();
        in.completion = s.text;
        in.fields = records[g.index];
        inputs.push_back(std::move(in));
      }
    }
    const std::vector<rewards::RewardOutput> scores = reward->score_batch(inputs, nullptr);
    std::string lines;
    double total = 0, length = 0;
    int64_t n = 0, errors = 0, k = 0;
    for (const auto& g : groups) {
      for (const auto& s : g.samples) {
        const auto& out = scores[k];
        total += out.score;
        length += s.completion_ids.size();
        errors += out.error;
        ++n;
        json line = {{"index", g.index},          {"sample", s.sample_index},     {"prompt", inputs[k].prompt},
                     {"completion", s.text},      {"score", out.score},           {"finish_reason", finish_reason_name(s.finish_reason)},
                     {"tokens", s.completion_ids.size()}, {"diagnostics", out.diagnostics}};
        for (const char* field : {"answer", "final"})
          if (records[g.index].contains(field)) line[field] = records[g.index][field];
        if (out.error) line["error"] = out.error_message;
        lines += dump_line(line) + "\n";
        ++k;
      }
    }
    R1_CHECK(n > 0, "eval stage '", env.name, "': no held-out records");
    write_file_atomic(env.stage_dir + "/samples.jsonl", lines);
    json eval = {{"accuracy", total / n},
                 {"n", n},
                 {"records", records.size()},
                 {"samples_per_record", opts_.samples},
                 {"temperature", sampling.temperature},
                 {"mean_completion_tokens", length / n},
                 {"reward", opts_.reward},
                 {"reward_errors", errors},
                 {"seconds", timer.seconds()}};
    write_file_atomic(env.stage_dir + "/eval.json", eval.dump(2) + "\n");
    spdlog::info("eval '{}': accuracy {:.1f}% over {} samples ({} records), {:.1f} tokens/sample, {:.1f} s", env.name,
                 100.0 * total / n, n, records.size(), length / n, timer.seconds());
    StageResult result;
    result.eval = {{"accuracy", total / n}, {"n", n}};
    result.info = eval;
    return result;
  }

 private:
  EvalOptions opts_;
};

}  // namespace

std::unique_ptr<Stage> parse_eval_stage(ConfigNode& node, const RecipeSettings&) {
  EvalOptions o;
  o.sampling.temperature = 0.0;
  o.sampling.max_new_tokens = 64;
  node.read("limit", o.limit);
  node.read("samples", o.samples);
  node.read("temperature", o.sampling.temperature);
  node.read("top_p", o.sampling.top_p);
  node.read("top_k", o.sampling.top_k);
  node.read("max_new_tokens", o.sampling.max_new_tokens);
  node.read("max_batch", o.max_batch);
  node.read("reward", o.reward);
  if (node.has("reward_options")) {
    ConfigNode ro = node.child("reward_options");
    o.reward_options = ro.raw();
  }
  node.finish();
  if (o.limit < 0) node.fail("limit", "must be >= 0");
  if (o.samples < 1) node.fail("samples", "must be >= 1");
  if (o.max_batch < 1) node.fail("max_batch", "must be >= 1");
  try {
    o.sampling.validate();
  } catch (const Error& e) {
    std::string stage = node.key_path("_");
    stage.resize(stage.size() - 2);
    R1_FAIL(node.where(), ": '", stage, "': ", e.what());
  }
  o.where = node.where();
  o.reward_path = node.key_path("reward_options");
  // Build the reward once now so a bad name or option fails before any stage runs.
  ConfigNode check(o.reward_options, o.where, o.reward_path);
  rewards::RewardRegistry::global().create(o.reward, check);
  return std::make_unique<EvalStage>(std::move(o));
}

}  // namespace r1kit::recipes
