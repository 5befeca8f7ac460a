#include "model/lora.h"

#include <ATen/CPUGeneratorImpl.h>
#include <re2/re2.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "core/check.h"
#include "core/fs.h"
#include "core/safetensors.h"
#include "model/checkpoint.h"

namespace r1kit {

namespace {

namespace fs = std::filesystem;

const char* kConfigFile = "adapter_config.json";
const char* kWeightsFile = "adapter_model.safetensors";
const char* kPeftPrefix = "base_model.model.";
const std::vector<std::string> kAllLinear = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

// An adaptable layer of the decoder: its PEFT module key and the module.
struct Candidate {
  std::string key;    // "model.layers.0.self_attn.q_proj"
  int64_t layer = -1;  // decoder layer index
  std::shared_ptr<LinearImpl> linear;
};

std::vector<Candidate> candidates(Transformer& model) {
  std::vector<Candidate> out;
  for (const auto& item : model->named_modules("", /*include_self=*/false)) {
    auto linear = std::dynamic_pointer_cast<LinearImpl>(item.value());
    if (!linear) continue;
    Candidate c;
    c.key = "model." + item.key();
    c.linear = linear;
    if (item.key().rfind("layers.", 0) == 0) c.layer = std::stoll(item.key().substr(7, item.key().find('.', 7) - 7));
    out.push_back(std::move(c));
  }
  return out;
}

bool ends_with_component(const std::string& key, const std::string& name) {
  return key == name || (key.size() > name.size() && key.compare(key.size() - name.size(), name.size(), name) == 0 &&
                         key[key.size() - name.size() - 1] == '.');
}

// PEFT's get_pattern_key: the first pattern p with re.match(r"(.*\.)?(p)$", key).
template <class Map>
const typename Map::mapped_type* pattern_value(const Map& patterns, const std::string& key) {
  for (const auto& [pattern, value] : patterns) {
    RE2 re("(.*\\.)?(" + pattern + ")");
    R1_CHECK(re.ok(), "LoRA: invalid pattern '", pattern, "': ", re.error());
    if (RE2::FullMatch(key, re)) return &value;
  }
  return nullptr;
}

// PEFT's check_target_module_exists for one key.
bool is_target(const LoraOptions& o, const std::vector<std::string>& targets, const std::string& key, int64_t layer) {
  for (const auto& ex : o.exclude_modules)
    if (ends_with_component(key, ex)) return false;
  if (!o.target_regex.empty()) {
    RE2 re(o.target_regex);
    R1_CHECK(re.ok(), "LoRA: invalid target_modules regex '", o.target_regex, "': ", re.error());
    return RE2::FullMatch(key, re);
  }
  bool found = false;
  for (const auto& t : targets)
    if (key == t) return true;  // an exact key is taken as is (no layer filter), as in PEFT
  for (const auto& t : targets) found = found || ends_with_component(key, t);
  if (found && !o.layers_to_transform.empty())
    found = std::find(o.layers_to_transform.begin(), o.layers_to_transform.end(), layer) != o.layers_to_transform.end();
  return found;
}

std::vector<std::string> resolved_targets(const LoraOptions& o) {
  if (o.target_modules.size() == 1 && o.target_modules[0] == "all-linear") return kAllLinear;
  return o.target_modules;
}

void validate(const LoraOptions& o, const std::string& where) {
  R1_CHECK(o.r >= 1, where, ": LoRA rank r must be >= 1, got ", o.r);
  R1_CHECK(o.alpha > 0, where, ": lora_alpha must be > 0, got ", o.alpha);
  R1_CHECK(o.dropout >= 0 && o.dropout < 1, where, ": lora_dropout must be in [0, 1), got ", o.dropout);
  R1_CHECK(!o.target_modules.empty() || !o.target_regex.empty(), where, ": no target_modules");
  R1_CHECK(o.init == "default" || o.init == "gaussian", where, ": LoRA init must be default or gaussian, got '",
           o.init, "'");
  R1_CHECK(o.rollout == "merged" || o.rollout == "applied", where, ": LoRA rollout must be merged or applied, got '",
           o.rollout, "'");
  for (const auto& [k, r] : o.rank_pattern) R1_CHECK(r >= 1, where, ": rank_pattern['", k, "'] must be >= 1");
  for (const auto& [k, a] : o.alpha_pattern) R1_CHECK(a > 0, where, ": alpha_pattern['", k, "'] must be > 0");
}

// Attaches layers for `o` (validated); `initialise`: draw A (and zero B) as PEFT does, else zeros
// (the caller loads the values).
LoraAdapter attach(Transformer& model, const LoraOptions& o, bool initialise, uint64_t seed = 0);

}  // namespace

// ---------------------------------------------------------------------------------------------

std::vector<torch::Tensor> LoraAdapter::parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& [key, layer] : layers_) {
    out.push_back(layer->A);
    out.push_back(layer->B);
  }
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> LoraAdapter::named_tensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [key, layer] : layers_) {
    out.emplace_back(kPeftPrefix + key + ".lora_A.weight", layer->A);
    out.emplace_back(kPeftPrefix + key + ".lora_B.weight", layer->B);
  }
  return out;
}

