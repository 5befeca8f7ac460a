// Checkpoints: HF-layout save -> load is bit-identical (f32, bf16, tied, untied, sharded), the
// written config.json / index / file names are what transformers expects, ModelConfig parsing of
// HF variants (rope_parameters, head_dim, eos lists), and each bad input's error message.
#include "model/checkpoint.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "core/fs.h"
#include "core/safetensors.h"
#include "model/transformer.h"
#include "tests/model/model_test_util.h"

using namespace r1kit;
using namespace r1kit::test;
namespace fs = std::filesystem;

namespace {

Transformer random_model(const ModelConfig& cfg, uint64_t seed = 0) {
  torch::manual_seed(seed);
  Transformer m(cfg);
  torch::NoGradGuard g;
  for (auto& p : m->parameters()) p.normal_(0.0, 0.5);
  return m;
}

torch::Tensor logits_of(Transformer& m) {
  torch::NoGradGuard g;
  auto ids = torch::tensor({1, 5, 9, 2, 7, 3}, torch::kLong).view({1, 6});
  return m->forward(ids, torch::arange(6, torch::kLong).view({1, 6}));
}

void expect_same_parameters(Transformer& a, Transformer& b) {
  auto pa = hf_state_dict(a), pb = hf_state_dict(b);
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i].first, pb[i].first);
    EXPECT_EQ(pa[i].second.scalar_type(), pb[i].second.scalar_type()) << pa[i].first;
    EXPECT_TRUE(torch::equal(pa[i].second, pb[i].second)) << pa[i].first;
  }
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

struct SaveCase {
  std::string model_type;
  bool tied;
  torch::Dtype dtype;
};

class SaveLoad : public testing::TestWithParam<SaveCase> {};

