// gpu_check: what scripts/gpu-check.sh runs on a machine with a GPU (docs/gpu.md).
//   1. fixtures: logits of ../shared/fixtures' tiny-qwen2 and tiny-llama on the GPU (float32 and
//      bfloat16) against the CPU float32 forward and the fixtures' reference values, and the
//      fixtures' 20-token greedy continuation decoded on the GPU with and without CUDA graphs;
//      and the packed training forward (sequence packing: all sequences in one row, attention within
//      each) against each sequence alone, float32 logits and gradients and bfloat16 logits; SFT rows
//      sharing a prefix and GRPO prompt groups (forward_shared_prefix) against their rows alone;
//   2. fp32 master weights on the GPU: bf16 weights at lr 1e-6 move only with masters;
//   3. decode tokens/s of the rollout engine on a random Qwen2.5-0.5B-shaped bf16 model, with and
//      without CUDA graphs;
//   4. GRPO steps (the Qwen recipe's shape: 32 prompts x 8, micro-batch 8, bf16) on that model:
//      seconds per step and peak GPU memory.
// Each check prints one line with its numbers and PASS/FAIL (tolerances on the line); --json FILE
// writes everything. Exit status 1 when a check fails. Without a GPU (--device cpu) it runs the same
// code on the CPU, which is how the script is rehearsed on a machine without one.
#include <torch/torch.h>
#include <torch/version.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "core/fs.h"
#include "core/json.h"
#include "core/timer.h"
#include "grpo/trainer.h"
#include "model/checkpoint.h"
#include "model/device.h"
#include "model/master_weights.h"
#include "recipes/tiny_task.h"
#include "rollout/engine.h"

#ifdef R1_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

using namespace r1kit;

namespace {

json g_report = json::object();
int g_failures = 0;

void check(const std::string& name, bool ok, const std::string& line, json values) {
  std::printf("%-44s %s  %s\n", name.c_str(), ok ? "PASS" : "FAIL", line.c_str());
  std::fflush(stdout);
  values["pass"] = ok;
  g_report["checks"][name] = values;
  g_failures += !ok;
}

void sync(torch::Device d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.index());
}

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64).cpu() - b.to(torch::kFloat64).cpu()).abs().max().item<double>();
}

std::string fmt(const char* f, double a, double b = 0, double c = 0, double d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a, b, c, d);
  return buf;
}

