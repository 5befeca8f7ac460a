// Hugging Face checkpoints: config.json + model.safetensors, or shards
// model-0000k-of-0000n.safetensors + model.safetensors.index.json. F32 / BF16 / F16 tensors are
// converted to the compute dtype on load. Saving writes the same layout atomically, so
// transformers, vLLM and llama.cpp's converter load what we write; save -> load is bit-identical.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/safetensors.h"
#include "model/model_config.h"
#include "model/transformer.h"

namespace r1kit {

// Default compute dtype for a device: bfloat16 on CUDA, float32 elsewhere.
torch::Dtype default_dtype(const torch::Device& device);
// "float32"/"f32"/"fp32", "bfloat16"/"bf16", "float16"/"f16"/"fp16"/"half"; Error otherwise.
torch::Dtype parse_dtype(const std::string& name);
// HF torch_dtype name: "float32", "bfloat16", "float16".
std::string dtype_name(torch::Dtype dtype);

// config.json from `dir` plus eos ids from generation_config.json when present.
ModelConfig load_model_config(const std::string& dir);

// Builds the model for dir's config.json and loads its weights (converted to `dtype`) on `device`.
// Errors name the file and tensor: missing tensor, shape mismatch, unexpected tensor, unsupported
// dtype, truncated file, invalid header JSON, missing shard.
Transformer load_model(const std::string& dir, ModelConfig* cfg_out, torch::Device device, torch::Dtype dtype);
// Same with default_dtype(device).
Transformer load_model(const std::string& dir, ModelConfig* cfg_out = nullptr,
                       torch::Device device = torch::kCPU);

// For models built on the decoder (a reward model: decoder + "score" head): which tensors of the
// checkpoint to hand back besides the decoder's, and whether it has no lm_head at all.
struct DecoderLoadOptions {
  std::vector<std::string> extra_tensors;  // e.g. {"score.weight"}: returned in `extra`, in `dtype`
  bool without_lm_head = false;            // the checkpoint has no lm_head.weight (none is built)
};
// load_model plus `options`; load_model(dir, ...) is load_decoder(dir, ..., {}, nullptr).
Transformer load_decoder(const std::string& dir, ModelConfig* cfg_out, torch::Device device, torch::Dtype dtype,
                         const DecoderLoadOptions& options, std::map<std::string, torch::Tensor>* extra);

// Tensor `name` of a safetensors file as a CPU tensor of its stored dtype (F32, BF16, F16). It
// aliases the file's mapping when the data is aligned: copy it before the file is closed.
torch::Tensor safetensor_tensor(const SafetensorsFile& file, const std::string& name);

struct SaveOptions {
  int64_t max_shard_bytes = int64_t{5} << 30;  // shard when the weights exceed this (HF default 5GB)
  std::string tokenizer_dir;                   // copy tokenizer/generation files from here ("" = none)
  torch::Dtype dtype = torch::kFloat32;        // storage dtype when convert_dtype (else the model's own)
  bool convert_dtype = false;                  // store as `dtype` instead of the parameters' dtype
};

// Writes config.json + weights (+ tokenizer files) to `dir` via a temp dir and rename.
// Tied models are written without lm_head.weight, as HF does.
void save_model(Transformer& model, const ModelConfig& cfg, const std::string& dir, const SaveOptions& opts = {});

// HF names -> parameter tensors (shared storage, not copies), in checkpoint order. Tied models
// have no lm_head.weight entry.
std::vector<std::pair<std::string, torch::Tensor>> hf_state_dict(Transformer& model);
// Copies HF-named tensors into the model's parameters (any dtype/device; converted). Every
// parameter must be given exactly once, with the right shape (Error naming the tensor otherwise).
void load_hf_state_dict(Transformer& model, const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

}  // namespace r1kit
