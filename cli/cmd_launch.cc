// r1kit launch: torchrun for r1kit on one node (or one node of several).
//   r1kit launch --nproc 2 -- run recipes/tiny-r1-zero.yaml --out runs/tiny
// starts 2 ranks of `r1kit run ...` with RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
// MASTER_ADDR and MASTER_PORT set (a free loopback port unless given); when one rank fails the
// others are stopped and the exit code is the failed rank's. The command after `--` is an r1kit
// subcommand; `--exec` runs any program instead. docs/distributed.md.
#include <unistd.h>

#include <iostream>

#include "cli/command.h"
#include "core/check.h"
#include "core/launcher.h"

namespace r1kit::cli {
namespace {

struct LaunchArgs {
  LaunchOptions opts;
  bool exec = false;
  std::vector<std::string> command;
};

std::string self_path() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  R1_CHECK(n > 0, "launch: cannot read /proc/self/exe");
  return std::string(buf, static_cast<size_t>(n));
}

int run_launch(const LaunchArgs& a) {
  R1_CHECK(!a.command.empty(), "launch: give the command after --, e.g. r1kit launch --nproc 2 -- run recipe.yaml");
  std::vector<std::string> argv = a.command;
  if (!a.exec) argv.insert(argv.begin(), self_path());
  LaunchResult r = launch_ranks(argv, a.opts);
  if (r.exit_code != 0) std::cerr << "r1kit launch: rank " << r.first_failed_rank << " failed; exit " << r.exit_code << "\n";
  return r.exit_code;
}

Registrar reg{"launch", "start N data-parallel ranks of an r1kit command (torchrun-style environment)",
              [](CLI::App& sub) {
                auto a = std::make_shared<LaunchArgs>();
                sub.add_option("--nproc", a->opts.nproc, "ranks on this node")->required();
                sub.add_option("--nnodes", a->opts.nnodes, "nodes in the job (default 1)");
                sub.add_option("--node-rank", a->opts.node_rank, "this node's index (default 0)");
                sub.add_option("--master-addr", a->opts.master_addr, "rank 0's host (default 127.0.0.1)");
                sub.add_option("--master-port", a->opts.master_port, "rendezvous port (default: a free one)");
                sub.add_flag("--exec", a->exec, "the command is a program, not an r1kit subcommand");
                sub.add_option("command", a->command, "the command to run, after --")->required();
                return [a] { return run_launch(*a); };
              }};

}  // namespace
}  // namespace r1kit::cli
