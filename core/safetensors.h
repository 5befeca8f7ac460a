// safetensors read/write without LibTorch: the file is an 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then raw bytes.
// Reads are memory-mapped; every structural problem is an Error naming the file (and tensor).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/fs.h"

namespace r1kit {

struct SafetensorInfo {
  std::string dtype;                 // "F32", "BF16", "F16", "I64", ...
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;  // byte offsets within the data section
};

// Bytes per element for a safetensors dtype name; throws for unknown names.
std::size_t safetensors_dtype_size(const std::string& dtype);

class SafetensorsFile {
 public:
  // Maps and validates `path`: header length within the file, valid JSON, known dtypes,
  // offsets inside the data section and consistent with shape x dtype size.
  explicit SafetensorsFile(const std::string& path);

  const std::map<std::string, SafetensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return tensors_.count(name) > 0; }
  const SafetensorInfo& info(const std::string& name) const;  // Error naming file + tensor
  const std::uint8_t* data(const std::string& name) const;    // points into the mapping
  const std::string& path() const { return file_.path(); }

 private:
  MappedFile file_;
  std::uint64_t data_start_ = 0;
  std::map<std::string, SafetensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// One tensor to write: `data` must hold exactly prod(shape) * dtype size bytes.
struct SafetensorToWrite {
  std::string name;
  std::string dtype;
  std::vector<std::int64_t> shape;
  const void* data = nullptr;
  std::size_t nbytes = 0;
};

// Writes a safetensors file atomically (temp + rename). Tensors are laid out in the given order,
// the header is padded with spaces so data starts 8-byte aligned, as HF's writer does.
void write_safetensors(const std::string& path, const std::vector<SafetensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace r1kit
