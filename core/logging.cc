#include "core/logging.h"

#include <unistd.h>

#include "core/check.h"

namespace r1kit {

void init_logging(const std::string& level) {
  spdlog::set_pattern("[%H:%M:%S] [%^%l%$] %v");
  auto lvl = spdlog::level::from_str(level);
  spdlog::set_level(lvl);
}

MetricsWriter::MetricsWriter(const std::string& path, bool append) : path_(path) {
  file_ = std::fopen(path.c_str(), append ? "ab" : "wb");
  R1_CHECK(file_, path, ": cannot open for writing");
}

MetricsWriter::~MetricsWriter() {
  if (file_) std::fclose(file_);
}

void MetricsWriter::write(const json& record) {
  std::lock_guard<std::mutex> lock(mu_);
  R1_CHECK(file_, "MetricsWriter: not open");
  std::string line = dump_line(record) + "\n";
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fflush(file_);
  ::fsync(fileno(file_));
}

}  // namespace r1kit
