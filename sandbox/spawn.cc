#include "sandbox/spawn.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/keyctl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
// Boost.Process 1.74 compiles its vfork executor only for pre-2008 POSIX feature levels; glibc's
// vfork is fine for us (see use_vfork below), so enable it explicitly.
#ifndef BOOST_POSIX_HAS_VFORK
#define BOOST_POSIX_HAS_VFORK 1
#endif
#include <boost/process/args.hpp>
#include <boost/process/child.hpp>
#include <boost/process/env.hpp>
#include <boost/process/environment.hpp>
#include <boost/process/exe.hpp>
#include <boost/process/extend.hpp>
#include <boost/process/posix.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/check.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace {
constexpr int kPidfdIdType = 3;  // P_PIDFD (Linux 5.4); older glibc headers lack the name
}  // namespace

namespace bp = boost::process;

namespace r1kit::sandbox {

bool become_child_subreaper() { return prctl(PR_SET_CHILD_SUBREAPER, 1) == 0; }

void ensure_std_fds_open() {
  for (int fd = 0; fd < 3; ++fd)
    if (fcntl(fd, F_GETFD) < 0) {
      int n = open("/dev/null", O_RDWR);
      if (n >= 0 && n != fd) {
        dup2(n, fd);
        close(n);
      }
    }
  static std::once_flag once;
  // Writing stdin to a program that already exited must be an error, not a SIGPIPE death.
  std::call_once(once, [] { signal(SIGPIPE, SIG_IGN); });
}

namespace {

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) close(fd);
    fd = -1;
  }
};

void make_pipe(Fd& r, Fd& w) {
  int p[2];
  R1_CHECK(pipe2(p, O_CLOEXEC) == 0, "sandbox: pipe2 failed: ", std::strerror(errno));
  r.fd = p[0];
  w.fd = p[1];
}

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Reads what is available; returns false at EOF. Bytes past `cap` set `overflow` and are dropped.
bool drain(int fd, std::string& buf, std::size_t cap, bool& overflow) {
  std::array<char, 65536> chunk;
  for (;;) {
    ssize_t n = read(fd, chunk.data(), chunk.size());
    if (n > 0) {
      std::size_t room = buf.size() < cap ? cap - buf.size() : 0;
      buf.append(chunk.data(), std::min<std::size_t>(room, static_cast<std::size_t>(n)));
      if (static_cast<std::size_t>(n) > room) overflow = true;
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

}  // namespace

int make_data_fd(const std::string& name, const std::string& data) {
  int fd = static_cast<int>(syscall(SYS_memfd_create, name.c_str(), MFD_CLOEXEC));
  R1_CHECK(fd >= 0, "sandbox: memfd_create failed: ", std::strerror(errno));
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      R1_FAIL("sandbox: writing memfd '", name, "' failed: ", std::strerror(errno));
    }
    off += static_cast<std::size_t>(n);
  }
  lseek(fd, 0, SEEK_SET);
  return fd;
}

