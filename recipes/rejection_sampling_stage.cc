// The `rejection_sampling` stage: the input model (e.g. the RL checkpoint) samples N completions
// for each of `prompts` training prompts of the task, the filters keep correct, well formatted,
// language-consistent, non-repetitive samples within length bounds, up to k per prompt (by
// preference) after duplicate removal, optionally mixed with the task's non-reasoning records.
// Writes RUN_DIR/<name>/data.jsonl (chat records with provenance) and stats.json through
// distill/rejection_sampler.h (resumable: shards); keeps the input model for the next stage.
//
//   - name: rs
//     kind: rejection_sampling
//     prompts: 2000            # training prompts (the task's stream, seeded by the stage)
//     samples_per_prompt: 8    # N;  keep_per_prompt: 1 (k; 0 = all);  prefer: shortest
//     temperature: 1.0         # top_p, top_k, max_new_tokens, seed
//     apply_chat_template: false  # true: prompts become a user turn rendered with the model's template
//     filters: {correctness: {reward: accuracy}, format: {options: {answer_tags: true}}, ...}
//     rewards: [...]           # extra rewards recorded in each record (their total is "reward")
//     dedup: {exact: true, near: true, near_scope: prompt, threshold: 0.8, unit: words, shingle: 5}
//     mix: {ratio: 0.25}       # non-reasoning records per kept record: the task's, or {file: x.jsonl}
#include <torch/torch.h>

#include <set>

#include "core/fs.h"
#include "core/logging.h"
#include "datagen/prompt_file.h"
#include "distill/rejection_sampler.h"
#include "model/checkpoint.h"
#include "model/tokenizer.h"
#include "recipes/stages.h"

namespace r1kit::recipes {
namespace {

struct RsOptions {
  int64_t prompts = 1000;
  bool apply_chat_template = false;
  std::string chat_template;
  distill::DataJobOptions job;
  std::string mix_file;
  int workers = 1;
  int64_t max_batch = 256;
  json raw;  // the stage's keys, for job.json
};

class RejectionSamplingStage : public Stage {
 public:
  explicit RejectionSamplingStage(RsOptions o) : o_(std::move(o)) {}

