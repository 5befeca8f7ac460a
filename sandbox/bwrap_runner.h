// The real sandbox: every run is a fresh bubblewrap container (new user, pid, net, ipc, uts and mount
// namespaces; /usr read-only; a private tmpfs work directory; no network; seccomp), started with an
// empty environment as an unprivileged host uid, inside a per-slot cgroup when the host offers one,
// under rlimits, with a wall clock that kills the whole tree. Compiled languages are compiled in
// the same kind of sandbox (with their own limits) and the binaries cached by source.
//
//   auto runner = sandbox::make_runner({});          // throws if bubblewrap is unusable
//   ExecResult r = runner->run({"python", "print(1)"});
#pragma once
#include <condition_variable>
#include <cstdint>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sandbox/runner.h"

namespace r1kit {
class ConfigNode;
}

namespace r1kit::sandbox {

class Cgroups;

struct SandboxOptions {
  // Runs programs WITHOUT isolation (rlimits and a temp directory only) when bubblewrap is missing
  // or unusable. Never the default: without it such a host refuses to run untrusted code.
  bool unsafe_no_isolation = false;
  std::string bwrap_path = "/usr/bin/bwrap";  // the bubblewrap binary
  // When r1kit runs as root, slot i runs as host uid/gid uid_base + (pid % 1024) * max_slots + i:
  // each slot its own uid (RLIMIT_NPROC counts per uid), each r1kit process its own range.
  int uid_base = 1900000;
  int max_slots = 64;           // concurrent runs at most (each has its own uid and cgroup)
  bool use_cgroups = true;      // memory/pids cgroups when the host allows; rlimits otherwise
  std::size_t compile_cache_entries = 4096;  // compiled binaries kept in memory (LRU)
  Limits compile_limits = default_compile_limits();  // limits of the compile step

  static Limits default_compile_limits() {
    Limits l;
    l.time_limit_s = 20;
    l.wall_limit_s = 30;
    l.memory_mb = 2048;
    l.max_tasks = 16;
    l.file_size_mb = 256;
    l.max_open_files = 256;
    l.stack_mb = 64;
    l.max_stdout_bytes = 64u << 20;  // the binary itself comes back on stdout
    l.max_stderr_bytes = 64u << 10;
    return l;
  }
  // Reads the keys above (limits as compile_time_limit_s / compile_memory_mb).
  static SandboxOptions from_config(ConfigNode& node);
};

// Checks whether bubblewrap can create a sandbox here; returns "" if so, else the reason.
std::string probe_bwrap(const SandboxOptions& options);

// The bubblewrap runner, or the unsafe one when bubblewrap is unusable and the options opt in;
// otherwise throws r1kit::Error saying why and how to opt in.
std::unique_ptr<Runner> make_runner(const SandboxOptions& options);

class BwrapRunner : public Runner {
 public:
  // isolated=false is the explicit unsafe mode: no namespaces, no seccomp.
  BwrapRunner(SandboxOptions options, bool isolated);
  ~BwrapRunner() override;
  ExecResult run(const ExecRequest& request) override;
  std::string name() const override { return isolated_ ? "bwrap" : "unsafe"; }
  // "v1" / "v2" / "none (<reason>)".
  std::string cgroup_mode() const;
  // The host uids this runner's programs run as: [first, last]; (-1, -1) when not root.
  std::pair<int, int> uid_range() const;
  // Whether programs may use the kernel keyring (keyctl, add_key, request_key): only when every
  // run has its own user namespace and its own host uid (root, Linux >= 5.3). Else *why says why not.
  bool keyring_allowed(std::string* why = nullptr) const;

  // One sandboxed process: the files are placed in the work directory before it starts.
  struct File {
    std::string name, data;
    bool executable = false;
  };
  ExecResult run_step(const std::vector<std::string>& argv, const std::vector<File>& files,
                      const std::string& stdin_data, const Limits& limits);

 private:
  struct Compiled {
    bool ok = false;
    ExecResult result;  // the compile step (status, compile output) when !ok
    std::string binary;
  };
  std::shared_ptr<const Compiled> compile(const struct Language& lang, const std::string& source, bool& cached);
  int acquire_slot();
  void release_slot(int slot);

  SandboxOptions options_;
  bool isolated_;
  bool as_root_;
  int uid_first_ = -1;  // uid of slot 0 when as_root_
  bool keyring_ = false;
  std::string keyring_why_;
  std::unique_ptr<Cgroups> cgroups_;
  std::string cgroup_why_;
  std::vector<std::string> system_binds_;  // bwrap arguments that expose /usr and its symlinks

  std::mutex slot_mu_;
  std::condition_variable slot_cv_;
  std::vector<int> free_slots_;

  std::mutex cache_mu_;
  std::list<std::string> lru_;  // keys, most recent first
  std::unordered_map<std::string, std::pair<std::shared_future<std::shared_ptr<const Compiled>>,
                                            std::list<std::string>::iterator>>
      cache_;
};

}  // namespace r1kit::sandbox
