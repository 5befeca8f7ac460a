// Rollout engine throughput on a random-weight Qwen2-shaped model (hidden 512, 8 layers, 8 heads,
// 2 KV heads, vocab 32000), measured in one run against two baselines:
//   (a) a naive loop that re-runs the whole sequence every step (no KV cache), same sampler;
//   (b) the machine's matmul throughput (sgemm [512 x 2048] @ [2048 x 2048]), to report the
//       fraction of peak FLOP/s that decoding reaches.
// Prints a Markdown table (and --json FILE writes the figures).
//
//   build-rollout/bench/rollout_bench [--batches 1,16,64] [--prompt-len 32] [--new-tokens 64]
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "core/fs.h"
#include "core/json.h"
#include "core/timer.h"
#include "model/threads.h"
#include "rollout/engine.h"

using namespace r1kit;

namespace {

ModelConfig bench_config(int64_t intermediate) {
  ModelConfig c;
  c.model_type = "qwen2";
  c.architecture = "Qwen2ForCausalLM";
  c.vocab_size = 32000;
  c.hidden_size = 512;
  c.intermediate_size = intermediate;
  c.num_hidden_layers = 8;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 2;
  c.head_dim = 64;
  c.max_position_embeddings = 4096;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 1e6;
  c.tie_word_embeddings = true;
  c.attention_bias = true;
  return c;
}

// Multiply-adds x 2 per generated token at context length `ctx`: every weight matrix (lm_head
// included) once, plus attention scores and values over the context.
double flops_per_token(const ModelConfig& c, double ctx) {
  const double C = c.hidden_size, D = c.head_dim, H = c.num_attention_heads, KV = c.num_key_value_heads;
  const double per_layer = C * H * D + 2 * C * KV * D + H * D * C + 3 * C * c.intermediate_size;
  return 2.0 * (c.num_hidden_layers * per_layer + C * c.vocab_size) + c.num_hidden_layers * 4.0 * H * D * ctx;
}

double matmul_gflops(double seconds) {
  auto a = torch::randn({512, 2048});
  auto b = torch::randn({2048, 2048});
  auto out = torch::empty({512, 2048});
  for (int i = 0; i < 3; ++i) torch::mm_out(out, a, b);  // warm up
  Timer t;
  int64_t n = 0;
  while (t.seconds() < seconds) {
    torch::mm_out(out, a, b);
    ++n;
  }
  return 2.0 * 512 * 2048 * 2048 * n / t.seconds() / 1e9;
}

std::vector<PromptRequest> random_prompts(int64_t n, int64_t len, int64_t vocab, uint64_t seed) {
  torch::manual_seed(seed);
  auto ids = torch::randint(vocab, {n, len}, torch::kLong);
  std::vector<PromptRequest> out(n);
  for (int64_t i = 0; i < n; ++i) out[i].prompt_ids.assign(ids[i].data_ptr<int64_t>(), ids[i].data_ptr<int64_t>() + len);
  return out;
}

// The baseline: every step runs the full [B, L] sequence through the model, no cache.
double naive_tokens_per_s(Transformer& model, const std::vector<PromptRequest>& prompts, const SamplingOptions& o,
                          int64_t steps) {
  c10::InferenceMode guard;
  const int64_t B = static_cast<int64_t>(prompts.size()), P = static_cast<int64_t>(prompts[0].prompt_ids.size());
  std::vector<int64_t> flat;
  for (const auto& p : prompts) flat.insert(flat.end(), p.prompt_ids.begin(), p.prompt_ids.end());
  auto ids = torch::tensor(flat, torch::kLong).view({B, P});
  std::vector<SampleRow> rows(B);
  Timer t;
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t L = ids.size(1);
    auto pos = torch::arange(L, torch::kLong).unsqueeze(0).expand({B, L});
    auto logits = model->forward(ids, pos).select(1, L - 1);
    for (int64_t b = 0; b < B; ++b) rows[b] = {&o, static_cast<uint64_t>(b), 0, s};
    auto drawn = sample_tokens(logits, rows);
    ids = torch::cat({ids, torch::tensor(drawn.tokens, torch::kLong).view({B, 1})}, 1);
  }
  return B * steps / t.seconds();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rollout engine benchmark"};
  std::vector<int64_t> batches = {1, 16, 64};
  int64_t prompt_len = 32, new_tokens = 64, intermediate = 1024;
  std::vector<int64_t> naive_steps = {16, 16, 8};
  double matmul_s = 2.0, temperature = 1.0;
  std::string json_out;
  app.add_option("--batches", batches, "batch sizes")->delimiter(',');
  app.add_option("--prompt-len", prompt_len, "prompt tokens");
  app.add_option("--new-tokens", new_tokens, "tokens generated per sequence by the engine");
  app.add_option("--naive-steps", naive_steps, "steps of the no-cache baseline per batch size")->delimiter(',');
  app.add_option("--intermediate", intermediate, "MLP width");
  app.add_option("--temperature", temperature, "sampling temperature (0: greedy)");
  app.add_option("--matmul-seconds", matmul_s, "duration of the matmul peak measurement");
  app.add_option("--json", json_out, "write the figures to this file");
  CLI11_PARSE(app, argc, argv);