void LoraAdapter::set_enabled(bool on) const {
  for (const auto& [key, layer] : layers_) layer.ptr()->enabled = on;
}

int64_t LoraAdapter::num_parameters() const {
  int64_t n = 0;
  for (const auto& t : parameters()) n += t.numel();
  return n;
}

LoraAdapter find_lora(Transformer& model) {
  LoraAdapter a;
  for (const Candidate& c : candidates(model)) {
    if (!c.linear->lora) continue;
    a.layers_.emplace_back(c.key, c.linear->lora);
    if (c.linear->lora->adapter_options) a.options_ = *c.linear->lora->adapter_options;
  }
  return a;
}

LoraAdapter attach_lora(Transformer& model, const LoraOptions& options, uint64_t seed) {
  validate(options, "attach_lora");
  return attach(model, options, /*initialise=*/true, seed);
}

namespace {

LoraAdapter attach(Transformer& model, const LoraOptions& options, bool initialise, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  R1_CHECK(!find_lora(model), "attach_lora: the model already has a LoRA adapter");
  LoraOptions o = options;
  const std::vector<std::string> targets = resolved_targets(o);
  if (o.target_regex.empty()) o.target_modules = targets;  // "all-linear" is saved expanded, as PEFT does
  // Targets r1kit cannot adapt: the embedding and the output layer.
  for (const char* key : {"lm_head", "model.embed_tokens"})
    R1_CHECK(!is_target(o, targets, key, -1), "LoRA: target_modules select '", key,
             "', which r1kit does not adapt (only the decoder layers' linear layers: ", json(kAllLinear).dump(), ")");
  auto shared = std::make_shared<const LoraOptions>(o);
  LoraAdapter adapter;
  std::vector<std::pair<std::string, LoraLayer>> layers;
  std::set<std::string> matched_targets;
  for (const Candidate& c : candidates(model)) {
    if (!is_target(o, targets, c.key, c.layer)) continue;
    for (const auto& t : targets)
      if (ends_with_component(c.key, t)) matched_targets.insert(t);
    const int64_t* r_p = pattern_value(o.rank_pattern, c.key);
    const double* a_p = pattern_value(o.alpha_pattern, c.key);
    const int64_t r = r_p ? *r_p : o.r;
    const double alpha = a_p ? *a_p : o.alpha;
    const double scaling = o.use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
    const auto& w = c.linear->weight;
    LoraLayer layer(w.size(1), w.size(0), r, scaling, o.dropout);
    if (initialise) {
      torch::NoGradGuard no_grad;
      // PEFT: kaiming_uniform_(A, a=sqrt(5)) (nn.Linear's default), i.e. U(-1/sqrt(in), 1/sqrt(in));
      // "gaussian": N(0, 1/r). B stays 0, so the fresh adapter changes nothing.
      if (o.init == "gaussian") {
        layer->A.normal_(0.0, 1.0 / static_cast<double>(r), gen);
      } else {
        const double bound = 1.0 / std::sqrt(static_cast<double>(w.size(1)));
        layer->A.uniform_(-bound, bound, gen);
      }
    }
    layer->to(w.device());  // stays float32
    layer->adapter_options = shared;
    layers.emplace_back(c.key, layer);
  }
  R1_CHECK(!layers.empty(), "LoRA: target_modules ", o.target_regex.empty() ? json(targets).dump() : o.target_regex,
           " match no linear layer of the model (keys look like 'model.layers.0.self_attn.q_proj')");
  for (auto& [key, layer] : layers) {
    for (const Candidate& c : candidates(model))
      if (c.key == key) c.linear->lora = layer;
  }
  for (auto& p : model->parameters()) p.set_requires_grad(false);  // the base is frozen
  return find_lora(model);
}

}  // namespace

