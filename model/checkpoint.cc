#include "model/checkpoint.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "core/check.h"
#include "core/fs.h"
#include "core/safetensors.h"

namespace r1kit {
namespace fs = std::filesystem;

torch::Dtype default_dtype(const torch::Device& device) {
  return device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
}

torch::Dtype parse_dtype(const std::string& name) {
  if (name == "float32" || name == "f32" || name == "fp32" || name == "float") return torch::kFloat32;
  if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
  if (name == "float16" || name == "f16" || name == "fp16" || name == "half") return torch::kHalf;
  R1_FAIL("unknown dtype '", name, "' (use float32, bfloat16 or float16)");
}

std::string dtype_name(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kFloat32: return "float32";
    case torch::kBFloat16: return "bfloat16";
    case torch::kHalf: return "float16";
    default: R1_FAIL("dtype ", dtype, " is not a model storage dtype (float32, bfloat16, float16)");
  }
}

namespace {

const char* kIndexFile = "model.safetensors.index.json";
const char* kSingleFile = "model.safetensors";

std::string safetensors_dtype(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kFloat32: return "F32";
    case torch::kBFloat16: return "BF16";
    case torch::kHalf: return "F16";
    default: R1_FAIL("dtype ", dtype, " cannot be saved (float32, bfloat16, float16)");
  }
}

// The weight files of a checkpoint directory, each tensor name mapped to its open file.
struct WeightFiles {
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::map<std::string, const SafetensorsFile*> where;  // tensor name -> file holding it
};

WeightFiles open_weights(const std::string& dir) {
  WeightFiles w;
  const std::string index_path = dir + "/" + kIndexFile;
  if (path_exists(index_path)) {
    json index = parse_json(read_file(index_path), index_path);
    R1_CHECK(index.is_object() && index.contains("weight_map") && index["weight_map"].is_object(), index_path,
             ": missing object 'weight_map'");
    std::map<std::string, const SafetensorsFile*> by_file;
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      R1_CHECK(it.value().is_string(), index_path, ": weight_map['", it.key(), "'] must be a file name");
      const std::string file = it.value().get<std::string>();
      R1_CHECK(file.find('/') == std::string::npos, index_path, ": weight_map['", it.key(), "']: '", file,
               "' is not a plain file name");
      if (!by_file.count(file)) {
        const std::string path = dir + "/" + file;
        R1_CHECK(path_exists(path), index_path, ": shard '", file, "' (holding '", it.key(), "') does not exist");
        w.files.push_back(std::make_unique<SafetensorsFile>(path));
        by_file[file] = w.files.back().get();
      }
      const SafetensorsFile* f = by_file[file];
      R1_CHECK(f->contains(it.key()), f->path(), ": missing tensor '", it.key(), "' (listed in ", index_path, ")");
      w.where[it.key()] = f;
    }
    return w;
  }
  const std::string single = dir + "/" + kSingleFile;
  R1_CHECK(path_exists(single), dir, ": no ", kSingleFile, " or ", kIndexFile, " found");
  w.files.push_back(std::make_unique<SafetensorsFile>(single));
  for (const auto& [name, info] : w.files.back()->tensors()) w.where[name] = w.files.back().get();
  return w;
}

torch::Dtype torch_dtype_of(const std::string& st_dtype, const std::string& file, const std::string& name) {
  if (st_dtype == "F32") return torch::kFloat32;
  if (st_dtype == "BF16") return torch::kBFloat16;
  if (st_dtype == "F16") return torch::kHalf;
  R1_FAIL(file, ": tensor '", name, "': unsupported dtype ", st_dtype, " (supported: F32, BF16, F16)");
}

