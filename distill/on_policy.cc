#include "distill/on_policy.h"

#include "core/check.h"
#include "model/checkpoint.h"

namespace r1kit::distill {

sft::SftBatchSource on_policy_source(Transformer student, RolloutPool& pool, StepPrompts prompts, OnPolicyOptions o,
                                     OnSamples on_samples) {
  R1_CHECK(o.prompts_per_step >= 1 && o.samples_per_prompt >= 1,
           "on-policy distillation: prompts_per_step and samples_per_prompt must be >= 1");
  o.sampling.validate();
  RolloutPool* p = &pool;
  return [student, p, prompts, o, on_samples](int64_t step, int64_t n) mutable {
    R1_CHECK(n == o.prompts_per_step * o.samples_per_prompt, "on-policy distillation: batch_size ", n,
             " must equal prompts_per_step x samples_per_prompt = ", o.prompts_per_step * o.samples_per_prompt);
    // 1. The student's current weights into the pool (a resumed run has restored them already).
    {
      torch::NoGradGuard no_grad;
      p->update_weights(step + 1, hf_state_dict(student));
    }
    // 2. G samples of each of the step's prompts, seeded by (seed, step, prompt).
    const std::vector<datagen::PromptItem> items = prompts(step, o.prompts_per_step);
    R1_CHECK(static_cast<int64_t>(items.size()) == o.prompts_per_step, "on-policy distillation: ", items.size(),
             " prompts for step ", step, ", expected ", o.prompts_per_step);
    std::vector<PromptRequest> requests;
    for (size_t i = 0; i < items.size(); ++i) {
      PromptRequest r;
      r.id = items[i].id;
      r.prompt_ids = items[i].ids;
      r.num_samples = o.samples_per_prompt;
      r.seed = static_cast<int64_t>(derive_seed(derive_seed(o.sampling.seed, static_cast<uint64_t>(step)), i) >> 1);
      requests.push_back(std::move(r));
    }
    const std::vector<Group> groups = p->generate(requests, o.sampling);
    if (on_samples) on_samples(step, groups);
    // 3. prompt ++ completion, learned on the completion tokens.
    std::vector<sft::SftExample> out;
    for (const auto& g : groups) {
      for (size_t k = 0; k < g.samples.size(); ++k) {
        const auto& s = g.samples[k];
        sft::SftExample ex;
        ex.where = "step " + std::to_string(step) + " prompt " + g.id + " sample " + std::to_string(k);
        ex.ids = g.prompt_ids;
        ex.loss_mask.assign(g.prompt_ids.size(), 0);
        for (int64_t id : s.completion_ids) {
          ex.ids.push_back(id);
          ex.loss_mask.push_back(1);
        }
        out.push_back(std::move(ex));
      }
    }
    return out;
  };
}

}  // namespace r1kit::distill
