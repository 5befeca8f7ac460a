#include "sandbox/seccomp_filter.h"

#include <linux/keyctl.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <sys/utsname.h>
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
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsmount",
    "setns", "unshare", "swapon", "swapoff", "reboot", "acct", "quotactl", "syslog",
    "open_by_handle_at", "name_to_handle_at", "fanotify_init", "iopl", "ioperm",
    "settimeofday", "clock_settime", "adjtimex", "clock_adjtime", "lookup_dcookie",
    nullptr};

constexpr const char* kKeyring[] = {"keyctl", "add_key", "request_key", nullptr};

std::string build(bool allow_keyring) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  R1_CHECK(ctx != nullptr, "sandbox: seccomp_init failed");
  struct Guard {
    scmp_filter_ctx c;
    ~Guard() { seccomp_release(c); }
  } guard{ctx};
  auto check = [](int rc, const char* what) {
    R1_CHECK(rc == 0, "sandbox: seccomp rule for ", what, " failed: ", std::strerror(-rc));
  };
  auto kill_all = [&](const char* const* names) {
    for (const char* const* name = names; *name; ++name) {
      int nr = seccomp_syscall_resolve_name(*name);
      if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture / libseccomp version
      check(seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, nr, 0), *name);
    }
  };
  kill_all(kDenied);
  if (!allow_keyring) {
    kill_all(kKeyring);
  } else {
    // request_key(type, description, callout_info, dest): callout_info makes the kernel run the
    // host's /sbin/request-key (as root, outside every namespace) to construct a missing key.
    check(seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(request_key), 1, SCMP_A2(SCMP_CMP_NE, 0)),
          "request_key");
    // keyctl(KEYCTL_SETPERM, key, perm): the group (0x3f00) and other (0x3f) bits would open a key to
    // other uids, i.e. to concurrent runs in other slots. One rule per bit (seccomp has no "any bit").
    for (unsigned long bit = 1; bit <= 0x2000; bit <<= 1) {
      if (!(bit & 0x3f3fUL)) continue;
      check(seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(keyctl), 2, SCMP_A0(SCMP_CMP_EQ, KEYCTL_SETPERM),
                             SCMP_A2(SCMP_CMP_MASKED_EQ, bit, bit)),
            "keyctl");
    }
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

const std::string& seccomp_bpf(bool allow_keyring) {
  static std::once_flag once[2];
  static std::string bytes[2];
  std::call_once(once[allow_keyring], [allow_keyring] { bytes[allow_keyring] = build(allow_keyring); });
  return bytes[allow_keyring];
}

const char* const* seccomp_denied_syscalls() { return kDenied; }

bool kernel_keyrings_per_user_namespace(std::string* why) {
  struct utsname u;
  int major = 0, minor = 0;
  if (uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &major, &minor) != 2) {
    if (why) *why = "kernel version unknown";
    return false;
  }
  bool ok = major > 5 || (major == 5 && minor >= 3);
  if (!ok && why) *why = str_cat("kernel ", u.release, " < 5.3 shares a uid's user keyring across user namespaces");
  return ok;
}

}  // namespace r1kit::sandbox
