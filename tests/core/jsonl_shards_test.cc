// JsonlShards: resumable sharded JSONL output. A shard counts only once its meta file exists, so
// a job killed between the two renames (or mid-write) redoes exactly the units of that shard.
#include "core/jsonl_shards.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/check.h"
#include "core/fs.h"
#include "tests/test_util.h"

using namespace r1kit;
namespace fs = std::filesystem;

using test::fresh_dir;

TEST(JsonlShards, WritesReopensAndMerges) {
  const std::string dir = fresh_dir("shards_basic");
  {
    JsonlShards s(dir);
    EXPECT_EQ(s.num_shards(), 0);
    s.write({{{"id", "a"}, {"v", 1}}, {{"id", "a"}, {"v", 2}}}, {"a"}, {{"accepted", 2}});
    s.write({}, {"b"}, {{"accepted", 0}});  // a unit that produced nothing still counts as done
    s.write({{{"id", "c"}, {"v", 3}}}, {"c"}, {{"accepted", 1}});
  }
  JsonlShards s(dir);
  EXPECT_EQ(s.num_shards(), 3);
  EXPECT_EQ(s.num_records(), 3);
  EXPECT_EQ(s.done_keys(), (std::set<std::string>{"a", "b", "c"}));
  ASSERT_EQ(s.infos().size(), 3u);
  EXPECT_EQ(s.infos()[1]["accepted"], 0);
  std::vector<int> values;
  std::vector<std::string> wheres;
  s.for_each_record([&](const json& r, const std::string& where) {
    values.push_back(r["v"].get<int>());
    wheres.push_back(where);
  });
  EXPECT_EQ(values, (std::vector<int>{1, 2, 3}));
  EXPECT_NE(wheres[2].find("shard-000002.jsonl:1"), std::string::npos) << wheres[2];
  s.merge_into(dir + "/all.jsonl");
  EXPECT_EQ(read_file(dir + "/all.jsonl"), "{\"id\":\"a\",\"v\":1}\n{\"id\":\"a\",\"v\":2}\n{\"id\":\"c\",\"v\":3}\n");
}

TEST(JsonlShards, RefusesKeysAlreadyDone) {
  const std::string dir = fresh_dir("shards_dup");
  JsonlShards s(dir);
  s.write({{{"x", 1}}}, {"k1"});
  EXPECT_THROW(s.write({}, {"k1"}), Error);
  EXPECT_THROW(s.write({}, {"k2", "k2"}), Error);
  EXPECT_EQ(s.num_shards(), 1);
  EXPECT_FALSE(fs::exists(dir + "/" + JsonlShards::records_name(1)));
}

TEST(JsonlShards, DropsRecordsWithoutMetaAndTempFiles) {
  const std::string dir = fresh_dir("shards_killed");
  {
    JsonlShards s(dir);
    s.write({{{"v", 1}}}, {"a"});
  }
  // A job killed after the records rename but before the meta rename, and one killed mid-write.
  write_file_atomic(dir + "/" + JsonlShards::records_name(1), "{\"v\":2}\n");
  write_file_atomic(dir + "/" + JsonlShards::records_name(2) + ".tmp.123.456", "{\"v\":");
  JsonlShards s(dir);
  EXPECT_EQ(s.done_keys(), (std::set<std::string>{"a"}));
  EXPECT_EQ(s.num_records(), 1);
  EXPECT_FALSE(fs::exists(dir + "/" + JsonlShards::records_name(1)));
  EXPECT_FALSE(fs::exists(dir + "/" + JsonlShards::records_name(2) + ".tmp.123.456"));
  s.write({{{"v", 2}}}, {"b"});  // the redone unit takes the freed shard number
  EXPECT_TRUE(fs::exists(dir + "/" + JsonlShards::meta_name(1)));
  EXPECT_EQ(JsonlShards(dir).num_records(), 2);
}

TEST(JsonlShards, DamagedShardIsAnErrorNamingTheFile) {
  const std::string dir = fresh_dir("shards_damaged");
  {
    JsonlShards s(dir);
    s.write({{{"v", 1}}, {{"v", 2}}}, {"a"});
  }
  write_file_atomic(dir + "/" + JsonlShards::records_name(0), "{\"v\":1}\n");  // a record went missing
  try {
    JsonlShards s(dir);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shard-000000.jsonl: 1 lines"), std::string::npos) << e.what();
  }
  write_file_atomic(dir + "/" + JsonlShards::meta_name(0), "{\"keys\": 3}");
  EXPECT_THROW(JsonlShards s(dir), Error);
}
