#include "core/jsonl_shards.h"

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <map>

#include "core/check.h"
#include "core/fs.h"

namespace r1kit {
namespace fs = std::filesystem;

namespace {

// "shard-000012.jsonl" -> 12 with kind "jsonl"; "shard-000012.meta.json" -> 12 with kind "meta".
bool parse_shard_name(const std::string& name, int64_t& index, std::string& kind) {
  static const std::string prefix = "shard-";
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  size_t pos = prefix.size(), end = pos;
  while (end < name.size() && std::isdigit(static_cast<unsigned char>(name[end]))) ++end;
  if (end == pos || end - pos > 12) return false;
  const std::string rest = name.substr(end);
  if (rest == ".jsonl") {
    kind = "jsonl";
  } else if (rest == ".meta.json") {
    kind = "meta";
  } else {
    return false;
  }
  index = std::stoll(name.substr(pos, end - pos));
  return true;
}

int64_t count_lines(const std::string& text) {
  int64_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

}  // namespace

std::string JsonlShards::records_name(int64_t shard) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "shard-%06lld.jsonl", static_cast<long long>(shard));
  return buf;
}

std::string JsonlShards::meta_name(int64_t shard) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "shard-%06lld.meta.json", static_cast<long long>(shard));
  return buf;
}

JsonlShards::JsonlShards(std::string dir) : dir_(std::move(dir)) {
  make_dirs(dir_);
  std::map<int64_t, bool> has_records, has_meta;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".tmp") != std::string::npos) {  // a write_file_atomic temp of a killed job
      fs::remove(entry.path());
      continue;
    }
    int64_t index = 0;
    std::string kind;
    if (!parse_shard_name(name, index, kind)) continue;
    (kind == "meta" ? has_meta : has_records)[index] = true;
  }
  for (const auto& [index, unused] : has_records)
    if (!has_meta.count(index)) fs::remove(dir_ + "/" + records_name(index));  // killed between the renames

  for (const auto& [index, unused] : has_meta) {
    const std::string meta_path = dir_ + "/" + meta_name(index);
    const json meta = parse_json(read_file(meta_path), meta_path);
    R1_CHECK(meta.is_object() && meta.contains("keys") && meta["keys"].is_array() && meta.contains("records") &&
                 meta["records"].is_number_integer(),
             meta_path, ": not a shard meta file (needs \"keys\" and \"records\")");
    const std::string records_path = dir_ + "/" + records_name(index);
    const int64_t want = meta["records"].get<int64_t>();
    const int64_t got = path_exists(records_path) ? count_lines(read_file(records_path)) : -1;
    R1_CHECK(got == want, records_path, ": ", got < 0 ? "missing" : std::to_string(got) + " lines", " but ",
             meta_path, " says ", want, " records; refusing to resume over a damaged dataset");
    for (const auto& key : meta["keys"]) {
      R1_CHECK(key.is_string(), meta_path, ": keys must be strings");
      R1_CHECK(done_.insert(key.get<std::string>()).second, meta_path, ": key ", key.dump(),
               " is also completed by an earlier shard");
    }
    num_records_ += want;
    infos_.push_back(meta.value("info", json::object()));
  }
  next_index_ = has_meta.empty() ? 0 : has_meta.rbegin()->first + 1;
  shard_indices_.clear();
  for (const auto& [index, unused] : has_meta) shard_indices_.push_back(index);
}

void JsonlShards::write(const std::vector<json>& records, const std::vector<std::string>& keys, const json& info) {
  std::set<std::string> fresh;
  for (const auto& k : keys) {
    R1_CHECK(!done_.count(k), dir_, ": unit '", k, "' is already done in an earlier shard");
    R1_CHECK(fresh.insert(k).second, dir_, ": unit '", k, "' appears twice in one shard");
  }
  std::string text;
  for (const auto& r : records) text += dump_line(r) + "\n";
  const int64_t index = next_index_;
  write_file_atomic(dir_ + "/" + records_name(index), text);
  json meta = {{"keys", keys}, {"records", static_cast<int64_t>(records.size())}, {"info", info}};
  write_file_atomic(dir_ + "/" + meta_name(index), meta.dump() + "\n");  // last: the shard now counts
  done_.insert(fresh.begin(), fresh.end());
  infos_.push_back(info);
  num_records_ += static_cast<int64_t>(records.size());
  shard_indices_.push_back(index);
  ++next_index_;
}

void JsonlShards::for_each_record(const std::function<void(const json&, const std::string& where)>& fn) const {
  for (int64_t index : shard_indices_) {
    const std::string path = dir_ + "/" + records_name(index);
    for_each_jsonl(path, [&](const json& record, int line) { fn(record, path + ":" + std::to_string(line)); });
  }
}

void JsonlShards::merge_into(const std::string& path) const {
  std::string text;
  for (int64_t index : shard_indices_) text += read_file(dir_ + "/" + records_name(index));
  write_file_atomic(path, text);
}

}  // namespace r1kit