void detach_lora(Transformer& model) {
  for (const Candidate& c : candidates(model)) c.linear->lora = nullptr;
}

// ---------------------------------------------------------------------------------------------
// Config: recipes (read_lora_options) and PEFT's adapter_config.json.

namespace {

void read_targets(const json& v, LoraOptions& o, const std::function<void(const std::string&)>& fail) {
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "all-linear") {
      o.target_modules = {"all-linear"};
      o.target_regex.clear();
    } else {
      o.target_regex = s;
      o.target_modules.clear();
    }
  } else if (v.is_array() && !v.empty()) {
    o.target_modules.clear();
    o.target_regex.clear();
    for (const auto& t : v) {
      if (!t.is_string()) fail("must be a list of module names, a regex or \"all-linear\"");
      o.target_modules.push_back(t.get<std::string>());
    }
    std::sort(o.target_modules.begin(), o.target_modules.end());
  } else {
    fail("must be a list of module names, a regex or \"all-linear\"");
  }
}

}  // namespace

LoraOptions read_lora_options(ConfigNode& node) {
  LoraOptions o;
  node.read("r", o.r);
  node.read("alpha", o.alpha);
  node.read("dropout", o.dropout);
  if (node.has("target_modules")) {
    json t;
    node.read("target_modules", t);
    read_targets(t, o, [&](const std::string& m) { node.fail("target_modules", m); });
  }
  node.read("exclude_modules", o.exclude_modules);
  node.read("layers_to_transform", o.layers_to_transform);
  node.read("rank_pattern", o.rank_pattern);
  node.read("alpha_pattern", o.alpha_pattern);
  node.read("use_rslora", o.use_rslora);
  node.read_enum("init", o.init, {"default", "gaussian"});
  node.read_enum("rollout", o.rollout, {"merged", "applied"});
  if (o.r < 0) node.fail("r", "must be >= 0 (0 = no LoRA)");
  if (o.enabled()) {
    try {
      validate(o, node.where());
    } catch (const Error& e) {
      node.fail("r", e.what());
    }
  }
  return o;
}

LoraOptions read_peft_config(const std::string& path) {
  const json c = parse_json(read_file(path), path);
  R1_CHECK(c.is_object(), path, ": not a JSON object");
  auto fail = [&](const std::string& key, const std::string& message) { R1_FAIL(path, ": key '", key, "': ", message); };
  auto is_default = [](const json& v) {
    return v.is_null() || (v.is_boolean() && !v.get<bool>()) || (v.is_object() && v.empty()) ||
           (v.is_array() && v.empty());
  };
  const std::string type = c.value("peft_type", "");
  if (type != "LORA") fail("peft_type", "'" + type + "' is not LORA (r1kit loads LoRA adapters only)");
  LoraOptions o;
  try {
    o.r = c.at("r").get<int64_t>();
    o.alpha = c.value("lora_alpha", 8.0);
    o.dropout = c.value("lora_dropout", 0.0);
    o.use_rslora = c.value("use_rslora", false);
  } catch (const json::exception& e) {
    R1_FAIL(path, ": r, lora_alpha, lora_dropout, use_rslora: ", e.what());
  }
  if (!c.contains("target_modules") || c["target_modules"].is_null())
    fail("target_modules", "missing (PEFT writes the resolved list when saving)");
  read_targets(c["target_modules"], o, [&](const std::string& m) { fail("target_modules", m); });
  if (c.contains("exclude_modules") && !c["exclude_modules"].is_null()) {
    if (!c["exclude_modules"].is_array()) fail("exclude_modules", "only a list of names is supported");
    o.exclude_modules = c["exclude_modules"].get<std::vector<std::string>>();
  }
  if (c.contains("layers_to_transform") && !c["layers_to_transform"].is_null()) {
    const json& l = c["layers_to_transform"];
    if (l.is_number_integer()) o.layers_to_transform = {l.get<int64_t>()};
    else o.layers_to_transform = l.get<std::vector<int64_t>>();
  }
  if (c.contains("layers_pattern") && !c["layers_pattern"].is_null()) {
    const json& p = c["layers_pattern"];
    const bool layers = (p.is_string() && (p == "layers" || p == "")) ||
                        (p.is_array() && (p.empty() || (p.size() == 1 && p[0] == "layers")));
    if (!layers) fail("layers_pattern", "only 'layers' (the decoder's) is supported");
  }
  if (c.contains("rank_pattern") && c["rank_pattern"].is_object())
    for (auto it = c["rank_pattern"].begin(); it != c["rank_pattern"].end(); ++it) o.rank_pattern[it.key()] = it->get<int64_t>();
  if (c.contains("alpha_pattern") && c["alpha_pattern"].is_object())
    for (auto it = c["alpha_pattern"].begin(); it != c["alpha_pattern"].end(); ++it)
      o.alpha_pattern[it.key()] = it->get<double>();
  if (c.value("bias", std::string("none")) != "none") fail("bias", "only \"none\" is supported");
  if (c.value("fan_in_fan_out", false)) fail("fan_in_fan_out", "true is for GPT-2 Conv1D layers, not Qwen2/Llama");
  // Settings that change what the adapter computes and that r1kit does not implement.
  for (const char* key : {"use_dora", "lora_bias", "modules_to_save", "trainable_token_indices", "layer_replication",
                          "target_parameters", "alora_invocation_tokens", "use_qalora", "use_bdlora", "megatron_config"})
    if (c.contains(key) && !is_default(c[key])) fail(key, "is set (" + c[key].dump() + "); r1kit does not support it");
  validate(o, path);
  return o;
}