// Tensors a checkpoint may hold that the model does not use (HF drops them on load too).
bool ignorable_tensor(const std::string& name, const ModelConfig& cfg) {
  if (name.size() >= 24 && name.compare(name.size() - 24, 24, "rotary_emb.inv_freq") == 0) return true;
  if (name.find("rotary_emb.inv_freq") != std::string::npos) return true;
  return cfg.tie_word_embeddings && name == "lm_head.weight";
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

std::string temp_dir_for(const std::string& dir) {
  static int counter = 0;
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

}  // namespace

ModelConfig load_model_config(const std::string& dir) {
  const std::string path = dir + "/config.json";
  R1_CHECK(path_exists(path), dir, ": no config.json (not a Hugging Face model directory)");
  ModelConfig cfg = ModelConfig::from_file(path);
  const std::string gen_path = dir + "/generation_config.json";
  if (path_exists(gen_path)) {
    json gen = parse_json(read_file(gen_path), gen_path);
    auto it = gen.find("eos_token_id");
    if (it != gen.end() && !it->is_null()) {
      std::vector<int64_t> ids;
      if (it->is_number_integer()) ids.push_back(it->get<int64_t>());
      else if (it->is_array())
        for (const auto& v : *it) {
          R1_CHECK(v.is_number_integer(), gen_path, ": eos_token_id must hold integers");
          ids.push_back(v.get<int64_t>());
        }
      else R1_FAIL(gen_path, ": eos_token_id must be an integer or a list of integers");
      for (int64_t id : ids)
        if (std::find(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end(), id) == cfg.eos_token_ids.end())
          cfg.eos_token_ids.push_back(id);
    }
  }
  return cfg;
}

std::vector<std::pair<std::string, torch::Tensor>> hf_state_dict(Transformer& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : model->named_parameters(/*recurse=*/true)) {
    const std::string& name = p.key();
    out.emplace_back(name.rfind("lm_head.", 0) == 0 ? name : "model." + name, p.value());
  }
  return out;
}

void load_hf_state_dict(Transformer& model, const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  std::map<std::string, torch::Tensor> params;
  for (auto& [name, t] : hf_state_dict(model)) params[name] = t;
  std::set<std::string> seen;
  torch::NoGradGuard no_grad;
  for (const auto& [name, src] : tensors) {
    auto it = params.find(name);
    if (it == params.end()) {
      if (ignorable_tensor(name, model->config())) continue;
      R1_FAIL("load_hf_state_dict: unexpected tensor '", name, "'");
    }
    R1_CHECK(seen.insert(name).second, "load_hf_state_dict: tensor '", name, "' given twice");
    R1_CHECK(src.sizes() == it->second.sizes(), "load_hf_state_dict: tensor '", name, "': shape ",
             src.sizes(), " does not match the model's ", it->second.sizes());
    it->second.copy_(src);
  }
  for (const auto& [name, t] : params)
    R1_CHECK(seen.count(name), "load_hf_state_dict: missing tensor '", name, "'");
}

torch::Tensor safetensor_tensor(const SafetensorsFile& file, const std::string& name) {
  const SafetensorInfo& info = file.info(name);
  const torch::Dtype src_dtype = torch_dtype_of(info.dtype, file.path(), name);
  const std::uint8_t* data = file.data(name);
  const size_t esize = safetensors_dtype_size(info.dtype);
  if (reinterpret_cast<std::uintptr_t>(data) % esize == 0)
    return torch::from_blob(const_cast<std::uint8_t*>(data), info.shape, torch::TensorOptions().dtype(src_dtype));
  torch::Tensor src = torch::empty(info.shape, torch::TensorOptions().dtype(src_dtype));  // unaligned: copy out
  std::memcpy(src.data_ptr(), data, info.end - info.begin);
  return src;
}

Transformer load_decoder(const std::string& dir, ModelConfig* cfg_out, torch::Device device, torch::Dtype dtype,
                         const DecoderLoadOptions& options, std::map<std::string, torch::Tensor>* extra) {
  ModelConfig cfg = load_model_config(dir);
  if (options.without_lm_head) cfg.tie_word_embeddings = true;  // no lm_head parameter to fill
  WeightFiles weights = open_weights(dir);
  Transformer model(cfg);
  model->to(device, dtype);
  auto params = hf_state_dict(model);
  std::set<std::string> expected;
  torch::NoGradGuard no_grad;
  for (auto& [name, param] : params) {
    expected.insert(name);
    auto it = weights.where.find(name);
    R1_CHECK(it != weights.where.end(), dir, ": missing tensor '", name, "'",
             weights.files.size() == 1 ? std::string(" in ") + weights.files[0]->path() : std::string(" (no shard holds it)"));
    const SafetensorsFile& file = *it->second;
    const SafetensorInfo& info = file.info(name);
    std::vector<int64_t> want(param.sizes().begin(), param.sizes().end());
    R1_CHECK(info.shape == want, file.path(), ": tensor '", name, "': shape ", shape_str(info.shape),
             " does not match the config's ", shape_str(want));
    param.copy_(safetensor_tensor(file, name));  // converts dtype, moves to the device
  }
  for (const std::string& name : options.extra_tensors) {
    auto it = weights.where.find(name);
    R1_CHECK(it != weights.where.end(), dir, ": missing tensor '", name, "'");
    R1_CHECK(extra != nullptr, "load_decoder: no map for the extra tensors");
    (*extra)[name] = safetensor_tensor(*it->second, name).to(device, dtype, /*non_blocking=*/false, /*copy=*/true);
    expected.insert(name);
  }
  for (const auto& [name, file] : weights.where)
    R1_CHECK(expected.count(name) || ignorable_tensor(name, cfg), file->path(), ": unexpected tensor '", name,
             "' (not part of a ", cfg.model_type, " model with this config.json)");
  if (cfg_out) *cfg_out = cfg;
  return model;
}

