// Shared helpers for the sandbox tests: one real runner per test binary, short limits.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "sandbox/bwrap_runner.h"

namespace r1kit::sandbox::test {

inline SandboxOptions test_options() {
  SandboxOptions o;
  o.max_slots = 8;
  o.compile_limits.time_limit_s = 8;
  o.compile_limits.wall_limit_s = 12;
  o.compile_limits.memory_mb = 1024;
  return o;
}

// The real runner; the test fails (not skips) when bubblewrap is installed but unusable.
inline BwrapRunner* real_runner() {
  static std::unique_ptr<BwrapRunner> runner;
  static std::string why;
  static bool tried = false;
  if (!tried) {
    tried = true;
    why = probe_bwrap(test_options());
    if (why.empty()) runner = std::make_unique<BwrapRunner>(test_options(), true);
  }
  return runner.get();
}

#define R1_REQUIRE_BWRAP(r)                                                                   \
  ::r1kit::sandbox::BwrapRunner* r = ::r1kit::sandbox::test::real_runner();                   \
  if (r == nullptr) {                                                                         \
    if (access("/usr/bin/bwrap", X_OK) != 0) GTEST_SKIP() << "bubblewrap not installed";      \
    FAIL() << "bubblewrap installed but unusable: " << ::r1kit::sandbox::probe_bwrap(::r1kit::sandbox::test::test_options()); \
  }

inline Limits fast_limits(double seconds = 1.0) {
  Limits l;
  l.time_limit_s = seconds;
  l.wall_limit_s = seconds * 2;
  l.memory_mb = 128;
  l.max_tasks = 16;
  l.max_stdout_bytes = 64 << 10;
  return l;
}

inline ExecRequest py(const std::string& src, double seconds = 1.0, const std::string& stdin_data = "") {
  ExecRequest r;
  r.language = "python";
  r.source = src;
  r.stdin_data = stdin_data;
  r.limits = fast_limits(seconds);
  return r;
}

inline ExecRequest cpp(const std::string& src, double seconds = 1.0, const std::string& stdin_data = "") {
  ExecRequest r = py(src, seconds, stdin_data);
  r.language = "cpp";
  return r;
}

inline std::string describe(const ExecResult& r) {
  return std::string("status=") + to_string(r.status) + " exit=" + std::to_string(r.exit_code) +
         " signal=" + std::to_string(r.signal) + " msg=" + r.message + "\nstdout=" + r.stdout_data.substr(0, 2000) +
         "\nstderr=" + r.stderr_data.substr(0, 2000) + "\ncompile=" + r.compile_output.substr(0, 2000);
}

}  // namespace r1kit::sandbox::test
