#include "core/config.h"

#include <gtest/gtest.h>

#include "core/fs.h"

using namespace r1kit;

TEST(Config, ReadsDefaultsOverridesAndRejectsUnknownKeys) {
  json root = {{"lr", 0.1}, {"grpo", {{"beta", 0.04}, {"group_size", 8}}}};
  apply_override(root, "grpo.beta=0.0");
  apply_override(root, "name=tiny");
  apply_override(root, "grpo.loss=token_mean");
  ConfigNode node(root, "recipe.yaml");
  double lr = 1.0;
  std::string name;
  node.read("lr", lr);
  node.read("name", name);
  EXPECT_DOUBLE_EQ(lr, 0.1);
  EXPECT_EQ(name, "tiny");
  ConfigNode g = node.child("grpo");
  double beta = 1;
  int group = 0;
  std::string loss;
  g.read("beta", beta);
  g.read("group_size", group);
  g.read_enum("loss", loss, {"grpo", "token_mean", "dr_grpo"});
  EXPECT_EQ(beta, 0.0);
  EXPECT_EQ(group, 8);
  g.finish();
  node.finish();
}

TEST(Config, UnknownKeyNamesFileAndPath) {
  ConfigNode node(json{{"grpo", {{"lrr", 1}}}}, "recipe.yaml");
  ConfigNode g = node.child("grpo");
  try {
    g.finish();
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "recipe.yaml: unknown key 'grpo.lrr'");
  }
}

TEST(Config, TypeErrorNamesKey) {
  ConfigNode node(json{{"steps", "many"}}, "r.json");
  int steps = 0;
  try {
    node.read("steps", steps);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("r.json: key 'steps': expected an integer"), std::string::npos) << e.what();
  }
}

// json converts numbers and booleans into each other silently; the reader does not.
TEST(Config, NumbersAndBooleansAreNotConvertedSilently) {
  ConfigNode node(json{{"steps", 1.5}, {"lr", true}, {"flag", 1}, {"big", 1e3}, {"neg", -3}, {"huge", 1e12},
                       {"rate", 2}},
                  "r.yaml");
  int steps = 0;
  double lr = 0;
  bool flag = false;
  auto message = [](auto&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message([&] { node.read("steps", steps); }), "r.yaml: key 'steps': expected an integer, got 1.5");
  EXPECT_EQ(message([&] { node.read("lr", lr); }), "r.yaml: key 'lr': expected a number, got true");
  EXPECT_EQ(message([&] { node.read("flag", flag); }), "r.yaml: key 'flag': expected a boolean, got 1");
  int64_t big = 0;
  node.read("big", big);  // a whole float (1e3 in YAML) is an integer
  EXPECT_EQ(big, 1000);
  uint32_t unsigned_value = 0;
  EXPECT_EQ(message([&] { node.read("neg", unsigned_value); }), "r.yaml: key 'neg': expected an integer, got -3");
  EXPECT_EQ(message([&] { node.read("huge", steps); }), "r.yaml: key 'huge': expected an integer, got 1000000000000.0");
  // 2^63 does not fit int64 (as an unsigned JSON integer or a whole float): an error, not a wrap.
  ConfigNode edge(json{{"u", uint64_t{1} << 63}, {"f", 9223372036854775808.0}}, "e.yaml");
  EXPECT_EQ(message([&] { edge.read("u", big); }), "e.yaml: key 'u': expected an integer, got 9223372036854775808");
  EXPECT_EQ(message([&] { edge.read("f", big); }), "e.yaml: key 'f': expected an integer, got 9.223372036854776e+18");
  EXPECT_EQ(big, 1000);
  double rate = 0;
  node.read("rate", rate);  // an integer is a number
  EXPECT_EQ(rate, 2.0);
  EXPECT_EQ(steps, 0);
  EXPECT_FALSE(flag);
}

TEST(Config, BadEnumIsRejected) {
  ConfigNode node(json{{"loss", "foo"}}, "r.json");
  std::string loss = "grpo";
  EXPECT_THROW(node.read_enum("loss", loss, {"grpo", "token_mean"}), Error);
}

TEST(Config, LoadsYamlWithTypes) {
  const std::string path = testing::TempDir() + "/cfg_test.yaml";
  write_file_atomic(path, "a: 3\nb: 2.5\nc: hello\nd: true\ne: '7'\nlist: [1, 2]\nnested:\n  x: null\n");
  json j = load_json_or_yaml(path);
  EXPECT_EQ(j["a"], 3);
  EXPECT_DOUBLE_EQ(j["b"].get<double>(), 2.5);
  EXPECT_EQ(j["c"], "hello");
  EXPECT_EQ(j["d"], true);
  EXPECT_EQ(j["e"], "7");
  EXPECT_EQ(j["list"], json::array({1, 2}));
  EXPECT_TRUE(j["nested"]["x"].is_null());
}

TEST(Config, BadYamlNamesFileAndLine) {
  const std::string path = testing::TempDir() + "/bad.yaml";
  write_file_atomic(path, "a: 1\nb: [1, 2\n");
  try {
    load_json_or_yaml(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("invalid YAML"), std::string::npos);
  }
}

TEST(Jsonl, MalformedLineNamesLine) {
  const std::string path = testing::TempDir() + "/x.jsonl";
  write_file_atomic(path, "{\"a\":1}\n\n{\"a\":\n");
  int seen = 0;
  try {
    for_each_jsonl(path, [&](const json&, int) { ++seen; });
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":3: invalid JSON"), std::string::npos) << e.what();
  }
  EXPECT_EQ(seen, 1);
}
