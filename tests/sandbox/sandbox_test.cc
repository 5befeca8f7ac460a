// The real runner on well-behaved programs: statuses, exit codes, stdin/stdout, C++ compile + cache,
// the pool, unsafe-mode opt-in.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "core/check.h"

#include "sandbox/fake_runner.h"
#include "sandbox/language.h"
#include "sandbox/pool.h"
#include "sandbox/spawn.h"
#include "tests/sandbox/sandbox_util.h"

namespace r1kit::sandbox {
namespace {
using test::cpp;
using test::describe;
using test::py;

TEST(Sandbox, PythonHelloAndStdin) {
  R1_REQUIRE_BWRAP(r);
  ExecResult x = r->run(py("import sys\nprint(sum(int(t) for t in sys.stdin.read().split()))", 2, "1 2 3\n40"));
  ASSERT_EQ(x.status, Status::ok) << describe(x);
  EXPECT_EQ(x.stdout_data, "46\n");
  EXPECT_EQ(x.exit_code, 0);
  EXPECT_GT(x.wall_s, 0);
  EXPECT_GT(x.peak_memory_bytes, 1 << 20);
}

// CI may start us with stdin closed: descriptors we create must not land on 0.
TEST(Sandbox, WorksWithStdinClosed) {
  R1_REQUIRE_BWRAP(r);
  int saved = dup(0);
  close(0);
  ExecResult x = r->run(py("print(input())", 2, "hello\n"));
  ExecResult c = r->run(cpp("#include <cstdio>\nint main(){ std::puts(\"c\"); }", 2));
  dup2(saved, 0);
  close(saved);
  EXPECT_EQ(x.status, Status::ok) << describe(x);
  EXPECT_EQ(x.stdout_data, "hello\n");
  EXPECT_EQ(c.status, Status::ok) << describe(c);
}

TEST(Sandbox, LargeStdinRoundTrip) {
  R1_REQUIRE_BWRAP(r);
  std::string big(900000, 'a');
  big += "\n";
  ExecRequest q = py("import sys\nd=sys.stdin.read()\nsys.stdout.write(d)", 3, big);
  q.limits.max_stdout_bytes = 1 << 20;
  ExecResult x = r->run(q);
  ASSERT_EQ(x.status, Status::ok) << describe(x);
  EXPECT_EQ(x.stdout_data, big);
}

TEST(Sandbox, ExitCodesSignalsAndExceptions) {
  R1_REQUIRE_BWRAP(r);
  ExecResult a = r->run(py("import sys\nsys.exit(3)"));
  EXPECT_EQ(a.status, Status::runtime_error) << describe(a);
  EXPECT_EQ(a.exit_code, 3);
  ExecResult b = r->run(py("raise ValueError('boom')"));
  EXPECT_EQ(b.status, Status::runtime_error) << describe(b);
  EXPECT_NE(b.stderr_data.find("ValueError: boom"), std::string::npos);
  ExecResult c = r->run(py("import os\nos.abort()"));
  EXPECT_EQ(c.status, Status::runtime_error) << describe(c);
  EXPECT_EQ(c.signal, SIGABRT);
}

TEST(Sandbox, CppCompileRunCacheAndErrors) {
  R1_REQUIRE_BWRAP(r);
  const std::string src = "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a*b<<\"\\n\";}\n";
  ExecResult x = r->run(cpp(src, 2, "6 7"));
  ASSERT_EQ(x.status, Status::ok) << describe(x);
  EXPECT_EQ(x.stdout_data, "42\n");
  ExecResult y = r->run(cpp(src, 2, "-3 5"));
  ASSERT_EQ(y.status, Status::ok) << describe(y);
  EXPECT_EQ(y.stdout_data, "-15\n");
  EXPECT_TRUE(y.compile_cached);

  ExecResult bad = r->run(cpp("int main(){ return undefined_thing; }"));
  EXPECT_EQ(bad.status, Status::compile_error) << describe(bad);
  EXPECT_NE(bad.compile_output.find("undefined_thing"), std::string::npos);

  ExecResult rt = r->run(cpp("#include <cstdlib>\nint main(){ std::abort(); }"));
  EXPECT_EQ(rt.status, Status::runtime_error) << describe(rt);
  EXPECT_EQ(rt.signal, SIGABRT);
  ExecResult ex = r->run(cpp("int main(){ return 7; }"));
  EXPECT_EQ(ex.status, Status::runtime_error) << describe(ex);
  EXPECT_EQ(ex.exit_code, 7);
}

TEST(Sandbox, PoolRunsInParallelAndKeepsOrder) {
  R1_REQUIRE_BWRAP(r);
  SandboxPool pool(*r, 4);
  std::vector<ExecRequest> reqs;
  for (int i = 0; i < 12; ++i) reqs.push_back(py("import time\ntime.sleep(0.2)\nprint(" + std::to_string(i) + ")", 2));
  auto t0 = std::chrono::steady_clock::now();
  auto res = pool.run_all(reqs);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int i = 0; i < 12; ++i) {
    ASSERT_EQ(res[i].status, Status::ok) << describe(res[i]);
    EXPECT_EQ(res[i].stdout_data, std::to_string(i) + "\n");
  }
  EXPECT_LT(s, 12 * 0.2);  // sleeping runs overlap
}

TEST(Sandbox, UnknownLanguageIsOurErrorNotTheProgram) {
  R1_REQUIRE_BWRAP(r);
  ExecRequest q = py("print(1)");
  q.language = "cobol";
  ExecResult x = r->run(q);
  EXPECT_EQ(x.status, Status::sandbox_error);
  EXPECT_NE(x.message.find("cobol"), std::string::npos);
}

TEST(Sandbox, MissingBwrapRefusesUnlessUnsafeOptIn) {
  SandboxOptions o = test::test_options();
  o.bwrap_path = "/nonexistent/bwrap";
  try {
    make_runner(o);
    FAIL() << "expected refusal";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Refusing to run untrusted code"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("unsafe_no_isolation"), std::string::npos);
  }
  o.unsafe_no_isolation = true;
  auto unsafe = make_runner(o);
  EXPECT_EQ(unsafe->name(), "unsafe");
  ExecResult x = unsafe->run(py("print(6*7)"));
  EXPECT_EQ(x.status, Status::ok) << describe(x);
  EXPECT_EQ(x.stdout_data, "42\n");
  ExecResult t = unsafe->run(py("while True: pass", 0.5));
  EXPECT_EQ(t.status, Status::timeout) << describe(t);
}

// bwrap vanishing after start-up (or failing to exec) is our error, reported as such, no zombie left.
TEST(Sandbox, LauncherFailureIsASandboxError) {
  SandboxOptions o = test::test_options();
  o.bwrap_path = "/nonexistent/bwrap";
  BwrapRunner broken(o, true);
  ExecResult x = broken.run(py("print(1)"));
  EXPECT_EQ(x.status, Status::sandbox_error) << describe(x);
  EXPECT_FALSE(x.message.empty());
  int st;
  EXPECT_EQ(waitpid(-1, &st, WNOHANG), -1);  // no child of ours left, zombie or not
}

// A child whose preparation fails (here: joining a cgroup that does not exist; in production also
// a failed uid drop or rlimit) must never exec the program: Boost.Process alone would report the
// error and exec anyway.
TEST(Sandbox, FailedChildSetupNeverRunsTheProgram) {
  char dir[] = "/tmp/r1kit-setup-fail-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string marker = std::string(dir) + "/ran";
  SpawnSpec spec;
  spec.argv = {"/bin/sh", "-c", "echo ran > " + marker};
  spec.cgroup_procs = {"/nonexistent-cgroup/cgroup.procs"};
  SpawnResult r = spawn_and_wait(spec);
  EXPECT_FALSE(r.started);
  EXPECT_FALSE(r.error.empty());
  usleep(200 * 1000);  // a program that did run would have written the marker by now
  EXPECT_FALSE(std::filesystem::exists(marker)) << "the program ran although its setup failed";
  std::filesystem::remove_all(dir);
  int st;
  EXPECT_EQ(waitpid(-1, &st, WNOHANG), -1);  // and the failed child was reaped
}

TEST(Sandbox, StatusNamesRoundTrip) {
  for (Status s : {Status::ok, Status::timeout, Status::memory, Status::runtime_error, Status::compile_error,
                   Status::output_limit, Status::denied, Status::sandbox_error})
    EXPECT_EQ(status_from_string(to_string(s)), s);
  EXPECT_THROW(status_from_string("fine"), Error);
}

TEST(Sandbox, LanguageTable) {
  EXPECT_EQ(language("python").source_file, "main.py");
  EXPECT_EQ(language_for_fence("PY")->name, "python");
  EXPECT_EQ(language_for_fence("c++")->name, "cpp");
  EXPECT_EQ(language_for_fence("rust"), nullptr);
  EXPECT_THROW(language("cobol"), Error);
}

TEST(Sandbox, FakeRunnerRecords) {
  FakeRunner fake([](const ExecRequest& q) {
    ExecResult x;
    x.status = Status::ok;
    x.stdout_data = q.stdin_data;
    return x;
  });
  SandboxPool pool(fake, 2);
  auto res = pool.run_all({py("a", 1, "x"), py("b", 1, "y")});
  EXPECT_EQ(res[1].stdout_data, "y");
  EXPECT_EQ(fake.requests().size(), 2u);
}

}  // namespace
}  // namespace r1kit::sandbox
