// Tokenizer speed on GSM8K test texts (question + "\n" + answer, 1319 strings):
//  - load time of tokenizer.json;
//  - encode, one string at a time on one thread (as HF's baseline is measured), first pass (cold
//    word cache) and best of N warm passes, in tokens/s and MB/s of UTF-8 input;
//  - decode of the same ids;
//  - optionally encode with several threads sharing one Tokenizer (--threads).
// The Hugging Face baseline (tokenizers 0.22.2 via Node.js) is measured by the harness described
// in docs/tokenizer.md on the same texts.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "core/json.h"
#include "model/tokenizer.h"

using namespace r1kit;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

int main(int argc, char** argv) {
  std::string tok_dir = std::string(R1_SHARED_DIR) + "/tokenizers/qwen3";
  std::string data = std::string(R1_SHARED_DIR) + "/data/gsm8k/test.jsonl";
  int passes = 5, threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--tokenizer") tok_dir = argv[i + 1];
    else if (a == "--data") data = argv[i + 1];
    else if (a == "--passes") passes = std::max(1, std::atoi(argv[i + 1]));
    else if (a == "--threads") threads = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: tokenizer_bench [--tokenizer DIR] [--data FILE] [--passes N] [--threads N]\n");
      return 2;
    }
  }
  try {
    std::vector<std::string> texts;
    size_t bytes = 0;
    for_each_jsonl(data, [&](const json& r, int) {
      texts.push_back(r.at("question").get<std::string>() + "\n" + r.at("answer").get<std::string>());
      bytes += texts.back().size();
    });
    auto t0 = Clock::now();
    const Tokenizer tok = Tokenizer::from_file(tok_dir);
    const double load_s = seconds_since(t0);

    size_t tokens = 0;
    std::vector<std::vector<int32_t>> ids(texts.size());
    t0 = Clock::now();
    for (size_t i = 0; i < texts.size(); ++i) ids[i] = tok.encode(texts[i]);
    const double cold_s = seconds_since(t0);
    for (const auto& v : ids) tokens += v.size();

    double best = 1e30;
    for (int p = 0; p < passes; ++p) {
      t0 = Clock::now();
      size_t n = 0;
      for (const auto& t : texts) n += tok.encode(t).size();
      best = std::min(best, seconds_since(t0));
      if (n != tokens) std::fprintf(stderr, "warning: token count changed between passes\n");
    }
    t0 = Clock::now();
    size_t out_bytes = 0;
    for (const auto& v : ids) out_bytes += tok.decode(v).size();
    const double decode_s = seconds_since(t0);

    std::printf("tokenizer %s\ndata %s: %zu texts, %.2f MB, %zu tokens\n", tok_dir.c_str(), data.c_str(), texts.size(),
                bytes / 1e6, tokens);
    std::printf("load: %.3f s\n", load_s);
    std::printf("encode, 1 thread, first pass (cold cache): %.1f ms  %.0f tokens/s  %.2f MB/s\n", cold_s * 1e3,
                tokens / cold_s, bytes / 1e6 / cold_s);
    std::printf("encode, 1 thread, best of %d warm passes:   %.1f ms  %.0f tokens/s  %.2f MB/s  (%.2f us/text)\n",
                passes, best * 1e3, tokens / best, bytes / 1e6 / best, best * 1e6 / texts.size());
    std::printf("decode, 1 thread: %.1f ms  %.0f tokens/s (%zu bytes out)\n", decode_s * 1e3, tokens / decode_s,
                out_bytes);
    if (threads > 1) {
      std::atomic<size_t> next{0}, n{0};
      t0 = Clock::now();
      std::vector<std::thread> pool;
      for (int w = 0; w < threads; ++w)
        pool.emplace_back([&] {
          for (size_t i; (i = next.fetch_add(1)) < texts.size();) n += tok.encode(texts[i]).size();
        });
      for (auto& th : pool) th.join();
      const double mt = seconds_since(t0);
      std::printf("encode, %d threads: %.1f ms  %.0f tokens/s  %.2f MB/s\n", threads, mt * 1e3, n / mt,
                  bytes / 1e6 / mt);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
