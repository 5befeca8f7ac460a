// File helpers: whole-file reads, atomic writes (temp + fsync + rename), read-only memory maps.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace r1kit {

// Reads a whole file; throws Error naming the path when it cannot.
std::string read_file(const std::string& path);

// Writes `data` to `path` atomically: a temp file in the same directory, fsync, rename.
// A reader sees either the old file or the whole new one, never a torn write (kill -9 safe).
void write_file_atomic(const std::string& path, const std::string& data);

// Same, streaming: `fill` writes into the temp file descriptor's FILE*.
void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& fill);

// Renames a fully written directory into place (used for checkpoints): removes `final_dir` if it
// exists, then renames `tmp_dir` to it. Not atomic across the remove, but a crash leaves either
// the old or the tmp directory intact, and load paths ignore `*.tmp*` directories.
void replace_directory(const std::string& tmp_dir, const std::string& final_dir);

bool path_exists(const std::string& path);
void make_dirs(const std::string& path);

// A read-only memory map of a whole file. Movable, not copyable; unmaps on destruction.
class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace r1kit
