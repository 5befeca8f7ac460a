// Logging through spdlog (console, "[r1kit] [info] ..."), and a JSONL metrics writer.
#pragma once
#include <spdlog/spdlog.h>

#include <cstdio>
#include <mutex>
#include <string>

#include "core/json.h"

namespace r1kit {

// Sets the global log level from a name ("debug", "info", "warn", "error"); default "info".
void init_logging(const std::string& level = "info");

// Appends one JSON object per line to a file, flushing each line (so `tail -f` and a kill -9 both
// see whole lines). Thread-safe.
class MetricsWriter {
 public:
  MetricsWriter() = default;
  // append=false truncates the file.
  explicit MetricsWriter(const std::string& path, bool append = true);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;
  void write(const json& record);
  bool is_open() const { return file_ != nullptr; }

 private:
  std::FILE* file_ = nullptr;
  std::string path_;
  std::mutex mu_;
};

}  // namespace r1kit
