// Adversarial programs against the real bubblewrap runner. Each one must be contained (the host and
// other runs are unaffected), classified (the right Status) and leave no trace (no process, zombie,
// descriptor or temp file). Short limits keep the suite fast.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <thread>

#include "sandbox/pool.h"
#include "tests/sandbox/sandbox_util.h"

namespace r1kit::sandbox {
namespace {
using test::cpp;
using test::describe;
using test::py;

// Processes on the host that run as one of the sandbox uids (root only: otherwise we cannot tell),
// zombies included: the runner reaps bwrap's orphaned namespace init itself (it is a subreaper).
std::vector<int> sandbox_uid_processes() {
  std::vector<int> found;
  // Only our own runner's uids: ctest runs other sandbox test processes at the same time.
  const auto [lo, hi] = test::real_runner()->uid_range();
  DIR* d = opendir("/proc");
  while (dirent* e = readdir(d)) {
    int pid = atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream f(std::string("/proc/") + e->d_name + "/status");
    std::string line;
    while (std::getline(f, line)) {
      if (line.rfind("Uid:", 0) == 0) {
        int uid = atoi(line.c_str() + 4);
        if (uid >= lo && uid <= hi) found.push_back(pid);
      }
    }
  }
  closedir(d);
  return found;
}

int count_fds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (readdir(d)) ++n;
  closedir(d);
  return n;
}

int count_zombie_children() {
  int n = 0;
  DIR* d = opendir("/proc");
  while (dirent* e = readdir(d)) {
    if (atoi(e->d_name) <= 0) continue;
    std::ifstream f(std::string("/proc/") + e->d_name + "/stat");
    std::string stat;
    std::getline(f, stat);
    auto rp = stat.rfind(')');
    if (rp == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (sscanf(stat.c_str() + rp + 1, " %c %d", &state, &ppid) == 2 && ppid == getpid() && state == 'Z') ++n;
  }
  closedir(d);
  return n;
}

int count_tmp_leftovers() {
  int n = 0;
  DIR* d = opendir("/tmp");
  while (dirent* e = readdir(d))
    if (std::string(e->d_name).rfind("r1kit-unsafe-" + std::to_string(getpid()) + "-", 0) == 0) ++n;
  closedir(d);
  return n;
}

// Checks the host after every adversarial test.
class Adversarial : public ::testing::Test {
 protected:
  void SetUp() override {
    fds_ = count_fds();
    tmp_ = count_tmp_leftovers();
  }
  void TearDown() override {
    if (test::real_runner() == nullptr) return;
    EXPECT_EQ(count_fds(), fds_) << "descriptor leak";
    EXPECT_EQ(count_zombie_children(), 0) << "zombie left";
    EXPECT_EQ(count_tmp_leftovers(), tmp_) << "temp dir left in /tmp";
    if (geteuid() == 0) {
      EXPECT_TRUE(sandbox_uid_processes().empty()) << "a sandboxed process survived the run";
    }
  }
  int fds_ = 0, tmp_ = 0;
};

// bwrap's outer process exits before its namespace init; an init nobody reaps stays a zombie of
// the slot's uid and counts against RLIMIT_NPROC (max_tasks + 3). Under a host init that reaps
// lazily, a few dozen quick runs then failed with "Can't fork". Every run must leave nothing.
TEST_F(Adversarial, ManyQuickRunsLeaveNoZombieOfTheSlotUid) {
  R1_REQUIRE_BWRAP(r);
  for (int i = 0; i < 3 * (Limits{}.max_tasks + 3); ++i) {
    ExecResult x = r->run(py("print(1)"));
    ASSERT_EQ(x.status, Status::ok) << "run " << i << ": " << describe(x);
    if (geteuid() == 0) {
      ASSERT_TRUE(sandbox_uid_processes().empty()) << "run " << i << " left a process";
    }
  }
}

TEST_F(Adversarial, InfiniteLoopTimesOut) {
  R1_REQUIRE_BWRAP(r);
  ExecResult x = r->run(py("while True: pass", 0.5));
  EXPECT_EQ(x.status, Status::timeout) << describe(x);
  EXPECT_LT(x.wall_s, 2.0);
}

TEST_F(Adversarial, SleepHitsTheWallClock) {
  R1_REQUIRE_BWRAP(r);
  ExecResult x = r->run(py("import time\ntime.sleep(60)", 0.5));
  EXPECT_EQ(x.status, Status::timeout) << describe(x);
  EXPECT_LT(x.wall_s, 2.0);
  EXPECT_NE(x.message.find("wall-clock"), std::string::npos);
}

TEST_F(Adversarial, CppInfiniteLoopTimesOut) {
  R1_REQUIRE_BWRAP(r);
  ExecResult x = r->run(cpp("int main(){ volatile unsigned long i=0; for(;;) ++i; }", 0.5));
  EXPECT_EQ(x.status, Status::timeout) << describe(x);
}

TEST_F(Adversarial, ForkBombIsContained) {
  R1_REQUIRE_BWRAP(r);
  auto t0 = std::chrono::steady_clock::now();
  ExecResult x = r->run(py("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass", 1));
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(x.status == Status::timeout || x.status == Status::runtime_error) << describe(x);
  EXPECT_LT(s, 5.0);
}

TEST_F(Adversarial, CppForkBombIsContained) {
  R1_REQUIRE_BWRAP(r);
  ExecResult x = r->run(cpp("#include <unistd.h>\nint main(){ for(;;) fork(); }", 1));
  EXPECT_TRUE(x.status == Status::timeout || x.status == Status::runtime_error) << describe(x);
}

TEST_F(Adversarial, ThreadBombIsLimited) {
  R1_REQUIRE_BWRAP(r);
  ExecResult x = r->run(py(R"(import threading, time
n = 0
try:
    while True:
        threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
        n += 1
except Exception as e:
    print('stopped after', n)
    raise
)", 1));
  EXPECT_NE(x.status, Status::ok) << describe(x);
  EXPECT_NE(x.status, Status::sandbox_error) << describe(x);
  auto pos = x.stdout_data.find("stopped after ");
  ASSERT_NE(pos, std::string::npos) << describe(x);
  EXPECT_LE(atoi(x.stdout_data.c_str() + pos + 14), 64);
}

TEST_F(Adversarial, FastMemoryBomb) {
  R1_REQUIRE_BWRAP(r);
  ExecResult x = r->run(py("x = bytearray(4 << 30)\nprint(len(x))"));
  EXPECT_EQ(x.status, Status::memory) << describe(x);
}

TEST_F(Adversarial, SlowMemoryBombTouchingPages) {
  R1_REQUIRE_BWRAP(r);
  ExecResult x = r->run(py("chunks = []\nwhile True:\n    chunks.append(bytearray(b'x' * (8 << 20)))", 3));
  EXPECT_EQ(x.status, Status::memory) << describe(x);
  EXPECT_LE(x.peak_memory_bytes, (128 + 32) << 20);
}

TEST_F(Adversarial, CppMemoryBombTouchingPages) {
  R1_REQUIRE_BWRAP(r);
  // -O2 removes unused allocations: the memory is written and read back.
  ExecResult x = r->run(cpp(R"(#include <cstdio>
#include <cstring>
#include <vector>
int main(){ std::vector<char*> v; long s = 0;
  for (int i = 0; i < 1024; ++i) { char* p = new char[1 << 20]; std::memset(p, i, 1 << 20); v.push_back(p); s += p[i]; }
  std::printf("%ld\n", s); })", 2));
  EXPECT_EQ(x.status, Status::memory) << describe(x);
}

TEST_F(Adversarial, StackOverflowIsARuntimeError) {
  R1_REQUIRE_BWRAP(r);
  ExecResult x = r->run(cpp("#include <cstdio>\nint f(int n){ volatile char buf[4096]; buf[0]=n; return f(n+1)+buf[0]; }\n"
                            "int main(){ std::printf(\"%d\", f(0)); }", 2));
  EXPECT_EQ(x.status, Status::runtime_error) << describe(x);
  EXPECT_EQ(x.signal, SIGSEGV);
  ExecResult p = r->run(py("import sys\nsys.setrecursionlimit(10**9)\ndef f(n): return f(n+1)+1\nf(0)", 2));
  // CPython 3.11 keeps Python frames on the heap: deep recursion ends in a crash, MemoryError or the clock.
  EXPECT_TRUE(p.status == Status::runtime_error || p.status == Status::memory || p.status == Status::timeout)
      << describe(p);
}

TEST_F(Adversarial, OutputFloodKeepsTheHead) {
  R1_REQUIRE_BWRAP(r);
  ExecResult x = r->run(py("print('HEAD')\nwhile True: print('x' * 1000)", 5));
  EXPECT_EQ(x.status, Status::output_limit) << describe(x);
  EXPECT_EQ(x.stdout_data.size(), 64u << 10);
  EXPECT_EQ(x.stdout_data.rfind("HEAD\n", 0), 0u);
  EXPECT_LT(x.wall_s, 3.0);  // stopped at the cap, not at the time limit
  ExecResult e = r->run(py("import sys\nwhile True: sys.stderr.write('e' * 1000)", 5));
  EXPECT_EQ(e.status, Status::output_limit) << describe(e);
}

TEST_F(Adversarial, WritesOutsideTheWorkDirectoryFail) {
  R1_REQUIRE_BWRAP(r);
  ExecResult x = r->run(py(R"(import os
for p in ['/usr/r1kit_evil', '/r1kit_evil', '/etc/r1kit_evil', '/proc/r1kit_evil', '/usr/bin/python3', '/lib/r1kit_evil']:
    try:
        open(p, 'a').write('x')
        print('WROTE', p)
    except OSError as e:
        print('blocked', p, type(e).__name__)
open('/box/ok.txt', 'w').write('fine')
open('/tmp/ok.txt', 'w').write('fine')
print('workdir ok')
)"));
  EXPECT_EQ(x.status, Status::ok) << describe(x);
  EXPECT_EQ(x.stdout_data.find("WROTE"), std::string::npos) << x.stdout_data;
  EXPECT_NE(x.stdout_data.find("workdir ok"), std::string::npos);
  struct stat st;
  EXPECT_NE(stat("/usr/r1kit_evil", &st), 0);
  EXPECT_NE(stat("/r1kit_evil", &st), 0);
}

TEST_F(Adversarial, FileSizeLimit) {
  R1_REQUIRE_BWRAP(r);
  ExecRequest q = py("f = open('/box/big', 'wb')\nfor i in range(100):\n    f.write(b'x' * (1 << 20))\n    f.flush()\nprint('wrote all')", 3);
  q.limits.file_size_mb = 4;
  ExecResult x = r->run(q);
  EXPECT_NE(x.status, Status::ok) << describe(x);
  EXPECT_EQ(x.stdout_data.find("wrote all"), std::string::npos);
}

TEST_F(Adversarial, SecretsAndTheParentEnvironmentAreInvisible) {
  R1_REQUIRE_BWRAP(r);
  setenv("R1KIT_PARENT_CANARY", "canary-6b1f", 1);
  // A root-only file inside a directory the sandbox does see (/usr), when we may create one.
  const std::string secret = "/usr/local/r1kit_root_only_secret";
  bool have_secret = false;
  if (geteuid() == 0) {
    std::ofstream(secret) << "TOPSECRET-93af";
    have_secret = chmod(secret.c_str(), 0600) == 0;
  }
  // A descriptor the parent holds open without close-on-exec must not be inherited.
  int leaked = open("/proc/self/status", O_RDONLY);
  ExecResult x = r->run(py(R"(import os
print('ENV', sorted(os.environ))
for p in ['/proc/1/environ', '/proc/self/environ']:
    try: print(p, open(p, 'rb').read())
    except OSError as e: print(p, 'blocked')
try: print('SECRET', open('/usr/local/r1kit_root_only_secret').read())
except OSError as e: print('secret blocked', type(e).__name__)
for p in ['/etc/shadow', '/etc/passwd', '/root', '/home', '/work']:
    print(p, 'exists' if os.path.exists(p) else 'absent')
print('FDS', sorted(os.listdir('/proc/self/fd')))
print('UID', os.getuid(), os.geteuid())
)"));
  close(leaked);
  if (have_secret) unlink(secret.c_str());
  unsetenv("R1KIT_PARENT_CANARY");
  ASSERT_EQ(x.status, Status::ok) << describe(x);
  const std::string& o = x.stdout_data;
  EXPECT_EQ(o.find("canary-6b1f"), std::string::npos) << o;
  EXPECT_EQ(o.find("TOPSECRET"), std::string::npos) << o;
  EXPECT_NE(o.find("ENV ['HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR']"), std::string::npos) << o;
  EXPECT_NE(o.find("/proc/1/environ b''"), std::string::npos) << o;  // bwrap itself started with no environment
  for (const char* p : {"/etc/shadow absent", "/etc/passwd absent", "/root absent", "/home absent", "/work absent"})
    EXPECT_NE(o.find(p), std::string::npos) << p << "\n" << o;
  EXPECT_NE(o.find("FDS ['0', '1', '2', '3']"), std::string::npos) << o;  // 3 = the listdir itself
  EXPECT_EQ(o.find("UID 0"), std::string::npos) << o;
}

TEST_F(Adversarial, NoNetworkLoopbackListenerOrDns) {
  R1_REQUIRE_BWRAP(r);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(lfd, 4), 0);
  socklen_t len = sizeof addr;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  ExecResult x = r->run(py("import socket\ns = socket.create_connection(('127.0.0.1', " + std::to_string(port) +
                           "), timeout=1)\nprint('CONNECTED')"));
  EXPECT_EQ(x.status, Status::denied) << describe(x);
  EXPECT_EQ(x.stdout_data.find("CONNECTED"), std::string::npos);
  EXPECT_LT(accept(lfd, nullptr, nullptr), 0) << "the sandbox reached a host listener";
  close(lfd);

  ExecResult d = r->run(py("import socket\nprint(socket.getaddrinfo('example.com', 80))"));
  EXPECT_TRUE(d.status == Status::denied || d.status == Status::runtime_error) << describe(d);
  EXPECT_EQ(d.stdout_data.find("("), std::string::npos);
  // UNIX sockets (asyncio, multiprocessing) still work.
  ExecResult u = r->run(py("import socket\na, b = socket.socketpair()\na.send(b'hi')\nprint(b.recv(2))"));
  EXPECT_EQ(u.status, Status::ok) << describe(u);
}

TEST_F(Adversarial, CannotSignalOrPtraceOtherProcesses) {
  R1_REQUIRE_BWRAP(r);
  pid_t victim = fork();
  if (victim == 0) {
    pause();
    _exit(0);
  }
  ExecResult x = r->run(py("import os\ntry:\n    os.kill(" + std::to_string(victim) +
                           ", 9)\n    print('KILLED')\nexcept OSError as e:\n    print('blocked', e)\n"
                           "try:\n    os.kill(-1, 9)\nexcept OSError as e:\n    print('blocked -1', e)\nprint('alive')"));
  EXPECT_EQ(kill(victim, 0), 0) << "the sandbox killed a host process";
  EXPECT_EQ(x.stdout_data.find("KILLED"), std::string::npos) << describe(x);
  ExecResult p = r->run(py("import ctypes\nlibc = ctypes.CDLL(None)\nprint(libc.ptrace(16, " + std::to_string(victim) +
                           ", 0, 0))\nprint('PTRACE RETURNED')"));
  EXPECT_EQ(p.status, Status::denied) << describe(p);
  EXPECT_EQ(p.stdout_data.find("PTRACE RETURNED"), std::string::npos);
  EXPECT_EQ(kill(victim, 0), 0);
  kill(victim, SIGKILL);
  waitpid(victim, nullptr, 0);
  // The keyring is denied unless each run has its own uid (root); then it is private to the run
  // (tests/sandbox/ipc_test.cc), and only the upcall and group/other permissions stay denied.
  ExecResult k = r->run(py("import ctypes\nlibc = ctypes.CDLL(None)\nlibc.syscall(250, 0, 0, 0, 0)\nprint('KEYCTL')"));
  EXPECT_EQ(k.status, r->keyring_allowed() ? Status::ok : Status::denied) << describe(k);
  // New namespaces are denied.
  ExecResult n = r->run(py("import ctypes\nlibc = ctypes.CDLL(None)\nprint(libc.unshare(0x10000000))\nprint('UNSHARED')"));
  EXPECT_EQ(n.status, Status::denied) << describe(n);
}

TEST_F(Adversarial, DaemonsDieWithTheRun) {
  R1_REQUIRE_BWRAP(r);
  // Double fork + setsid: the classic way to outlive a parent. TearDown checks no sandbox uid survives.
  ExecResult x = r->run(py(R"(import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(30)
        os._exit(0)
    os._exit(0)
time.sleep(0.1)
print('parent done')
)"));
  EXPECT_EQ(x.status, Status::ok) << describe(x);
  EXPECT_LT(x.wall_s, 5.0);
}

TEST_F(Adversarial, NothingPersistsBetweenRuns) {
  R1_REQUIRE_BWRAP(r);
  // /box, /tmp and /dev (incl. /dev/shm) are per-run tmpfs: writable, gone with the run.
  ExecResult a = r->run(py("for p in ['/box/left', '/tmp/left', '/dev/left', '/dev/shm/left']: open(p, 'w').write('x')\nprint('ok')"));
  ASSERT_EQ(a.status, Status::ok) << describe(a);
  ExecResult b = r->run(py("import os\nprint([os.path.exists(p) for p in ['/box/left', '/tmp/left', '/dev/left', '/dev/shm/left']], sorted(os.listdir('/box')))"));
  ASSERT_EQ(b.status, Status::ok) << describe(b);
  EXPECT_EQ(b.stdout_data, "[False, False, False, False] ['main.py']\n");
}

TEST_F(Adversarial, ConcurrentRunsCannotSeeEachOther) {
  R1_REQUIRE_BWRAP(r);
  SandboxPool pool(*r, 2);
  auto writer = pool.submit(py("import time\nopen('/box/mine','w').write('A')\nopen('/tmp/mine','w').write('A')\ntime.sleep(1)\nprint('w')", 3));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto reader = pool.submit(py("import os\nprint(sorted(os.listdir('/box')), sorted(os.listdir('/tmp')), len([p for p in os.listdir('/proc') if p.isdigit()]))", 3));
  ExecResult rd = reader.get();
  ExecResult wr = writer.get();
  ASSERT_EQ(wr.status, Status::ok) << describe(wr);
  ASSERT_EQ(rd.status, Status::ok) << describe(rd);
  EXPECT_EQ(rd.stdout_data.find("mine"), std::string::npos) << rd.stdout_data;
}

TEST_F(Adversarial, ProcShowsOnlyTheSandbox) {
  R1_REQUIRE_BWRAP(r);
  ExecResult x = r->run(py(R"(import os
pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
print('PIDS', pids)
print('CMD1', open('/proc/1/cmdline','rb').read().split(b'\0')[0])
for p in ['/proc/1/root/etc/shadow', '/proc/1/cwd/../../etc/passwd', '/proc/sys/kernel/hostname']:
    try: print(p, open(p).read()[:40])
    except OSError as e: print(p, 'blocked')
)"));
  ASSERT_EQ(x.status, Status::ok) << describe(x);
  EXPECT_NE(x.stdout_data.find("PIDS [1, 2]"), std::string::npos) << x.stdout_data;
  EXPECT_NE(x.stdout_data.find("/proc/1/root/etc/shadow blocked"), std::string::npos) << x.stdout_data;
  EXPECT_NE(x.stdout_data.find("/proc/sys/kernel/hostname sandbox"), std::string::npos) << x.stdout_data;
}

TEST_F(Adversarial, SymlinkTricksStayInside) {
  R1_REQUIRE_BWRAP(r);
  ExecResult x = r->run(py(R"(import os
for name, target in [('a', '/etc/shadow'), ('b', '/proc/1/root'), ('c', '../../../../etc'), ('d', '/proc/self/root/..')]:
    os.symlink(target, '/box/' + name)
    try:
        p = '/box/' + name
        print(name, 'dir' if os.path.isdir(p) else 'file', sorted(os.listdir(p)) if os.path.isdir(p) else open(p).read()[:20])
    except OSError as e:
        print(name, 'blocked')
try:
    os.symlink('/box/x', '/usr/r1kit_link'); print('LINKED')
except OSError: print('link outside blocked')
)"));
  ASSERT_EQ(x.status, Status::ok) << describe(x);
  EXPECT_NE(x.stdout_data.find("a blocked"), std::string::npos) << x.stdout_data;
  EXPECT_EQ(x.stdout_data.find("LINKED"), std::string::npos) << x.stdout_data;
  EXPECT_EQ(x.stdout_data.find("'work'"), std::string::npos) << x.stdout_data;  // never the host root
  EXPECT_EQ(x.stdout_data.find("'root'"), std::string::npos) << x.stdout_data;
}

TEST_F(Adversarial, CompileTimeBombs) {
  R1_REQUIRE_BWRAP(r);
  // Reading an endless device as a header.
  ExecResult z = r->run(cpp("#include \"/dev/zero\"\nint main(){}"));
  EXPECT_EQ(z.status, Status::compile_error) << describe(z);
  // Exponential template instantiation.
  ExecResult t = r->run(cpp(R"(template<int N, int M> struct F { enum { v = F<N-1, M+1>::v + F<N-1, M+2>::v }; };
template<int M> struct F<0, M> { enum { v = 1 }; };
int main(){ return F<40, 0>::v; })"));
  EXPECT_EQ(t.status, Status::compile_error) << describe(t);
  // A host file as a header is simply not there.
  ExecResult h = r->run(cpp("#include \"/etc/shadow\"\nint main(){}"));
  EXPECT_EQ(h.status, Status::compile_error) << describe(h);
  EXPECT_NE(h.compile_output.find("No such file"), std::string::npos) << h.compile_output;
}

}  // namespace
}  // namespace r1kit::sandbox
