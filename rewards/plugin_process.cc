#include "rewards/plugin_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/check.h"

namespace r1kit::rewards {

namespace {

int remaining_ms(LineProcess::Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - LineProcess::Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<long long>(left.count(), 1 << 30));
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

}  // namespace

LineProcess::~LineProcess() { kill(); }

void LineProcess::start(const std::vector<std::string>& argv) {
  R1_CHECK(!argv.empty(), "plugin: empty command");
  kill();
  int in_pair[2];   // [0] ours, [1] the child's stdin
  int out_pipe[2];  // [0] ours, [1] the child's stdout
  int exec_pipe[2];  // reports a failed exec: closed on success (CLOEXEC), errno written on failure
  R1_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_pair) == 0, "plugin: socketpair: ",
           std::strerror(errno));
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    int e = errno;
    ::close(in_pair[0]);
    ::close(in_pair[1]);
    R1_FAIL("plugin: pipe: ", std::strerror(e));
  }
  // Everything the child needs is prepared before fork: only async-signal-safe calls after it.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    for (int fd : {in_pair[0], in_pair[1], out_pipe[0], out_pipe[1], exec_pipe[0], exec_pipe[1]}) ::close(fd);
    R1_FAIL("plugin: fork: ", std::strerror(e));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(in_pair[1], 0);
    ::dup2(out_pipe[1], 1);
    // A plugin only needs its stdio; descriptors of other threads may lack O_CLOEXEC.
    for (int fd = 3; fd < 1024; ++fd)
      if (fd != exec_pipe[1]) ::close(fd);
    ::signal(SIGPIPE, SIG_DFL);
    ::execvp(args[0], args.data());
    int e = errno;
    (void)!::write(exec_pipe[1], &e, sizeof e);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also from the parent, so kill(-pid) works even before the child runs
  ::close(in_pair[1]);
  ::close(out_pipe[1]);
  ::close(exec_pipe[1]);
  int exec_errno = 0;
  ssize_t n;
  do {
    n = ::read(exec_pipe[0], &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  ::close(exec_pipe[0]);
  pid_ = pid;
  to_child_ = in_pair[0];
  from_child_ = out_pipe[0];
  set_nonblocking(to_child_);
  set_nonblocking(from_child_);
  buffer_.clear();
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    kill();
    R1_FAIL("plugin: cannot execute '", argv[0], "': ", std::strerror(exec_errno));
  }
}

std::string LineProcess::write_line(const std::string& line, Clock::time_point deadline) {
  if (!running()) return "plugin is not running";
  std::string data = line;
  data.push_back('\n');
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(to_child_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{to_child_, POLLOUT, 0};
      const int ms = remaining_ms(deadline);
      if (ms == 0) return "timed out writing the request";
      const int r = ::poll(&p, 1, ms);
      if (r == 0) return "timed out writing the request";
      if (r < 0 && errno != EINTR) return std::string("poll: ") + std::strerror(errno);
      continue;
    }
    return std::string("cannot write to the plugin (") + std::strerror(errno) + ")" + describe_exit();
  }
  return "";
}

std::optional<std::string> LineProcess::read_line(Clock::time_point deadline, std::size_t max_bytes,
                                                  std::string* error) {
  if (!running()) {
    *error = "plugin is not running";
    return std::nullopt;
  }
  std::size_t scanned = 0;
  char chunk[1 << 16];
  while (true) {
    const std::size_t nl = buffer_.find('\n', scanned);
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return line;
    }
    scanned = buffer_.size();
    if (buffer_.size() > max_bytes) {
      *error = "response line longer than " + std::to_string(max_bytes) + " bytes";
      return std::nullopt;
    }
    const ssize_t n = ::read(from_child_, chunk, sizeof chunk);
    if (n > 0) {
      buffer_.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) {
      *error = "plugin closed its stdout" + describe_exit();
      return std::nullopt;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      *error = std::string("read: ") + std::strerror(errno);
      return std::nullopt;
    }
    pollfd p{from_child_, POLLIN, 0};
    const int ms = remaining_ms(deadline);
    const int r = ms == 0 ? 0 : ::poll(&p, 1, ms);
    if (r == 0) {
      *error = "timed out waiting for the plugin";
      return std::nullopt;
    }
    if (r < 0 && errno != EINTR) {
      *error = std::string("poll: ") + std::strerror(errno);
      return std::nullopt;
    }
  }
}

std::string LineProcess::describe_exit() {
  if (!running()) return "";
  int status = 0;
  // The child may still be exiting after closing its stdout: wait briefly for it.
  for (int i = 0; i < 50; ++i) {
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      ::kill(-pid_, SIGKILL);  // the group's other processes, if the plugin started any
      pid_ = -1;
      kill();  // closes the descriptors
      if (WIFEXITED(status)) return " (exit code " + std::to_string(WEXITSTATUS(status)) + ")";
      if (WIFSIGNALED(status)) return std::string(" (killed by signal ") + std::to_string(WTERMSIG(status)) + ")";
      return "";
    }
    if (r < 0) return "";
    ::usleep(2000);
  }
  return " (still running)";
}

void LineProcess::kill() {
  if (pid_ > 0) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
  if (to_child_ >= 0) ::close(to_child_);
  if (from_child_ >= 0) ::close(from_child_);
  to_child_ = from_child_ = -1;
  buffer_.clear();
}

}  // namespace r1kit::rewards
