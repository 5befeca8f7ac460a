// Greedy decode tokens/s of r1kit's rollout engine against the PyTorch-eager peer
// (../shared/peers/eager_decode.py) on the same HF checkpoint, same thread count, same prompts
// shape, in the same run: for each batch size the two programs alternate `--reps` times and the
// table reports medians and the ratio.
//
//   decode_bench --shape default        # hidden 512, 8 layers, 8/2 heads, inter 1408, vocab 32000 (39M)
//   decode_bench --shape qwen2.5-0.5b   # hidden 896, 24 layers, 14/2 heads, inter 4864, vocab 151936
//   decode_bench --model DIR            # any HF checkpoint
//   decode_bench --dtype bfloat16       # the random shape stored in bfloat16, as HF ships Qwen2.5
//
// Random-weight shapes are written once as HF checkpoints under --work (r1kit's own save_model),
// so both sides load identical weights; both compute in float32 (a bfloat16 checkpoint is widened on
// load, and r1kit's decode then reads bfloat16 copies of the weights: model/decode_weight_copy.h). What is timed on each side: after a prefill of
// --prompt-len random tokens per row, --new-tokens decode steps of B rows (model forward, logits
// of the new position, greedy choice); tokens/s = B * new_tokens / that time. r1kit's figure also
// includes the first token's draw from the prefill logits. Also printed: the native linear alone over
// every weight matrix (at batch 1 the floor of a step) and the machine's memory read rate, with the
// batch-1 ceiling it sets for these weight bytes (docs/rollout.md).
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "core/check.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/memory.h"
#include "core/timer.h"
#include "model/decode_weight_copy.h"
#include "model/checkpoint.h"
#include "model/cpu_kernels.h"
#include "model/huge_pages.h"
#include "model/layer_ops.h"
#include "rollout/engine.h"

using namespace r1kit;

namespace {

// HF config.json of a named random shape.
json shape_config(const std::string& shape) {
  json c = {{"architectures", {"Qwen2ForCausalLM"}}, {"model_type", "qwen2"}, {"hidden_act", "silu"},
            {"max_position_embeddings", 4096}, {"rms_norm_eps", 1e-6}, {"rope_theta", 10000.0},
            {"tie_word_embeddings", true}, {"torch_dtype", "float32"}, {"use_sliding_window", false},
            {"eos_token_id", 0}, {"bos_token_id", 0}};
  if (shape == "default") {
    c.update({{"hidden_size", 512}, {"intermediate_size", 1408}, {"num_hidden_layers", 8},
              {"num_attention_heads", 8}, {"num_key_value_heads", 2}, {"vocab_size", 32000}});
  } else if (shape == "qwen2.5-0.5b") {
    c.update({{"hidden_size", 896}, {"intermediate_size", 4864}, {"num_hidden_layers", 24},
              {"num_attention_heads", 14}, {"num_key_value_heads", 2}, {"vocab_size", 151936},
              {"rope_theta", 1000000.0}, {"max_position_embeddings", 32768}});
  } else {
    R1_FAIL("decode_bench: unknown --shape '", shape, "' (default | qwen2.5-0.5b)");
  }
  return c;
}

// Writes a random checkpoint of `shape` to dir (once: an existing one with the same config is kept).
void ensure_random_checkpoint(const std::string& shape, const std::string& dir, torch::Dtype dtype) {
  json hf = shape_config(shape);
  hf["torch_dtype"] = dtype_name(dtype);
  if (path_exists(dir + "/config.json") && path_exists(dir + "/model.safetensors")) {
    const json have = parse_json(read_file(dir + "/config.json"), dir + "/config.json");
    if (have.value("hidden_size", 0) == hf["hidden_size"] && have.value("num_hidden_layers", 0) == hf["num_hidden_layers"] &&
        have.value("vocab_size", 0) == hf["vocab_size"] && have.value("torch_dtype", "") == hf["torch_dtype"])
      return;
  }
  std::printf("writing a random %s %s checkpoint to %s\n", shape.c_str(), dtype_name(dtype).c_str(), dir.c_str());
  const ModelConfig cfg = ModelConfig::from_hf_json(hf, dir + "/config.json");
  torch::manual_seed(0);
  Transformer model(cfg);
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    if (p.key().find("norm") != std::string::npos) p.value().fill_(1.0);
    else p.value().normal_(0.0, 0.02);
  }
  SaveOptions so;
  so.dtype = dtype;
  so.convert_dtype = true;
  save_model(model, cfg, dir, so);
}

