#include "core/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "core/check.h"
#include "core/logging.h"

extern char** environ;

namespace r1kit {

int free_tcp_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  R1_CHECK(fd >= 0, "launcher: socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  R1_CHECK(ok, "launcher: could not find a free port");
  return ntohs(addr.sin_port);
}

LaunchResult launch_ranks(const std::vector<std::string>& argv, const LaunchOptions& o) {
  R1_CHECK(!argv.empty(), "launch: no command to run");
  R1_CHECK(o.nproc >= 1, "launch: --nproc must be >= 1, got ", o.nproc);
  R1_CHECK(o.nnodes >= 1 && o.node_rank >= 0 && o.node_rank < o.nnodes, "launch: --node-rank ", o.node_rank,
           " must be in [0, --nnodes ", o.nnodes, ")");
  R1_CHECK(o.nnodes == 1 || o.master_port > 0, "launch: a multi-node job needs an explicit --master-port");
  const int port = o.master_port > 0 ? o.master_port : free_tcp_port();
  const int world = o.nproc * o.nnodes;

  std::vector<pid_t> pids;
  auto stop_all = [&](int sig) {
    for (pid_t p : pids) ::kill(p, sig);
  };
  for (int local = 0; local < o.nproc; ++local) {
    std::map<std::string, std::string> vars = o.env;
    vars["RANK"] = std::to_string(o.node_rank * o.nproc + local);
    vars["LOCAL_RANK"] = std::to_string(local);
    vars["WORLD_SIZE"] = std::to_string(world);
    vars["LOCAL_WORLD_SIZE"] = std::to_string(o.nproc);
    vars["MASTER_ADDR"] = o.master_addr;
    vars["MASTER_PORT"] = std::to_string(port);
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      if (!vars.count(kv.substr(0, kv.find('=')))) env_strings.push_back(kv);
    }
    for (const auto& [k, v] : vars) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp, args;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_copy = argv;
    for (auto& s : argv_copy) args.push_back(s.data());
    args.push_back(nullptr);
    pid_t pid;
    const int rc = argv[0].find('/') == std::string::npos
                       ? ::posix_spawnp(&pid, argv[0].c_str(), nullptr, nullptr, args.data(), envp.data())
                       : ::posix_spawn(&pid, argv[0].c_str(), nullptr, nullptr, args.data(), envp.data());
    if (rc != 0) {
      stop_all(SIGKILL);
      for (pid_t p : pids) ::waitpid(p, nullptr, 0);
      R1_FAIL("launch: cannot start '", argv[0], "' (", std::strerror(rc), ")");
    }
    pids.push_back(pid);
  }

  LaunchResult res;
  res.wait_status.assign(pids.size(), -1);
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  clock::time_point term_sent{};
  bool terminating = false;
  size_t running = pids.size();
  while (running > 0) {
    for (size_t r = 0; r < pids.size(); ++r) {
      if (res.wait_status[r] != -1) continue;
      int st = 0;
      if (::waitpid(pids[r], &st, WNOHANG) != pids[r]) continue;
      res.wait_status[r] = st;
      --running;
      const bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
      if (!ok && res.first_failed_rank < 0) {
        res.first_failed_rank = static_cast<int>(r);
        res.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        spdlog::error("launch: local rank {} failed ({} {}); stopping the other ranks", r,
                      WIFEXITED(st) ? "exit code" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
      }
    }
    if (running == 0) break;
    const bool timed_out = o.timeout_s > 0 && std::chrono::duration<double>(clock::now() - start).count() > o.timeout_s;
    if ((res.first_failed_rank >= 0 || timed_out) && !terminating) {
      if (timed_out && res.first_failed_rank < 0) res.exit_code = 124;
      terminating = true;
      term_sent = clock::now();
      for (size_t r = 0; r < pids.size(); ++r)
        if (res.wait_status[r] == -1) ::kill(pids[r], SIGTERM);
    }
    if (terminating && std::chrono::duration<double>(clock::now() - term_sent).count() > o.grace_s) {
      for (size_t r = 0; r < pids.size(); ++r)
        if (res.wait_status[r] == -1) ::kill(pids[r], SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return res;
}

}  // namespace r1kit