// ---- 1. Fixtures ---------------------------------------------------------------------------------
// The fixture's sequences packed into one row (Transformer::forward_hidden_packed: positions restart,
// attention within a sequence: SDPA with an explicit mask) vs each sequence alone, on the device.
void check_packed(const json& expected, const std::string& name, Transformer& f32, Transformer& bf16, double tol16) {
  const torch::Device dev = f32->device();
  std::vector<std::vector<int64_t>> seqs;
  std::vector<int64_t> ids_v, pos_v, seg_v;
  for (const json& s : expected["sequences"]) {
    seqs.push_back(s["input_ids"].get<std::vector<int64_t>>());
    for (size_t t = 0; t < seqs.back().size(); ++t) {
      ids_v.push_back(seqs.back()[t]);
      pos_v.push_back(static_cast<int64_t>(t));
      seg_v.push_back(static_cast<int64_t>(seqs.size()));
    }
  }
  const int64_t n = static_cast<int64_t>(ids_v.size());
  auto row = [&](const std::vector<int64_t>& v) { return torch::tensor(v, torch::kLong).view({1, n}).to(dev); };
  auto alone = [&](const std::vector<int64_t>& s) {
    const int64_t T = static_cast<int64_t>(s.size());
    return std::make_pair(torch::tensor(s, torch::kLong).view({1, T}).to(dev), torch::arange(T, torch::kLong).view({1, T}).to(dev));
  };
  // Logits (and, float32, the gradients of a loss over them) packed vs alone.
  auto run = [&](Transformer& m, bool grads, double* grad_rel) {
    const torch::Tensor packed = m->logits_from_hidden(m->forward_hidden_packed(row(ids_v), row(pos_v), row(seg_v)))[0];
    double d = 0;
    int64_t at = 0;
    torch::Tensor l2 = torch::zeros({}, torch::TensorOptions().device(dev));
    for (const auto& s : seqs) {
      const auto [ids, pos] = alone(s);
      const torch::Tensor own = m->forward(ids, pos)[0];
      d = std::max(d, max_abs(packed.narrow(0, at, own.size(0)), own));
      if (grads) l2 = l2 + own.pow(2).mean();
      at += own.size(0);
    }
    if (grads) {
      torch::Tensor l1 = torch::zeros({}, torch::TensorOptions().device(dev));
      at = 0;
      for (const auto& s : seqs) {
        l1 = l1 + packed.narrow(0, at, static_cast<int64_t>(s.size())).pow(2).mean();
        at += static_cast<int64_t>(s.size());
      }
      const auto params = m->parameters();
      const auto g1 = torch::autograd::grad({l1}, params, {}, true);
      const auto g2 = torch::autograd::grad({l2}, params);
      for (size_t i = 0; i < params.size(); ++i)
        *grad_rel = std::max(*grad_rel, max_abs(g1[i], g2[i]) / std::max(1e-30, g2[i].abs().max().item<double>()));
    }
    return d;
  };
  double grad_rel = 0, d32 = 0, d16 = 0;
  {
    torch::AutoGradMode with_grad(true);  // check_fixture runs under NoGradGuard
    d32 = run(f32, true, &grad_rel);
  }
  {
    torch::NoGradGuard no_grad;
    d16 = run(bf16, false, nullptr);
  }
  const double tol32 = 1e-4;
  check(name + " packed rows (f32 / bf16 vs alone)", d32 <= tol32 && grad_rel <= tol32 && d16 <= tol16,
        fmt("f32 logits %.2e, gradients %.2e rel (tol %.0e); bf16 logits %.3f", d32, grad_rel, tol32, d16) +
            fmt(" (tol %.3f); %.0f sequences in one row", tol16, double(seqs.size())),
        {{"f32_logits", d32}, {"f32_grad_rel", grad_rel}, {"bf16_logits", d16}, {"tol32", tol32}, {"tol16", tol16}});
}

// SFT rows opening with the same tokens (sft::mark_shared_prefix): the prefix run once and the loss
// rows kept (Transformer::forward_shared_prefix with keep: the masked prefix attention on the device)
// vs the rows whole (forward_hidden_rows), float32 hidden states and parameter gradients.
void check_shared_prefix(const std::string& name, Transformer& f32) {
  const torch::Device dev = f32->device();
  torch::AutoGradMode with_grad(true);
  torch::manual_seed(3);
  const int64_t B = 4, T = 12, p = 4, V = f32->config().vocab_size;
  torch::Tensor ids = torch::randint(3, V, {B, T}, torch::kLong);
  ids.narrow(1, 0, p).copy_(ids.narrow(0, 0, 1).narrow(1, 0, p).expand({B, p}));
  std::vector<int64_t> keep_v, keep_c;  // rows b*T + t of the batch; b*(T-p) + t-p of the continuations
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = p + 1 + b % 2; t < T; ++t) {
      keep_v.push_back(b * T + t);
      keep_c.push_back(b * (T - p) + t - p);
    }
  const auto pos = torch::arange(T, torch::kLong).unsqueeze(0).expand({B, T}).contiguous();
  const auto up = torch::randn({static_cast<int64_t>(keep_v.size()), f32->config().hidden_size}).to(dev);
  const auto params = f32->parameters();
  const torch::Tensor whole = f32->forward_hidden_rows(ids.to(dev), pos.to(dev), {}, torch::tensor(keep_v).to(dev));
  const auto g_whole = torch::autograd::grad({(whole * up).sum()}, params, {}, false, false, true);
  const torch::Tensor shared = f32->forward_shared_prefix(ids.narrow(0, 0, 1).narrow(1, 0, p).contiguous().to(dev), {p},
                                                           ids.narrow(1, p, T - p).contiguous().to(dev), B,
                                                           torch::tensor(keep_c).to(dev)).completion;
  const auto g_shared = torch::autograd::grad({(shared * up).sum()}, params, {}, false, false, true);
  const double scale = std::max(1.0, whole.abs().max().item<double>());
  const double dh = max_abs(shared, whole) / scale;
  double dg = 0;
  for (size_t i = 0; i < params.size(); ++i)
    if (g_whole[i].defined() && g_shared[i].defined())
      dg = std::max(dg, max_abs(g_shared[i], g_whole[i]) / std::max(1e-30, g_whole[i].abs().max().item<double>()));
  const double tol = 1e-4;
  check(name + " shared SFT prefix (f32, kept rows)", dh <= tol && dg <= tol,
        fmt("hidden %.2e rel, gradients %.2e rel (tol %.0e)", dh, dg, tol), {{"hidden_rel", dh}, {"grad_rel", dg}, {"tol", tol}});
}