struct Row {
  double r1kit = 0, peer = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// r1kit: one greedy generate() of B random prompts; decode tokens/s (model + token choice).
double r1kit_decode_tok_s(GenerationEngine& engine, int64_t B, int64_t prompt_len, int64_t new_tokens, int64_t vocab,
                          uint64_t seed) {
  torch::manual_seed(seed);
  auto ids = torch::randint(vocab, {B, prompt_len}, torch::kLong);
  std::vector<PromptRequest> prompts(B);
  for (int64_t i = 0; i < B; ++i)
    prompts[i].prompt_ids.assign(ids[i].data_ptr<int64_t>(), ids[i].data_ptr<int64_t>() + prompt_len);
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = new_tokens + 1;  // the first token comes from the prefill, then new_tokens decode steps
  o.ignore_eos = true;
  engine.reset_stats();
  engine.generate(prompts, o);
  const EngineStats& st = engine.stats();
  return static_cast<double>(st.decode_tokens) / (st.decode_s + st.sample_s);
}

// The peer, as a subprocess; returns its decode tok/s for batch B.
double peer_decode_tok_s(const std::string& python, const std::string& peer, const std::string& model_dir, int64_t B,
                         int64_t prompt_len, int64_t new_tokens, int threads) {
  const std::string cmd = python + " " + peer + " --model " + model_dir + " --batch " + std::to_string(B) +
                          " --prompt-len " + std::to_string(prompt_len) + " --new-tokens " + std::to_string(new_tokens) +
                          " --threads " + std::to_string(threads);
  FILE* f = popen(cmd.c_str(), "r");
  R1_CHECK(f != nullptr, "decode_bench: cannot run ", cmd);
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  const int rc = pclose(f);
  R1_CHECK(rc == 0, "decode_bench: the peer failed (exit ", rc, "): ", cmd, "\n", out);
  const json j = parse_json(out.substr(out.find('{')), "eager_decode.py output");
  return j.at("rows").at(0).at("decode_tok_s").get<double>();
}

// Every weight matrix a decode step reads (q, k, v, o, gate, up, down per layer, and the lm_head),
// each with its bfloat16 copy (made when the weights are bfloat16 numbers, as the decode step's are).
struct DecodeMatrices {
  explicit DecodeMatrices(Transformer& model) {
    for (const auto& p : model->named_parameters()) {
      const bool matrix = p.value().dim() == 2 && p.key().find("embed_tokens") == std::string::npos;
      if (matrix) weights.push_back(p.value());
    }
    weights.push_back(model->lm_head_weight());  // embed_tokens.weight when tied: streamed by the head
    copies = std::vector<DecodeWeightCopy>(weights.size());
    for (size_t i = 0; i < weights.size(); ++i) {
      const bool bf16 = copies[i].get(weights[i]).defined();
      bytes += static_cast<double>(weights[i].numel()) * (bf16 ? 2 : 4);
      bf16_matrices += bf16;
      chunked_matrices += !bf16 && copies[i].chunked(weights[i]).defined();  // what batches 1-3 read
    }
  }
  std::vector<torch::Tensor> weights;
  std::vector<DecodeWeightCopy> copies;
  double bytes = 0;  // what one pass streams
  int64_t bf16_matrices = 0, chunked_matrices = 0;
};

// One pass of the native linear kernel over every matrix of `m` for `batch` rows, with nothing else;
// returns tokens/s (batch / best time of `passes`). At batch 1 it is the floor of decoding: decode
// streams all weights once per token, so no decoder that keeps weights in these bytes and these
// threads can beat it on this machine. At larger batches it is the step's linears alone: the rest of
// r1kit's step (attention, norms, sampling, cache writes) is the gap between it and the decode column.
// The fastest of `passes` calls of fn, in seconds.
template <class F>
double best_seconds(int passes, F&& fn) {
  double best = 1e30;
  for (int r = 0; r < passes; ++r) {
    Timer t;
    fn();
    best = std::min(best, t.seconds());
  }
  return best;
}

double linears_alone_tok_s(DecodeMatrices& m, int64_t batch, int passes) {
  torch::NoGradGuard no_grad;
  const double best = best_seconds(passes, [&] {
    for (size_t i = 0; i < m.weights.size(); ++i)
      linear(torch::ones({batch, m.weights[i].size(1)}), m.weights[i], {}, Kernels::kNative, nullptr, &m.copies[i]);
  });
  return static_cast<double>(batch) / best;
}

// The machine's memory read rate at the current thread count: at::sum over a 1 GiB float tensor
// (far larger than any cache), best of 5, in GB/s. Batch-1 decode streams every weight once per
// token, so rate / weight bytes caps its tokens/s for any decoder that keeps the weights in those
// bytes, r1kit's and the peer's alike.
// `passes`: 5 for the figure printed up front; 2 before each r1kit rep, which records the rate the
// rep ran at (this VM's 2-thread rate flips between ~36 and ~70 GB/s from minute to minute).
double memory_read_gb_s(int passes = 5) {
  torch::NoGradGuard no_grad;
  static const torch::Tensor& buffer = *new torch::Tensor(torch::ones({int64_t{1} << 28}));  // never freed: no exit-time teardown
  const double best = best_seconds(passes, [&] {
    const float total = buffer.sum().item<float>();  // item(): waits for the whole read
    R1_CHECK(total > 0, "memory_read_gb_s: the sum of ones came back as ", total);
  });
  return static_cast<double>(buffer.numel()) * 4 / best / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"r1kit decode vs PyTorch eager (same checkpoint, same threads, same run)"};
  std::string shape = "default", model_dir, work = "bench-work", python = "/usr/bin/python3",
              peer = R1_SHARED_DIR "/peers/eager_decode.py", json_out;
  std::vector<int64_t> batches = {1, 16, 64};
  int64_t prompt_len = 64, new_tokens = 64;
  int threads = 1, reps = 3;
  bool no_peer = false;
  app.add_option("--shape", shape, "random checkpoint shape: default | qwen2.5-0.5b");
  app.add_option("--model", model_dir, "an HF checkpoint instead of a random shape");
  app.add_option("--work", work, "where random checkpoints are written");
  app.add_option("--batch", batches, "batch sizes")->delimiter(',');
  app.add_option("--prompt-len", prompt_len, "prompt tokens per row");
  app.add_option("--new-tokens", new_tokens, "decode steps");
  app.add_option("--threads", threads, "intra-op threads, both sides");
  app.add_option("--reps", reps, "alternating runs per batch size (median reported)");
  app.add_option("--python", python, "python running the peer (Debian python3-torch: same LibTorch/OpenBLAS)");
  app.add_option("--peer", peer, "eager_decode.py");
  app.add_flag("--no-peer", no_peer, "r1kit only");
  std::string dtype = "float32";
  app.add_option("--dtype", dtype, "storage dtype of the random checkpoint: float32 | bfloat16 (both sides compute in float32)");
  bool small_pages = false;
  app.add_flag("--small-pages", small_pages, "r1kit without huge pages for large tensors (model/huge_pages.h)");
  app.add_option("--json", json_out, "write the figures here");
  CLI11_PARSE(app, argc, argv);
  keep_freed_memory();  // the r1kit side runs with r1kit's process settings (cli/main.cc)
  if (!small_pages) use_huge_pages_for_large_tensors();

