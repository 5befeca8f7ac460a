#include "core/fs.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

#include "core/check.h"

namespace r1kit {
namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  R1_CHECK(f, path, ": cannot open: ", std::strerror(errno));
  std::string out;
  char buf[1 << 16];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  bool err = std::ferror(f);
  std::fclose(f);
  R1_CHECK(!err, path, ": read error");
  return out;
}

static std::string temp_name_for(const std::string& path) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return str_cat(path, ".tmp.", getpid(), ".", rng() % 1000000007ULL);
}

void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& fill) {
  fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  const std::string tmp = temp_name_for(path);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  R1_CHECK(f, tmp, ": cannot create: ", std::strerror(errno));
  try {
    fill(f);
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  bool ok = std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    std::remove(tmp.c_str());
    R1_FAIL(path, ": cannot write: ", std::strerror(e));
  }
}

void write_file_atomic(const std::string& path, const std::string& data) {
  write_file_atomic(path, [&](std::FILE* f) {
    R1_CHECK(std::fwrite(data.data(), 1, data.size(), f) == data.size(), path, ": short write");
  });
}

void replace_directory(const std::string& tmp_dir, const std::string& final_dir) {
  std::error_code ec;
  if (fs::exists(final_dir)) {
    // Move the old one aside first so a crash never leaves neither.
    const std::string old = final_dir + ".old";
    fs::remove_all(old, ec);
    fs::rename(final_dir, old, ec);
    R1_CHECK(!ec, final_dir, ": cannot move aside: ", ec.message());
    fs::rename(tmp_dir, final_dir, ec);
    R1_CHECK(!ec, final_dir, ": cannot rename from ", tmp_dir, ": ", ec.message());
    fs::remove_all(old, ec);
  } else {
    fs::rename(tmp_dir, final_dir, ec);
    R1_CHECK(!ec, final_dir, ": cannot rename from ", tmp_dir, ": ", ec.message());
  }
}

bool path_exists(const std::string& path) { return fs::exists(path); }

void make_dirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  R1_CHECK(!ec, path, ": cannot create directory: ", ec.message());
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  R1_CHECK(fd >= 0, path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    R1_FAIL(path, ": cannot stat");
  }
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    R1_CHECK(p != MAP_FAILED, path, ": mmap failed: ", std::strerror(errno));
    data_ = static_cast<const std::uint8_t*>(p);
  } else {
    ::close(fd);
  }
}

MappedFile::MappedFile(MappedFile&& o) noexcept { *this = std::move(o); }

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (data_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
    path_ = std::move(o.path_);
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
}

}  // namespace r1kit
