// The `sft` stage: supervised fine-tuning of the input model on the task's SFT records, or on a
// dataset (an earlier stage's data.jsonl, e.g. rejection sampling's, or a JSONL path) of chat
// (`messages`) or prompt/completion records.
//
//   - name: sft
//     kind: sft
//     steps: 300            # optimiser steps          batch_size: 64     micro_batch_size: 0 (= batch)
//     parallel_micro_batches: 0   # micro-batches at once, one thread each (CPU); 0 = one per `threads`
//     packing: false        # pack examples into rows (sft/sft_packing.h); micro_batch_size then counts rows
//     packing_length: 0     # tokens per packed row; 0 = the longest example of the step
//     share_prefix: true    # tokens every row of a micro-batch opens with (untargeted) run once
//     lr: 2.0e-3            # peak, after warmup_steps; cosine to min_lr
//     checkpoint_every: 100 # a re-run resumes from RUN_DIR/<name>/checkpoint
//     dataset: rs           # optional: an earlier stage's data.jsonl, or a path (default: the task's SFT records)
//     format: auto          # auto | prompt_completion | chat;  chat_template: "" (= the tokenizer's)
//     max_length: 0         # append_eos: true
//     lora: {r: 8, alpha: 16, dropout: 0.05, target_modules: all-linear}   # optional: LoRA on the
//                           # frozen model; writes RUN_DIR/<name>/adapter (PEFT) + the merged model
#include <torch/torch.h>

#include <filesystem>

#include "core/logging.h"
#include "model/checkpoint.h"
#include "model/data_parallel.h"
#include "model/lora.h"
#include "model/tokenizer.h"
#include "model/tokenizer_prompt.h"
#include "recipes/stages.h"
#include "sft/sft_data_file.h"

