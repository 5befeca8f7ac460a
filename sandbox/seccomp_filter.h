// The seccomp filter applied to every sandboxed program (bubblewrap loads it with --seccomp just
// before exec). Namespaces already hide the network, other processes and the host file system; the
// filter closes what they don't: ptrace and cross-process memory access, kernel keyrings, BPF,
// perf, module loading, mounts and new namespaces, non-UNIX sockets. A forbidden call kills the
// process with SIGSYS, so the run is reported as `denied` rather than a plain runtime error.
#pragma once
#include <string>

namespace r1kit::sandbox {

// The compiled classic-BPF program (struct sock_filter array) as bytes. Built once, then cached.
// Throws r1kit::Error when libseccomp fails.
const std::string& seccomp_bpf();

// Syscall names the filter kills on (for docs and diagnostics).
const char* const* seccomp_denied_syscalls();

}  // namespace r1kit::sandbox