// GRPO groups (Transformer::forward_shared_prefix): 2 prompts of different lengths, the shorter one
// padded, 3 completions each; on the device one mask per prompt (model/decoder_layer.h PrefixMask),
// an additive one in the attention's dtype on LibTorch 2.x. Completion hidden states against each
// prompt + completion run alone, float32 and bf16, relative to the largest |hidden|.
void check_prompt_groups(const std::string& name, Transformer& f32, Transformer& bf16) {
  const torch::Device dev = f32->device();
  torch::NoGradGuard no_grad;
  torch::manual_seed(4);
  const int64_t P = 2, G = 3, Tp = 6, Tc = 5, V = f32->config().vocab_size;
  const std::vector<int64_t> lens = {6, 3};
  const torch::Tensor prompts = torch::randint(3, V, {P, Tp}, torch::kLong);
  const torch::Tensor completions = torch::randint(3, V, {P * G, Tc}, torch::kLong);
  auto run = [&](Transformer& m) {
    const torch::Tensor grouped = m->forward_shared_prefix(prompts.to(dev), lens, completions.to(dev), G).completion;
    double d = 0, scale = 1;
    for (int64_t r = 0; r < P * G; ++r) {
      const int64_t len = lens[r / G], T = len + Tc;
      const torch::Tensor ids = torch::cat({prompts[r / G].narrow(0, 0, len), completions[r]}).view({1, T});
      const torch::Tensor alone = m->forward_hidden(ids.to(dev), torch::arange(T, torch::kLong).view({1, T}).to(dev))[0];
      d = std::max(d, max_abs(grouped[r], alone.narrow(0, len, Tc)));
      scale = std::max(scale, alone.abs().max().item<double>());
    }
    return d / scale;
  };
  const double d32 = run(f32), d16 = run(bf16), tol32 = 1e-4, tol16 = 0.05;
  check(name + " GRPO prompt groups (f32 / bf16 vs alone)", d32 <= tol32 && d16 <= tol16,
        fmt("hidden %.2e / %.2e rel (tol %.0e / %.2f); 2 prompts (6, 3 tokens) x 3 completions", d32, d16, tol32, tol16),
        {{"f32_hidden_rel", d32}, {"bf16_hidden_rel", d16}, {"tol32", tol32}, {"tol16", tol16}});
}

