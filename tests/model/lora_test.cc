// LoRA (model/lora.h): target selection with PEFT's rules, a fresh adapter changes nothing, the
// base is frozen and only the adapter gets gradients, merged == applied, save -> load round trip
// and errors naming the file / key / tensor; and parity with Hugging Face PEFT in both directions
// on the ../shared fixtures: PEFT loads an adapter r1kit trained (with the SFT trainer) and gives
// r1kit's logits, and r1kit loads adapters PEFT wrote (rank/alpha patterns, rsLoRA, regex
// targets) and gives PEFT's logits, within 1e-4.
#include "model/lora.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <cstdlib>

#include "core/fs.h"
#include "model/checkpoint.h"
#include "sft/sft_trainer.h"
#include "tests/model/model_test_util.h"

namespace r1kit {
namespace {

using test::error_of;
using test::fresh_dir;
using test::max_abs_diff;

torch::Tensor logits_of(Transformer& model, const std::vector<int64_t>& ids) {
  torch::NoGradGuard no_grad;
  const auto n = static_cast<int64_t>(ids.size());
  torch::Tensor t = torch::tensor(ids, torch::kInt64).view({1, n});
  return model->forward(t, torch::arange(n, torch::kInt64).view({1, n}))[0];  // [T, V]
}

Transformer tiny_model(uint64_t seed = 0) {
  torch::manual_seed(seed);
  Transformer m(test::tiny_config("qwen2", /*tied=*/true));
  m->eval();
  return m;
}

LoraOptions options(std::vector<std::string> targets, int64_t r = 4, double alpha = 8) {
  LoraOptions o;
  o.r = r;
  o.alpha = alpha;
  o.target_modules = std::move(targets);
  return o;
}

void randomize(const LoraAdapter& a, double scale = 0.2) {
  torch::NoGradGuard no_grad;
  for (auto& t : a.parameters()) t.normal_(0.0, scale);
}

std::vector<std::string> keys(const LoraAdapter& a) {
  std::vector<std::string> out;
  for (const auto& [k, l] : a.layers()) out.push_back(k);
  return out;
}

TEST(Lora, FreshAdapterChangesNothingAndFreezesTheBase) {
  Transformer m = tiny_model();
  const std::vector<int64_t> ids = {1, 5, 9, 2, 7};
  const torch::Tensor before = logits_of(m, ids);
  LoraAdapter a = attach_lora(m, options({"q_proj", "k_proj", "v_proj", "o_proj"}), /*seed=*/3);
  EXPECT_EQ(a.layers().size(), 8u);  // 2 layers x 4
  EXPECT_TRUE(torch::equal(logits_of(m, ids), before));  // B = 0
  for (const auto& p : m->parameters()) EXPECT_FALSE(p.requires_grad());
  for (const auto& p : a.parameters()) EXPECT_TRUE(p.requires_grad());
  // A ~ U(-1/sqrt(in), 1/sqrt(in)) as nn.Linear / PEFT, seeded: the same seed draws the same A.
  const torch::Tensor A = a.layers()[0].second->A;
  EXPECT_LE(A.abs().max().item<double>(), 1.0 / std::sqrt(32.0));
  EXPECT_GT(A.abs().max().item<double>(), 0.5 / std::sqrt(32.0));
  Transformer m2 = tiny_model();
  EXPECT_TRUE(torch::equal(attach_lora(m2, options({"q_proj", "k_proj", "v_proj", "o_proj"}), 3).layers()[0].second->A, A));
  EXPECT_NE(error_of([&] { attach_lora(m, options({"q_proj"})); }).find("already has"), std::string::npos);
}

TEST(Lora, TargetsFollowPeftRules) {
  auto attach_keys = [](LoraOptions o) {
    Transformer m = tiny_model();
    return keys(attach_lora(m, o));
  };
  EXPECT_EQ(attach_keys(options({"v_proj", "q_proj"})).size(), 4u);
  EXPECT_EQ(attach_keys(options({"all-linear"})).size(), 14u);  // 7 per layer, never lm_head
  LoraOptions regex = options({});
  regex.target_regex = R"(model\.layers\.1\..*_proj)";
  EXPECT_EQ(attach_keys(regex).size(), 7u);
  LoraOptions exact = options({"model.layers.0.mlp.down_proj"});
  EXPECT_EQ(attach_keys(exact), std::vector<std::string>{"model.layers.0.mlp.down_proj"});
  LoraOptions layers = options({"q_proj"});
  layers.layers_to_transform = {1};
  EXPECT_EQ(attach_keys(layers), std::vector<std::string>{"model.layers.1.self_attn.q_proj"});
  LoraOptions excl = options({"q_proj"});
  excl.exclude_modules = {"model.layers.0.self_attn.q_proj"};
  EXPECT_EQ(attach_keys(excl), std::vector<std::string>{"model.layers.1.self_attn.q_proj"});
  // Per-module rank and alpha; rsLoRA scaling.
  LoraOptions pat = options({"q_proj", "v_proj"}, 4, 8);
  pat.rank_pattern = {{"v_proj", 2}};
  pat.alpha_pattern = {{"layers.1.self_attn.q_proj", 3.0}};
  Transformer m = tiny_model();
  LoraAdapter a = attach_lora(m, pat);
  for (const auto& [k, l] : a.layers()) {
    const bool v = k.find("v_proj") != std::string::npos, q1 = k == "model.layers.1.self_attn.q_proj";
    EXPECT_EQ(l->A.size(0), v ? 2 : 4) << k;
    EXPECT_DOUBLE_EQ(l->scaling, q1 ? 3.0 / 4 : (v ? 8.0 / 2 : 8.0 / 4)) << k;
  }
  LoraOptions rs = options({"q_proj"}, 4, 8);
  rs.use_rslora = true;
  Transformer m3 = tiny_model();
  EXPECT_DOUBLE_EQ(attach_lora(m3, rs).layers()[0].second->scaling, 8.0 / 2.0);
  // Errors.
  Transformer m4 = tiny_model();
  EXPECT_NE(error_of([&] { attach_lora(m4, options({"nonexistent_proj"})); }).find("match no linear layer"),
            std::string::npos);
  EXPECT_NE(error_of([&] { attach_lora(m4, options({"lm_head"})); }).find("does not adapt"), std::string::npos);
  EXPECT_NE(error_of([&] { attach_lora(m4, options({"q_proj"}, 0)); }).find("rank"), std::string::npos);
  EXPECT_FALSE(find_lora(m4));  // nothing attached by the failed calls
}

TEST(Lora, MergedEqualsAppliedDisabledEqualsBaseOnlyAdapterLearns) {
  Transformer m = tiny_model(1);
  const std::vector<int64_t> ids = {3, 1, 4, 1, 5, 9, 2, 6};
  const torch::Tensor base = logits_of(m, ids);
  LoraAdapter a = attach_lora(m, options({"all-linear"}));
  randomize(a);
  const torch::Tensor applied = logits_of(m, ids);
  EXPECT_GT(max_abs_diff(applied, base), 1e-2);
  {
    LoraDisabled off(a);
    EXPECT_TRUE(torch::equal(logits_of(m, ids), base));
  }
  Transformer merged(m->config());
  merged->eval();
  load_hf_state_dict(merged, merged_state_dict(m));
  const double d_merged = max_abs_diff(logits_of(merged, ids), applied);
  std::printf("[ lora ] merged_state_dict vs applied: max diff %.3g (logits move by %.3g)\n", d_merged,
              max_abs_diff(applied, base));
  EXPECT_LT(d_merged, 1e-4);
  // Gradients reach the adapter only.
  m->train();
  torch::Tensor ids_t = torch::tensor(ids, torch::kInt64).view({1, -1});
  m->forward(ids_t, torch::arange(8, torch::kInt64).view({1, -1})).logsumexp(-1).sum().backward();
  for (const auto& p : m->parameters()) EXPECT_FALSE(p.grad().defined());
  for (const auto& p : a.parameters()) EXPECT_GT(p.grad().abs().sum().item<double>(), 0.0);
  m->eval();
  // merge_and_unload: the weights change, the adapter is gone, the outputs stay.
  merge_lora(m);
  EXPECT_FALSE(find_lora(m));
  EXPECT_LT(max_abs_diff(logits_of(m, ids), applied), 1e-4);
}

TEST(Lora, SaveLoadRoundTripAndErrorsNameTheFile) {
  const std::string dir = fresh_dir("lora_roundtrip");
  Transformer m = tiny_model(2);
  LoraOptions o = options({"q_proj", "down_proj"}, 3, 6);
  o.rank_pattern = {{"down_proj", 2}};
  LoraAdapter a = attach_lora(m, o);
  randomize(a);
  save_peft_adapter(a, dir + "/adapter", "/models/base");
  const json cfg = parse_json(read_file(dir + "/adapter/adapter_config.json"), "cfg");
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["r"], 3);
  EXPECT_EQ(cfg["rank_pattern"]["down_proj"], 2);
  EXPECT_EQ(cfg["base_model_name_or_path"], "/models/base");
  SafetensorsFile st(dir + "/adapter/adapter_model.safetensors");
  EXPECT_TRUE(st.contains("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"));
  EXPECT_EQ(st.info("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight").shape,
            (std::vector<int64_t>{2, 48}));

