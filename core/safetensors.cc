#include "core/safetensors.h"

#include <cstring>

#include "core/check.h"
#include "core/json.h"

namespace r1kit {

std::size_t safetensors_dtype_size(const std::string& dtype) {
  static const std::map<std::string, std::size_t> sizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
      {"I8", 1},  {"U8", 1},  {"BOOL", 1}, {"U16", 2}, {"U32", 4}, {"U64", 8}};
  auto it = sizes.find(dtype);
  R1_CHECK(it != sizes.end(), "unknown safetensors dtype '", dtype, "'");
  return it->second;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  const std::size_t size = file_.size();
  R1_CHECK(size >= 8, path, ": truncated file (", size, " bytes, no header length)");
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | file_.data()[i];
  R1_CHECK(header_len <= size - 8, path, ": truncated file (header says ", header_len, " bytes, file has ",
           size - 8, " after the length)");
  data_start_ = 8 + header_len;
  const std::string header(reinterpret_cast<const char*>(file_.data() + 8), header_len);
  json j;
  try {
    j = json::parse(header);
  } catch (const json::parse_error& e) {
    R1_FAIL(path, ": invalid header JSON: ", e.what());
  }
  R1_CHECK(j.is_object(), path, ": invalid header JSON: not an object");
  const std::uint64_t data_size = size - data_start_;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (it.value().is_object())
        for (auto m = it.value().begin(); m != it.value().end(); ++m)
          metadata_[m.key()] = m.value().is_string() ? m.value().get<std::string>() : m.value().dump();
      continue;
    }
    const std::string& name = it.key();
    const json& t = it.value();
    SafetensorInfo info;
    try {
      info.dtype = t.at("dtype").get<std::string>();
      info.shape = t.at("shape").get<std::vector<std::int64_t>>();
      auto off = t.at("data_offsets").get<std::vector<std::uint64_t>>();
      R1_CHECK(off.size() == 2, "data_offsets must have 2 entries");
      info.begin = off[0];
      info.end = off[1];
    } catch (const json::exception& e) {
      R1_FAIL(path, ": tensor '", name, "': invalid header entry: ", e.what());
    } catch (const Error& e) {
      R1_FAIL(path, ": tensor '", name, "': ", e.what());
    }
    std::size_t esize;
    try {
      esize = safetensors_dtype_size(info.dtype);
    } catch (const Error& e) {
      R1_FAIL(path, ": tensor '", name, "': ", e.what());
    }
    std::uint64_t numel = 1;
    for (auto d : info.shape) {
      R1_CHECK(d >= 0, path, ": tensor '", name, "': negative dimension");
      numel *= static_cast<std::uint64_t>(d);
    }
    R1_CHECK(info.begin <= info.end, path, ": tensor '", name, "': data_offsets reversed");
    R1_CHECK(info.end - info.begin == numel * esize, path, ": tensor '", name, "': data_offsets span ",
             info.end - info.begin, " bytes but shape x dtype needs ", numel * esize);
    R1_CHECK(info.end <= data_size, path, ": truncated file: tensor '", name, "' ends at byte ", info.end,
             " of a ", data_size, "-byte data section");
    tensors_[name] = std::move(info);
  }
}

const SafetensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = tensors_.find(name);
  R1_CHECK(it != tensors_.end(), path(), ": missing tensor '", name, "'");
  return it->second;
}

const std::uint8_t* SafetensorsFile::data(const std::string& name) const {
  return file_.data() + data_start_ + info(name).begin;
}

void write_safetensors(const std::string& path, const std::vector<SafetensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const auto& t : tensors) {
    std::uint64_t numel = 1;
    for (auto d : t.shape) numel *= static_cast<std::uint64_t>(d);
    R1_CHECK(numel * safetensors_dtype_size(t.dtype) == t.nbytes, path, ": tensor '", t.name,
             "': byte size does not match shape");
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.nbytes}}};
    offset += t.nbytes;
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');
  write_file_atomic(path, [&](std::FILE* f) {
    std::uint8_t len[8];
    std::uint64_t n = h.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<std::uint8_t>(n >> (8 * i));
    bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(h.data(), 1, h.size(), f) == h.size();
    for (const auto& t : tensors) ok = ok && std::fwrite(t.data, 1, t.nbytes, f) == t.nbytes;
    R1_CHECK(ok, path, ": short write");
  });
}

}  // namespace r1kit