void check_fixture(const std::string& dir, const std::string& name, torch::Device dev) {
  const json expected = parse_json(read_file(dir + "/expected.json"), dir + "/expected.json");
  ModelConfig cfg;
  Transformer cpu = load_model(dir, &cfg, torch::kCPU, torch::kFloat32);
  Transformer f32 = load_model(dir, nullptr, dev, torch::kFloat32);
  Transformer bf16 = load_model(dir, nullptr, dev, torch::kBFloat16);
  torch::NoGradGuard no_grad;
  double d32 = 0, d16 = 0, dref = 0, scale = 0;
  int64_t argmax_same = 0, positions = 0;
  for (const json& s : expected["sequences"]) {
    const auto ids_v = s["input_ids"].get<std::vector<int64_t>>();
    const int64_t T = ids_v.size();
    auto ids = torch::tensor(ids_v, torch::kLong).view({1, T});
    auto pos = torch::arange(T, torch::kLong).view({1, T});
    auto ref = cpu->forward(ids, pos)[0];                  // [T,V]
    auto g32 = f32->forward(ids, pos)[0].cpu();
    auto g16 = bf16->forward(ids, pos)[0].cpu();
    d32 = std::max(d32, max_abs(g32, ref));
    d16 = std::max(d16, max_abs(g16, ref));
    scale = std::max(scale, ref.abs().max().item<double>());
    auto last = torch::tensor(s["last_logits"].get<std::vector<float>>());
    dref = std::max(dref, max_abs(g32[T - 1], last));
    argmax_same += g16.argmax(-1).eq(ref.argmax(-1)).sum().item<int64_t>();
    positions += T;
  }
  const double tol32 = 2e-4, tol16 = 0.05 * scale;  // fixtures' suggested tolerance; bf16: 5% of max |logit|
  check(name + " logits f32 (gpu vs cpu, vs reference)", d32 <= tol32 && dref <= tol32,
        fmt("max |diff| %.2e vs CPU, %.2e vs fixture (tol %.0e)", d32, dref, tol32),
        {{"f32_vs_cpu", d32}, {"f32_vs_fixture", dref}, {"tol", tol32}});
  check(name + " logits bf16 (gpu vs cpu f32)", d16 <= tol16,
        fmt("max |diff| %.3f (tol %.3f = 5%% of max |logit|), argmax agrees %.1f%%", d16, tol16,
            100.0 * argmax_same / positions),
        {{"bf16_vs_cpu_f32", d16}, {"tol", tol16}, {"argmax_agree", double(argmax_same) / positions}});

  check_packed(expected, name, f32, bf16, tol16);
  check_shared_prefix(name, f32);
  check_prompt_groups(name, f32, bf16);

  // Greedy continuation through the rollout engine: dynamic decode and (CUDA) graph replay.
  const json& greedy = expected["greedy"];
  PromptRequest req;
  req.prompt_ids = greedy["prompt_ids"].get<std::vector<int64_t>>();
  const auto want = greedy["new_tokens"].get<std::vector<int64_t>>();
  SamplingOptions so;
  so.temperature = 0;
  so.max_new_tokens = static_cast<int64_t>(want.size());
  so.ignore_eos = true;
  for (bool graphs : {false, true}) {
    EngineOptions eo;
    eo.max_batch = 4;
    eo.cuda_graphs = graphs;
    GenerationEngine engine(f32, eo);
    req.num_samples = 3;  // three rows decode together
    const auto groups = engine.generate({req}, so);
    bool same = true;
    for (const auto& s : groups[0].samples) same = same && s.completion_ids == want;
    check(name + (graphs ? " greedy 20 tokens, CUDA graph" : " greedy 20 tokens, dynamic"), same,
          same ? "equal to the fixture" : "differs from the fixture", {{"equal", same}});
  }
}

