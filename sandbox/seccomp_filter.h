// The seccomp filter applied to every sandboxed program (bubblewrap loads it with --seccomp just
// before exec). Namespaces hide the network, other processes, the host file system and System V /
// POSIX IPC (each run has its own IPC namespace); the filter closes what they don't: ptrace and
// cross-process memory access, BPF, perf, module loading, mounts and new namespaces, non-UNIX
// sockets, and the kernel keyring wherever uids, not namespaces, would have to separate runs. A
// forbidden call kills the process with SIGSYS, so the run is reported as `denied` rather than a
// plain runtime error. The policy per syscall class is in docs/sandbox.md.
#pragma once
#include <string>

namespace r1kit::sandbox {

// The compiled classic-BPF program (struct sock_filter array) as bytes. Built once per variant,
// then cached. Throws r1kit::Error when libseccomp fails.
//   allow_keyring = false: keyctl, add_key, request_key are killed.
//   allow_keyring = true:  they run, except request_key with callout info (an upcall that makes the
//                          kernel start /sbin/request-key as root in the host's namespaces) and
//                          keyctl(KEYCTL_SETPERM) granting group or other permissions (which would
//                          expose a key to another run's uid).
const std::string& seccomp_bpf(bool allow_keyring);

// Syscall names the filter always kills on (for docs and diagnostics).
const char* const* seccomp_denied_syscalls();

// Whether this kernel gives every user namespace its own user, user-session and persistent
// keyrings and keyring names (Linux >= 5.3). Before that, the user keyring of a uid was shared by all
// its namespaces. When false, *why says so.
bool kernel_keyrings_per_user_namespace(std::string* why = nullptr);

}  // namespace r1kit::sandbox
