// Per-run memory and task limits through cgroups, when the host lets us create them (cgroup v1
// memory + pids controllers, or v2 with both enabled). One cgroup per sandbox slot, reused across
// runs: creating and removing memory cgroups per run costs more than the run itself.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace r1kit::sandbox {

struct CgroupStats {
  std::int64_t peak_bytes = -1;  // -1 when the host does not report it
  bool oom_killed = false;       // the kernel OOM-killed something in the cgroup during the run
  double cpu_s = -1;             // CPU of every process of the run (-1: no cpu accounting here)
};

// Where the cgroup filesystems and our own membership are read; tests point these at a fake tree.
struct CgroupPaths {
  std::string root = "/sys/fs/cgroup";             // v2 mount, or the tmpfs holding the v1 mounts
  std::string self_cgroup = "/proc/self/cgroup";  // "N:controllers:/path" lines
};

class Cgroups {
 public:
  // Null when cgroups are unusable here; `why` says why (shown by `r1kit sandbox run` diagnostics).
  static std::unique_ptr<Cgroups> detect(std::string* why, const CgroupPaths& paths = {});
  ~Cgroups();  // kills leftovers and removes every directory it created

  const std::string& mode() const { return mode_; }  // "v1" or "v2"
  // Sets the slot's limits, resets its counters and returns the cgroup.procs files a child joins.
  std::vector<std::string> prepare(int slot, std::int64_t memory_bytes, int max_tasks);
  // SIGKILLs every process still in the slot and waits (bounded) until it is empty.
  // Returns false if something survived.
  bool kill_all(int slot);
  CgroupStats stats(int slot);

 private:
  Cgroups() = default;
  struct Slot {
    std::vector<std::string> dirs;  // one per hierarchy (v1: memory, pids; v2: one)
    std::int64_t oom_before = 0;
    double cpu_before = 0;
  };
  double cpu_seconds(const Slot& s);
  Slot& slot_dirs(int slot);
  std::string mode_;
  std::vector<std::string> bases_;  // our own directories, one per hierarchy (v1: memory, pids[, cpuacct])
  std::mutex mu_;
  std::vector<std::unique_ptr<Slot>> slots_;
};

}  // namespace r1kit::sandbox