// ---- 2. Master weights -----------------------------------------------------------------------------
void check_master_weights(torch::Device dev) {
  torch::manual_seed(0);
  const int64_t n = 1 << 16, steps = 100;
  auto w0 = (torch::randn({n}) * 0.1).to(dev, torch::kBFloat16);
  auto c = (torch::randn({n}) + torch::sign(torch::randn({n}))).to(dev);
  auto opts = torch::optim::AdamWOptions(1e-6).betas(std::make_tuple(0.9, 0.99)).weight_decay(0.0);
  auto pure = w0.clone().requires_grad_(true), mixed = w0.clone().requires_grad_(true);
  torch::optim::AdamW pure_opt({pure}, opts);
  MasterWeights mw({mixed}, opts);
  for (int64_t s = 0; s < steps; ++s) {
    pure_opt.zero_grad();
    (pure.to(torch::kFloat32) * c).sum().backward();
    pure_opt.step();
    mw.zero_grad();
    (mixed.to(torch::kFloat32) * c).sum().backward();
    mw.step();
  }
  auto big = w0.to(torch::kFloat32).abs() > 1.0 / 2048;
  const int64_t pure_changed = (pure.detach().ne(w0) & big).sum().item<int64_t>();
  const int64_t mixed_changed = (mixed.detach().ne(w0) & big).sum().item<int64_t>();
  check("master weights, bf16 at lr 1e-6", pure_changed == 0 && mixed_changed > n / 20,
        fmt("100 steps: weights above 2^-11 changed: pure bf16 %.0f, fp32 masters %.0f of %.0f", pure_changed,
            mixed_changed, n),
        {{"pure_changed", pure_changed}, {"masters_changed", mixed_changed}, {"n", n}});
}

// ---- 3. Decode throughput --------------------------------------------------------------------------
ModelConfig qwen05b_config(bool tiny) {
  json j = {{"model_type", "qwen2"}, {"architectures", {"Qwen2ForCausalLM"}}, {"vocab_size", 151936},
            {"hidden_size", 896}, {"intermediate_size", 4864}, {"num_hidden_layers", 24},
            {"num_attention_heads", 14}, {"num_key_value_heads", 2}, {"max_position_embeddings", 32768},
            {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0}, {"tie_word_embeddings", true},
            {"eos_token_id", nullptr}, {"bos_token_id", nullptr}, {"torch_dtype", "bfloat16"}};
  if (tiny) {  // rehearsal on a CPU: the same code on 2 narrow layers
    j["hidden_size"] = 128;
    j["intermediate_size"] = 256;
    j["num_hidden_layers"] = 2;
    j["num_attention_heads"] = 2;
    j["num_key_value_heads"] = 1;
  }
  return ModelConfig::from_hf_json(j, "Qwen2.5-0.5B shape");
}

Transformer random_model(const ModelConfig& cfg, torch::Device dev) {
  torch::manual_seed(1);
  Transformer m(cfg);
  torch::NoGradGuard ng;
  for (auto& p : m->named_parameters()) {  // HF-style init
    if (p.key().find("norm") != std::string::npos) p.value().fill_(1.0);
    else if (p.key().find("bias") != std::string::npos) p.value().zero_();
    else p.value().normal_(0.0, 0.02);
  }
  m->to(dev, torch::kBFloat16);
  m->eval();
  return m;
}

void decode_throughput(Transformer& model, const std::vector<int64_t>& batches, int64_t prompt_len, int64_t new_tokens) {
  const torch::Device dev = model->device();
  for (bool graphs : {false, true}) {
    for (int64_t B : batches) {
      EngineOptions eo;
      eo.max_batch = B;
      eo.token_budget = B * (prompt_len + new_tokens);
      eo.cuda_graphs = graphs;
      GenerationEngine engine(model, eo);
      std::vector<PromptRequest> prompts(B);
      for (int64_t i = 0; i < B; ++i) {
        prompts[i].prompt_ids.resize(prompt_len);
        for (int64_t t = 0; t < prompt_len; ++t) prompts[i].prompt_ids[t] = (i * 7919 + t * 104729) % 150000;
      }
      SamplingOptions so;
      so.temperature = 1.0;
      so.max_new_tokens = new_tokens;
      so.seed = 3;
      engine.generate(prompts, so);  // warm-up: allocations, cuBLAS, graph capture
      engine.reset_stats();
      sync(dev);
      Timer t;
      engine.generate(prompts, so);
      sync(dev);
      const double wall = t.seconds();
      const EngineStats& st = engine.stats();
      const double tok_s = st.generated_tokens / wall, decode_tok_s = st.decode_tokens / (st.decode_s + st.sample_s);
      const std::string key = "decode tok/s batch " + std::to_string(B) +
                              (graphs ? (dev.is_cuda() ? " graph" : " graph opt (cpu: eager)") : " eager");
      std::printf("%-44s %.0f tok/s end to end (%.0f tok/s in decode steps; %lld tokens, %.2f s)\n", key.c_str(),
                  tok_s, decode_tok_s, static_cast<long long>(st.generated_tokens), wall);
      g_report["decode"][key] = {{"batch", B}, {"cuda_graphs", graphs}, {"tokens", st.generated_tokens},
                                 {"seconds", wall}, {"tok_s", tok_s}, {"decode_step_tok_s", decode_tok_s}};
    }
  }
}