json peft_config_json(const LoraOptions& o, const std::string& base) {
  json c = {{"peft_type", "LORA"},
            {"task_type", "CAUSAL_LM"},
            {"base_model_name_or_path", base},
            {"r", o.r},
            {"lora_alpha", o.alpha},
            {"lora_dropout", o.dropout},
            {"use_rslora", o.use_rslora},
            {"bias", "none"},
            {"fan_in_fan_out", false},
            {"init_lora_weights", o.init == "gaussian" ? json("gaussian") : json(true)},
            {"inference_mode", true},
            {"modules_to_save", nullptr},
            {"use_dora", false},
            {"rank_pattern", o.rank_pattern},
            {"alpha_pattern", o.alpha_pattern},
            {"layers_pattern", nullptr},
            {"revision", nullptr}};
  if (!o.target_regex.empty()) c["target_modules"] = o.target_regex;
  else c["target_modules"] = resolved_targets(o);
  c["exclude_modules"] = o.exclude_modules.empty() ? json(nullptr) : json(o.exclude_modules);
  c["layers_to_transform"] = o.layers_to_transform.empty() ? json(nullptr) : json(o.layers_to_transform);
  return c;
}

// ---------------------------------------------------------------------------------------------
// Saving and loading.

void save_peft_adapter(const LoraAdapter& adapter, const std::string& dir, const std::string& base) {
  R1_CHECK(adapter, "save_peft_adapter: no adapter");
  const std::string parent = fs::path(dir).parent_path().string();
  if (!parent.empty()) make_dirs(parent);
  const std::string tmp = dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  make_dirs(tmp);
  std::vector<torch::Tensor> keep;
  std::vector<SafetensorToWrite> out;
  torch::NoGradGuard no_grad;
  for (const auto& [name, t] : adapter.named_tensors()) {
    keep.push_back(t.detach().to(torch::kCPU, torch::kFloat32).contiguous());
    out.push_back({name, "F32", std::vector<int64_t>(keep.back().sizes().begin(), keep.back().sizes().end()),
                   keep.back().data_ptr(), static_cast<size_t>(keep.back().nbytes())});
  }
  write_safetensors(tmp + "/" + kWeightsFile, out);
  write_file_atomic(tmp + "/" + kConfigFile, peft_config_json(adapter.options(), base).dump(2) + "\n");
  replace_directory(tmp, dir);
}

