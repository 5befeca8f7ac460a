#include "sandbox/cgroup.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/check.h"

namespace r1kit::sandbox {
namespace {

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

bool read_text(const std::string& path, std::string& out) {
  std::ifstream f(path);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  out = ss.str();
  return true;
}

bool write_text(const std::string& path, const std::string& value) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return false;
  bool ok = std::fputs(value.c_str(), f) >= 0;
  ok = (std::fclose(f) == 0) && ok;
  return ok;
}

// The value of `key N` in a flat-keyed file (memory.events, memory.oom_control).
std::int64_t keyed_value(const std::string& path, const std::string& key) {
  std::string text;
  if (!read_text(path, text)) return 0;
  std::istringstream ss(text);
  std::string k;
  std::int64_t v;
  while (ss >> k >> v)
    if (k == key) return v;
  return 0;
}

std::int64_t number(const std::string& path) {
  std::string text;
  if (!read_text(path, text)) return -1;
  try {
    return std::stoll(text);
  } catch (...) {
    return -1;
  }
}

// Our own cgroup path in a hierarchy from /proc/self/cgroup ("4:memory:/a/b" or "0::/a/b").
std::string own_path(const std::string& self_cgroup, const std::string& controller) {
  std::ifstream f(self_cgroup);
  std::string line;
  while (std::getline(f, line)) {
    auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string ctrls = line.substr(a + 1, b - a - 1);
    std::stringstream cs(ctrls);
    std::string c;
    while (std::getline(cs, c, ','))
      if (c == controller) return line.substr(b + 1);
    if (controller.empty() && ctrls.empty()) return line.substr(b + 1);
  }
  return "";
}

// Where to create our directory: our own cgroup when visible under the mount (so the host's limits on
// us still apply to the sandboxes), else the mount root.
std::string parent_dir(const CgroupPaths& paths, const std::string& mount, const std::string& controller) {
  std::string own = own_path(paths.self_cgroup, controller);
  if (!own.empty() && own != "/" && exists(mount + own)) return mount + own;
  return mount;
}

std::string unique_name() {
  static std::atomic<int> seq{0};
  return str_cat("r1kit-", getpid(), "-", seq++);
}

}  // namespace

std::unique_ptr<Cgroups> Cgroups::detect(std::string* why, const CgroupPaths& paths) {
  const std::string& root = paths.root;
  std::unique_ptr<Cgroups> cg(new Cgroups());
  auto fail = [&](const std::string& msg) -> std::unique_ptr<Cgroups> {
    if (why) *why = msg;
    for (auto it = cg->bases_.rbegin(); it != cg->bases_.rend(); ++it) rmdir(it->c_str());
    cg->bases_.clear();
    return nullptr;
  };
  if (exists(root + "/cgroup.controllers")) {
    cg->mode_ = "v2";
    std::string parent = parent_dir(paths, root, "");
    std::string ctrls;
    read_text(parent + "/cgroup.controllers", ctrls);
    if (ctrls.find("memory") == std::string::npos || ctrls.find("pids") == std::string::npos)
      return fail("cgroup v2: memory/pids controllers not available in " + parent);
    std::string base = parent + "/" + unique_name();
    if (mkdir(base.c_str(), 0700) != 0) return fail("cgroup v2: cannot create " + base);
    cg->bases_.push_back(base);
    // Controllers must be enabled top-down; fails when our own cgroup holds processes (no-internal-process rule).
    if (!write_text(parent + "/cgroup.subtree_control", "+memory +pids") ||
        !write_text(base + "/cgroup.subtree_control", "+memory +pids"))
      return fail("cgroup v2: cannot enable memory+pids controllers under " + parent);
    return cg;
  }
  if (exists(root + "/memory/cgroup.procs") && exists(root + "/pids/cgroup.procs")) {
    cg->mode_ = "v1";
    for (const char* c : {"memory", "pids"}) {
      std::string base = parent_dir(paths, root + "/" + c, c) + "/" + unique_name();
      if (mkdir(base.c_str(), 0700) != 0 && errno != EEXIST) return fail("cgroup v1: cannot create " + base);
      cg->bases_.push_back(base);
    }
    // CPU accounting of the whole tree (bwrap's init does not hand its children's CPU to wait4).
    if (exists(root + "/cpuacct/cpuacct.usage")) {
      std::string base = parent_dir(paths, root + "/cpuacct", "cpuacct") + "/" + unique_name();
      if (mkdir(base.c_str(), 0700) == 0 || errno == EEXIST) cg->bases_.push_back(base);
    }
    return cg;
  }
  return fail("no cgroup v2 hierarchy and no v1 memory+pids hierarchies under " + root);
}

