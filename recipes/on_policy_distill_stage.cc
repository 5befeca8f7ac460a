// The `on_policy_distill` stage: the input model (the student) samples completions of the task's
// training prompts through the rollout pool, the teacher scores every token, and the per-token
// reverse KL(student || teacher) over each completion is the loss (distill/on_policy.h). Runs on
// the SFT trainer's loop (optimiser, schedule, checkpoints, resume); batch = prompts x samples.
//
//   - name: opd
//     kind: on_policy_distill
//     teacher: grpo             # an earlier stage's model, or a checkpoint path (same tokenizer)
//     steps: 50                 # lr, warmup_steps, ... as in the sft stage (batch_size is P x G)
//     prompts_per_step: 16      # samples_per_prompt: 4
//     sampling_temperature: 1.0 # the student's sampling; top_p, max_new_tokens
//     loss: reverse_kl          # or forward_kl / jsd (beta); temperature and top_k of the divergence
//     reward: accuracy          # optional: logs the mean reward of the student's samples (not trained on)
#include <torch/torch.h>

#include "core/logging.h"
#include "datagen/prompt_file.h"
#include "distill/on_policy.h"
#include "model/tokenizer.h"
#include "recipes/stages.h"
#include "rewards/registry.h"

namespace r1kit::recipes {
namespace {

struct OpdOptions {
  SftTrainOptions train;
  distill::KdTrainOptions kd;
  distill::OnPolicyOptions policy;
  std::string teacher;
  std::string reward;  // "" = none
};

class OnPolicyDistillStage : public Stage {
 public:
  explicit OnPolicyDistillStage(OpdOptions o) : o_(std::move(o)) {}

  StageResult run(const StageEnv& env) override {
    StageTeacher teacher = load_stage_teacher(env, o_.teacher);
    std::shared_ptr<rewards::Reward> reward;
    if (!o_.reward.empty()) reward = rewards::RewardRegistry::global().create(o_.reward);
    distill::OnPolicyOptions policy = o_.policy;
    policy.sampling.seed = env.seed;
    const Task* task = env.task;
    const uint64_t seed = env.seed;
    const std::string name = env.name;
    const int64_t log_every = std::max<int64_t>(1, o_.train.sft.log_every);
    std::unique_ptr<RolloutPool> pool;
    auto make_source = [&](Transformer& student, const Tokenizer& tok) {
      PoolOptions po;
      pool = std::make_unique<RolloutPool>(student, po, [&tok](const std::vector<int64_t>& ids) {
        return tok.decode(std::vector<int32_t>(ids.begin(), ids.end()), /*skip_special_tokens=*/true);
      });
      auto builder = std::make_shared<datagen::PromptBuilder>(tok, datagen::PromptFileOptions{});
      auto prompts = [task, seed, builder](int64_t step, int64_t n) {
        std::vector<datagen::PromptItem> items;
        const std::vector<json> recs = task->train_prompts(seed, step * n, n);
        for (size_t i = 0; i < recs.size(); ++i) {
          json r = recs[i];
          r.erase("messages");
          r["id"] = std::to_string(step * n + static_cast<int64_t>(i));
          items.push_back(builder->build(r, step * n + static_cast<int64_t>(i), "train prompt"));
        }
        return items;
      };
      // Logs the student's samples now and then: length, and the reward when one is configured.
      auto on_samples = [reward, name, log_every, task, seed](int64_t step, const std::vector<Group>& groups) {
        if ((step + 1) % log_every != 0 && step != 0) return;
        double tokens = 0, score = 0;
        int64_t n = 0;
        const int64_t P = static_cast<int64_t>(groups.size());
        const std::vector<json> recs = task->train_prompts(seed, step * P, P);
        for (const auto& g : groups) {
          for (const auto& s : g.samples) {
            tokens += static_cast<double>(s.completion_ids.size());
            if (reward) {
              rewards::RewardInput in;
              in.prompt = recs[g.index].at("prompt").get<std::string>();
              in.completion = s.text;
              in.fields = recs[g.index];
              score += reward->score_one(in).score;
            }
            ++n;
          }
        }
        spdlog::info("on-policy '{}' step {}: {:.1f} tokens/sample{}", name, step + 1, tokens / std::max<int64_t>(1, n),
                     reward ? fmt::format(", sample reward {:.3f}", score / std::max<int64_t>(1, n)) : "");
      };
      return distill::on_policy_source(student, *pool, prompts, policy, on_samples);
    };
    StageResult r =
        run_sft_training(env, o_.train, distill::make_kd_loss(teacher.model, o_.kd, teacher.vocab), make_source);
    r.info["teacher"] = teacher.dir;
    r.info["kd_loss"] = o_.kd.kd.loss;
    return r;
  }
  std::vector<std::pair<std::string, std::string>> references() const override { return {{"teacher", o_.teacher}}; }

 private:
  OpdOptions o_;
};

}  // namespace

std::unique_ptr<Stage> parse_on_policy_distill_stage(ConfigNode& node, const RecipeSettings&) {
  OpdOptions o;
  o.train.sft.steps = 50;
  o.train.sft.lr = 1e-4;
  o.train.sft.min_lr = 1e-4;
  o.train.sft.warmup_steps = 0;
  node.read("prompts_per_step", o.policy.prompts_per_step);
  node.read("samples_per_prompt", o.policy.samples_per_prompt);
  if (o.policy.prompts_per_step < 1) node.fail("prompts_per_step", "must be >= 1");
  if (o.policy.samples_per_prompt < 1) node.fail("samples_per_prompt", "must be >= 1");
  o.train.sft.batch_size = o.policy.prompts_per_step * o.policy.samples_per_prompt;
  if (node.has("batch_size")) node.fail("batch_size", "is prompts_per_step x samples_per_prompt here");
  read_sft_train_options(node, o.train);
  if (!o.train.dataset.empty()) node.fail("dataset", "on-policy distillation trains on the student's own samples");
  node.read("sampling_temperature", o.policy.sampling.temperature);
  node.read("top_p", o.policy.sampling.top_p);
  node.read("max_new_tokens", o.policy.sampling.max_new_tokens);
  node.require("teacher", o.teacher);
  o.kd = read_kd_train_options(node, "reverse_kl");
  node.read("reward", o.reward);
  node.finish();
  try {
    o.policy.sampling.validate();
  } catch (const Error& e) {
    R1_FAIL(node.where(), ": ", node.key_path("sampling_temperature"), ": ", e.what());
  }
  if (!o.reward.empty()) {
    ConfigNode none(json::object(), node.where(), node.key_path("reward"));
    rewards::RewardRegistry::global().create(o.reward, none);
  }
  return std::make_unique<OnPolicyDistillStage>(std::move(o));
}

}  // namespace r1kit::recipes
