#include "model/model_config.h"

#include "core/check.h"
#include "core/fs.h"

namespace r1kit {
namespace {

// Reads an integer key; `fallback` < 0 means required.
int64_t read_int(const json& j, const std::string& key, const std::string& where, int64_t fallback = -1) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    R1_CHECK(fallback >= 0, where, ": missing key '", key, "'");
    return fallback;
  }
  R1_CHECK(it->is_number_integer() || (it->is_number_float() && it->get<double>() == double(int64_t(it->get<double>()))),
           where, ": key '", key, "' must be an integer, got ", it->dump());
  return it->is_number_integer() ? it->get<int64_t>() : int64_t(it->get<double>());
}

double read_double(const json& j, const std::string& key, const std::string& where, double fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  R1_CHECK(it->is_number(), where, ": key '", key, "' must be a number, got ", it->dump());
  return it->get<double>();
}

bool read_bool(const json& j, const std::string& key, const std::string& where, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  R1_CHECK(it->is_boolean(), where, ": key '", key, "' must be true or false, got ", it->dump());
  return it->get<bool>();
}

std::vector<int64_t> read_id_list(const json& j, const std::string& key, const std::string& where) {
  std::vector<int64_t> ids;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return ids;
  if (it->is_number_integer()) return {it->get<int64_t>()};
  R1_CHECK(it->is_array(), where, ": key '", key, "' must be an integer or a list of integers");
  for (const auto& v : *it) {
    R1_CHECK(v.is_number_integer(), where, ": key '", key, "' must hold integers, got ", v.dump());
    ids.push_back(v.get<int64_t>());
  }
  return ids;
}

// rope_scaling (transformers 4.x) or rope_parameters (5.x, which also carries rope_theta).
void read_rope(const json& j, const std::string& where, ModelConfig& c) {
  c.rope_theta = read_double(j, "rope_theta", where, 10000.0);
  const json* rs = nullptr;
  std::string key;
  for (const char* k : {"rope_parameters", "rope_scaling"}) {
    auto it = j.find(k);
    if (it != j.end() && !it->is_null()) {
      rs = &*it;
      key = k;
      break;
    }
  }
  if (!rs) return;
  const std::string w = where + ": " + key;
  R1_CHECK(rs->is_object(), w, " must be an object or null");
  if (rs->contains("rope_theta")) c.rope_theta = read_double(*rs, "rope_theta", w, c.rope_theta);
  std::string type = "default";
  for (const char* k : {"rope_type", "type"}) {
    auto it = rs->find(k);
    if (it != rs->end() && !it->is_null()) {
      R1_CHECK(it->is_string(), w, ".", k, " must be a string");
      type = it->get<std::string>();
      break;
    }
  }
  RopeScaling& r = c.rope_scaling;
  r.type = type;
  if (type == "default") return;
  if (type == "linear") {
    r.factor = read_double(*rs, "factor", w, 0.0);
    R1_CHECK(r.factor > 0, w, ": linear scaling needs a positive 'factor'");
    return;
  }
  if (type == "llama3") {
    r.factor = read_double(*rs, "factor", w, 0.0);
    r.low_freq_factor = read_double(*rs, "low_freq_factor", w, -1);
    r.high_freq_factor = read_double(*rs, "high_freq_factor", w, -1);
    r.original_max_position_embeddings = read_int(*rs, "original_max_position_embeddings", w);
    R1_CHECK(r.factor > 0 && r.low_freq_factor > 0 && r.high_freq_factor > r.low_freq_factor &&
                 r.original_max_position_embeddings > 0,
             w, ": llama3 scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor and "
                "original_max_position_embeddings > 0");
    return;
  }
  R1_FAIL(w, ": unsupported rope type '", type, "' (supported: default, linear, llama3)");
}

}  // namespace