SpawnResult spawn_and_wait(const SpawnSpec& spec) {
  ensure_std_fds_open();
  SpawnResult res;
  R1_CHECK(!spec.argv.empty(), "sandbox: empty argv");
  Fd in_r, in_w, out_r, out_w, err_r, err_w, status_r(spec.status_read_fd);
  make_pipe(in_r, in_w);
  make_pipe(out_r, out_w);
  make_pipe(err_r, err_w);

  // Everything the child touches is prepared here: after fork only async-signal-safe calls.
  const int child_in = in_r.fd, child_out = out_w.fd, child_err = err_w.fd;
  const pid_t parent = getpid();
  std::vector<const char*> cg_paths;
  for (const auto& p : spec.cgroup_procs) cg_paths.push_back(p.c_str());
  const char* cwd = spec.cwd.c_str();

  bp::environment env;
  env.clear();
  for (const auto& [k, v] : spec.env) env[k] = v;
  std::vector<std::string> args(spec.argv.begin() + 1, spec.argv.end());

  // Runs in the child between vfork and exec: it shares our memory while this thread waits, so it
  // allocates nothing (failure messages fit std::string's inline buffer) and changes credentials with
  // raw system calls (glibc's setuid would try to signal our other threads).
  auto setup = [&](auto& exec) {
    // Boost.Process reports the error to the parent but would still exec afterwards: a child whose
    // uid drop or limits failed must never run the program, so it exits here.
    auto fail = [&exec](const char* what) {
      exec.set_error(std::error_code(errno, std::system_category()), what);
      _exit(127);
    };
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(child_in, 0) < 0 || dup2(child_out, 1) < 0 || dup2(child_err, 2) < 0) return fail("dup2");
    for (const char* p : cg_paths) {
      int fd = open(p, O_WRONLY | O_CLOEXEC);
      if (fd < 0 || write(fd, "0", 1) != 1) return fail("joining cgroup");
      close(fd);
    }
    for (const auto& [res_id, value] : spec.rlimits) {
      struct rlimit rl{value, value};
      if (setrlimit(res_id, &rl) != 0) return fail("setrlimit");
    }
    if (spec.cpu_limit.first >= 0) {
      struct rlimit rl{spec.cpu_limit.second, spec.cpu_limit.second + 1};
      if (setrlimit(RLIMIT_CPU, &rl) != 0) return fail("setrlimit cpu");
    }
    if (spec.new_process_group) setpgid(0, 0);
    if (chdir(cwd) != 0) return fail("chdir");
    // KEYCTL_JOIN_SESSION_KEYRING with no name: a new anonymous keyring. ENOSYS: no keyrings at all.
    if (spec.new_session_keyring && syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, nullptr) < 0 && errno != ENOSYS)
      return fail("joining a new session keyring");
    if (spec.gid >= 0 && (syscall(SYS_setgroups, 0, nullptr) != 0 || syscall(SYS_setgid, spec.gid) != 0))
      return fail("setgid");
    if (spec.uid >= 0 && syscall(SYS_setuid, spec.uid) != 0) return fail("setuid");
    // After the uid change (which clears it): die with the thread that spawned us.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = 3; fd < 65536; ++fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    for (int fd : spec.child_fds) fcntl(fd, F_SETFD, 0);
  };

  std::error_code ec;
  auto t0 = std::chrono::steady_clock::now();
  // Boost.Process returns an empty child when the exec fails, without reaping the forked process.
  pid_t failed_pid = -1;
  auto on_error = [&failed_pid](auto& exec, const std::error_code&) { failed_pid = exec.pid; };
  // vfork: fork would copy the page tables of our whole address space on every run, which in a
  // trainer holding a model costs more than the sandbox itself (measured: a sandboxed Python run
  // took 153 ms instead of 43 ms with 4 GB resident, 251 ms with 12 GB; `sandbox bench --resident-mb`).
  bp::child child(bp::exe = spec.argv[0], bp::args = args, env, bp::posix::use_vfork,
                  bp::extend::on_exec_setup = setup, bp::extend::on_error = on_error, ec);
  for (int fd : spec.child_fds) close(fd);
  in_r.reset();
  out_w.reset();
  err_w.reset();
  if (ec || child.id() <= 0) {
    res.error = str_cat("could not start ", spec.argv[0], ": ", ec.message());
    if (child.id() > 0) child.detach();
    pid_t forked = child.id() > 0 ? child.id() : failed_pid;
    int st;
    if (forked > 0) waitpid(forked, &st, 0);  // a child that failed before exec must not stay a zombie
    return res;
  }
  const pid_t pid = child.id();
  child.detach();  // we reap it ourselves with wait4 for the rusage
  res.started = true;

  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  Fd pidfd_guard(pidfd);
  set_nonblocking(out_r.fd);
  set_nonblocking(err_r.fd);
  set_nonblocking(in_w.fd);
  if (status_r.fd >= 0) set_nonblocking(status_r.fd);
  if (spec.stdin_data.empty()) in_w.reset();

  std::string discard;
  bool discard_flag = false;
  // pidfd of bwrap's namespace init. bwrap's outer process may exit before its init has finished
  // tearing the namespace down, so the run is only over once this process is gone too.
  Fd ns_init;
  auto watch_ns_init = [&] {
    if (!spec.wait_for_status_child || ns_init.fd != -1) return;
    auto pos = res.status_text.find("\"child-pid\"");
    if (pos == std::string::npos || (pos = res.status_text.find(':', pos)) == std::string::npos) return;
    long init_pid = std::strtol(res.status_text.c_str() + pos + 1, nullptr, 10);
    if (init_pid > 0) ns_init.fd = static_cast<int>(syscall(SYS_pidfd_open, static_cast<pid_t>(init_pid), 0));
    if (ns_init.fd < 0) ns_init.fd = -2;  // already gone
  };
  auto kill_all = [&] {
    if (status_r.fd >= 0) drain(status_r.fd, res.status_text, 1 << 16, discard_flag);
    watch_ns_init();
    if (spec.kill_tree) {
      spec.kill_tree(pid);
    } else {
      if (spec.new_process_group) kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
    }
  };

  std::size_t in_off = 0;
  bool killed = false, exited = false;
  const auto deadline = t0 + std::chrono::duration<double>(spec.wall_timeout_s);
  // After the child is gone, pipes still held by escaped descendants must not keep us waiting.
  while (!exited) {
    std::vector<pollfd> fds;
    auto add = [&fds](int fd, short ev) {
      if (fd >= 0) fds.push_back({fd, ev, 0});
    };
    add(out_r.fd, POLLIN);
    add(err_r.fd, POLLIN);
    add(status_r.fd, POLLIN);
    add(in_w.fd, POLLOUT);
    add(pidfd, POLLIN);
    auto now = std::chrono::steady_clock::now();
    int timeout_ms = -1;
    if (!killed) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
      timeout_ms = static_cast<int>(std::max<long long>(0, left));
    } else {
      timeout_ms = 50;  // killed: keep reaping until the pidfd fires
    }
    if (pidfd < 0 && timeout_ms > 20) timeout_ms = 20;  // no pidfd: poll waitpid
    int n = poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) break;
    for (const auto& p : fds) {
      if (p.revents == 0) continue;
      if (p.fd == out_r.fd) {
        if (!drain(out_r.fd, res.out, spec.stdout_cap, res.out_overflow)) out_r.reset();
      } else if (p.fd == err_r.fd) {
        if (!drain(err_r.fd, res.err, spec.stderr_cap, res.err_overflow)) err_r.reset();
      } else if (p.fd == status_r.fd) {
        if (!drain(status_r.fd, res.status_text, 1 << 16, discard_flag)) status_r.reset();
        watch_ns_init();
      } else if (p.fd == in_w.fd) {
        if (p.revents & (POLLERR | POLLHUP)) {
          in_w.reset();
          continue;
        }
        ssize_t w = write(in_w.fd, spec.stdin_data.data() + in_off, spec.stdin_data.size() - in_off);
        if (w > 0) in_off += static_cast<std::size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_off >= spec.stdin_data.size()) in_w.reset();
      } else if (p.fd == pidfd) {
        exited = true;
      }
    }
    if (pidfd < 0) {
      siginfo_t si{};
      if (waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid) exited = true;
    }
    if (!killed && (res.out_overflow || res.err_overflow)) {
      killed = true;
      kill_all();
    }
    if (!killed && !exited && std::chrono::steady_clock::now() >= deadline) {
      res.timed_out = true;
      killed = true;
      kill_all();
    }
  }
  // Collect what the program wrote before exiting (pipes still buffered), without waiting for EOF.
  if (out_r.fd >= 0) drain(out_r.fd, res.out, spec.stdout_cap, res.out_overflow);
  if (err_r.fd >= 0) drain(err_r.fd, res.err, spec.stderr_cap, res.err_overflow);
  if (status_r.fd >= 0) drain(status_r.fd, res.status_text, 1 << 16, discard_flag);
  watch_ns_init();

  struct rusage ru {};
  int st = 0;
  while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {
  }
  if (ns_init.fd >= 0) {
    // --die-with-parent SIGKILLs the init; it exits once every process of its namespace is gone.
    pollfd p{ns_init.fd, POLLIN, 0};
    while (poll(&p, 1, 5000) < 0 && errno == EINTR) {
    }
    // bwrap's outer process exits as soon as the init reports the program's status, orphaning the
    // init. With us as its subreaper it is now our child: reap it, or it stays a zombie of the
    // slot's uid that counts against RLIMIT_NPROC until the host's init gets round to it (measured:
    // 33 such zombies under a lazy init, then "Can't fork" in later runs). ECHILD: bwrap reaped it.
    siginfo_t si{};
    while (waitid(static_cast<idtype_t>(kPidfdIdType), static_cast<id_t>(ns_init.fd), &si, WEXITED | WNOHANG) < 0 &&
           errno == EINTR) {
    }
  }
  res.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.wait_status = st;
  res.cpu_s = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
  res.max_rss_kb = ru.ru_maxrss;
  // The direct child is gone; anything it left in its process group goes too (unsafe mode).
  if (spec.new_process_group) kill(-pid, SIGKILL);
  return res;
}

}  // namespace r1kit::sandbox