  const int threads = set_default_threads();
  const ModelConfig cfg = bench_config(intermediate);
  torch::manual_seed(0);
  Transformer model(cfg);
  model->eval();
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();

  const double peak = matmul_gflops(matmul_s);
  std::printf("model: qwen2-shaped, %lld parameters (hidden 512, 8 layers, 8 heads / 2 KV, intermediate %lld, "
              "vocab 32000, tied), float32, %d threads\n",
              static_cast<long long>(params), static_cast<long long>(intermediate), threads);
  std::printf("matmul peak (sgemm 512x2048 @ 2048x2048): %.1f GFLOP/s\n\n", peak);
  std::printf("| batch | prefill tok/s | decode tok/s (model) | decode tok/s (step incl. sampling) | naive tok/s | "
              "speed-up vs naive | decode GFLOP/s | fraction of matmul peak |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");

  json report = {{"params", params}, {"threads", threads}, {"matmul_gflops", peak}, {"prompt_len", prompt_len},
                 {"new_tokens", new_tokens}, {"rows", json::array()}};
  SamplingOptions o;
  o.temperature = temperature;
  o.max_new_tokens = new_tokens;
  o.ignore_eos = true;
  for (size_t bi = 0; bi < batches.size(); ++bi) {
    const int64_t B = batches[bi];
    auto prompts = random_prompts(B, prompt_len, cfg.vocab_size, 100 + B);
    EngineOptions eo;
    eo.max_batch = B;
    eo.token_budget = B * (prompt_len + new_tokens);
    eo.max_prefill_tokens = std::max<int64_t>(4096, B * prompt_len);
    GenerationEngine engine(model, eo);
    engine.generate(random_prompts(B, prompt_len, cfg.vocab_size, 7), o);  // warm-up (allocations, caches)
    engine.reset_stats();
    engine.generate(prompts, o);
    const EngineStats& st = engine.stats();
    const double prefill = st.prefill_tokens / st.prefill_s;
    const double decode_model = st.decode_tokens / st.decode_s;
    const double decode_step = st.decode_tokens / (st.decode_s + st.sample_s * st.decode_tokens / st.generated_tokens);
    const double ctx = prompt_len + new_tokens / 2.0;
    const double gflops = decode_step * flops_per_token(cfg, ctx) / 1e9;
    const int64_t steps = naive_steps[std::min(bi, naive_steps.size() - 1)];
    const double naive = naive_tokens_per_s(model, prompts, o, steps);
    std::printf("| %lld | %.0f | %.0f | %.0f | %.0f | %.1fx | %.1f | %.0f%% |\n", static_cast<long long>(B), prefill,
                decode_model, decode_step, naive, decode_step / naive, gflops, 100.0 * gflops / peak);
    std::fflush(stdout);
    report["rows"].push_back({{"batch", B}, {"prefill_tok_s", prefill}, {"decode_tok_s_model", decode_model},
                              {"decode_tok_s", decode_step}, {"naive_tok_s", naive}, {"naive_steps", steps},
                              {"decode_gflops", gflops}, {"fraction_of_peak", gflops / peak}});
  }
  std::printf("\nprompt %lld tokens, %lld new tokens per sequence (temperature %.2g), naive baseline: %s steps "
              "from the same prompts (its cost per token grows with length, so a short run flatters it)\n",
              static_cast<long long>(prompt_len), static_cast<long long>(new_tokens), temperature,
              [&] {
                std::ostringstream s;
                for (size_t i = 0; i < naive_steps.size(); ++i) s << (i ? "," : "") << naive_steps[i];
                return s.str();
              }().c_str());
  if (!json_out.empty()) write_file_atomic(json_out, report.dump(2) + "\n");
  return 0;
}
