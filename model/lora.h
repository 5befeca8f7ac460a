// LoRA adapters on the decoder's linear layers (model/linear.h), saved and loaded in PEFT's format
// so that `PeftModel.from_pretrained(hf_model, dir)` loads what r1kit trains and r1kit loads what
// PEFT wrote:
//
//   DIR/adapter_config.json          {"peft_type": "LORA", "r", "lora_alpha", "lora_dropout",
//                                     "target_modules", "use_rslora", "rank_pattern", ...}
//   DIR/adapter_model.safetensors    base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight [r, in]
//                                    base_model.model.model.layers.N.self_attn.q_proj.lora_B.weight [out, r]
//
// PEFT semantics (peft/tuners/lora): module keys are the HF names without the weight suffix
// ("model.layers.0.self_attn.q_proj"); target_modules as a list matches a key equal to an entry or
// ending in "." + entry, as a string it is a regex that must match the whole key, "all-linear" is
// every decoder linear layer (not lm_head); scaling = alpha / r, or alpha / sqrt(r) with
// use_rslora; rank_pattern / alpha_pattern override r / alpha for keys matching "(.*\.)?(pattern)$";
// init "default" draws A like nn.Linear (kaiming-uniform, a = sqrt(5)) and zeros B, so a fresh
// adapter leaves the model unchanged.
//
//   LoraAdapter lora = attach_lora(model, options);   // base frozen; lora.parameters() to the optimizer
//   save_peft_adapter(lora, "run/adapter", base_dir);
//   LoraAdapter again = load_peft_adapter(other_model, "run/adapter");
//   merge_lora(model);                                 // W += scaling * B A, adapter removed
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"
#include "model/transformer.h"

namespace r1kit {

struct LoraOptions {
  int64_t r = 0;                         // rank; 0 = no LoRA
  double alpha = 16.0;                   // lora_alpha
  double dropout = 0.0;                  // lora_dropout (training only)
  std::vector<std::string> target_modules = {"q_proj", "k_proj", "v_proj", "o_proj"};  // or {"all-linear"}
  std::string target_regex;              // instead of target_modules: a regex matching whole module keys
  std::vector<std::string> exclude_modules;  // keys equal to or ending in "." + entry are skipped
  std::vector<int64_t> layers_to_transform;  // decoder layer indices to adapt (empty: all)
  std::map<std::string, int64_t> rank_pattern;   // key pattern -> r
  std::map<std::string, double> alpha_pattern;   // key pattern -> alpha
  bool use_rslora = false;               // scaling alpha / sqrt(r)
  std::string init = "default";          // "default" (kaiming-uniform A, zero B) | "gaussian" (A ~ N(0, 1/r))
  // Trainers: how the rollout engine sees the adapter. "merged": replicas get W + scaling*B*A
  // after every step (no adapter cost per token); "applied": replicas carry the adapter and
  // only its tensors are pushed (small transfers, base weights never copied again).
  std::string rollout = "merged";

  bool enabled() const { return r > 0; }
};

// Reads a `lora:` config node (keys r, alpha, dropout, target_modules (list, or a string: a regex
// or "all-linear"), exclude_modules, layers_to_transform, rank_pattern, alpha_pattern, use_rslora,
// init, rollout); bad values are Errors naming the file and key. Does not call finish().
LoraOptions read_lora_options(ConfigNode& node);

// A handle on the adapter attached to a model: the adapted layers, keyed by module key
// ("model.layers.0.self_attn.q_proj"), sharing their tensors with the model. Empty when default
// constructed or when the model has no adapter.
class LoraAdapter {
 public:
  LoraAdapter() = default;
  explicit operator bool() const { return !layers_.empty(); }
  const LoraOptions& options() const { return options_; }
  const std::vector<std::pair<std::string, LoraLayer>>& layers() const { return layers_; }
  // A and B of every layer (what the optimizer trains).
  std::vector<torch::Tensor> parameters() const;
  // PEFT tensor names -> tensors (shared storage): "base_model.model.<key>.lora_A.weight", ...
  std::vector<std::pair<std::string, torch::Tensor>> named_tensors() const;
  // Off: the model computes its base output (the frozen reference policy of GRPO).
  void set_enabled(bool on) const;
  int64_t num_parameters() const;

 private:
  friend LoraAdapter find_lora(Transformer& model);
  friend LoraAdapter attach_lora(Transformer& model, const LoraOptions& options, uint64_t seed);
  LoraOptions options_;
  std::vector<std::pair<std::string, LoraLayer>> layers_;
};

// Turns the adapter off for a scope (no-op on an empty adapter).
class LoraDisabled {
 public:
  explicit LoraDisabled(const LoraAdapter& adapter) : adapter_(adapter) { adapter_.set_enabled(false); }
  ~LoraDisabled() { adapter_.set_enabled(true); }
  LoraDisabled(const LoraDisabled&) = delete;
  LoraDisabled& operator=(const LoraDisabled&) = delete;

 private:
  const LoraAdapter& adapter_;
};

// Attaches a fresh adapter (A drawn from a generator seeded with `seed`, B = 0) to the layers
// `options` selects and freezes every base parameter. Errors: r < 1, a target that matches
// nothing, targets r1kit cannot adapt (lm_head, embeddings), a model that already has an adapter.
LoraAdapter attach_lora(Transformer& model, const LoraOptions& options, uint64_t seed = 0);
// The adapter attached to `model` (empty if none).
LoraAdapter find_lora(Transformer& model);
// Removes the adapter (the base weights are left as they are).
void detach_lora(Transformer& model);

// PEFT's adapter_config.json <-> LoraOptions. Unsupported settings (use_dora, bias != "none",
// fan_in_fan_out, modules_to_save, ...) are Errors naming the file and key.
LoraOptions read_peft_config(const std::string& path);
json peft_config_json(const LoraOptions& options, const std::string& base_model_name_or_path);

// Writes adapter_config.json + adapter_model.safetensors (float32) into `dir` (atomically, via a
// temp dir).
void save_peft_adapter(const LoraAdapter& adapter, const std::string& dir, const std::string& base_model_name_or_path);
// Attaches the adapter in `dir` to `model` (which must not have one) and loads its tensors. Errors
// name the file and tensor: missing or unexpected tensors, wrong shapes, no layer for a key.
LoraAdapter load_peft_adapter(Transformer& model, const std::string& dir);
// Loads DIR/adapter_model.safetensors into an attached adapter with the same layers and ranks
// (resuming a run).
void load_peft_weights(const LoraAdapter& adapter, const std::string& dir);
// Copies named adapter tensors (LoraAdapter::named_tensors names) into `dst`: every tensor once,
// same shapes; errors name `where` and the tensor.
void load_lora_tensors(const LoraAdapter& dst, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::string& where);

// Folds the adapter into the base weights (W += scaling * B @ A, in float32, then the weight's
// dtype) and removes it: PEFT's merge_and_unload.
void merge_lora(Transformer& model);
// The HF tensors of `model` with its adapter merged (new tensors for the adapted weights, shared
// storage for the rest); the model is not changed. Without an adapter: hf_state_dict(model).
std::vector<std::pair<std::string, torch::Tensor>> merged_state_dict(Transformer& model);

// For rollout replicas: attaches to `dst` an adapter with `src`'s layers, options and values.
void copy_lora(Transformer& src, Transformer& dst);
// Loads weights pushed to a replica: a full set of HF tensors (load_hf_state_dict), or only PEFT
// adapter tensors ("base_model.model.*.lora_[AB].weight") into its attached adapter.
void load_weights(Transformer& model, const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

}  // namespace r1kit
