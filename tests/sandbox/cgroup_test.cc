// Cgroups against fake cgroup trees (v2 and v1 layouts written by the test, standing in for the
// kernel's files): which files detect/prepare/stats read and write, and what they make of them.
// This host only offers v1 for memory + pids, so the v2 layout is otherwise never exercised here.
// The last test uses the host's real cgroup2 mount when it has one without those controllers.
#include "sandbox/cgroup.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace r1kit::sandbox {
namespace {
namespace fs = std::filesystem;

void put(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

std::string get(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class FakeTree : public ::testing::Test {
 protected:
  void SetUp() override {
    char t[] = "/tmp/r1kit-cgroup-test-XXXXXX";
    ASSERT_NE(mkdtemp(t), nullptr);
    dir_ = t;
    paths_.root = (dir_ / "fs").string();
    paths_.self_cgroup = (dir_ / "self_cgroup").string();
  }
  void TearDown() override { fs::remove_all(dir_); }
  // The one directory detect() created under `parent`.
  fs::path created_under(const fs::path& parent) {
    fs::path found;
    for (const auto& e : fs::directory_iterator(parent))
      if (e.is_directory() && e.path().filename().string().rfind("r1kit-", 0) == 0) found = e.path();
    return found;
  }
  fs::path dir_;
  CgroupPaths paths_;
};

TEST_F(FakeTree, V2LimitsAndCountersPerRun) {
  const fs::path root = paths_.root, job = root / "job";
  put(root / "cgroup.controllers", "cpuset cpu io memory pids\n");
  put(job / "cgroup.controllers", "cpu memory pids\n");
  put(job / "cgroup.subtree_control", "");
  put(paths_.self_cgroup, "0::/job\n");

  std::string why;
  auto cg = Cgroups::detect(&why, paths_);
  ASSERT_TRUE(cg) << why;
  EXPECT_EQ(cg->mode(), "v2");
  // Created under our own cgroup (so the host's limits on us still apply), controllers enabled top-down.
  const fs::path base = created_under(job);
  ASSERT_FALSE(base.empty());
  EXPECT_EQ(get(job / "cgroup.subtree_control"), "+memory +pids");
  EXPECT_EQ(get(base / "cgroup.subtree_control"), "+memory +pids");

  auto procs = cg->prepare(3, 256 << 20, 10);
  const fs::path slot = base / "s3";
  ASSERT_EQ(procs, std::vector<std::string>{(slot / "cgroup.procs").string()});
  EXPECT_EQ(get(slot / "memory.max"), "268435456");
  EXPECT_EQ(get(slot / "pids.max"), "10");
  EXPECT_EQ(get(slot / "memory.swap.max"), "0");
  EXPECT_EQ(get(slot / "memory.peak"), "reset");

  // What the kernel would report after a run that was OOM-killed.
  put(slot / "memory.peak", "123456789\n");
  put(slot / "memory.events", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 0\n");
  put(slot / "cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n");
  CgroupStats st = cg->stats(3);
  EXPECT_EQ(st.peak_bytes, 123456789);
  EXPECT_TRUE(st.oom_killed);
  EXPECT_DOUBLE_EQ(st.cpu_s, 2.5);

  // The next run on the slot counts from where the last one ended.
  cg->prepare(3, 64 << 20, 5);
  EXPECT_EQ(get(slot / "memory.max"), "67108864");
  put(slot / "cpu.stat", "usage_usec 2750000\n");
  st = cg->stats(3);
  EXPECT_FALSE(st.oom_killed);
  EXPECT_NEAR(st.cpu_s, 0.25, 1e-9);
}

TEST_F(FakeTree, V2WithoutMemoryOrPidsFallsBack) {
  put(fs::path(paths_.root) / "cgroup.controllers", "cpu io\n");
  put(paths_.self_cgroup, "0::/\n");
  std::string why;
  EXPECT_FALSE(Cgroups::detect(&why, paths_));
  EXPECT_NE(why.find("memory/pids controllers not available"), std::string::npos) << why;
}

TEST_F(FakeTree, V1LimitsAndCountersPerRun) {
  const fs::path root = paths_.root;
  for (const char* c : {"memory", "pids", "cpuacct"}) put(root / c / "cgroup.procs", "");
  put(root / "cpuacct" / "cpuacct.usage", "0\n");
  for (const char* c : {"memory", "pids", "cpuacct"}) fs::create_directories(root / c / "job");
  put(paths_.self_cgroup, "8:pids:/job\n4:memory:/job\n2:cpu,cpuacct:/job\n1:name=systemd:/job\n");

  std::string why;
  auto cg = Cgroups::detect(&why, paths_);
  ASSERT_TRUE(cg) << why;
  EXPECT_EQ(cg->mode(), "v1");
  const fs::path mem = created_under(root / "memory" / "job"), pids = created_under(root / "pids" / "job"),
                 cpu = created_under(root / "cpuacct" / "job");
  ASSERT_FALSE(mem.empty() || pids.empty() || cpu.empty());

  put(cpu / "s0" / "cpuacct.usage", "0\n");  // the kernel's counter, there before the first run
  auto procs = cg->prepare(0, 512 << 20, 34);
  EXPECT_EQ(procs.size(), 3u);
  EXPECT_EQ(get(mem / "s0" / "memory.limit_in_bytes"), "536870912");
  EXPECT_EQ(get(pids / "s0" / "pids.max"), "34");
  EXPECT_EQ(get(mem / "s0" / "memory.max_usage_in_bytes"), "0");  // peak reset per run

  put(mem / "s0" / "memory.max_usage_in_bytes", "4096000\n");
  put(mem / "s0" / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
  put(cpu / "s0" / "cpuacct.usage", "1500000000\n");
  CgroupStats st = cg->stats(0);
  EXPECT_EQ(st.peak_bytes, 4096000);
  EXPECT_TRUE(st.oom_killed);
  EXPECT_DOUBLE_EQ(st.cpu_s, 1.5);
}

// The host's real cgroup2 mount (hybrid hosts mount it at /sys/fs/cgroup/unified), when memory and
// pids are bound to v1 there: detect() must refuse it with the reason, not half-work.
TEST(RealCgroup2, WithoutControllersIsRefusedWithTheReason) {
  const std::string unified = "/sys/fs/cgroup/unified";
  std::string ctrls = get(unified + "/cgroup.controllers");
  if (!fs::exists(unified + "/cgroup.controllers") || ctrls.find("memory") != std::string::npos)
    GTEST_SKIP() << "no cgroup2 mount without the memory controller at " << unified;
  CgroupPaths paths;
  paths.root = unified;
  std::string why;
  EXPECT_FALSE(Cgroups::detect(&why, paths));
  EXPECT_NE(why.find("memory/pids controllers not available"), std::string::npos) << why;
}

}  // namespace
}  // namespace r1kit::sandbox
