// `r1kit logits`: one forward pass over a token sequence; prints one JSON object with the last
// position's logits and the log-probability of every next token given its prefix.
//   r1kit logits --model DIR --ids 1,2,3 [--device cuda] [--dtype bfloat16]
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "cli/model_options.h"
#include "core/json.h"

namespace {

using namespace r1kit;

int run_logits(const cli::ModelArgs& m, const std::string& ids_text) {
  ModelConfig cfg;
  Transformer model = cli::load_model_from_args(m, &cfg);
  const std::vector<int64_t> ids = cli::parse_id_list(ids_text, "--ids", cfg.vocab_size);
  const int64_t T = int64_t(ids.size());
  torch::NoGradGuard no_grad;
  auto logits = model->forward(torch::tensor(ids, torch::kLong).view({1, T}),
                               torch::arange(T, torch::kLong).view({1, T}))
                    .select(0, 0)
                    .cpu();  // [T,V] f32
  json out;
  auto last = logits[T - 1].contiguous();
  out["last_logits"] = std::vector<float>(last.data_ptr<float>(), last.data_ptr<float>() + last.numel());
  std::vector<double> lps;
  if (T > 1) {
    auto lp = torch::log_softmax(logits.narrow(0, 0, T - 1).to(torch::kFloat64), -1)
                  .gather(1, torch::tensor(std::vector<int64_t>(ids.begin() + 1, ids.end()), torch::kLong).view({T - 1, 1}))
                  .view({T - 1})
                  .contiguous();
    lps.assign(lp.data_ptr<double>(), lp.data_ptr<double>() + (T - 1));
  }
  out["token_logprobs"] = lps;
  std::cout << out.dump() << "\n";
  return 0;
}

r1kit::cli::Registrar reg{
    "logits", "print last-position logits and per-token log-probs of a token sequence as JSON",
    [](CLI::App& sub) {
      auto m = std::make_shared<cli::ModelArgs>();
      auto ids = std::make_shared<std::string>();
      cli::add_model_options(sub, *m);
      sub.add_option("--ids", *ids, "comma-separated token ids, e.g. 1,2,3")->required();
      return [m, ids]() -> int { return run_logits(*m, *ids); };
    }};

}  // namespace
