// The `kd` stage: logit knowledge distillation of the input model (the student) from a teacher
// sharing its tokenizer, on fixed sequences: an earlier stage's data.jsonl (e.g. the teacher's
// filtered traces), a JSONL path, or the task's SFT records. The loop is the SFT trainer's
// (optimiser, schedule, checkpoints, resume); the loss is distill/kd_trainer.h's, with the
// teacher's logits computed on the fly.
//
//   - name: kd_student
//     kind: kd
//     input: student_init      # the student
//     teacher: grpo            # an earlier stage's model, or a checkpoint path
//     dataset: rs              # as in the sft stage (default: the task's SFT records)
//     loss: forward_kl         # forward_kl | reverse_kl | jsd;  beta: 0.5 (jsd);  temperature: 1.0;  top_k: 0
//     kd_weight: 1.0           # ce_weight: 0.0 (cross-entropy on the targets as well)
//     steps: 300               # ... and every sft stage key (batch_size, lr, ...)
#include "distill/kd_trainer.h"
#include "recipes/stages.h"

namespace r1kit::recipes {
namespace {

class KdStage : public Stage {
 public:
  KdStage(SftTrainOptions t, distill::KdTrainOptions kd, std::string teacher)
      : t_(std::move(t)), kd_(kd), teacher_(std::move(teacher)) {}

  StageResult run(const StageEnv& env) override {
    StageTeacher teacher = load_stage_teacher(env, teacher_);
    StageResult r = run_sft_training(env, t_, distill::make_kd_loss(teacher.model, kd_, teacher.vocab));
    r.info["teacher"] = teacher.dir;
    r.info["kd_loss"] = kd_.kd.loss;
    return r;
  }
  std::vector<std::pair<std::string, std::string>> references() const override {
    return {{"teacher", teacher_}, {"dataset", t_.dataset}};
  }

 private:
  SftTrainOptions t_;
  distill::KdTrainOptions kd_;
  std::string teacher_;
};

}  // namespace

StageTeacher load_stage_teacher(const StageEnv& env, const std::string& ref) {
  StageTeacher t;
  t.dir = resolve_model_ref(env, "teacher", ref);
  t.vocab = distill::check_same_tokenizer(env.input_model, t.dir, "stage '" + env.name + "'");
  t.model = distill::load_teacher(t.dir, recipe_device(*env.recipe), recipe_dtype(*env.recipe));
  return t;
}

// Reads the KD keys shared with on_policy_distill (loss, beta, temperature, top_k, kd_weight, ce_weight).
distill::KdTrainOptions read_kd_train_options(ConfigNode& node, const std::string& default_loss) {
  distill::KdTrainOptions kd;
  kd.kd = distill::read_kd_options(node, default_loss);
  node.read("kd_weight", kd.kd_weight);
  node.read("ce_weight", kd.ce_weight);
  if (kd.kd_weight < 0) node.fail("kd_weight", "must be >= 0");
  if (kd.ce_weight < 0) node.fail("ce_weight", "must be >= 0");
  if (kd.kd_weight + kd.ce_weight <= 0) node.fail("kd_weight", "kd_weight and ce_weight cannot both be 0");
  return kd;
}

std::unique_ptr<Stage> parse_kd_stage(ConfigNode& node, const RecipeSettings&) {
  SftTrainOptions t;
  read_sft_train_options(node, t);
  std::string teacher;
  node.require("teacher", teacher);
  const distill::KdTrainOptions kd = read_kd_train_options(node, "forward_kl");
  node.finish();
  return std::make_unique<KdStage>(std::move(t), kd, teacher);
}

}  // namespace r1kit::recipes
