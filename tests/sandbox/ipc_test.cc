// System V IPC, POSIX IPC and the kernel keyring inside the sandbox (docs/sandbox.md, "IPC and
// keyrings"): ordinary C++ programs that use them run (status ok), and a later run, or one running at
// the same time, finds nothing of theirs. Each class: a writer run leaves an object behind (and prints
// its id), then a reader run, handed the writer's key, name and ids, looks for it every way it can.
#include <linux/keyctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <sstream>
#include <thread>

#include "tests/sandbox/sandbox_util.h"

namespace r1kit::sandbox {
namespace {
using test::cpp;
using test::describe;

// One program per role; the class and the ids come on stdin. Every line it prints is "name value".
constexpr const char* kWriter = R"(#include <fcntl.h>
#include <linux/keyctl.h>
#include <mqueue.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
const char kSecret[] = "r1kit-secret-payload";
struct Msg { long type; char text[32]; };
int die(const char* what) { std::printf("error %s %s\n", what, std::strerror(errno)); return 1; }
int main() {
  std::string cls, hold;
  std::cin >> cls >> hold;
  if (cls == "msg") {
    int q = msgget(0x52314b, IPC_CREAT | 0666);
    if (q < 0) return die("msgget");
    Msg m{1, {}};
    std::strcpy(m.text, kSecret);
    if (msgsnd(q, &m, sizeof m.text, 0) != 0) return die("msgsnd");
    std::printf("id %d\n", q);
  } else if (cls == "shm") {
    int s = shmget(0x52314b, 4096, IPC_CREAT | 0666);
    if (s < 0) return die("shmget");
    void* p = shmat(s, nullptr, 0);
    if (p == reinterpret_cast<void*>(-1)) return die("shmat");
    std::strcpy(static_cast<char*>(p), kSecret);
    shmdt(p);
    std::printf("id %d\n", s);
  } else if (cls == "sem") {
    int s = semget(0x52314b, 1, IPC_CREAT | 0666);
    if (s < 0) return die("semget");
    if (semctl(s, 0, SETVAL, 4242) != 0) return die("semctl");
    std::printf("id %d\n", s);
  } else if (cls == "mq") {
    mq_attr a{};
    a.mq_maxmsg = 4;
    a.mq_msgsize = 32;
    mqd_t q = mq_open("/r1kit-mq", O_CREAT | O_RDWR, 0666, &a);
    if (q == static_cast<mqd_t>(-1)) return die("mq_open");
    if (mq_send(q, kSecret, sizeof kSecret, 0) != 0) return die("mq_send");
    std::printf("id 0\n");
  } else if (cls == "posix_shm") {
    int fd = shm_open("/r1kit-shm", O_CREAT | O_RDWR, 0666);
    if (fd < 0) return die("shm_open");
    if (write(fd, kSecret, sizeof kSecret) != static_cast<ssize_t>(sizeof kSecret)) return die("write");
    std::printf("id 0\n");
  } else if (cls == "keyring") {
    // One key in every keyring a process can reach by name, and the keyrings' own ids.
    long session = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1);
    long user = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 1);
    long user_session = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_SESSION_KEYRING, 1);
    long persistent = syscall(SYS_keyctl, KEYCTL_GET_PERSISTENT, -1, KEY_SPEC_SESSION_KEYRING);
    if (session < 0 || user < 0 || user_session < 0) return die("keyctl get keyring");
    std::printf("keyring %ld\nkeyring %ld\nkeyring %ld\n", session, user, user_session);
    if (persistent >= 0) std::printf("keyring %ld\n", persistent);
    long rings[] = {KEY_SPEC_SESSION_KEYRING, KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING,
                    KEY_SPEC_PROCESS_KEYRING, persistent};
    for (long ring : rings) {
      if (ring == -1) continue;
      long k = syscall(SYS_add_key, "user", "r1kit-secret", kSecret, sizeof kSecret, ring);
      if (k < 0) return die("add_key");
      std::printf("key %ld\n", k);
    }
    // A named session keyring is looked up by name by a later KEYCTL_JOIN_SESSION_KEYRING.
    long named = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "r1kit-named");
    if (named < 0) return die("join named");
    long k = syscall(SYS_add_key, "user", "r1kit-secret", kSecret, sizeof kSecret, named);
    if (k < 0) return die("add_key named");
    std::printf("keyring %ld\nkey %ld\n", named, k);
  } else if (cls != "none") {
    return die("unknown class");
  }
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);  // the host's clock: bwrap makes no time namespace
  std::printf("created %lld\n", t.tv_sec * 1000000000LL + t.tv_nsec);
  std::fflush(stdout);
  if (hold == "hold") usleep(1500000);  // still alive while a concurrent reader looks
  return 0;
}
)";