Cgroups::~Cgroups() {
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (!slots_[i]) continue;
    kill_all(static_cast<int>(i));
    for (const auto& d : slots_[i]->dirs) rmdir(d.c_str());
  }
  for (auto it = bases_.rbegin(); it != bases_.rend(); ++it) rmdir(it->c_str());
}

Cgroups::Slot& Cgroups::slot_dirs(int slot) {
  std::lock_guard<std::mutex> lock(mu_);
  if (static_cast<std::size_t>(slot) >= slots_.size()) slots_.resize(slot + 1);
  if (!slots_[slot]) {
    auto s = std::make_unique<Slot>();
    for (const auto& b : bases_) {
      std::string d = str_cat(b, "/s", slot);
      R1_CHECK(mkdir(d.c_str(), 0700) == 0 || errno == EEXIST, "sandbox: cannot create cgroup ", d);
      s->dirs.push_back(d);
    }
    slots_[slot] = std::move(s);
  }
  return *slots_[slot];
}

std::vector<std::string> Cgroups::prepare(int slot, std::int64_t memory_bytes, int max_tasks) {
  Slot& s = slot_dirs(slot);
  const std::string mem = std::to_string(memory_bytes), tasks = std::to_string(max_tasks);
  if (mode_ == "v2") {
    const std::string& d = s.dirs[0];
    R1_CHECK(write_text(d + "/memory.max", mem) && write_text(d + "/pids.max", tasks),
             "sandbox: cannot set cgroup limits in ", d);
    write_text(d + "/memory.swap.max", "0");
    write_text(d + "/memory.peak", "reset");  // kernels >= 6.12 reset the peak on write
    s.oom_before = keyed_value(d + "/memory.events", "oom_kill");
  } else {
    const std::string& m = s.dirs[0];
    const std::string& p = s.dirs[1];
    // memsw must stay >= the memory limit: lower order depends on the direction of the change.
    bool swap = exists(m + "/memory.memsw.limit_in_bytes");
    bool ok = write_text(m + "/memory.limit_in_bytes", mem);
    if (swap) {
      write_text(m + "/memory.memsw.limit_in_bytes", mem);
      if (!ok) ok = write_text(m + "/memory.limit_in_bytes", mem);
    }
    R1_CHECK(ok && write_text(p + "/pids.max", tasks), "sandbox: cannot set cgroup limits in ", m, " / ", p);
    write_text(m + "/memory.max_usage_in_bytes", "0");
    if (swap) write_text(m + "/memory.memsw.max_usage_in_bytes", "0");
    s.oom_before = keyed_value(m + "/memory.oom_control", "oom_kill");
  }
  s.cpu_before = cpu_seconds(s);
  std::vector<std::string> procs;
  for (const auto& d : s.dirs) procs.push_back(d + "/cgroup.procs");
  return procs;
}

bool Cgroups::kill_all(int slot) {
  Slot& s = slot_dirs(slot);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    bool any = false;
    for (const auto& d : s.dirs) {
      std::string text;
      if (!read_text(d + "/cgroup.procs", text)) continue;
      std::istringstream ss(text);
      long pid;
      while (ss >> pid) {
        any = true;
        kill(static_cast<pid_t>(pid), SIGKILL);
      }
    }
    if (!any) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

double Cgroups::cpu_seconds(const Slot& s) {
  if (mode_ == "v2") return keyed_value(s.dirs[0] + "/cpu.stat", "usage_usec") * 1e-6;
  if (s.dirs.size() < 3) return -1;
  std::int64_t ns = number(s.dirs[2] + "/cpuacct.usage");
  return ns < 0 ? -1 : ns * 1e-9;
}

CgroupStats Cgroups::stats(int slot) {
  Slot& s = slot_dirs(slot);
  CgroupStats st;
  double cpu = cpu_seconds(s);
  if (cpu >= 0 && s.cpu_before >= 0) st.cpu_s = cpu - s.cpu_before;
  if (mode_ == "v2") {
    st.peak_bytes = number(s.dirs[0] + "/memory.peak");
    st.oom_killed = keyed_value(s.dirs[0] + "/memory.events", "oom_kill") > s.oom_before;
  } else {
    st.peak_bytes = number(s.dirs[0] + "/memory.max_usage_in_bytes");
    st.oom_killed = keyed_value(s.dirs[0] + "/memory.oom_control", "oom_kill") > s.oom_before;
  }
  return st;
}

}  // namespace r1kit::sandbox
