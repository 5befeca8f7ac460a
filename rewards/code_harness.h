// The assert-style test harness of the code reward (HumanEval / MBPP), built so that a program
// cannot pass a test it does not solve.
//
// Two processes inside the sandbox, both from the harness file:
//  - the TESTER (the process the sandbox starts) makes itself non-dumpable (so /proc/<pid>/mem,
//    fd/ and environ are closed to the other process), forks the PROGRAM process, and only then
//    reads the run's nonce and the tests from stdin. The program process therefore never holds the
//    nonce or the expected values: not in its globals, not in its memory, not on its stdin.
//  - the PROGRAM process replaces its stdin with /dev/null and its stdout with stderr, runs the
//    candidate code (plus test_imports and MBPP's test_setup_code) in a fresh __main__ module, and
//    then answers the tester's requests: call function `name` with these arguments, or evaluate
//    this expression (MBPP setup objects), sending back the pickled result.
//  - the tester runs the test code itself. Calls of names the program defines (MBPP asserts are
//    rewritten with `ast`; HumanEval's check() receives a proxy `candidate`) go to the program
//    process, and what comes back is unpickled with an allow-list of plain types (builtins,
//    collections, fractions, decimal, datetime). Anything else (an object with its own __eq__, a
//    re.Match) arrives as an opaque stand-in that equals only itself and has the value's truth
//    value, so `assert f(x) == y` cannot be faked while `assert re_search(...)` still works. Only
//    the tester prints "<nonce> <i> pass" lines on stdout.
//
// So an object whose __eq__ always returns True, reading the nonce (from globals, gc, stdin or the
// tester's /proc files), forging pass lines and exiting early with status 0 all pass nothing. The
// tester reports what it saw as events ("<nonce> event {json}" lines): untrusted_type,
// opaque_result (not picklable, e.g. re.Match), program_exited, exit_called, load_error.
#pragma once
#include <cstddef>
#include <string>

#include "core/json.h"

namespace r1kit::rewards {

struct AssertHarness {
  std::string program;      // the sandbox's main.py: the harness and the candidate code (no tests)
  std::string tests_stdin;  // after the nonce line: the tests, read by the tester after the fork
  std::size_t n_tests = 0;  // HumanEval: 1 (check(candidate)); MBPP: one per assert
};

// Builds the harness for a HumanEval ("prompt", "test", "entry_point") or MBPP ("test_list",
// optional "test_imports", "test_setup_code") record. The run's stdin must be nonce + "\n" +
// tests_stdin. Throws Error for records with neither layout.
AssertHarness build_assert_harness(const std::string& code, const json& fields, bool stop_at_first_failure);

// Encodes bytes as a Python bytes literal (b'...', every non-printable byte, quote and backslash
// escaped), so any text, even invalid UTF-8, embeds safely in Python source.
std::string python_bytes_literal(const std::string& bytes);

}  // namespace r1kit::rewards
