// JsonlShards: a directory of JSONL shards for jobs that produce records chunk by chunk and must
// resume after kill -9 with no record lost or duplicated (generation of distillation data,
// rejection sampling, evaluation samples).
//
//   DIR/shard-000000.jsonl       the chunk's records, one JSON object per line
//   DIR/shard-000000.meta.json   {"keys": [...], "records": N, "info": {...}}: written after the
//                                records file; `keys` are the units of work the shard completes
//                                (e.g. prompt ids), including units that produced no record
//
// Both files are written atomically (temp + fsync + rename), the meta file last, so a shard counts
// only when its meta file exists. Opening the directory removes temp files and any records file
// without its meta (a job killed between the two renames): those units are simply not done and
// the caller generates them again (deterministically, if its seeds depend only on the unit key).
// Not thread-safe: one writer per directory.
#pragma once
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "core/json.h"

namespace r1kit {

class JsonlShards {
 public:
  // Creates `dir` when missing and scans it. A damaged meta file or a records file whose line count
  // differs from its meta is an Error naming the file (refusing to build on a corrupted dataset).
  explicit JsonlShards(std::string dir);

  const std::string& dir() const { return dir_; }
  // Units completed by the complete shards.
  const std::set<std::string>& done_keys() const { return done_; }
  bool done(const std::string& key) const { return done_.count(key) > 0; }
  // The `info` object of every complete shard, in shard order (e.g. per-shard statistics to sum).
  const std::vector<json>& infos() const { return infos_; }
  int64_t num_shards() const { return static_cast<int64_t>(infos_.size()); }
  int64_t num_records() const { return num_records_; }

  // Writes the next shard: `records` (may be empty) completing `keys`. A key that is already done,
  // or repeated, is an Error (nothing is written).
  void write(const std::vector<json>& records, const std::vector<std::string>& keys,
             const json& info = json::object());

  // Calls fn(record, "DIR/shard-000003.jsonl:12") for every record of the complete shards, in order.
  void for_each_record(const std::function<void(const json&, const std::string& where)>& fn) const;
  // Writes every record of the complete shards into one JSONL file (atomically).
  void merge_into(const std::string& path) const;

  static std::string records_name(int64_t shard);  // "shard-000003.jsonl"
  static std::string meta_name(int64_t shard);     // "shard-000003.meta.json"

 private:
  std::string dir_;
  std::set<std::string> done_;
  std::vector<json> infos_;
  std::vector<int64_t> shard_indices_;  // complete shards, ascending
  int64_t next_index_ = 0;
  int64_t num_records_ = 0;
};

}  // namespace r1kit
