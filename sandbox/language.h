// The language table: how to compile and run each supported language. Adding a language is one
// entry in language.cc. Paths are as seen inside the sandbox (the work directory is /box).
#pragma once
#include <string>
#include <vector>

namespace r1kit::sandbox {

struct Language {
  std::string name;                      // "python", "cpp"
  std::string source_file;               // where the source is placed, e.g. "main.py"
  std::vector<std::string> compile_argv;  // empty for interpreted languages; writes `binary_file`
  std::string binary_file;               // compiled output, relative to the work directory
  std::vector<std::string> run_argv;     // the program; "{source}" / "{binary}" are substituted
  std::vector<std::string> fence_tags;   // markdown fence languages that select it ("py", "python3", ...)
};

// Throws r1kit::Error naming the known languages when `name` is unknown.
const Language& language(const std::string& name);
const std::vector<Language>& languages();
// The language whose fence tag is `tag` (case-insensitive), or nullptr.
const Language* language_for_fence(const std::string& tag);

}  // namespace r1kit::sandbox
