#include "sandbox/bwrap_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/check.h"
#include "core/config.h"
#include "core/logging.h"
#include "sandbox/cgroup.h"
#include "sandbox/language.h"
#include "sandbox/seccomp_filter.h"
#include "sandbox/spawn.h"

namespace fs = std::filesystem;

namespace r1kit::sandbox {
namespace {

constexpr const char* kWorkDir = "/box";
constexpr std::int64_t kMiB = 1 << 20;

// Replaces "{source}" / "{binary}" in argv entries.
std::vector<std::string> substitute(const std::vector<std::string>& argv, const Language& lang) {
  std::vector<std::string> out;
  for (std::string a : argv) {
    for (auto [key, val] : {std::pair<std::string, std::string>{"{source}", lang.source_file},
                            std::pair<std::string, std::string>{"{binary}", lang.binary_file}}) {
      for (auto pos = a.find(key); pos != std::string::npos; pos = a.find(key)) a.replace(pos, key.size(), val);
    }
    out.push_back(a);
  }
  return out;
}

// The bwrap arguments exposing the system read-only: /usr, plus the top-level entries that are
// symlinks into it (merged-/usr: /bin, /lib, /lib64, /sbin) or, on older layouts, real directories.
std::vector<std::string> system_binds() {
  std::vector<std::string> args = {"--ro-bind", "/usr", "/usr"};
  for (const char* top : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    std::error_code ec;
    auto st = fs::symlink_status(top, ec);
    if (ec) continue;
    if (fs::is_symlink(st)) {
      args.insert(args.end(), {"--symlink", fs::read_symlink(top, ec).string(), top});
    } else if (fs::is_directory(st)) {
      args.insert(args.end(), {"--ro-bind", top, top});
    }
  }
  return args;
}

// bwrap --json-status-fd writes {"child-pid": N} then {"exit-code": N}.
bool status_field(const std::string& text, const std::string& key, long& value) {
  auto pos = text.find("\"" + key + "\"");
  if (pos == std::string::npos) return false;
  pos = text.find(':', pos);
  if (pos == std::string::npos) return false;
  value = std::strtol(text.c_str() + pos + 1, nullptr, 10);
  return true;
}

bool contains(const std::string& s, const char* needle) { return s.find(needle) != std::string::npos; }

}  // namespace

SandboxOptions SandboxOptions::from_config(ConfigNode& node) {
  SandboxOptions o;
  node.read("unsafe_no_isolation", o.unsafe_no_isolation);
  node.read("bwrap_path", o.bwrap_path);
  node.read("uid_base", o.uid_base);
  node.read("max_slots", o.max_slots);
  node.read("use_cgroups", o.use_cgroups);
  node.read("compile_cache_entries", o.compile_cache_entries);
  node.read("compile_time_limit_s", o.compile_limits.time_limit_s);
  node.read("compile_memory_mb", o.compile_limits.memory_mb);
  if (o.max_slots < 1 || o.max_slots > 4096) node.fail("max_slots", "must be in [1, 4096]");
  if (o.uid_base < 1000) node.fail("uid_base", "must be an unprivileged uid (>= 1000)");
  return o;
}

std::string probe_bwrap(const SandboxOptions& options) {
  if (access(options.bwrap_path.c_str(), X_OK) != 0)
    return str_cat(options.bwrap_path, " not found or not executable (Debian: apt-get install bubblewrap)");
  try {
    BwrapRunner probe(options, true);
    Limits l;
    l.time_limit_s = 5;
    ExecResult r = probe.run_step({"/usr/bin/true"}, {}, "", l);
    if (r.status != Status::ok)
      return str_cat("bubblewrap could not start a sandbox (", to_string(r.status), "): ", r.message, " ",
                     r.stderr_data);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

std::unique_ptr<Runner> make_runner(const SandboxOptions& options) {
  std::string why = probe_bwrap(options);
  if (why.empty()) return std::make_unique<BwrapRunner>(options, true);
  R1_CHECK(options.unsafe_no_isolation, "sandbox: bubblewrap is unusable on this host: ", why,
           ". Refusing to run untrusted code. To run it WITHOUT isolation anyway, opt in explicitly with "
           "sandbox.unsafe_no_isolation=true (CLI: --unsafe-no-isolation).");
  spdlog::warn("sandbox: bubblewrap unusable ({}); running programs WITHOUT isolation (unsafe_no_isolation)", why);
  return std::make_unique<BwrapRunner>(options, false);
}

BwrapRunner::BwrapRunner(SandboxOptions options, bool isolated)
    : options_(std::move(options)), isolated_(isolated), as_root_(geteuid() == 0) {
  R1_CHECK(options_.max_slots >= 1 && options_.max_slots <= 4096, "sandbox: max_slots must be in [1, 4096]");
  if (as_root_) uid_first_ = options_.uid_base + static_cast<int>(getpid() % 1024) * options_.max_slots;
  for (int i = options_.max_slots - 1; i >= 0; --i) free_slots_.push_back(i);
  if (options_.use_cgroups && as_root_) {
    cgroups_ = Cgroups::detect(&cgroup_why_);
  } else {
    cgroup_why_ = options_.use_cgroups ? "not root" : "disabled";
  }
  system_binds_ = system_binds();
  if (isolated_) {
    // Keys belong to host uids, and their quota too; namespaces separate the keyrings themselves
    // (Linux >= 5.3). Only with a uid per slot can concurrent runs not see each other's keys.
    keyring_ = as_root_ && kernel_keyrings_per_user_namespace(&keyring_why_);
    if (!as_root_) keyring_why_ = "not root: every run has the invoking user's uid, which owns keys and their quota";
    seccomp_bpf(keyring_);  // fail at construction, not in the middle of a batch
    R1_CHECK(become_child_subreaper(), "sandbox: prctl(PR_SET_CHILD_SUBREAPER) failed: ", std::strerror(errno));
  }
}

BwrapRunner::~BwrapRunner() = default;

bool BwrapRunner::keyring_allowed(std::string* why) const {
  if (why) *why = isolated_ ? keyring_why_ : "unsafe mode: no isolation at all";
  return keyring_;
}

std::pair<int, int> BwrapRunner::uid_range() const {
  if (!as_root_) return {-1, -1};
  return {uid_first_, uid_first_ + options_.max_slots - 1};
}

std::string BwrapRunner::cgroup_mode() const { return cgroups_ ? cgroups_->mode() : "none (" + cgroup_why_ + ")"; }

int BwrapRunner::acquire_slot() {
  std::unique_lock<std::mutex> lock(slot_mu_);
  slot_cv_.wait(lock, [this] { return !free_slots_.empty(); });
  int s = free_slots_.back();
  free_slots_.pop_back();
  return s;
}

void BwrapRunner::release_slot(int slot) {
  {
    std::lock_guard<std::mutex> lock(slot_mu_);
    free_slots_.push_back(slot);
  }
  slot_cv_.notify_one();
}

ExecResult BwrapRunner::run_step(const std::vector<std::string>& argv, const std::vector<File>& files,
                                 const std::string& stdin_data, const Limits& limits) {
  ExecResult res;
  ensure_std_fds_open();
  const int slot = acquire_slot();
  struct SlotGuard {
    BwrapRunner* r;
    int s;
    ~SlotGuard() { r->release_slot(s); }
  } slot_guard{this, slot};

  SpawnSpec spec;
  spec.stdin_data = stdin_data;
  spec.stdout_cap = limits.max_stdout_bytes;
  spec.stderr_cap = limits.max_stderr_bytes;
  spec.wall_timeout_s = limits.effective_wall_s();
  const int uid = as_root_ ? uid_first_ + slot : -1;
  spec.uid = spec.gid = uid;
  const std::int64_t mem_bytes = limits.memory_mb * kMiB;
  spec.rlimits = {{RLIMIT_AS, static_cast<rlim_t>(mem_bytes)},
                  {RLIMIT_FSIZE, static_cast<rlim_t>(limits.file_size_mb * kMiB)},
                  {RLIMIT_NOFILE, static_cast<rlim_t>(limits.max_open_files)},
                  {RLIMIT_STACK, static_cast<rlim_t>(limits.stack_mb * kMiB)},
                  {RLIMIT_CORE, 0}};
  // RLIMIT_NPROC counts every process of the uid, so only with a uid of our own. The +3 covers
  // bubblewrap's two processes and rounding in the kernel's per-namespace accounting.
  if (uid >= 0) spec.rlimits.push_back({RLIMIT_NPROC, static_cast<rlim_t>(limits.max_tasks + 3)});
  spec.cpu_limit = {RLIMIT_CPU, static_cast<rlim_t>(std::ceil(limits.time_limit_s))};
  if (cgroups_) spec.cgroup_procs = cgroups_->prepare(slot, mem_bytes, limits.max_tasks + 2);
  spec.kill_tree = [this, slot](pid_t pid) {
    kill(pid, SIGKILL);  // bwrap --die-with-parent then tears the pid namespace down
    if (cgroups_) cgroups_->kill_all(slot);
  };

  std::vector<int> data_fds;  // closed by spawn (child_fds) or below on error
  std::string host_dir;       // unsafe mode only
  int status_r = -1;
  try {
    if (isolated_) {
      std::vector<std::string> a = {options_.bwrap_path, "--unshare-all", "--unshare-user", "--disable-userns",
                                    "--die-with-parent", "--new-session", "--hostname", "sandbox"};
      a.insert(a.end(), system_binds_.begin(), system_binds_.end());
      const std::string tmp_size = std::to_string(limits.file_size_mb * kMiB);
      a.insert(a.end(), {"--proc", "/proc"});
      // /proc/keys and /proc/key-users list keys and key quotas by uid: masked with empty files, as
      // containers do (a device node would read as "permission denied": bwrap binds are nodev).
      for (const char* masked : {"/proc/keys", "/proc/key-users"}) {
        int fd = make_data_fd("r1kit-empty", "");
        data_fds.push_back(fd);
        a.insert(a.end(), {"--ro-bind-data", std::to_string(fd), masked});
      }
      a.insert(a.end(), {"--dev", "/dev", "--size", tmp_size, "--tmpfs", "/tmp", "--size",
                         tmp_size, "--tmpfs", kWorkDir, "--chdir", kWorkDir, "--clearenv", "--setenv", "PATH",
                         "/usr/bin:/bin", "--setenv", "HOME", kWorkDir, "--setenv", "TMPDIR", "/tmp", "--setenv",
                         "LANG", "C.UTF-8"});
      for (const auto& f : files) {
        int fd = make_data_fd(f.name, f.data);
        data_fds.push_back(fd);
        a.insert(a.end(), {"--perms", f.executable ? "0755" : "0644", "--file", std::to_string(fd),
                           std::string(kWorkDir) + "/" + f.name});
      }
      // Nothing outside /box and /tmp is writable.
      a.insert(a.end(), {"--remount-ro", "/"});
      int sfd = make_data_fd("r1kit-seccomp", seccomp_bpf(keyring_));
      data_fds.push_back(sfd);
      int sp[2];
      R1_CHECK(pipe2(sp, O_CLOEXEC) == 0, "sandbox: pipe2 failed");
      status_r = sp[0];
      data_fds.push_back(sp[1]);
      a.insert(a.end(), {"--seccomp", std::to_string(sfd), "--json-status-fd", std::to_string(sp[1]), "--"});
      a.insert(a.end(), argv.begin(), argv.end());
      spec.argv = std::move(a);
    } else {
      std::string tmpl = str_cat("/tmp/r1kit-unsafe-", getpid(), "-XXXXXX");
      R1_CHECK(mkdtemp(tmpl.data()) != nullptr, "sandbox: mkdtemp failed");
      host_dir = tmpl;
      for (const auto& f : files) {
        std::string p = host_dir + "/" + f.name;
        std::ofstream(p, std::ios::binary) << f.data;
        chmod(p.c_str(), f.executable ? 0755 : 0644);
      }
      if (uid >= 0) (void)chown(host_dir.c_str(), uid, uid);
      spec.cwd = host_dir;
      spec.env = {{"PATH", "/usr/bin:/bin"}, {"HOME", host_dir}, {"TMPDIR", host_dir}, {"LANG", "C.UTF-8"}};
      spec.new_process_group = true;
      spec.argv = argv;
      if (!spec.argv.empty() && spec.argv[0].rfind("./", 0) == 0) spec.argv[0] = host_dir + spec.argv[0].substr(1);
    }
  } catch (...) {
    for (int fd : data_fds) close(fd);
    if (status_r >= 0) close(status_r);
    if (!host_dir.empty()) fs::remove_all(host_dir);
    throw;
  }
  spec.child_fds = data_fds;
  spec.status_read_fd = status_r;
  spec.new_session_keyring = isolated_;
  spec.wait_for_status_child = isolated_;

  SpawnResult sr = spawn_and_wait(spec);
  CgroupStats cg;
  if (cgroups_) {
    cg = cgroups_->stats(slot);
    if (!cgroups_->kill_all(slot)) spdlog::error("sandbox: processes survived in cgroup slot {}", slot);
  }
  if (!host_dir.empty()) {
    std::error_code ec;
    fs::remove_all(host_dir, ec);
  }

  res.stdout_data = std::move(sr.out);
  res.stderr_data = std::move(sr.err);
  res.wall_s = sr.wall_s;
  res.cpu_s = cg.cpu_s >= 0 ? cg.cpu_s : sr.cpu_s;
  res.peak_memory_bytes = cg.peak_bytes > 0 ? cg.peak_bytes : static_cast<std::int64_t>(sr.max_rss_kb) * 1024;
  if (!sr.started) {
    res.status = Status::sandbox_error;
    res.message = sr.error;
    return res;
  }

  // Exit code / signal of the program itself.
  bool have_exit = false;
  if (isolated_) {
    long child_pid = 0, code = 0;
    bool started = status_field(sr.status_text, "child-pid", child_pid);
    have_exit = status_field(sr.status_text, "exit-code", code);
    if (!started && !sr.timed_out && !sr.out_overflow && !sr.err_overflow) {
      res.status = Status::sandbox_error;
      res.message = "bubblewrap failed to set up the sandbox: " + res.stderr_data.substr(0, 2000);
      return res;
    }
    if (have_exit) {
      // bwrap reports 128 + signal for a program killed by a signal.
      if (code > 128 && code < 128 + 65) {
        res.signal = static_cast<int>(code - 128);
      } else {
        res.exit_code = static_cast<int>(code);
      }
    } else {
      res.signal = SIGKILL;  // we killed bwrap (timeout / output flood)
    }
    if (have_exit && code == 1 && res.stderr_data.rfind("bwrap: execvp", 0) == 0) {
      res.status = Status::sandbox_error;
      res.message = "could not execute the program: " + res.stderr_data.substr(0, 500);
      return res;
    }
  } else {
    if (WIFEXITED(sr.wait_status)) res.exit_code = WEXITSTATUS(sr.wait_status);
    if (WIFSIGNALED(sr.wait_status)) res.signal = WTERMSIG(sr.wait_status);
  }

  const bool cpu_over = res.cpu_s > limits.time_limit_s || res.signal == SIGXCPU;
  if (sr.out_overflow || sr.err_overflow) {
    res.status = Status::output_limit;
    res.message = sr.out_overflow ? str_cat("stdout exceeded ", limits.max_stdout_bytes, " bytes")
                                  : str_cat("stderr exceeded ", limits.max_stderr_bytes, " bytes");
  } else if (sr.timed_out || cpu_over) {
    res.status = Status::timeout;
    res.message = sr.timed_out ? str_cat("wall-clock limit of ", limits.effective_wall_s(), " s")
                               : str_cat("CPU limit of ", limits.time_limit_s, " s");
  } else if (cg.oom_killed) {
    res.status = Status::memory;
    res.message = str_cat("memory limit of ", limits.memory_mb, " MB (cgroup OOM kill)");
  } else if (res.signal == SIGSYS) {
    res.status = Status::denied;
    res.message = "a forbidden system call was stopped (seccomp)";
  } else if (res.exit_code == 0 && res.signal == 0) {
    res.status = Status::ok;
  } else if (contains(res.stderr_data, "MemoryError") || contains(res.stderr_data, "std::bad_alloc") ||
             contains(res.stderr_data, "Cannot allocate memory")) {
    res.status = Status::memory;
    res.message = str_cat("memory limit of ", limits.memory_mb, " MB (allocation failed)");
  } else {
    res.status = Status::runtime_error;
    res.message = res.signal ? str_cat("killed by signal ", res.signal, " (", strsignal(res.signal), ")")
                             : str_cat("exit code ", res.exit_code);
  }
  return res;
}

std::shared_ptr<const BwrapRunner::Compiled> BwrapRunner::compile(const Language& lang, const std::string& source,
                                                                  bool& cached) {
  const std::string key = lang.name + '\n' + source;
  std::promise<std::shared_ptr<const Compiled>> promise;
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.second);
      cached = true;
      auto fut = it->second.first;
      return fut.get();  // waits if another thread is compiling the same source
    }
    lru_.push_front(key);
    cache_.emplace(key, std::make_pair(promise.get_future().share(), lru_.begin()));
    while (cache_.size() > options_.compile_cache_entries && lru_.size() > 1) {
      cache_.erase(lru_.back());
      lru_.pop_back();
    }
  }
  cached = false;
  auto out = std::make_shared<Compiled>();
  try {
    // The compiler's diagnostics go to stderr; the binary comes back on stdout.
    std::string cmd;
    for (const auto& a : substitute(lang.compile_argv, lang)) cmd += a + " ";
    cmd += "1>&2 && cat " + lang.binary_file;
    ExecResult r = run_step({"/bin/sh", "-c", cmd}, {{lang.source_file, source, false}}, "", options_.compile_limits);
    out->result = r;
    out->result.compile_output = r.stderr_data;
    out->result.stdout_data.clear();
    if (r.status == Status::ok && !r.stdout_data.empty()) {
      out->ok = true;
      out->binary = std::move(r.stdout_data);
    } else if (r.status != Status::sandbox_error) {
      out->result.status = Status::compile_error;
      if (r.status != Status::runtime_error)
        out->result.message = str_cat("compilation stopped: ", to_string(r.status), " (", r.message, ")");
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    promise.set_exception(std::current_exception());
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      lru_.erase(it->second.second);
      cache_.erase(it);
    }
    throw;
  }
  // Our own failures are not cached: the next attempt may succeed.
  if (out->result.status == Status::sandbox_error && !out->ok) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      lru_.erase(it->second.second);
      cache_.erase(it);
    }
  }
  promise.set_value(out);
  return out;
}

ExecResult BwrapRunner::run(const ExecRequest& request) {
  ExecResult res;
  try {
    const Language& lang = language(request.language);
    if (lang.compile_argv.empty()) {
      return run_step(substitute(lang.run_argv, lang), {{lang.source_file, request.source, false}},
                      request.stdin_data, request.limits);
    }
    bool cached = false;
    auto compiled = compile(lang, request.source, cached);
    if (!compiled->ok) {
      res = compiled->result;
      res.compile_cached = cached;
      return res;
    }
    res = run_step(substitute(lang.run_argv, lang), {{lang.binary_file, compiled->binary, true}}, request.stdin_data,
                   request.limits);
    res.compile_output = compiled->result.compile_output;
    res.compile_cached = cached;
    return res;
  } catch (const std::exception& e) {
    res.status = Status::sandbox_error;
    res.message = e.what();
    return res;
  }
}

}  // namespace r1kit::sandbox