TEST_P(SaveLoad, BitIdenticalRoundTrip) {
  const SaveCase& p = GetParam();
  ModelConfig cfg = tiny_config(p.model_type, p.tied);
  Transformer m = random_model(cfg);
  m->to(p.dtype);
  const std::string dir = fresh_dir("save_" + p.model_type + std::to_string(p.tied) + std::to_string(int(p.dtype)));
  save_model(m, cfg, dir + "/ckpt");
  EXPECT_EQ(files_in(dir), std::vector<std::string>{"ckpt"});  // no temp dir left behind
  EXPECT_EQ(files_in(dir + "/ckpt"),
            (std::vector<std::string>{"config.json", "generation_config.json", "model.safetensors"}));

  SafetensorsFile st(dir + "/ckpt/model.safetensors");
  EXPECT_EQ(st.contains("lm_head.weight"), !p.tied);  // HF drops the tied lm_head
  EXPECT_EQ(st.metadata().at("format"), "pt");
  EXPECT_EQ(st.info("model.embed_tokens.weight").dtype, p.dtype == torch::kBFloat16 ? "BF16" : "F32");
  EXPECT_EQ(st.contains("model.layers.1.self_attn.q_proj.bias"), p.model_type == "qwen2");

  json written = parse_json(read_file(dir + "/ckpt/config.json"), "config.json");
  EXPECT_EQ(written["model_type"], p.model_type);
  EXPECT_EQ(written["architectures"][0], p.model_type == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM");
  EXPECT_EQ(written["torch_dtype"], dtype_name(p.dtype));
  EXPECT_EQ(written["tie_word_embeddings"], p.tied);
  EXPECT_EQ(written["hidden_act"], "silu");
  json gen = parse_json(read_file(dir + "/ckpt/generation_config.json"), "generation_config.json");
  EXPECT_EQ(gen["eos_token_id"], 3);

  ModelConfig loaded_cfg;
  Transformer loaded = load_model(dir + "/ckpt", &loaded_cfg, torch::kCPU, p.dtype);
  expect_same_parameters(m, loaded);
  EXPECT_TRUE(torch::equal(logits_of(m), logits_of(loaded)));
  EXPECT_EQ(loaded_cfg.to_hf_json(), written);  // config round-trips too

  // Saving again over the same directory replaces it.
  save_model(loaded, loaded_cfg, dir + "/ckpt");
  Transformer again = load_model(dir + "/ckpt", nullptr, torch::kCPU, p.dtype);
  expect_same_parameters(m, again);
}

INSTANTIATE_TEST_SUITE_P(Cases, SaveLoad,
                         testing::Values(SaveCase{"qwen2", true, torch::kFloat32},
                                         SaveCase{"llama", false, torch::kFloat32},
                                         SaveCase{"qwen2", false, torch::kBFloat16},
                                         SaveCase{"llama", true, torch::kBFloat16}),
                         [](const testing::TestParamInfo<SaveCase>& i) {
                           return i.param.model_type + (i.param.tied ? "_tied_" : "_untied_") +
                                  (i.param.dtype == torch::kBFloat16 ? "bf16" : "f32");
                         });

TEST(Checkpoint, ShardedCheckpointLoadsToIdenticalLogits) {
  ModelConfig cfg = tiny_config("llama", false);
  Transformer m = random_model(cfg, 1);
  const std::string dir = fresh_dir("sharded") + "/ckpt";
  SaveOptions opts;
  opts.max_shard_bytes = 20000;  // the 97x32 f32 embedding alone is 12 KB
  save_model(m, cfg, dir, opts);
  const std::string index_path = dir + "/model.safetensors.index.json";
  ASSERT_TRUE(path_exists(index_path));
  EXPECT_FALSE(path_exists(dir + "/model.safetensors"));
  json index = parse_json(read_file(index_path), index_path);
  std::set<std::string> shard_names;
  int64_t total = 0;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) shard_names.insert(it.value());
  for (const auto& [name, t] : hf_state_dict(m)) {
    total += t.nbytes();
    EXPECT_TRUE(index["weight_map"].contains(name)) << name;
  }
  EXPECT_EQ(index["metadata"]["total_size"].get<int64_t>(), total);
  ASSERT_GT(shard_names.size(), 2u);
  const std::string n = std::to_string(shard_names.size());
  EXPECT_EQ(*shard_names.begin(), "model-00001-of-0000" + n + ".safetensors");
  for (const auto& s : shard_names) {
    SafetensorsFile f(dir + "/" + s);
    EXPECT_LE(int64_t(fs::file_size(dir + "/" + s)), opts.max_shard_bytes + 4096) << s;
  }
  Transformer loaded = load_model(dir, nullptr, torch::kCPU, torch::kFloat32);
  expect_same_parameters(m, loaded);
  EXPECT_TRUE(torch::equal(logits_of(m), logits_of(loaded)));
}

TEST(Checkpoint, FixtureSavesShardedAndReloadsIdentically) {
  const std::string src = shared_path("fixtures/tiny-qwen2");
  R1_REQUIRE_FILE(src + "/model.safetensors");
  ModelConfig cfg;
  Transformer m = load_model(src, &cfg, torch::kCPU, torch::kFloat32);
  const std::string dir = fresh_dir("fixture_resave") + "/out";
  SaveOptions opts;
  opts.max_shard_bytes = 100000;
  opts.tokenizer_dir = fresh_dir("fake_tokenizer");
  write_file_atomic(opts.tokenizer_dir + "/tokenizer.json", "{}");
  write_file_atomic(opts.tokenizer_dir + "/generation_config.json", "{\"eos_token_id\": [5, 6]}\n");
  save_model(m, cfg, dir, opts);
  EXPECT_TRUE(path_exists(dir + "/tokenizer.json"));
  ModelConfig cfg2;
  Transformer again = load_model(dir, &cfg2, torch::kCPU, torch::kFloat32);
  expect_same_parameters(m, again);
  EXPECT_TRUE(torch::equal(logits_of(m), logits_of(again)));
  EXPECT_EQ(cfg2.eos_token_ids, (std::vector<int64_t>{5, 6}));  // from generation_config.json
  // The original config keys survive (transformers reads e.g. max_window_layers, sliding_window).
  json written = parse_json(read_file(dir + "/config.json"), "config.json");
  EXPECT_EQ(written["max_window_layers"], 28);
  EXPECT_TRUE(written.contains("sliding_window"));
  EXPECT_FALSE(written.contains("eos_token_id"));  // the fixture has none; not invented
}