// ---- 4. GRPO step ------------------------------------------------------------------------------------
class LetterReward : public rewards::Reward {  // any reward will do: the step's cost is what is measured
 public:
  rewards::RewardOutput score_one(const rewards::RewardInput& in) const override {
    rewards::RewardOutput out;
    double a = 0;
    for (char ch : in.completion) a += ch == 'a';
    out.score = a / std::max<size_t>(1, in.completion.size());
    return out;
  }
};

void grpo_steps(Transformer& model, const std::string& work, int64_t steps, int64_t prompts, int64_t group,
                int64_t micro, int64_t max_len) {
  const torch::Device dev = model->device();
  const std::string model_dir = work + "/qwen05b";
  recipes::write_tiny_tokenizer(work + "/tok");
  SaveOptions save;
  save.tokenizer_dir = work + "/tok";
  save_model(model, model->config(), model_dir, save);
  grpo::GrpoOptions o;
  o.steps = steps;
  o.prompts_per_step = prompts;
  o.group_size = group;
  o.micro_batch_size = micro;
  o.max_completion_length = max_len;
  o.max_batch = 128;
  o.token_budget = 262144;
  o.lr = 1e-6;
  o.save_every = 0;
  o.log_samples_every = 0;
  rewards::RewardEntry e;
  e.label = e.name = "letters";
  e.reward = std::make_shared<LetterReward>();
  o.rewards.add(e);
  o.accuracy_reward = "";
  grpo::GrpoInputs in;
  in.model_dir = model_dir;
  in.device = dev;
  in.dtype = torch::kBFloat16;
  std::vector<json> records;
  for (int i = 0; i < 64; ++i) records.push_back({{"prompt", "1+" + std::to_string(i) + "="}});
  in.prompts = grpo::shuffled_records(records, 1);
  in.on_step = [&](const json& m) {
    sync(dev);
    double peak_gb = 0;
#ifdef R1_TORCH_CUDA
    if (dev.is_cuda()) {
      const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(dev.index());
      peak_gb = stats.allocated_bytes[0].peak / double(1 << 30);  // [0]: all pools
      c10::cuda::CUDACachingAllocator::resetPeakStats(dev.index());
    }
#endif
    const std::string key = "grpo step " + std::to_string(m["step"].get<int64_t>());
    std::printf("%-44s %.2f s (generate %.2f, train %.2f), %.0f gen tok/s, peak GPU memory %.2f GiB\n", key.c_str(),
                m["time/step"].get<double>(), m["time/generate"].get<double>(), m["time/train"].get<double>(),
                m["tokens_per_s"].get<double>(), peak_gb);
    g_report["grpo"][key] = {{"seconds", m["time/step"]}, {"generate_s", m["time/generate"]},
                             {"train_s", m["time/train"]}, {"tok_s", m["tokens_per_s"]}, {"peak_gib", peak_gb}};
  };
#ifdef R1_TORCH_CUDA
  if (dev.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(dev.index());
#endif
  std::filesystem::remove_all(work + "/run");
  grpo::run_grpo(o, work + "/run", in);
}

// Runs one check; an exception is that check's FAIL (with its message) and the others still run.
template <typename F>
void guarded(const std::string& name, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    std::string what = e.what();
    check(name + " (threw)", false, what.substr(0, what.find('\n')), {{"error", what}});
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gpu_check: r1kit on a GPU (docs/gpu.md)"};
  std::string device = "cuda", fixtures = std::string(R1_SOURCE_DIR) + "/../shared/fixtures", json_out, work = "/tmp/r1_gpu_check";
  std::vector<int64_t> batches = {1, 32, 128};
  int64_t prompt_len = 64, new_tokens = 256, grpo_steps_n = 2, prompts = 32, group = 8, micro = 8, max_len = 512;
  bool skip_decode = false, skip_grpo = false, tiny = false;
  app.add_option("--device", device, "cuda, cuda:N (or cpu to rehearse)");
  app.add_option("--fixtures", fixtures, "directory with tiny-qwen2/ and tiny-llama/");
  app.add_option("--json", json_out, "write the report here");
  app.add_option("--work", work, "scratch directory");
  app.add_option("--batches", batches, "decode batch sizes")->delimiter(',');
  app.add_option("--prompt-len", prompt_len);
  app.add_option("--new-tokens", new_tokens);
  app.add_option("--grpo-steps", grpo_steps_n);
  app.add_option("--prompts", prompts, "GRPO prompts per step");
  app.add_option("--group", group, "GRPO group size");
  app.add_option("--micro-batch", micro);
  app.add_option("--max-completion", max_len);
  app.add_flag("--skip-decode", skip_decode);
  app.add_flag("--skip-grpo", skip_grpo);
  app.add_flag("--tiny", tiny, "a 2-layer model of the same vocabulary instead of the 0.5B shape (CPU rehearsal)");
  CLI11_PARSE(app, argc, argv);

  const torch::Device dev = parse_device(device, "--device");
  std::printf("LibTorch %s, %s; device %s\n", TORCH_VERSION, describe_cuda_devices().c_str(), device.c_str());
  g_report["libtorch"] = TORCH_VERSION;
  g_report["devices"] = describe_cuda_devices();
  g_report["device"] = device;
  make_dirs(work);
  Timer total;
  for (const char* name : {"tiny-qwen2", "tiny-llama"}) {
    const std::string dir = fixtures + "/" + name;
    if (!path_exists(dir + "/expected.json")) {
      check(std::string(name) + " fixture", false, "not found: " + dir, json::object());
      continue;
    }
    guarded(name, [&] { check_fixture(dir, name, dev); });
  }
  guarded("master weights", [&] { check_master_weights(dev); });
  if (!skip_decode || !skip_grpo) {
    const ModelConfig cfg = qwen05b_config(tiny);
    std::printf("model: %s-shaped random bf16, %lld layers, hidden %lld, vocab %lld\n", tiny ? "tiny Qwen2.5" : "Qwen2.5-0.5B",
                static_cast<long long>(cfg.num_hidden_layers), static_cast<long long>(cfg.hidden_size),
                static_cast<long long>(cfg.vocab_size));
    Transformer model = random_model(cfg, dev);
    if (!skip_decode) guarded("decode", [&] { decode_throughput(model, batches, prompt_len, new_tokens); });
    if (!skip_grpo) guarded("grpo", [&] { grpo_steps(model, work, grpo_steps_n, prompts, group, micro, max_len); });
  }
  g_report["seconds"] = total.seconds();
  g_report["failures"] = g_failures;
  std::printf("gpu_check: %d check(s) failed, %.1f s\n", g_failures, total.seconds());
  if (!json_out.empty()) write_file_atomic(json_out, g_report.dump(1) + "\n");
  return g_failures == 0 ? 0 : 1;
}