constexpr const char* kReader = R"(#include <fcntl.h>
#include <linux/keyctl.h>
#include <mqueue.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
// Prints "found <what>" for anything of the writer's it can reach, "absent <what>" otherwise.
void report(bool found, const std::string& what) { std::printf("%s %s\n", found ? "found" : "absent", what.c_str()); }
std::string slurp(const char* path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}
// /proc/sysvipc/<kind> lists every object of this IPC namespace after a header line.
bool sysvipc_listed(const char* kind) {
  std::string t = slurp((std::string("/proc/sysvipc/") + kind).c_str());
  return t.find('\n') != std::string::npos && t.find('\n') + 1 < t.size();
}
int main() {
  std::string cls, word;
  std::cin >> cls;
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  std::printf("start %lld\n", t.tv_sec * 1000000000LL + t.tv_nsec);
  if (cls == "msg" || cls == "shm" || cls == "sem") {
    long id = -1, value;
    while (std::cin >> word >> value)
      if (word == "id") id = value;
    int by_key = cls == "msg" ? msgget(0x52314b, 0) : cls == "shm" ? shmget(0x52314b, 0, 0) : semget(0x52314b, 0, 0);
    report(by_key >= 0, "by key");
    int by_id = cls == "msg" ? msgctl(static_cast<int>(id), IPC_STAT, nullptr)
                : cls == "shm" ? shmctl(static_cast<int>(id), IPC_STAT, nullptr)
                               : semctl(static_cast<int>(id), 0, GETVAL);
    report(by_id >= 0 || errno == EFAULT, "by id");  // EFAULT: the id exists (we passed no buffer)
    report(sysvipc_listed(cls.c_str()), "in /proc/sysvipc");
    // The reader's own object works: the class is usable, just private.
    int mine = cls == "msg" ? msgget(IPC_PRIVATE, 0600) : cls == "shm" ? shmget(IPC_PRIVATE, 64, 0600)
                                                                       : semget(IPC_PRIVATE, 1, 0600);
    report(mine >= 0, "own object");
  } else if (cls == "mq") {
    mqd_t q = mq_open("/r1kit-mq", O_RDONLY);
    report(q != static_cast<mqd_t>(-1), "by name");
    mq_attr a{};
    a.mq_maxmsg = 2;
    a.mq_msgsize = 8;
    report(mq_open("/r1kit-own", O_CREAT | O_RDWR, 0600, &a) != static_cast<mqd_t>(-1), "own object");
  } else if (cls == "posix_shm") {
    report(shm_open("/r1kit-shm", O_RDONLY, 0) >= 0, "by name");
    report(shm_open("/r1kit-own", O_CREAT | O_RDWR, 0600) >= 0, "own object");
  } else if (cls == "keyring") {
    std::string kind;
    long id;
    char buf[64];
    while (std::cin >> kind >> id) {
      if (kind != "key" && kind != "keyring") continue;
      long n = syscall(SYS_keyctl, KEYCTL_READ, id, buf, sizeof buf);
      long d = syscall(SYS_keyctl, KEYCTL_DESCRIBE, id, buf, sizeof buf);
      report(n >= 0 || d >= 0, kind + " " + std::to_string(id));
    }
    long found = syscall(SYS_request_key, "user", "r1kit-secret", nullptr, 0);
    report(found >= 0, "request_key by description");
    for (long ring : {KEY_SPEC_SESSION_KEYRING, KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING}) {
      long k = syscall(SYS_keyctl, KEYCTL_SEARCH, ring, "user", "r1kit-secret", 0);
      report(k >= 0, "search " + std::to_string(ring));
    }
    long p = syscall(SYS_keyctl, KEYCTL_GET_PERSISTENT, -1, KEY_SPEC_SESSION_KEYRING);
    if (p >= 0) report(syscall(SYS_keyctl, KEYCTL_SEARCH, p, "user", "r1kit-secret", 0) >= 0, "search persistent");
    long named = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "r1kit-named");
    report(named >= 0 && syscall(SYS_keyctl, KEYCTL_SEARCH, named, "user", "r1kit-secret", 0) >= 0, "named keyring");
    std::string listed = slurp("/proc/keys") + slurp("/proc/key-users");
    report(listed.find("r1kit") != std::string::npos, "in /proc/keys");
    report(syscall(SYS_add_key, "user", "own", "x", 1, KEY_SPEC_SESSION_KEYRING) >= 0, "own object");
  }
  return 0;
}
)";

