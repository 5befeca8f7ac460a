// Starts N local ranks of a command with torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and supervises them like torchrun: when one rank
// fails (non-zero exit or a signal) the others get SIGTERM, then SIGKILL after a grace period.
// Used by `r1kit launch` and by the data-parallel tests.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace r1kit {

struct LaunchOptions {
  int nproc = 1;                          // ranks on this node
  int node_rank = 0;                      // this node's index (multi-node: ranks node_rank*nproc + i)
  int nnodes = 1;                         // nodes in the job
  std::string master_addr = "127.0.0.1";  // rank 0's host (TCPStore)
  int master_port = 0;                    // 0: a free port on this host (single node only)
  std::map<std::string, std::string> env;  // extra variables for every rank
  double grace_s = 10;                    // SIGTERM -> SIGKILL
  double timeout_s = 0;                   // kill everything after this long (0: never)
};

struct LaunchResult {
  std::vector<int> wait_status;  // per local rank, as waitpid reports it
  int exit_code = 0;             // 0 if every rank exited 0; else the first failure's code (128 + signal)
  int first_failed_rank = -1;
};

// Runs argv (argv[0] is the executable path, searched in PATH if it has no '/') as the local ranks
// and waits for all of them. A bad option or a failed spawn is an Error.
LaunchResult launch_ranks(const std::vector<std::string>& argv, const LaunchOptions& options);

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_tcp_port();

}  // namespace r1kit
