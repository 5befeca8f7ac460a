// `r1kit reward`: score a JSONL file of completions offline with a reward config, or list the
// registered rewards.
//   r1kit reward --config rewards.yaml --in samples.jsonl --out scored.jsonl [--threads N]
//   r1kit reward --list
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "core/check.h"
#include "core/config.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "rewards/registry.h"
#include "rewards/reward_set.h"
#include "rewards/score_jsonl.h"

namespace {

struct RewardArgs {
  std::string config, in, out;
  std::vector<std::string> overrides;
  unsigned threads = 0;
  std::size_t batch_size = 64;
  bool list = false;
  bool no_progress = false;
};

int run_reward(const RewardArgs& a) {
  using namespace r1kit;
  using namespace r1kit::rewards;
  if (a.list) {
    for (const auto& info : RewardRegistry::global().list()) {
      std::cout << info.name;
      for (const auto& alias : info.aliases) std::cout << " | " << alias;
      std::cout << "\n    " << info.help << "\n";
    }
    return 0;
  }
  R1_CHECK(!a.config.empty() && !a.in.empty() && !a.out.empty(),
           "--config, --in and --out are required (or --list)");
  ConfigNode node = ConfigNode::load(a.config, a.overrides);
  RewardSet set = RewardSet::from_config(node);
  node.finish();
  ThreadPool pool(a.threads);
  ScoreFileOptions opts;
  opts.batch_size = a.batch_size;
  if (a.no_progress) opts.progress = 0;
  Timer timer;
  RewardStats stats = score_jsonl_file(set, a.in, a.out, &pool, opts);
  const double seconds = timer.seconds();
  const long long n = stats.columns().back().n;
  std::cout << "scored " << n << " samples from " << a.in << " into " << a.out << " in " << seconds << " s ("
            << (seconds > 0 ? n / seconds : 0.0) << " samples/s)\n"
            << stats.table();
  return 0;
}

r1kit::cli::Registrar reg{
    "reward", "Score completions in a JSONL file with a reward config (or --list the rewards)",
    [](CLI::App& sub) {
      auto a = std::make_shared<RewardArgs>();
      sub.add_option("--config", a->config, "reward config (.yaml/.json) with a 'rewards:' list");
      sub.add_option("--in", a->in, "input JSONL: prompt, completion and dataset fields (top-level or under 'fields')");
      sub.add_option("--out", a->out, "output JSONL: each input line plus reward, rewards, reward_components, ...");
      sub.add_option("--set", a->overrides, "config override key.path=value (repeatable)");
      sub.add_flag("--no-progress", a->no_progress, "no progress bar on stderr (it only shows on a terminal anyway)");
      sub.add_option("--threads", a->threads, "worker threads (0 = all cores)");
      sub.add_option("--batch-size", a->batch_size, "samples scored per batch");
      sub.add_flag("--list", a->list, "list registered rewards with their options");
      return [a]() { return run_reward(*a); };
    }};

}  // namespace