TEST(Checkpoint, ConvertDtypeOnSave) {
  ModelConfig cfg = tiny_config("qwen2", true);
  Transformer m = random_model(cfg, 2);
  const std::string dir = fresh_dir("convert") + "/ckpt";
  SaveOptions opts;
  opts.convert_dtype = true;
  opts.dtype = torch::kBFloat16;
  save_model(m, cfg, dir, opts);
  EXPECT_EQ(SafetensorsFile(dir + "/model.safetensors").info("model.norm.weight").dtype, "BF16");
  EXPECT_EQ(load_model_config(dir).torch_dtype, "bfloat16");
  Transformer loaded = load_model(dir, nullptr, torch::kCPU, torch::kFloat32);
  auto want = m->norm->weight.to(torch::kBFloat16).to(torch::kFloat32);
  EXPECT_TRUE(torch::equal(loaded->norm->weight, want));
}

TEST(Checkpoint, LoadHfStateDictCopiesAndChecks) {
  ModelConfig cfg = tiny_config("qwen2", false);
  Transformer a = random_model(cfg, 3), b = random_model(cfg, 4);
  auto sd = hf_state_dict(a);
  load_hf_state_dict(b, sd);
  EXPECT_TRUE(torch::equal(logits_of(a), logits_of(b)));
  auto missing = sd;
  missing.pop_back();
  EXPECT_NE(error_of([&] { load_hf_state_dict(b, missing); }).find("missing tensor 'lm_head.weight'"),
            std::string::npos);
  auto extra = sd;
  extra.emplace_back("model.layers.0.mlp.gate_proj.bias", torch::zeros({48}));
  EXPECT_NE(error_of([&] { load_hf_state_dict(b, extra); }).find("unexpected tensor 'model.layers.0.mlp.gate_proj.bias'"),
            std::string::npos);
  auto wrong = sd;
  wrong[0].second = torch::zeros({3, 3});
  EXPECT_NE(error_of([&] { load_hf_state_dict(b, wrong); }).find("'model.embed_tokens.weight': shape"),
            std::string::npos);
}

// ----------------------------------------------------------------------------------------------
// Bad inputs: each error names the file and the tensor or key.

class BadCheckpoint : public testing::Test {
 protected:
  void SetUp() override {
    cfg_ = tiny_config("llama", false);
    model_ = random_model(cfg_, 5);
    dir_ = fresh_dir(testing::UnitTest::GetInstance()->current_test_info()->name()) + "/ckpt";
    save_model(model_, cfg_, dir_);
    weights_ = dir_ + "/model.safetensors";
  }
  std::string load_error() {
    return error_of([&] { load_model(dir_, nullptr, torch::kCPU, torch::kFloat32); });
  }
  // Rewrites model.safetensors with `edit` applied to the list of tensors.
  void rewrite(const std::function<void(std::vector<SafetensorToWrite>&)>& edit) {
    std::vector<torch::Tensor> keep;
    std::vector<SafetensorToWrite> out;
    for (auto& [name, t] : hf_state_dict(model_)) {
      auto c = t.detach().contiguous();
      keep.push_back(c);
      out.push_back({name, "F32", std::vector<int64_t>(c.sizes().begin(), c.sizes().end()), c.data_ptr(),
                     size_t(c.nbytes())});
    }
    edit(out);
    write_safetensors(weights_, out);
  }
  ModelConfig cfg_;
  Transformer model_{nullptr};
  std::string dir_, weights_;
};

TEST_F(BadCheckpoint, MissingTensor) {
  rewrite([](auto& t) { t.erase(t.begin() + 3); });  // model.layers.0.self_attn.v_proj.weight
  const std::string e = load_error();
  EXPECT_NE(e.find("missing tensor 'model.layers.0.self_attn.v_proj.weight'"), std::string::npos) << e;
  EXPECT_NE(e.find(weights_), std::string::npos) << e;
}