namespace r1kit::recipes {

void read_sft_train_options(ConfigNode& node, SftTrainOptions& t) {
  sft::SftOptions& o = t.sft;
  node.read("steps", o.steps);
  node.read("batch_size", o.batch_size);
  node.read("micro_batch_size", o.micro_batch_size);
  node.read("parallel_micro_batches", o.parallel_micro_batches);
  node.read("packing", o.packing);
  node.read("packing_length", o.packing_length);
  node.read("share_prefix", o.share_prefix);
  node.read("lr", o.lr);
  node.read("min_lr", o.min_lr);
  node.read("warmup_steps", o.warmup_steps);
  node.read("beta1", o.beta1);
  node.read("beta2", o.beta2);
  node.read("weight_decay", o.weight_decay);
  node.read("grad_clip", o.grad_clip);
  node.read("checkpoint_every", o.checkpoint_every);
  node.read("log_every", o.log_every);
  node.read("tensorboard", o.tensorboard);
  if (node.has("lora")) {
    ConfigNode lora = node.child("lora");
    o.lora = read_lora_options(lora);
    lora.finish();
  }
  sft::SftFormatOptions& f = t.format;
  node.read("max_length", f.max_length);
  node.read("append_eos", f.append_eos);
  node.read_enum("format", f.format, {"auto", "prompt_completion", "chat"});
  node.read("chat_template", f.chat_template);
  node.read("dataset", t.dataset);
  if (o.steps < 1) node.fail("steps", "must be >= 1");
  if (o.batch_size < 1) node.fail("batch_size", "must be >= 1");
  if (o.micro_batch_size < 0) node.fail("micro_batch_size", "must be >= 0");
  if (o.parallel_micro_batches < 0) node.fail("parallel_micro_batches", "must be >= 0 (0 = one per thread)");
  if (o.packing_length < 0) node.fail("packing_length", "must be >= 0 (0 = the longest example of the step)");
  if (o.packing_length > 0 && !o.packing) node.fail("packing_length", "is set but packing is off (packing: true)");
  if (!(o.lr > 0)) node.fail("lr", "must be positive");
  if (!(o.min_lr >= 0 && o.min_lr <= o.lr)) node.fail("min_lr", "must be in [0, lr]");
  if (o.warmup_steps < 0) node.fail("warmup_steps", "must be >= 0");
  if (!(o.beta1 >= 0 && o.beta1 < 1)) node.fail("beta1", "must be in [0, 1)");
  if (!(o.beta2 >= 0 && o.beta2 < 1)) node.fail("beta2", "must be in [0, 1)");
  if (o.weight_decay < 0) node.fail("weight_decay", "must be >= 0");
  if (o.grad_clip < 0) node.fail("grad_clip", "must be >= 0");
  if (o.checkpoint_every < 0) node.fail("checkpoint_every", "must be >= 0");
  if (f.max_length < 0) node.fail("max_length", "must be >= 0");
  if (!f.chat_template.empty()) {
    try {
      ChatTemplate::by_name(f.chat_template);
    } catch (const Error& e) {
      node.fail("chat_template", e.what());
    }
  }
}

StageResult run_sft_training(const StageEnv& env, const SftTrainOptions& t, const sft::SftLossFn& loss,
                             const SftSourceFactory& make_source) {
  apply_recipe_threads(*env.recipe);
  // 1. Model and tokenizer from the input directory.
  ModelConfig cfg;
  Transformer model = load_model(env.input_model, &cfg, recipe_device(*env.recipe), recipe_dtype(*env.recipe));
  model->set_compute_options(recipe_compute(*env.recipe));
  const Tokenizer tok = Tokenizer::from_file(env.input_model);
  R1_CHECK(!cfg.eos_token_ids.empty(), env.input_model, "/config.json: no eos_token_id (needed to end completions)");
  const int64_t eos = cfg.eos_token_ids.front();
  sft::SftFormatOptions format = t.format;
  format.tokenizer_dir = env.input_model;
  const PromptEncoder prompt(tok, env.input_model, env.recipe->data.prompt_format);  // as generation sees it
  const sft::SftEncoder encoder(tok, format, eos, &prompt);

  // 2. The data: a dataset file encoded once and served in seeded epochs, or the task's endless
  //    SFT stream (examples of step s are records s*B .. s*B+B-1). Either way a pure function of
  //    the step, so a resumed run sees the same data.
  const uint64_t seed = env.seed;
  sft::SftBatchSource source;
  json data_info = json::object();
  if (make_source) {
    source = make_source(model, tok);
  } else if (!t.dataset.empty()) {
    const std::string path = resolve_dataset_ref(env, "dataset", t.dataset);
    sft::SftDataset data;
    data.add_jsonl(path, encoder);
    spdlog::info("sft '{}': {} examples ({} target tokens) from {}", env.name, data.size(), data.num_target_tokens(), path);
    data_info = {{"dataset", path}, {"examples", data.size()}, {"target_tokens", data.num_target_tokens()}};
    source = data.source(seed);
  } else {
    const Task& task = *env.task;
    source = [&task, &encoder, seed](int64_t step, int64_t n) {
      std::vector<sft::SftExample> out;
      for (int64_t j = 0; j < n; ++j) {
        const json rec = task.sft_record(seed, step * n + j);
        out.push_back(encoder.encode(rec, rec.value("_source", "sft record")));
      }
      return out;
    };
  }

  // 3. Train (resuming from RUN_DIR/<name>/checkpoint when present), save, drop the checkpoint.
  //    Under a data-parallel launch every rank of a plain SFT stage trains its share of each batch
  //    and rank 0 writes; the distillation losses (KD, on-policy) run on rank 0 alone.
  torch::manual_seed(seed);
  const DataParallel dp = (!loss && !make_source) ? DataParallel::from_env(model->device()) : DataParallel();
  const sft::SftRunResult r = sft::run_sft(model, source, t.sft, env.stage_dir, eos, env.input_model, dp, loss);
  const std::string out = env.stage_dir + "/model";
  if (dp.is_main()) {
    if (t.sft.lora.enabled()) {  // the adapter in PEFT format, and the merged model for the next stage
      save_peft_adapter(find_lora(model), env.stage_dir + "/adapter", env.input_model);
      merge_lora(model);
    }
    SaveOptions save;
    save.tokenizer_dir = env.input_model;
    save_model(model, cfg, out, save);
    std::filesystem::remove_all(env.stage_dir + "/checkpoint");
  }
  StageResult result;
  result.model_dir = out;
  result.info = {{"steps", r.steps_done}, {"resumed_from", r.resumed_from}, {"last_loss", r.last_loss}};
  if (!data_info.empty()) result.info["data"] = data_info;
  return result;
}

namespace {

class SftStage : public Stage {
 public:
  explicit SftStage(SftTrainOptions t) : t_(std::move(t)) {}
  StageResult run(const StageEnv& env) override { return run_sft_training(env, t_, nullptr); }
  std::vector<std::pair<std::string, std::string>> references() const override { return {{"dataset", t_.dataset}}; }

 private:
  SftTrainOptions t_;
};

}  // namespace

std::unique_ptr<Stage> parse_sft_stage(ConfigNode& node, const RecipeSettings&) {
  SftTrainOptions t;
  read_sft_train_options(node, t);
  node.finish();
  return std::make_unique<SftStage>(std::move(t));
}

}  // namespace r1kit::recipes