struct Class {
  const char* name;
  bool needs_keyring;
};
constexpr Class kClasses[] = {{"msg", false}, {"shm", false},       {"sem", false},
                              {"mq", false},  {"posix_shm", false}, {"keyring", true}};

// The reader's verdicts: every "found X" line is a leak, "absent own object" a class that does not work.
void expect_nothing_found(const ExecResult& reader, const std::string& cls) {
  EXPECT_EQ(reader.status, Status::ok) << cls << ": " << describe(reader);
  EXPECT_NE(reader.stdout_data.find("found own object"), std::string::npos) << cls << ": " << describe(reader);
  std::istringstream lines(reader.stdout_data);
  std::string line;
  int checks = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("start ", 0) == 0) continue;
    ++checks;
    if (line.rfind("found", 0) == 0 && line != "found own object") ADD_FAILURE() << cls << ": reader " << line;
  }
  EXPECT_GE(checks, 2) << cls << ": " << describe(reader);
}

// Seconds until every key and keyring the writer printed is gone (KEYCTL_DESCRIBE from here: ENOKEY
// once freed; EACCES while it exists, since it belongs to the slot's uid); -1 after `limit_s`.
double wait_keys_released(const std::string& writer_out, double limit_s) {
  std::vector<long> ids;
  std::istringstream in(writer_out);
  std::string kind;
  long id;
  while (in >> kind >> id)
    if (kind == "key" || kind == "keyring") ids.push_back(id);
  auto t0 = std::chrono::steady_clock::now();
  char buf[128];
  for (;;) {
    bool any = false;
    for (long k : ids)
      if (syscall(SYS_keyctl, KEYCTL_DESCRIBE, k, buf, sizeof buf) >= 0 || errno != ENOKEY) any = true;
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!any) return s;
    if (s > limit_s) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

long long stamp(const std::string& out, const std::string& name) {
  auto p = out.find(name + " ");
  return p == std::string::npos ? -1 : std::atoll(out.c_str() + p + name.size() + 1);
}

ExecResult run_writer(BwrapRunner* r, const std::string& cls, bool hold) {
  return r->run(cpp(kWriter, 4, cls + (hold ? " hold\n" : " done\n")));
}

ExecResult run_reader(BwrapRunner* r, const std::string& cls, const std::string& writer_out) {
  return r->run(cpp(kReader, 4, cls + "\n" + writer_out));
}

TEST(SandboxIpc, WriterThenReaderFindsNothing) {
  R1_REQUIRE_BWRAP(r);
  // Like a login shell (pam_keyinit), this process gets a session keyring of its own; a runner that
  // let programs inherit it would let a writer's key reach the next run.
  ASSERT_GE(syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "r1kit-test-login-session"), 0) << std::strerror(errno);
  std::string why;
  const bool keyring = r->keyring_allowed(&why);
  for (const Class& c : kClasses) {
    ExecResult w = run_writer(r, c.name, false);
    if (c.needs_keyring && !keyring) {
      // Kept denied (and said why) where uids cannot separate runs.
      EXPECT_EQ(w.status, Status::denied) << c.name << " (" << why << "): " << describe(w);
      std::cout << "keyring denied here: " << why << "\n";
      continue;
    }
    ASSERT_EQ(w.status, Status::ok) << c.name << ": " << describe(w);
    ASSERT_EQ(w.stdout_data.find("error"), std::string::npos) << c.name << ": " << describe(w);
    if (c.needs_keyring) {
      // A key dies when the run's last reference to it goes (its processes' credentials, its user
      // namespace), which the kernel drops asynchronously (RCU, a work queue). Until then only
      // whoever knows its random 31-bit serial could reach it (/proc/keys is masked), i.e. nobody
      // but the writer (ConcurrentReaderFindsNothing checks a reader without serials while the keys
      // exist). Wait for that, then hand the reader the writer's serials anyway.
      double lag = wait_keys_released(w.stdout_data, 10.0);
      EXPECT_GE(lag, 0) << "the writer's keys still exist 10 s after its run";
      std::cout << "keyring: the writer's keys were released " << lag * 1000 << " ms after its run ended\n";
    }
    ExecResult rd = run_reader(r, c.name, w.stdout_data);
    expect_nothing_found(rd, c.name);
    std::cout << c.name << ": reader checks (writer printed: " << w.stdout_data.size() << " bytes of ids):\n"
              << rd.stdout_data;
  }
}

