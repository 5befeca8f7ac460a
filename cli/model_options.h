// Options shared by the commands that load a model (logits, generate): --model, --device, --dtype,
// --adapter (a PEFT LoRA adapter), and comma-separated token id lists.
#pragma once
#include <CLI/CLI.hpp>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/check.h"
#include "model/checkpoint.h"
#include "model/lora.h"
#include "model/threads.h"

namespace r1kit::cli {

struct ModelArgs {
  std::string model;           // HF model directory
  std::string device = "cpu";  // "cpu", "cuda", "cuda:1"
  std::string dtype;           // "" = bf16 on CUDA, f32 on CPU
  std::string adapter;         // PEFT LoRA adapter directory applied on top ("" = none)
};

inline void add_model_options(CLI::App& sub, ModelArgs& a) {
  sub.add_option("--model", a.model, "model directory (config.json + *.safetensors)")->required();
  sub.add_option("--device", a.device, "cpu | cuda | cuda:N");
  sub.add_option("--dtype", a.dtype, "float32 | bfloat16 | float16 (default: bfloat16 on CUDA, float32 on CPU)");
  sub.add_option("--adapter", a.adapter, "a LoRA adapter in PEFT format (adapter_config.json + adapter_model.safetensors) to apply");
}

inline torch::Device parse_device(const std::string& name) {
  try {
    return torch::Device(name);
  } catch (const std::exception&) {
    R1_FAIL("--device: invalid device '", name, "' (use cpu, cuda or cuda:N)");
  }
}

// Loads the model named by `a` (threads set to the core count first).
inline Transformer load_model_from_args(const ModelArgs& a, ModelConfig* cfg) {
  set_default_threads();
  const torch::Device device = parse_device(a.device);
  const torch::Dtype dtype = a.dtype.empty() ? default_dtype(device) : parse_dtype(a.dtype);
  Transformer model = load_model(a.model, cfg, device, dtype);
  if (!a.adapter.empty()) load_peft_adapter(model, a.adapter);
  return model;
}

// "1,2, 3" -> {1, 2, 3}; every id must lie in [0, vocab_size).
inline std::vector<int64_t> parse_id_list(const std::string& text, const std::string& option, int64_t vocab_size) {
  std::vector<int64_t> ids;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    R1_CHECK(!item.empty(), option, ": empty token id in '", text, "'");
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    R1_CHECK(used == item.size(), option, ": '", item, "' is not an integer token id");
    R1_CHECK(v >= 0 && v < vocab_size, option, ": token id ", v, " outside the vocabulary [0, ", vocab_size, ")");
    ids.push_back(v);
    start = end + 1;
  }
  return ids;
}

}  // namespace r1kit::cli
