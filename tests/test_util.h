// Helpers shared by tests: paths to ../shared reference data and a skip that says what is missing.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace r1kit::test {

// Absolute path of a file under ../shared (reference fixtures, tokenizers, data sets).
inline std::string shared_path(const std::string& rel) { return std::string(R1_SHARED_DIR) + "/" + rel; }

// Absolute path of a file under tests/data (small files copied into the repo).
inline std::string test_data_path(const std::string& rel) { return std::string(R1_TEST_DATA_DIR) + "/" + rel; }

// A fresh, empty directory testing::TempDir()/<name> (what a previous run left there is removed).
// Each test executable has a temp dir of its own (cmake/helpers.cmake), so names need only be unique
// within one.
inline std::string fresh_dir(const std::string& name) {
  const std::string d = testing::TempDir() + "/" + name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace r1kit::test

// Skips the current test with a clear message when a reference file from ../shared is absent,
// so the project still builds and tests on a machine without it.
#define R1_REQUIRE_FILE(path)                                                              \
  do {                                                                                     \
    if (!std::filesystem::exists(path))                                                    \
      GTEST_SKIP() << "reference data not found: " << (path) << " (needs ../shared beside the repo)"; \
  } while (0)
