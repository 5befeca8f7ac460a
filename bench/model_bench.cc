// Decode-step cost of Transformer::forward with a KvCache on a random Qwen2-shaped model, against
// a floor measured in the same run: the same step's weight matmuls alone (q/k/v/o, gate/up/down,
// lm_head for B tokens). overhead = step / floor; 1.0 would mean attention, norms, RoPE, masks and
// cache writes cost nothing. Also reports the no-cache alternative (re-running the whole context).
//
//   build-model/bench/model_bench [layers hidden ctx]   (defaults 4 256 128)
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "model/kv_cache.h"
#include "model/threads.h"
#include "model/transformer.h"

using namespace r1kit;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median-free simple timing: run fn `reps` times after one warm-up, return seconds per call.
template <class F>
double time_per_call(F&& fn, int reps) {
  fn();
  const double t0 = now();
  for (int i = 0; i < reps; ++i) fn();
  return (now() - t0) / reps;
}

}  // namespace

int main(int argc, char** argv) {
  // Three optional positive integers (not a Google Benchmark binary: no --benchmark_* flags).
  int64_t args[3] = {4, 256, 128};
  const char* names[3] = {"layers", "hidden", "ctx"};
  const char* usage = "usage: %s [layers hidden ctx]   (defaults 4 256 128)\n";
  if (argc > 4) {
    std::fprintf(stderr, usage, argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; ++i) {
    char* end = nullptr;
    const long long v = std::strtoll(argv[i], &end, 10);
    if (end == argv[i] || *end != '\0' || v < 1 || (i == 2 && v % 64 != 0)) {
      std::fprintf(stderr, "model_bench: %s must be a positive integer%s, got '%s'\n", names[i - 1],
                   i == 2 ? " (a multiple of 64, the head size)" : "", argv[i]);
      std::fprintf(stderr, usage, argv[0]);
      return 2;
    }
    args[i - 1] = v;
  }
  const int64_t layers = args[0], hidden = args[1], ctx = args[2];
  const int threads = set_default_threads();
  ModelConfig c;
  c.model_type = "qwen2";
  c.architecture = "Qwen2ForCausalLM";
  c.vocab_size = 32000;
  c.hidden_size = hidden;
  c.intermediate_size = hidden * 11 / 4;
  c.num_hidden_layers = layers;
  c.num_attention_heads = hidden / 64;
  c.num_key_value_heads = std::max<int64_t>(1, hidden / 256);
  c.head_dim = 64;
  c.max_position_embeddings = 4096;
  c.tie_word_embeddings = true;
  c.attention_bias = true;
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  Transformer model(c);
  std::printf("model: %lld layers, hidden %lld, %lld heads / %lld kv, vocab %lld, %.1fM params, %d threads, "
              "context %lld\n\n",
              (long long)layers, (long long)hidden, (long long)c.num_attention_heads, (long long)c.num_key_value_heads,
              (long long)c.vocab_size, c.num_parameters() / 1e6, threads, (long long)ctx);
  std::printf("| batch | decode step ms | tokens/s | matmul floor ms | step / floor | no-cache step ms |\n");
  std::printf("| ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (int64_t B : {1, 4, 16, 64}) {
    const int reps = B >= 16 ? 10 : 20;
    KvCache cache(c, B, ctx + reps + 2, torch::kFloat32, torch::kCPU);
    auto prompt = torch::randint(c.vocab_size, {B, ctx}, torch::kLong);
    model->forward(prompt, torch::arange(ctx, torch::kLong).view({1, ctx}).expand({B, ctx}).contiguous(), &cache);
    auto ids = torch::randint(c.vocab_size, {B, 1}, torch::kLong);
    int64_t pos = ctx;
    const double step = time_per_call(
        [&] {
          model->forward(ids, torch::full({B, 1}, pos++, torch::kLong), &cache);
        },
        reps);

    // Floor: the step's weight matmuls for B tokens, nothing else.
    auto x = torch::randn({B, hidden});
    auto xi = torch::randn({B, c.intermediate_size});
    auto& layer0 = *model->layers->ptr<DecoderLayerImpl>(0);
    const double floor = time_per_call(
        [&] {
          for (int64_t l = 0; l < layers; ++l) {
            auto& L = *model->layers->ptr<DecoderLayerImpl>(l);
            L.self_attn->q_proj(x);
            L.self_attn->k_proj(x);
            L.self_attn->v_proj(x);
            L.self_attn->o_proj(x);
            L.mlp->gate_proj(x);
            L.mlp->up_proj(x);
            L.mlp->down_proj(xi);
          }
          torch::nn::functional::linear(x, model->lm_head_weight());
        },
        reps);
    (void)layer0;

    // No cache: the whole context re-run for one new token (what decoding costs without a cache).
    double nocache = 0;
    if (B <= 4) {
      auto full = torch::randint(c.vocab_size, {B, ctx}, torch::kLong);
      auto fpos = torch::arange(ctx, torch::kLong).view({1, ctx}).expand({B, ctx}).contiguous();
      nocache = time_per_call([&] { model->forward(full, fpos); }, 2);
    }
    std::printf("| %lld | %.2f | %.0f | %.2f | %.2f | %s |\n", (long long)B, step * 1e3, B / step, floor * 1e3,
                step / floor, nocache > 0 ? std::to_string(nocache * 1e3).substr(0, 7).c_str() : "-");
  }
  return 0;
}
