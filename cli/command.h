// Subcommands of the `r1kit` command register themselves: each cli/cmd_*.cc defines
//   static r1kit::cli::Registrar reg{"name", "one-line help", [](CLI::App& sub) { ...; return run_fn; }};
// so adding a command never edits main.cc.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace r1kit::cli {

// setup adds the command's options to `sub` and returns the function that runs it (exit code).
using CommandSetup = std::function<std::function<int()>(CLI::App& sub)>;

struct Command {
  std::string name, help;
  CommandSetup setup;
};

std::vector<Command>& commands();

struct Registrar {
  Registrar(std::string name, std::string help, CommandSetup setup) {
    commands().push_back({std::move(name), std::move(help), std::move(setup)});
  }
};

}  // namespace r1kit::cli