  Transformer m2 = tiny_model(2);
  LoraAdapter b = load_peft_adapter(m2, dir + "/adapter");
  ASSERT_EQ(b.layers().size(), a.layers().size());
  for (size_t i = 0; i < a.parameters().size(); ++i) EXPECT_TRUE(torch::equal(a.parameters()[i], b.parameters()[i]));
  EXPECT_TRUE(torch::equal(logits_of(m2, {1, 2, 3}), logits_of(m, {1, 2, 3})));

  // A different rank does not fit: the error names the file and the tensor.
  Transformer m3 = tiny_model(2);
  LoraOptions other = options({"q_proj", "down_proj"}, 5, 6);
  std::filesystem::create_directories(dir + "/bad");
  write_file_atomic(dir + "/bad/adapter_config.json", peft_config_json(other, "x").dump());
  std::filesystem::copy_file(dir + "/adapter/adapter_model.safetensors", dir + "/bad/adapter_model.safetensors");
  std::string err = error_of([&] { load_peft_adapter(m3, dir + "/bad"); });
  EXPECT_NE(err.find("adapter_model.safetensors"), std::string::npos) << err;
  EXPECT_NE(err.find("lora_A.weight"), std::string::npos) << err;
  EXPECT_FALSE(find_lora(m3));  // detached again
  // Settings r1kit does not implement are refused, naming the key.
  json dora = peft_config_json(o, "x");
  dora["use_dora"] = true;
  write_file_atomic(dir + "/bad/adapter_config.json", dora.dump());
  err = error_of([&] { load_peft_adapter(m3, dir + "/bad"); });
  EXPECT_NE(err.find("use_dora"), std::string::npos) << err;
  EXPECT_NE(error_of([&] { load_peft_adapter(m3, dir + "/nowhere"); }).find("adapter_config.json"), std::string::npos);
}

TEST(Lora, ConfigNode) {
  ConfigNode node(json{{"r", 8}, {"alpha", 16}, {"dropout", 0.05}, {"target_modules", "all-linear"},
                       {"rollout", "applied"}},
                  "recipe.yaml", "grpo.lora");
  LoraOptions o = read_lora_options(node);
  node.finish();
  EXPECT_EQ(o.r, 8);
  EXPECT_EQ(o.target_modules, std::vector<std::string>{"all-linear"});
  EXPECT_EQ(o.rollout, "applied");
  ConfigNode bad(json{{"r", 8}, {"rollout", "fused"}}, "recipe.yaml", "grpo.lora");
  EXPECT_NE(error_of([&] { read_lora_options(bad); }).find("grpo.lora.rollout"), std::string::npos);
  ConfigNode regex(json{{"r", 2}, {"target_modules", ".*q_proj"}}, "recipe.yaml", "grpo.lora");
  EXPECT_EQ(read_lora_options(regex).target_regex, ".*q_proj");
}

// ---------------------------------------------------------------------------------------------
// Parity with Hugging Face PEFT (python3 with torch, transformers, peft; skipped without them).

const char* kFixtures[] = {"tiny-qwen2", "tiny-llama"};

std::vector<std::vector<int64_t>> fixture_sequences(const std::string& fixture_dir) {
  const json e = parse_json(read_file(fixture_dir + "/expected.json"), "expected.json");
  std::vector<std::vector<int64_t>> out;
  for (const auto& s : e["sequences"])
    if (s["length"].get<int64_t>() <= 33) out.push_back(s["input_ids"].get<std::vector<int64_t>>());
  out.push_back({0, 511, 17, 300, 42, 8, 8, 8, 199});
  return out;
}

// Runs the reference script on a list of jobs; returns its exit code (77: skip).
int run_reference(const json& jobs, const std::string& dir) {
  write_file_atomic(dir + "/jobs.json", jobs.dump());
  const std::string cmd = "python3 " + std::string(R1_SOURCE_DIR) + "/tests/model/peft_reference.py " + dir + "/jobs.json";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

// Max |r1kit logits - reference| over the sequences; `want` is [seq][T][V].
double max_diff_to(const json& want, Transformer& model, const std::vector<std::vector<int64_t>>& seqs) {
  double d = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    std::vector<float> flat;
    for (const auto& row : want[i])
      for (const auto& v : row) flat.push_back(v.get<float>());
    d = std::max(d, max_abs_diff(logits_of(model, seqs[i]).reshape({-1}), torch::tensor(flat)));
  }
  return d;
}

TEST(LoraPeftParity, PeftLoadsAnAdapterR1kitTrained) {
  const std::string root = fresh_dir("peft_from_r1kit");
  json jobs = json::array();
  std::vector<Transformer> models;
  for (const char* name : kFixtures) {
    const std::string fixture = test::shared_path(std::string("fixtures/") + name);
    R1_REQUIRE_FILE(fixture + "/model.safetensors");
    const std::string dir = root + "/" + name;
    Transformer m = load_model(fixture, nullptr, torch::kCPU, torch::kFloat32);
    // Train an adapter with the SFT trainer (dropout on, rsLoRA, a rank pattern) so B is far from 0.
    sft::SftOptions so;
    so.steps = 8;
    so.batch_size = 4;
    so.lr = 1e-2;
    so.min_lr = 1e-2;
    so.warmup_steps = 0;
    so.checkpoint_every = 0;
    so.log_every = 0;
    so.tensorboard = false;
    so.lora = options({"q_proj", "v_proj", "o_proj", "gate_proj", "down_proj"}, 4, 8);
    so.lora.dropout = 0.1;
    so.lora.use_rslora = true;
    so.lora.rank_pattern = {{"down_proj", 2}};
    auto source = [](int64_t, int64_t n) {  // the same batch every step: the loss must fall
      std::vector<sft::SftExample> out;
      for (int64_t j = 0; j < n; ++j) {
        sft::SftExample e;
        for (int64_t t = 0; t < 12; ++t) e.ids.push_back((j * 7 + t * t * 5) % 512);
        e.loss_mask.assign(12, 1);
        e.loss_mask[0] = 0;
        out.push_back(e);
      }
      return out;
    };
    torch::manual_seed(0);
    const sft::SftRunResult r = sft::run_sft(m, source, so, dir + "/sft", /*pad_id=*/0);
    std::printf("[ lora ] %s: LoRA SFT loss %.4f -> %.4f\n", name, r.first_loss, r.last_loss);
    EXPECT_LT(r.last_loss, r.first_loss);
    ASSERT_TRUE(find_lora(m));
    save_peft_adapter(find_lora(m), dir + "/adapter", fixture);
    m->eval();
    jobs.push_back({{"mode", "logits"}, {"base", fixture}, {"adapter", dir + "/adapter"},
                    {"ids", fixture_sequences(fixture)}, {"out", dir + "/peft.json"}});
    models.push_back(m);
  }
  const int rc = run_reference(jobs, root);
  if (rc == 77) GTEST_SKIP() << "python3 lacks torch/transformers/peft";
  ASSERT_EQ(rc, 0);
  for (size_t i = 0; i < models.size(); ++i) {
    const json peft = parse_json(read_file(jobs[i]["out"].get<std::string>()), "peft.json");
    const auto seqs = jobs[i]["ids"].get<std::vector<std::vector<int64_t>>>();
    const double d_applied = max_diff_to(peft["logits"], models[i], seqs);
    merge_lora(models[i]);
    const double d_merged = max_diff_to(peft["merged_logits"], models[i], seqs);
    std::printf("[ lora ] %s: PEFT %s loads r1kit's adapter: logits max diff %.3g (adapter applied), %.3g "
                "(both merged)\n", kFixtures[i], peft["peft"].get<std::string>().c_str(), d_applied, d_merged);
    EXPECT_LE(d_applied, 1e-4);
    EXPECT_LE(d_merged, 1e-4);
  }
}

TEST(LoraPeftParity, R1kitLoadsAdaptersPeftWrote) {
  const json configs[] = {
      {{"r", 4}, {"lora_alpha", 8}, {"target_modules", {"q_proj", "k_proj", "v_proj", "o_proj"}}},
      {{"r", 8}, {"lora_alpha", 4}, {"target_modules", "all-linear"}, {"use_rslora", true}},
      {{"r", 4}, {"lora_alpha", 16}, {"target_modules", {"q_proj", "up_proj", "down_proj"}},
       {"rank_pattern", {{"down_proj", 2}}}, {"alpha_pattern", {{"layers.1.self_attn.q_proj", 3}}},
       {"layers_to_transform", {1}}},
      {{"r", 2}, {"lora_alpha", 2}, {"target_modules", R"(.*\.(k_proj|gate_proj))"}, {"lora_dropout", 0.1}},
  };
  const std::string root = fresh_dir("r1kit_from_peft");
  json jobs = json::array();
  for (const char* name : kFixtures) {
    const std::string fixture = test::shared_path(std::string("fixtures/") + name);
    R1_REQUIRE_FILE(fixture + "/model.safetensors");
    for (size_t c = 0; c < std::size(configs); ++c) {
      const std::string dir = root + "/" + name + "_" + std::to_string(c);
      jobs.push_back({{"mode", "make"}, {"base", fixture}, {"adapter", dir + "/adapter"}, {"config", configs[c]},
                      {"ids", fixture_sequences(fixture)}, {"out", dir + ".json"}, {"name", name}, {"config_index", c}});
    }
  }
  const int rc = run_reference(jobs, root);
  if (rc == 77) GTEST_SKIP() << "python3 lacks torch/transformers/peft";
  ASSERT_EQ(rc, 0);
  for (const json& job : jobs) {
    const json peft = parse_json(read_file(job["out"].get<std::string>()), "peft.json");
    const auto seqs = job["ids"].get<std::vector<std::vector<int64_t>>>();
    Transformer m = load_model(job["base"].get<std::string>(), nullptr, torch::kCPU, torch::kFloat32);
    m->eval();
    const torch::Tensor base = logits_of(m, seqs[0]);
    LoraAdapter a = load_peft_adapter(m, job["adapter"].get<std::string>());
    const double d = max_diff_to(peft["logits"], m, seqs);
    const double moved = max_abs_diff(logits_of(m, seqs[0]), base);
    merge_lora(m);
    const double d_merged = max_diff_to(peft["merged_logits"], m, seqs);
    std::printf("[ lora ] %s config %d (%zu layers): r1kit vs PEFT logits max diff %.3g applied, %.3g merged "
                "(the adapter moves logits by %.3g)\n", job["name"].get<std::string>().c_str(),
                job["config_index"].get<int>(), a.layers().size(), d, d_merged, moved);
    EXPECT_LE(d, 1e-4) << job["config"].dump();
    EXPECT_LE(d_merged, 1e-4) << job["config"].dump();
    EXPECT_GT(moved, 1e-2);
  }
}

}  // namespace
}  // namespace r1kit