void load_lora_tensors(const LoraAdapter& dst, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::string& where) {
  std::map<std::string, torch::Tensor> want;
  for (auto& [name, t] : dst.named_tensors()) want[name] = t;
  std::set<std::string> seen;
  torch::NoGradGuard no_grad;
  for (const auto& [name, src] : tensors) {
    auto it = want.find(name);
    R1_CHECK(it != want.end(), where, ": unexpected tensor '", name, "' (no adapted layer of this model has it)");
    R1_CHECK(seen.insert(name).second, where, ": tensor '", name, "' given twice");
    R1_CHECK(src.sizes() == it->second.sizes(), where, ": tensor '", name, "': shape ", src.sizes(),
             " does not match the adapter's ", it->second.sizes(), " (rank or model mismatch)");
    it->second.copy_(src);
  }
  for (const auto& [name, t] : want) R1_CHECK(seen.count(name), where, ": missing tensor '", name, "'");
}

LoraAdapter load_peft_adapter(Transformer& model, const std::string& dir) {
  const std::string config_path = dir + "/" + kConfigFile, weights_path = dir + "/" + kWeightsFile;
  R1_CHECK(path_exists(config_path), dir, ": no ", kConfigFile, " (not a PEFT adapter directory)");
  R1_CHECK(path_exists(weights_path), dir, ": no ", kWeightsFile,
           path_exists(dir + "/adapter_model.bin") ? " (adapter_model.bin, PyTorch pickle, is not read: save with "
                                                     "safe_serialization=True)"
                                                   : "");
  const LoraOptions o = read_peft_config(config_path);
  LoraAdapter adapter = attach(model, o, /*initialise=*/false);
  try {
    load_peft_weights(adapter, dir);
  } catch (...) {
    detach_lora(model);
    throw;
  }
  return adapter;
}

void load_peft_weights(const LoraAdapter& adapter, const std::string& dir) {
  const std::string weights_path = dir + "/" + kWeightsFile;
  R1_CHECK(path_exists(weights_path), dir, ": no ", kWeightsFile);
  SafetensorsFile file(weights_path);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& [name, info] : file.tensors()) {
    // Some PEFT versions keep the adapter name in the key ("...lora_A.default.weight").
    std::string key = name;
    const std::string with_name = ".default.weight";
    if (key.size() > with_name.size() && key.compare(key.size() - with_name.size(), with_name.size(), with_name) == 0)
      key = key.substr(0, key.size() - with_name.size()) + ".weight";
    tensors.emplace_back(key, safetensor_tensor(file, name));
  }
  load_lora_tensors(adapter, tensors, weights_path);
}

// ---------------------------------------------------------------------------------------------
// Merging, replicas.

void merge_lora(Transformer& model) {
  torch::NoGradGuard no_grad;
  for (const Candidate& c : candidates(model)) {
    if (!c.linear->lora) continue;
    auto& w = c.linear->weight;
    w.copy_((w.to(torch::kFloat32) + c.linear->lora->delta_weight().to(w.device())).to(w.scalar_type()));
    c.linear->lora = nullptr;
  }
}

std::vector<std::pair<std::string, torch::Tensor>> merged_state_dict(Transformer& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out = hf_state_dict(model);
  std::map<std::string, LoraLayer> by_weight;
  for (const Candidate& c : candidates(model))
    if (c.linear->lora) by_weight.emplace(c.key + ".weight", c.linear->lora);
  if (by_weight.empty()) return out;
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : out) {
    auto it = by_weight.find(name);
    if (it == by_weight.end()) continue;
    t = (t.to(torch::kFloat32) + it->second->delta_weight().to(t.device())).to(t.scalar_type());
  }
  return out;
}

void copy_lora(Transformer& src, Transformer& dst) {
  const LoraAdapter from = find_lora(src);
  if (!from) return;
  LoraAdapter to = attach(dst, from.options(), /*initialise=*/false);
  load_lora_tensors(to, from.named_tensors(), "copy_lora");
}

void load_weights(Transformer& model, const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  const bool adapter_only = !tensors.empty() && std::all_of(tensors.begin(), tensors.end(), [](const auto& t) {
    return t.first.rfind(kPeftPrefix, 0) == 0;
  });
  if (!adapter_only) return load_hf_state_dict(model, tensors);
  const LoraAdapter adapter = find_lora(model);
  R1_CHECK(adapter, "load_weights: adapter tensors for a model without a LoRA adapter");
  load_lora_tensors(adapter, tensors, "load_weights");
}

}  // namespace r1kit