  StageResult run(const StageEnv& env) override {
    apply_recipe_threads(*env.recipe);
    torch::NoGradGuard no_grad;
    // 1. The policy and its tokenizer.
    ModelConfig cfg;
    Transformer model = load_model(env.input_model, &cfg, recipe_device(*env.recipe), recipe_dtype(*env.recipe));
    model->eval();
    const Tokenizer tok = Tokenizer::from_file(env.input_model);

    // 2. Prompts: the task's training stream from position 0, seeded by the stage; a problem that
    //    comes up twice is used once (ids: the record's "id", its source line, or the prompt text).
    datagen::PromptFileOptions pf;
    pf.chat = o_.apply_chat_template;
    pf.chat_template = o_.chat_template;
    pf.tokenizer_dir = env.input_model;
    const datagen::PromptBuilder builder(tok, pf);
    std::vector<datagen::PromptItem> prompts;
    std::set<std::string> ids;
    int64_t repeated = 0;
    const std::vector<json> records = env.task->train_prompts(env.seed, 0, o_.prompts);
    for (size_t i = 0; i < records.size(); ++i) {
      json rec = records[i];
      if (!rec.contains("id")) rec["id"] = rec.contains("_source") ? rec["_source"] : rec.at("prompt");
      if (!ids.insert(rec["id"].is_string() ? rec["id"].get<std::string>() : rec["id"].dump()).second) {
        ++repeated;
        continue;
      }
      rec.erase("messages");  // the prompt text is the task's rendering
      prompts.push_back(builder.build(rec, static_cast<int64_t>(i), rec.value("_source", "train prompt")));
    }

    // 3. The job (resumes from RUN_DIR/<name>/shards after an interruption).
    distill::DataJobOptions job = o_.job;
    if (!o_.raw.contains("seed")) job.driver.sampling.seed = env.seed;
    job.policy = env.input_model;
    job.settings = {{"stage", o_.raw}, {"policy", env.input_model}, {"prompts", prompts.size()}, {"seed", job.driver.sampling.seed}};
    const Task* task = env.task;
    const uint64_t seed = env.seed;
    const std::string mix_file = o_.mix_file;
    if (job.mix_ratio > 0) {
      job.mix_records = [task, seed, mix_file](int64_t n) {
        std::vector<json> out;
        std::vector<json> file;
        if (!mix_file.empty()) for_each_jsonl(mix_file, [&](const json& r, int) { file.push_back(r); });
        R1_CHECK(mix_file.empty() || !file.empty(), mix_file, ": no records to mix in");
        for (int64_t i = 0; i < n; ++i)
          out.push_back(mix_file.empty() ? task->nonreasoning_record(seed, i) : file[static_cast<size_t>(i) % file.size()]);
        return out;
      };
    }
    PoolOptions po;
    po.num_workers = o_.workers;
    po.engine.max_batch = o_.max_batch;
    RolloutPool pool(model, po, [&tok](const std::vector<int64_t>& ids) {
      return tok.decode(std::vector<int32_t>(ids.begin(), ids.end()), /*skip_special_tokens=*/true);
    });
    const distill::DataJobResult r = distill::run_data_job(
        pool, prompts, [&builder](const datagen::PromptItem& p) { return builder.messages_of(p.record); }, job,
        env.stage_dir);
    R1_CHECK(r.complete, "rejection sampling stage '", env.name, "' did not complete");
    const json& st = r.stats;
    spdlog::info("rejection sampling '{}': {} prompts x {} samples, accepted {} ({:.1f}%), kept {} + {} mixed -> {}",
                 env.name, st["prompts"].get<int64_t>(), job.driver.samples_per_prompt, st["accepted"].get<int64_t>(),
                 100 * st["acceptance_rate"].get<double>(), st["kept"].get<int64_t>(),
                 st["mixed_nonreasoning"].get<int64_t>(), r.data_path);
    StageResult result;  // model_dir "": the next stage starts from the same model by default
    result.info = {{"data", r.data_path},
                   {"repeated_prompts", repeated},
                   {"prompts", st["prompts"]},
                   {"samples", st["samples"]},
                   {"accepted", st["accepted"]},
                   {"acceptance_rate", st["acceptance_rate"]},
                   {"kept", st["kept"]},
                   {"mixed_nonreasoning", st["mixed_nonreasoning"]},
                   {"rejected", st["rejected"]},
                   {"dropped", st["dropped"]}};
    return result;
  }

 private:
  RsOptions o_;
};

}  // namespace

std::unique_ptr<Stage> parse_rejection_sampling_stage(ConfigNode& node, const RecipeSettings&) {
  RsOptions o;
  o.raw = node.raw();
  o.job.driver.samples_per_prompt = 8;
  o.job.driver.sampling.max_new_tokens = 256;
  o.job.driver.chunk_prompts = 64;
  node.read("prompts", o.prompts);
  node.read("apply_chat_template", o.apply_chat_template);
  node.read("chat_template", o.chat_template);
  node.read("workers", o.workers);
  node.read("max_batch", o.max_batch);
  distill::read_data_job_options(node, o.job);
  ConfigNode mix = node.child("mix");
  mix.read("ratio", o.job.mix_ratio);
  mix.read("file", o.mix_file);
  mix.finish();
  node.finish();
  if (o.prompts < 1) node.fail("prompts", "must be >= 1");
  if (o.workers < 1) node.fail("workers", "must be >= 1");
  if (o.max_batch < 1) node.fail("max_batch", "must be >= 1");
  if (!(o.job.mix_ratio >= 0)) mix.fail("ratio", "must be >= 0");
  if (!o.mix_file.empty() && !path_exists(o.mix_file)) mix.fail("file", "file not found: " + o.mix_file);
  if (o.job.mix_ratio > 0) o.job.mix_records = [](int64_t) { return std::vector<json>(); };  // set at run time
  distill::validate_data_job(o.job, node.where());
  return std::make_unique<RejectionSamplingStage>(std::move(o));
}

}  // namespace r1kit::recipes