TEST_F(BadCheckpoint, ShapeMismatch) {
  json j = parse_json(read_file(dir_ + "/config.json"), "config.json");
  j["intermediate_size"] = 50;
  write_file_atomic(dir_ + "/config.json", j.dump(2));
  const std::string e = load_error();
  EXPECT_NE(e.find(weights_ + ": tensor 'model.layers.0.mlp.gate_proj.weight': shape [48, 32] does not match "
                   "the config's [50, 32]"),
            std::string::npos)
      << e;
}

TEST_F(BadCheckpoint, UnknownModelType) {
  json j = parse_json(read_file(dir_ + "/config.json"), "config.json");
  j["model_type"] = "gpt2";
  write_file_atomic(dir_ + "/config.json", j.dump(2));
  const std::string e = load_error();
  EXPECT_NE(e.find(dir_ + "/config.json: unknown model_type 'gpt2'"), std::string::npos) << e;
}

TEST_F(BadCheckpoint, TruncatedFile) {
  std::string bytes = read_file(weights_);
  write_file_atomic(weights_, bytes.substr(0, bytes.size() - 100));
  const std::string e = load_error();
  EXPECT_NE(e.find(weights_ + ": truncated file"), std::string::npos) << e;
}

TEST_F(BadCheckpoint, InvalidHeaderJson) {
  std::string header = "{\"a\": [1, 2";
  std::string bytes(8, '\0');
  bytes[0] = char(header.size());
  write_file_atomic(weights_, bytes + header);
  const std::string e = load_error();
  EXPECT_NE(e.find(weights_ + ": invalid header JSON"), std::string::npos) << e;
}

TEST_F(BadCheckpoint, UnsupportedDtype) {
  std::vector<int32_t> ints(32, 1);
  rewrite([&](auto& t) {
    for (auto& w : t)
      if (w.name == "model.norm.weight") {
        w.dtype = "I32";
        w.data = ints.data();
      }
  });
  const std::string e = load_error();
  EXPECT_NE(e.find(weights_ + ": tensor 'model.norm.weight': unsupported dtype I32"), std::string::npos) << e;
}

TEST_F(BadCheckpoint, UnexpectedTensor) {
  std::vector<float> bias(48, 0.f);
  rewrite([&](auto& t) {
    t.push_back({"model.layers.0.mlp.gate_proj.bias", "F32", {48}, bias.data(), bias.size() * 4});
  });
  const std::string e = load_error();
  EXPECT_NE(e.find(weights_ + ": unexpected tensor 'model.layers.0.mlp.gate_proj.bias'"), std::string::npos) << e;
}

TEST_F(BadCheckpoint, MissingShardAndMissingFiles) {
  json index = {{"metadata", {{"total_size", 1}}},
                {"weight_map", {{"model.norm.weight", "model-00002-of-00002.safetensors"}}}};
  write_file_atomic(dir_ + "/model.safetensors.index.json", index.dump());
  std::string e = load_error();
  EXPECT_NE(e.find("model.safetensors.index.json: shard 'model-00002-of-00002.safetensors' (holding "
                   "'model.norm.weight') does not exist"),
            std::string::npos)
      << e;
  fs::remove(dir_ + "/model.safetensors.index.json");
  fs::remove(weights_);
  e = load_error();
  EXPECT_NE(e.find(dir_ + ": no model.safetensors or model.safetensors.index.json"), std::string::npos) << e;
  fs::remove(dir_ + "/config.json");
  e = load_error();
  EXPECT_NE(e.find(dir_ + ": no config.json"), std::string::npos) << e;
}

// ----------------------------------------------------------------------------------------------

