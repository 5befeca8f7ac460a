// A child process spoken to in lines over its stdin / stdout, with deadlines on every read and
// write. Used by external reward plugins; stderr is inherited so plugin logs reach the console.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace r1kit::rewards {

class LineProcess {
 public:
  using Clock = std::chrono::steady_clock;

  LineProcess() = default;
  ~LineProcess();  // kills the child
  LineProcess(const LineProcess&) = delete;
  LineProcess& operator=(const LineProcess&) = delete;

  // Starts argv[0] (searched in PATH) with argv in its own process group. Throws Error when the
  // pipes cannot be made or the program cannot be executed.
  void start(const std::vector<std::string>& argv);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // Writes `line` plus '\n' before `deadline`. Returns an error message, or "" on success.
  std::string write_line(const std::string& line, Clock::time_point deadline);
  // Reads one line (without '\n') before `deadline`. nullopt with *error set on timeout, EOF
  // (the child exited: its status is described) or a line longer than max_bytes.
  std::optional<std::string> read_line(Clock::time_point deadline, std::size_t max_bytes, std::string* error);

  // SIGKILLs the whole process group and reaps the child. Safe to call when not running.
  void kill();

 private:
  std::string describe_exit();
  pid_t pid_ = -1;
  int to_child_ = -1;    // socket connected to the child's stdin (send with MSG_NOSIGNAL: no SIGPIPE)
  int from_child_ = -1;  // pipe from the child's stdout
  std::string buffer_;   // bytes read past the last returned line
};

}  // namespace r1kit::rewards
