// The sandbox contract: run one untrusted program (source + stdin) under limits and say what happened.
// A Runner is the only thing the code reward talks to, so tests can swap the real bubblewrap runner
// (sandbox/bwrap_runner.h) for a scripted fake (sandbox/fake_runner.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace r1kit::sandbox {

// What happened to a run. Our own failures (sandbox_error) are never folded into the program's.
enum class Status {
  ok,             // exited with code 0
  timeout,        // CPU or wall-clock limit hit
  memory,         // memory limit hit (cgroup OOM kill, MemoryError, std::bad_alloc)
  runtime_error,  // non-zero exit or killed by a signal
  compile_error,  // the compiler rejected the program (or hit its own limits)
  output_limit,   // stdout or stderr exceeded its cap; the head is kept
  denied,         // a forbidden action (syscall) was stopped and killed the program
  sandbox_error,  // r1kit / bubblewrap failed: the program's verdict is unknown
};

const char* to_string(Status s);
// Inverse of to_string; throws r1kit::Error on an unknown name.
Status status_from_string(const std::string& name);

// Resource limits of one run. Defaults suit competitive-programming tests.
struct Limits {
  double time_limit_s = 2.0;         // CPU seconds (RLIMIT_CPU, rounded up) and the base of the wall limit
  double wall_limit_s = 0.0;         // wall clock; 0 = 2 * time_limit_s + 1
  std::int64_t memory_mb = 512;      // address space (RLIMIT_AS) and cgroup memory limit
  int max_tasks = 32;                // processes + threads (cgroup pids.max / RLIMIT_NPROC)
  std::int64_t file_size_mb = 16;    // largest file the program may write (RLIMIT_FSIZE), also /tmp size
  int max_open_files = 64;           // RLIMIT_NOFILE
  std::int64_t stack_mb = 64;        // RLIMIT_STACK
  std::size_t max_stdout_bytes = 1 << 20;  // head kept; more -> output_limit and the run is stopped
  std::size_t max_stderr_bytes = 64 << 10;

  double effective_wall_s() const { return wall_limit_s > 0 ? wall_limit_s : 2 * time_limit_s + 1; }
};

struct ExecRequest {
  std::string language = "python";  // a key of the language table (sandbox/language.h)
  std::string source;               // the whole program
  std::string stdin_data;           // fed to the program's stdin, then EOF
  Limits limits;
};

struct ExecResult {
  Status status = Status::sandbox_error;
  int exit_code = -1;          // when the program exited normally
  int signal = 0;              // when killed by a signal (SIGKILL on timeout, SIGSYS on denied, ...)
  std::string stdout_data;     // capped head
  std::string stderr_data;     // capped head
  std::string compile_output;  // compiler diagnostics (compiled languages)
  bool compile_cached = false;  // the binary came from the cache
  double wall_s = 0;           // wall time of the run step (compile excluded)
  double cpu_s = 0;            // user + system CPU of the run step
  std::int64_t peak_memory_bytes = 0;  // cgroup peak when available, else max RSS
  std::string message;         // why: sandbox errors, denied syscall, which limit

  bool ok() const { return status == Status::ok; }
};

// Runs programs. Implementations must be safe to call from several threads at once.
class Runner {
 public:
  virtual ~Runner() = default;
  virtual ExecResult run(const ExecRequest& request) = 0;
  // "bwrap", "unsafe", "fake": shown in diagnostics and benchmarks.
  virtual std::string name() const = 0;
};

}  // namespace r1kit::sandbox
