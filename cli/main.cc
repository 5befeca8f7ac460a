// r1kit: one binary for RL post-training of language models. Each subcommand lives in cli/cmd_*.cc.
#include <algorithm>
#include <iostream>

#include "cli/command.h"
#include "cli/fast_start.h"
#include "core/check.h"
#include "core/logging.h"
#include "core/memory.h"
#ifndef R1_CLI_FULL_BINARY  // defined in the torch-free executable only (cli/fast_start.h)
#include "model/huge_pages.h"
#endif

namespace r1kit::cli {
std::vector<Command>& commands() {
  static std::vector<Command> all;
  return all;
}
}  // namespace r1kit::cli

int main(int argc, char** argv) {
  using namespace r1kit;
  cli::exec_full_binary_unless_registered(argc, argv);  // build/r1kit: torch-free commands only
  keep_freed_memory();
#ifndef R1_CLI_FULL_BINARY
  use_huge_pages_for_large_tensors();
#endif
  CLI::App app{"r1kit: reinforcement-learning post-training of language models (GRPO, SFT, distillation)"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug|info|warn|error");
  auto& cmds = cli::commands();
  std::sort(cmds.begin(), cmds.end(), [](const cli::Command& a, const cli::Command& b) { return a.name < b.name; });
  std::vector<std::pair<CLI::App*, std::function<int()>>> runs;
  for (auto& c : cmds) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    runs.emplace_back(sub, c.setup(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  init_logging(log_level);
  for (auto& [sub, run] : runs) {
    if (!sub->parsed()) continue;
    try {
      return run();
    } catch (const std::exception& e) {
      std::cerr << "r1kit " << sub->get_name() << ": error: " << e.what() << "\n";
      return 1;
    }
  }
  return 1;
}