TEST(ModelConfig, ParsesHfVariants) {
  json j = {{"model_type", "llama"}, {"vocab_size", 10}, {"hidden_size", 64}, {"intermediate_size", 8},
            {"num_hidden_layers", 1}, {"num_attention_heads", 4}, {"head_dim", 32},
            {"eos_token_id", {128001, 128009}}, {"attention_bias", true},
            {"rope_parameters", {{"type", "llama3"}, {"rope_theta", 500000.0}, {"factor", 32.0},
                                 {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                                 {"original_max_position_embeddings", 8192}}}};
  ModelConfig c = ModelConfig::from_hf_json(j, "cfg.json");
  EXPECT_EQ(c.num_key_value_heads, 4);  // absent: multi-head attention
  EXPECT_EQ(c.head_dim, 32);            // explicit head_dim wins over hidden/heads
  EXPECT_EQ(c.rope_theta, 500000.0);    // from rope_parameters (transformers 5)
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  EXPECT_EQ(c.rope_scaling.factor, 32.0);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128009}));
  EXPECT_TRUE(c.attention_bias);
  EXPECT_EQ(ModelConfig::from_hf_json(c.to_hf_json(), "again").rope_scaling.original_max_position_embeddings, 8192);

  json q = {{"model_type", "qwen2"}, {"vocab_size", 10}, {"hidden_size", 8}, {"intermediate_size", 8},
            {"num_hidden_layers", 1}, {"num_attention_heads", 2}, {"num_key_value_heads", 1},
            {"rope_scaling", nullptr}};
  ModelConfig qc = ModelConfig::from_hf_json(q, "q.json");
  EXPECT_TRUE(qc.attention_bias);  // qwen2 always has q/k/v biases
  EXPECT_EQ(qc.head_dim, 4);
  EXPECT_EQ(qc.rope_scaling.type, "default");
}

TEST(ModelConfig, ErrorsNameFileAndKey) {
  json base = {{"model_type", "llama"}, {"vocab_size", 10}, {"hidden_size", 8}, {"intermediate_size", 8},
               {"num_hidden_layers", 1}, {"num_attention_heads", 2}};
  auto err = [&](const std::function<void(json&)>& edit) {
    json j = base;
    edit(j);
    return error_of([&] { ModelConfig::from_hf_json(j, "c.json"); });
  };
  EXPECT_EQ(err([](json& j) { j.erase("hidden_size"); }), "c.json: missing key 'hidden_size'");
  EXPECT_EQ(err([](json& j) { j["vocab_size"] = "ten"; }), "c.json: key 'vocab_size' must be an integer, got \"ten\"");
  EXPECT_NE(err([](json& j) { j["num_key_value_heads"] = 3; }).find("multiple of num_key_value_heads"),
            std::string::npos);
  EXPECT_NE(err([](json& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}}; })
                .find("c.json: rope_scaling: unsupported rope type 'yarn'"),
            std::string::npos);
  EXPECT_NE(err([](json& j) { j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}}; })
                .find("c.json: rope_scaling: missing key 'original_max_position_embeddings'"),
            std::string::npos);
  EXPECT_NE(err([](json& j) { j["mlp_bias"] = true; }).find("mlp_bias"), std::string::npos);
  EXPECT_NE(err([](json& j) { j["hidden_act"] = "gelu"; }).find("only 'silu'"), std::string::npos);
  EXPECT_NE(err([](json& j) { j["model_type"] = "mistral"; }).find("c.json: unknown model_type 'mistral'"),
            std::string::npos);
}

TEST(ModelConfig, Llama3RopeFrequencies) {
  // Hand-computed from the llama3 rule for theta 5e5, D = 16, factor 8, low 1, high 4, orig 64.
  json j = {{"model_type", "llama"}, {"vocab_size", 10}, {"hidden_size", 64}, {"intermediate_size", 8},
            {"num_hidden_layers", 1}, {"num_attention_heads", 4}, {"rope_theta", 500000.0},
            {"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                              {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}}}};
  RotaryEmbedding rope(ModelConfig::from_hf_json(j, "c.json"));
  auto f = rope.inv_freq();
  ASSERT_EQ(f.size(0), 8);
  int keep = 0, blend = 0, div = 0;
  for (int i = 0; i < 8; ++i) {
    const double base = std::pow(500000.0, -2.0 * i / 16.0), wl = 2 * M_PI / base;
    double want;
    if (wl < 16) want = base, ++keep;
    else if (wl > 64) want = base / 8, ++div;
    else {
      const double s = (64 / wl - 1) / 3;
      want = (1 - s) * base / 8 + s * base;
      ++blend;
    }
    EXPECT_NEAR(f[i].item<double>(), want, want * 1e-6) << i;
  }
  EXPECT_EQ(keep, 1);
  EXPECT_EQ(blend, 1);
  EXPECT_EQ(div, 6);
}

}  // namespace