  if (model_dir.empty()) {
    const torch::Dtype storage = parse_dtype(dtype);
    model_dir = work + "/" + shape + (storage == torch::kFloat32 ? "" : "-" + dtype_name(storage));
    ensure_random_checkpoint(shape, model_dir, storage);
  }
  at::set_num_threads(threads);
  ModelConfig cfg;
  Transformer model = load_model(model_dir, &cfg, torch::kCPU, torch::kFloat32);
  model->eval();
  EngineOptions eo;
  const int64_t max_b = *std::max_element(batches.begin(), batches.end());
  eo.max_batch = max_b;
  eo.token_budget = max_b * (prompt_len + new_tokens + 1);
  eo.max_prefill_tokens = std::max<int64_t>(4096, max_b * prompt_len);
  GenerationEngine engine(model, eo);
  r1kit_decode_tok_s(engine, std::min<int64_t>(max_b, 4), prompt_len, 4, cfg.vocab_size, 1);  // warm-up

  std::printf("model %s: %.1fM parameters, hidden %lld, %lld layers, vocab %lld; %d thread(s) each; prompt %lld, "
              "%lld decode steps; r1kit kernels: %s\n\n",
              model_dir.c_str(), cfg.num_parameters() / 1e6, (long long)cfg.hidden_size,
              (long long)cfg.num_hidden_layers, (long long)cfg.vocab_size, threads, (long long)prompt_len,
              (long long)new_tokens, cpu::kernels().isa);
  DecodeMatrices matrices(model);
  const double weight_bytes = matrices.bytes;
  const double floor_tok_s = linears_alone_tok_s(matrices, 1, 5);
  std::printf("batch-1 floor: the native linear alone over the %.0f MB of weight matrices (of %lld, %lld read from "
              "bfloat16 copies, %lld from k-chunked float32 copies): %.1f tokens/s (%.1f GB/s)\n\n",
              weight_bytes / 1e6, (long long)matrices.weights.size(), (long long)matrices.bf16_matrices,
              (long long)matrices.chunked_matrices, floor_tok_s, weight_bytes * floor_tok_s / 1e9);
  const double read_gb_s = memory_read_gb_s();
  const double ceiling_tok_s = read_gb_s * 1e9 / weight_bytes;
  std::printf("memory read rate (at::sum over 1 GiB, %d thread(s)): %.1f GB/s, so batch-1 decode of these weight "
              "bytes cannot pass %.1f tokens/s\n\n",
              threads, read_gb_s, ceiling_tok_s);
  std::printf("| batch | r1kit decode tok/s | eager tok/s | r1kit / eager | r1kit's linears alone, tok/s |\n"
              "|---:|---:|---:|---:|---:|\n");
  json report = {{"model", model_dir}, {"threads", threads}, {"prompt_len", prompt_len}, {"new_tokens", new_tokens},
                 {"kernels", cpu::kernels().isa}, {"weight_bytes", weight_bytes},
                 {"bf16_matrices", matrices.bf16_matrices}, {"chunked_matrices", matrices.chunked_matrices},
                 {"batch1_floor_tok_s", floor_tok_s}, {"memory_read_gb_s", read_gb_s},
                 {"batch1_ceiling_tok_s", ceiling_tok_s}, {"rows", json::array()}};
  for (int64_t B : batches) {
    std::vector<double> ours, theirs, read_rates;
    for (int r = 0; r < reps; ++r) {  // alternate, so a change in machine load hits both sides
      read_rates.push_back(memory_read_gb_s(2));
      ours.push_back(r1kit_decode_tok_s(engine, B, prompt_len, new_tokens, cfg.vocab_size, 100 + r));
      if (!no_peer) theirs.push_back(peer_decode_tok_s(python, peer, model_dir, B, prompt_len, new_tokens, threads));
    }
    const double a = median(ours), b = median(theirs);
    const double alone = B == 1 ? floor_tok_s : linears_alone_tok_s(matrices, B, 3);
    std::printf("| %lld | %.1f | %s | %s | %.1f |\n", (long long)B, a,
                no_peer ? "-" : std::to_string(b).substr(0, 7).c_str(),
                no_peer ? "-" : (std::to_string(a / b).substr(0, 5) + "x").c_str(), alone);
    if (B == 1 && !no_peer)
      std::printf("|   | at most %.1f at the read rate | | at most %.2fx | |\n", ceiling_tok_s, ceiling_tok_s / b);
    std::printf("|   | read rate before each rep: %.0f-%.0f GB/s | | | |\n",
                *std::min_element(read_rates.begin(), read_rates.end()),
                *std::max_element(read_rates.begin(), read_rates.end()));
    std::fflush(stdout);
    report["rows"].push_back({{"batch", B}, {"r1kit_tok_s", ours}, {"eager_tok_s", theirs}, {"r1kit_median", a},
                              {"eager_median", b}, {"ratio", no_peer ? 0.0 : a / b},
                              {"linears_alone_tok_s", alone}, {"read_gb_s_before_reps", read_rates}});
  }
  if (!json_out.empty()) write_file_atomic(json_out, report.dump(2) + "\n");
  return 0;
}
