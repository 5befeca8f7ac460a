#include "sandbox/seccomp_filter.h"

#include <sched.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "core/check.h"
#include "sandbox/spawn.h"

namespace r1kit::sandbox {
namespace {

constexpr const char* kDenied[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "keyctl", "add_key", "request_key",
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsmount",
    "setns", "unshare", "swapon", "swapoff", "reboot", "acct", "quotactl", "syslog",
    "open_by_handle_at", "name_to_handle_at", "fanotify_init", "iopl", "ioperm",
    "settimeofday", "clock_settime", "adjtimex", "clock_adjtime", "lookup_dcookie",
    nullptr};

std::string build() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  R1_CHECK(ctx != nullptr, "sandbox: seccomp_init failed");
  struct Guard {
    scmp_filter_ctx c;
    ~Guard() { seccomp_release(c); }
  } guard{ctx};
  auto check = [](int rc, const char* what) {
    R1_CHECK(rc == 0, "sandbox: seccomp rule for ", what, " failed: ", std::strerror(-rc));
  };
  for (const char* const* name = kDenied; *name; ++name) {
    int nr = seccomp_syscall_resolve_name(*name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture / libseccomp version
    check(seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, nr, 0), *name);
  }
  // Only UNIX sockets (asyncio, multiprocessing); anything that could reach a network is denied.
  check(seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_NE, AF_UNIX)), "socket");
  // New namespaces through clone flags (clone3 hides its flags in memory: make libc fall back to clone).
  for (unsigned long flag : {CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS,
                             CLONE_NEWCGROUP})
    check(seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)),
          "clone");
  check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0), "clone3");

  // Exported through a memfd: no temp file on disk.
  int fd = make_data_fd("r1kit-seccomp", "");
  int rc = seccomp_export_bpf(ctx, fd);
  std::string bytes;
  if (rc == 0) {
    lseek(fd, 0, SEEK_SET);
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) bytes.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  R1_CHECK(rc == 0 && !bytes.empty(), "sandbox: seccomp_export_bpf failed: ", std::strerror(-rc));
  return bytes;
}

}  // namespace

const std::string& seccomp_bpf() {
  static std::once_flag once;
  static std::string bytes;
  std::call_once(once, [] { bytes = build(); });
  return bytes;
}

const char* const* seccomp_denied_syscalls() { return kDenied; }

}  // namespace r1kit::sandbox