ModelConfig ModelConfig::from_hf_json(const json& j, const std::string& where) {
  R1_CHECK(j.is_object(), where, ": config must be a JSON object");
  ModelConfig c;
  c.source = j;
  auto mt = j.find("model_type");
  R1_CHECK(mt != j.end() && mt->is_string(), where, ": missing key 'model_type'");
  c.model_type = mt->get<std::string>();
  R1_CHECK(c.model_type == "qwen2" || c.model_type == "llama", where, ": unknown model_type '", c.model_type,
           "' (supported: qwen2, llama)");
  c.architecture = c.model_type == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM";
  if (auto a = j.find("architectures"); a != j.end() && a->is_array() && !a->empty() && (*a)[0].is_string())
    c.architecture = (*a)[0].get<std::string>();

  c.vocab_size = read_int(j, "vocab_size", where);
  c.hidden_size = read_int(j, "hidden_size", where);
  c.intermediate_size = read_int(j, "intermediate_size", where);
  c.num_hidden_layers = read_int(j, "num_hidden_layers", where);
  c.num_attention_heads = read_int(j, "num_attention_heads", where);
  c.num_key_value_heads = read_int(j, "num_key_value_heads", where, c.num_attention_heads);
  R1_CHECK(c.vocab_size > 0 && c.hidden_size > 0 && c.intermediate_size > 0 && c.num_hidden_layers > 0 &&
               c.num_attention_heads > 0 && c.num_key_value_heads > 0,
           where, ": vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads and "
                  "num_key_value_heads must be positive");
  R1_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, where, ": num_attention_heads (",
           c.num_attention_heads, ") must be a multiple of num_key_value_heads (", c.num_key_value_heads, ")");
  int64_t default_head_dim = c.hidden_size % c.num_attention_heads == 0 ? c.hidden_size / c.num_attention_heads : 0;
  c.head_dim = read_int(j, "head_dim", where, default_head_dim);
  R1_CHECK(c.head_dim > 0 && c.head_dim % 2 == 0, where, ": head_dim must be a positive even number (key 'head_dim' "
           "or hidden_size / num_attention_heads), got ", c.head_dim);
  c.max_position_embeddings = read_int(j, "max_position_embeddings", where, 4096);
  c.rms_norm_eps = read_double(j, "rms_norm_eps", where, 1e-6);
  c.tie_word_embeddings = read_bool(j, "tie_word_embeddings", where, false);
  // Qwen2's attention always has q/k/v biases; llama has them when attention_bias is true.
  c.attention_bias = c.model_type == "qwen2" ? true : read_bool(j, "attention_bias", where, false);
  R1_CHECK(!read_bool(j, "mlp_bias", where, false), where, ": key 'mlp_bias': MLP biases are not supported");
  if (auto act = j.find("hidden_act"); act != j.end() && act->is_string())
    R1_CHECK(act->get<std::string>() == "silu", where, ": key 'hidden_act': only 'silu' is supported, got '",
             act->get<std::string>(), "'");
  if (c.model_type == "qwen2" && read_bool(j, "use_sliding_window", where, false))
    R1_FAIL(where, ": key 'use_sliding_window': sliding-window attention is not supported");
  read_rope(j, where, c);
  c.eos_token_ids = read_id_list(j, "eos_token_id", where);
  auto bos = read_id_list(j, "bos_token_id", where);
  c.bos_token_id = bos.empty() ? -1 : bos[0];
  for (const char* k : {"torch_dtype", "dtype"})
    if (auto it = j.find(k); it != j.end() && it->is_string()) {
      c.torch_dtype = it->get<std::string>();
      break;
    }
  return c;
}

ModelConfig ModelConfig::from_file(const std::string& path) {
  return from_hf_json(parse_json(read_file(path), path), path);
}

json ModelConfig::to_hf_json() const {
  json j = source.is_object() ? source : json::object();
  j["architectures"] = json::array({architecture.empty()
                                        ? (model_type == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM")
                                        : architecture});
  j["model_type"] = model_type;
  j["hidden_act"] = "silu";
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["max_position_embeddings"] = max_position_embeddings;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["torch_dtype"] = torch_dtype;
  if (j.contains("dtype")) j["dtype"] = torch_dtype;
  if (model_type == "llama") {
    j["attention_bias"] = attention_bias;
    j["mlp_bias"] = false;
    j["head_dim"] = head_dim;
  } else if (head_dim != hidden_size / num_attention_heads || j.contains("head_dim")) {
    j["head_dim"] = head_dim;
  }
  if (rope_scaling.type == "default") {
    if (!j.contains("rope_parameters")) j["rope_scaling"] = nullptr;
  } else {
    json r = {{"rope_type", rope_scaling.type}, {"factor", rope_scaling.factor}};
    if (rope_scaling.type == "llama3") {
      r["low_freq_factor"] = rope_scaling.low_freq_factor;
      r["high_freq_factor"] = rope_scaling.high_freq_factor;
      r["original_max_position_embeddings"] = rope_scaling.original_max_position_embeddings;
    }
    if (j.contains("rope_parameters")) {
      r["rope_theta"] = rope_theta;
      j["rope_parameters"] = r;
    } else {
      j["rope_scaling"] = r;
    }
  }
  // eos ids may include generation_config.json's; config.json keeps its own value when it had one.
  if (!j.contains("eos_token_id")) {
    if (eos_token_ids.size() == 1)
      j["eos_token_id"] = eos_token_ids[0];
    else if (!eos_token_ids.empty())
      j["eos_token_id"] = eos_token_ids;
  }
  if (bos_token_id >= 0 && !j.contains("bos_token_id")) j["bos_token_id"] = bos_token_id;
  if (!j.contains("use_cache")) j["use_cache"] = true;
  return j;  // nlohmann::json objects are sorted by key, as save_pretrained(sort_keys=True) writes
}

int64_t ModelConfig::num_parameters() const {
  const int64_t C = hidden_size, D = head_dim;
  const int64_t q = num_attention_heads * D, kv = num_key_value_heads * D;
  int64_t attn = C * q + 2 * C * kv + q * C + (attention_bias ? q + 2 * kv : 0);
  int64_t mlp = 3 * C * intermediate_size;
  int64_t per_layer = attn + mlp + 2 * C;
  return vocab_size * C * (tie_word_embeddings ? 1 : 2) + num_hidden_layers * per_layer + C;
}

}  // namespace r1kit
