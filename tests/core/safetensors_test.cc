#include "core/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>

#include "core/check.h"

using namespace r1kit;

static std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, RoundTripIsAlignedAndExact) {
  const std::string path = testing::TempDir() + "/rt.safetensors";
  float a[6] = {1, 2, 3, 4, 5, 6};
  std::uint16_t b[3] = {0x3f80, 0x4000, 0xbf80};
  write_safetensors(path, {{"a", "F32", {2, 3}, a, sizeof a}, {"b", "BF16", {3}, b, sizeof b}});
  SafetensorsFile f(path);
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.info("a").shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(f.data("a"), a, sizeof a), 0);
  EXPECT_EQ(std::memcmp(f.data("b"), b, sizeof b), 0);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(f.data("a")) % 8, 0u);
  EXPECT_NE(error_of([&] { f.info("missing"); }).find("missing tensor 'missing'"), std::string::npos);
}

TEST(Safetensors, TruncatedFileIsNamed) {
  const std::string path = testing::TempDir() + "/tr.safetensors";
  float a[64] = {};
  write_safetensors(path, {{"w", "F32", {64}, a, sizeof a}});
  std::string bytes = read_file(path);
  write_file_atomic(path, bytes.substr(0, bytes.size() - 10));
  std::string err = error_of([&] { SafetensorsFile f(path); });
  EXPECT_NE(err.find("truncated"), std::string::npos) << err;
  EXPECT_NE(err.find("'w'"), std::string::npos) << err;
  write_file_atomic(path, bytes.substr(0, 5));
  EXPECT_NE(error_of([&] { SafetensorsFile f(path); }).find("truncated"), std::string::npos);
}

TEST(Safetensors, InvalidHeaderJsonIsNamed) {
  const std::string path = testing::TempDir() + "/bad.safetensors";
  std::string header = "{\"w\": {\"dtype\": \"F32\",";
  std::string bytes(8, '\0');
  bytes[0] = static_cast<char>(header.size());
  write_file_atomic(path, bytes + header);
  std::string err = error_of([&] { SafetensorsFile f(path); });
  EXPECT_NE(err.find(path + ": invalid header JSON"), std::string::npos) << err;
}