Transformer load_model(const std::string& dir, ModelConfig* cfg_out, torch::Device device, torch::Dtype dtype) {
  return load_decoder(dir, cfg_out, device, dtype, {}, nullptr);
}

Transformer load_model(const std::string& dir, ModelConfig* cfg_out, torch::Device device) {
  return load_model(dir, cfg_out, device, default_dtype(device));
}

void save_model(Transformer& model, const ModelConfig& cfg, const std::string& dir, const SaveOptions& opts) {
  auto params = hf_state_dict(model);
  const torch::Dtype store = opts.convert_dtype ? opts.dtype : model->dtype();
  const std::string st_dtype = safetensors_dtype(store);
  const int64_t esize = int64_t(torch::elementSize(store));

  // Plan shards in checkpoint order: a new shard when the next tensor would overflow this one.
  std::vector<std::vector<size_t>> shards(1);
  int64_t shard_bytes = 0, total_bytes = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const int64_t nbytes = params[i].second.numel() * esize;
    if (!shards.back().empty() && shard_bytes + nbytes > opts.max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(i);
    shard_bytes += nbytes;
    total_bytes += nbytes;
  }

  std::string parent = fs::path(dir).parent_path().string();
  if (!parent.empty()) make_dirs(parent);
  const std::string tmp = temp_dir_for(dir);
  std::error_code ec;
  fs::remove_all(tmp, ec);
  make_dirs(tmp);
  try {
    const size_t n = shards.size();
    json weight_map = json::object();
    torch::NoGradGuard no_grad;
    for (size_t s = 0; s < n; ++s) {
      char name[64];
      std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, n);
      const std::string file = n == 1 ? kSingleFile : name;
      std::vector<torch::Tensor> keep;  // CPU copies alive until written
      std::vector<SafetensorToWrite> out;
      for (size_t i : shards[s]) {
        auto t = params[i].second.detach().to(torch::kCPU, store).contiguous();
        keep.push_back(t);
        out.push_back({params[i].first, st_dtype, std::vector<int64_t>(t.sizes().begin(), t.sizes().end()),
                       t.data_ptr(), size_t(t.nbytes())});
        weight_map[params[i].first] = file;
      }
      write_safetensors(tmp + "/" + file, out);
    }
    if (n > 1) {
      json index = {{"metadata", {{"total_size", total_bytes}}}, {"weight_map", weight_map}};
      write_file_atomic(tmp + "/" + kIndexFile, index.dump(2) + "\n");
    }
    ModelConfig saved = cfg;
    saved.torch_dtype = dtype_name(store);
    write_file_atomic(tmp + "/config.json", saved.to_hf_json().dump(2) + "\n");

    bool have_generation_config = false;
    if (!opts.tokenizer_dir.empty()) {
      for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                            "merges.txt", "tokenizer.model", "added_tokens.json", "chat_template.jinja",
                            "generation_config.json"}) {
        const std::string src = opts.tokenizer_dir + "/" + f;
        if (!path_exists(src)) continue;
        write_file_atomic(tmp + "/" + f, read_file(src));
        if (std::string(f) == "generation_config.json") have_generation_config = true;
      }
    }
    if (!have_generation_config) {
      // transformers writes one for every generative model; vLLM reads eos ids from it.
      json gen = {{"_from_model_config", true}};
      if (cfg.bos_token_id >= 0) gen["bos_token_id"] = cfg.bos_token_id;
      if (cfg.eos_token_ids.size() == 1) gen["eos_token_id"] = cfg.eos_token_ids[0];
      else if (!cfg.eos_token_ids.empty()) gen["eos_token_id"] = cfg.eos_token_ids;
      write_file_atomic(tmp + "/generation_config.json", gen.dump(2) + "\n");
    }
    replace_directory(tmp, dir);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace r1kit