// A reader that runs while the writer still holds its objects (a concurrent run in another slot).
TEST(SandboxIpc, ConcurrentReaderFindsNothing) {
  R1_REQUIRE_BWRAP(r);
  const bool keyring = r->keyring_allowed();
  // Compile both programs first so that the two runs overlap.
  ASSERT_EQ(run_writer(r, "none", false).status, Status::ok);
  ASSERT_EQ(run_reader(r, "none", "").status, Status::ok);
  for (const Class& c : kClasses) {
    if (c.needs_keyring && !keyring) continue;
    auto writer = std::async(std::launch::async, [&] { return run_writer(r, c.name, true); });
    std::this_thread::sleep_for(std::chrono::milliseconds(400));  // the writer creates its objects meanwhile
    ExecResult rd = run_reader(r, c.name, "");
    ExecResult w = writer.get();
    ASSERT_EQ(w.status, Status::ok) << c.name << ": " << describe(w);
    expect_nothing_found(rd, c.name);
    // Both stamps are CLOCK_MONOTONIC: the reader looked after the writer had created its objects
    // and while it still held them.
    long long created = stamp(w.stdout_data, "created"), start = stamp(rd.stdout_data, "start");
    EXPECT_GT(start, created) << c.name << ": the reader ran before the writer's objects existed";
    EXPECT_LT(start, created + 1500000000LL) << c.name << ": the reader ran after the writer let go";
  }
}

// /proc/keys and /proc/key-users read as empty files, even for the run's own keys.
TEST(SandboxIpc, ProcKeysMasked) {
  R1_REQUIRE_BWRAP(r);
  ExecResult x = r->run(test::py(r->keyring_allowed()
      ? "import ctypes\nlibc = ctypes.CDLL(None)\nprint(libc.syscall(248, b'user', b'mine', b'x', 1, -3) > 0)\n"
        "print(repr(open('/proc/keys').read()), repr(open('/proc/key-users').read()))"
      : "print(True)\nprint(repr(open('/proc/keys').read()), repr(open('/proc/key-users').read()))"));
  EXPECT_EQ(x.status, Status::ok) << describe(x);
  EXPECT_EQ(x.stdout_data, "True\n'' ''\n") << describe(x);
}

// What stays denied with the keyring allowed: the upcall and opening a key to other uids.
TEST(SandboxIpc, KeyringUpcallAndOpenPermissionsDenied) {
  R1_REQUIRE_BWRAP(r);
  if (!r->keyring_allowed()) GTEST_SKIP() << "keyring denied altogether here";
  const std::string head = "#include <linux/keyctl.h>\n#include <sys/syscall.h>\n#include <unistd.h>\n#include <cstdio>\n";
  ExecResult up = r->run(cpp(head + R"(int main() {
  long k = syscall(SYS_request_key, "user", "r1kit-missing", "callout info", 0);
  std::printf("returned %ld\n", k);
})"));
  EXPECT_EQ(up.status, Status::denied) << describe(up);
  ExecResult perm = r->run(cpp(head + R"(int main() {
  long k = syscall(SYS_add_key, "user", "r1kit-open", "x", 1, KEY_SPEC_SESSION_KEYRING);
  std::printf("own perms %ld\n", syscall(SYS_keyctl, KEYCTL_SETPERM, k, 0x3f010000));
  std::fflush(stdout);
  std::printf("other read %ld\n", syscall(SYS_keyctl, KEYCTL_SETPERM, k, 0x3f010002));
})"));
  EXPECT_EQ(perm.status, Status::denied) << describe(perm);
  EXPECT_NE(perm.stdout_data.find("own perms 0"), std::string::npos) << describe(perm);
  EXPECT_EQ(perm.stdout_data.find("other read"), std::string::npos) << describe(perm);
}

}  // namespace
}  // namespace r1kit::sandbox
