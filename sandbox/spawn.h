// Low-level process launch for the sandbox: Boost.Process forks and execs; in the child, before
// exec, we join cgroups, set rlimits, drop to an unprivileged uid and make every inherited descriptor
// close-on-exec. The parent feeds stdin, collects capped stdout/stderr, enforces the wall clock and
// reaps the child with wait4 (for its CPU time and peak RSS). Never leaves a zombie behind.
#pragma once
#include <sys/resource.h>
#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace r1kit::sandbox {

struct SpawnSpec {
  std::vector<std::string> argv;  // argv[0] is an absolute path
  std::vector<std::pair<std::string, std::string>> env;  // the whole environment (empty = none)
  std::string cwd = "/";
  std::string stdin_data;
  std::size_t stdout_cap = 1 << 20;  // bytes kept; one more byte stops the run
  std::size_t stderr_cap = 64 << 10;
  double wall_timeout_s = 10;
  std::vector<int> child_fds;  // inherited by the child at the same number; closed in the parent after fork
  int status_read_fd = -1;     // parent end of an extra pipe to collect (bwrap --json-status-fd); closed
  std::vector<std::pair<int, rlim_t>> rlimits;  // RLIMIT_* -> soft = hard value
  std::pair<int, rlim_t> cpu_limit{-1, 0};      // RLIMIT_CPU soft; hard = soft + 1 (SIGXCPU first)
  int uid = -1, gid = -1;                       // setgid/setuid before exec (needs root); -1 keeps ours
  std::vector<std::string> cgroup_procs;        // cgroup.procs files the child joins before exec
  bool new_process_group = false;               // the child leads a process group (killed as a group)
  // The child joins a new, empty session keyring before exec (and before the uid change, so the
  // keyring is charged to us): otherwise it would inherit ours, and keys one run links there would
  // be found by the next run, which inherits the same one.
  bool new_session_keyring = false;
  // Kills everything the run started; called on timeout / output overflow. Default: SIGKILL the
  // child (and its process group when new_process_group).
  std::function<void(pid_t)> kill_tree;
  // The status pipe names a "child-pid" (bwrap's pid-namespace init): when we kill the child, also
  // wait until that process is gone, i.e. until the whole pid namespace has been torn down.
  bool wait_for_status_child = false;
};

struct SpawnResult {
  bool started = false;
  std::string error;      // why it did not start
  int wait_status = 0;    // raw status from wait4
  double cpu_s = 0;       // user + system of the child and the descendants it reaped
  long max_rss_kb = 0;
  double wall_s = 0;
  std::string out, err, status_text;
  bool out_overflow = false, err_overflow = false, timed_out = false;
};

SpawnResult spawn_and_wait(const SpawnSpec& spec);

// Reopens 0/1/2 on /dev/null when closed (CI runs us without stdin): otherwise the next pipe or
// memfd would get descriptor 0 and be clobbered by the child's stdin. Call before creating any
// descriptor meant for a child. Also ignores SIGPIPE (writing to a program that already exited).
void ensure_std_fds_open();

// Makes this process the reaper of its descendants' orphans (PR_SET_CHILD_SUBREAPER), so that
// bwrap's pid-namespace init, orphaned when bwrap's outer process exits first, is reaped by
// spawn_and_wait instead of waiting as a zombie for the host's init. Process-wide and permanent.
bool become_child_subreaper();

// A memfd holding `data`, positioned at 0, close-on-exec (spawn clears that for child_fds).
// Throws r1kit::Error on failure.
int make_data_fd(const std::string& name, const std::string& data);

}  // namespace r1kit::sandbox
