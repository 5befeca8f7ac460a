#include "cli/fast_start.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "cli/command.h"

namespace r1kit::cli {

void exec_full_binary_unless_registered(int argc, char** argv) {
#ifdef R1_CLI_FULL_BINARY
  // The subcommand is the first argument that is not an option (`--log-level X` takes a value).
  // Anything this scan misreads is simply handed to the full executable, which parses it properly.
  std::string sub;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--log-level") {
      ++i;
      continue;
    }
    if (a.empty() || a[0] == '-') continue;
    sub = a;
    break;
  }
  if (!sub.empty())
    for (const Command& c : commands())
      if (c.name == sub) return;
  std::string self(4096, '\0');
  ssize_t n = readlink("/proc/self/exe", self.data(), self.size() - 1);
  std::string full = R1_CLI_FULL_BINARY;
  if (n > 0) {
    self.resize(static_cast<size_t>(n));
    full = self.substr(0, self.rfind('/') + 1) + R1_CLI_FULL_BINARY;
  }
  execv(full.c_str(), argv);
  std::cerr << "r1kit: cannot start " << full << " (needed for '" << (sub.empty() ? "--help" : sub)
            << "'): " << std::strerror(errno) << "\n";
  std::exit(127);
#else
  (void)argc;
  (void)argv;
#endif
}

}  // namespace r1kit::cli
