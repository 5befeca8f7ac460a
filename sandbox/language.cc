#include "sandbox/language.h"

#include <algorithm>
#include <cctype>

#include "core/check.h"

namespace r1kit::sandbox {

const std::vector<Language>& languages() {
  static const std::vector<Language> table = {
      // -I: isolated mode (no user site, no PYTHON* variables, script dir not on sys.path); -B: no .pyc.
      {"python", "main.py", {}, "", {"/usr/bin/python3", "-I", "-B", "{source}"}, {"python", "py", "python3"}},
      // -pipe: no compiler temp files; the binary is streamed back to the host for the cache.
      {"cpp",
       "main.cpp",
       {"/usr/bin/g++", "-std=c++17", "-O2", "-pipe", "-o", "{binary}", "{source}"},
       "main",
       {"./{binary}"},
       {"cpp", "c++", "cxx", "cc"}},
  };
  return table;
}

const Language& language(const std::string& name) {
  for (const auto& l : languages())
    if (l.name == name) return l;
  std::string known;
  for (const auto& l : languages()) known += (known.empty() ? "" : ", ") + l.name;
  R1_FAIL("unknown sandbox language '", name, "' (known: ", known, ")");
}

const Language* language_for_fence(const std::string& tag) {
  std::string t = tag;
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const auto& l : languages())
    if (std::find(l.fence_tags.begin(), l.fence_tags.end(), t) != l.fence_tags.end()) return &l;
  return nullptr;
}

}  // namespace r1kit::sandbox
