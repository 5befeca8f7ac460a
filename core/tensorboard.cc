#include "core/tensorboard.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstring>

#include "core/check.h"
#include "core/fs.h"

namespace r1kit {

// ---------------------------------------------------------------------------------------------
// CRC-32C, table driven (reflected polynomial 0x82F63B78).

namespace {

const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

}  // namespace

uint32_t crc32c(const void* data, size_t size, uint32_t crc) {
  const auto& t = crc_table();
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = t[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t c = crc32c(data, size);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

namespace {

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

std::string tfrecord_frame(const std::string& payload) {
  std::string len;
  put_le(len, payload.size(), 8);
  std::string out = len;
  put_le(out, masked_crc32c(len.data(), len.size()), 4);
  out += payload;
  put_le(out, masked_crc32c(payload.data(), payload.size()), 4);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Protocol-buffer wire format, just what the messages above need: varint (type 0), 64-bit (1),
// length-delimited (2), 32-bit (5).

namespace {

void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void key(std::string& out, int field, int wire_type) { varint(out, (static_cast<uint64_t>(field) << 3) | wire_type); }

void field_varint(std::string& out, int field, uint64_t v) {
  key(out, field, 0);
  varint(out, v);
}

void field_bytes(std::string& out, int field, const std::string& bytes) {
  key(out, field, 2);
  varint(out, bytes.size());
  out += bytes;
}

void field_double(std::string& out, int field, double v) {
  key(out, field, 1);
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  put_le(out, bits, 8);
}

void field_float(std::string& out, int field, float v) {
  key(out, field, 5);
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  put_le(out, bits, 4);
}

// Event field numbers (event.proto) and enum values used here.
constexpr int kEventWallTime = 1, kEventStep = 2, kEventFileVersion = 3, kEventSummary = 5, kEventSessionLog = 7;
constexpr int kSummaryValue = 1;
constexpr int kValueTag = 1, kValueSimple = 2, kValueTensor = 8, kValueMetadata = 9;
constexpr int kMetaPluginData = 1, kMetaDataClass = 4, kPluginName = 1;
constexpr int kTensorDtype = 1, kTensorShape = 2, kTensorStringVal = 8;
constexpr int kDtString = 7, kDataClassTensor = 2, kSessionStart = 1;

std::string scalar_value(const std::string& tag, double value) {
  std::string v;
  field_bytes(v, kValueTag, tag);
  field_float(v, kValueSimple, static_cast<float>(value));
  return v;
}

void flatten(const std::string& prefix, const json& j, std::string& summary, int& count) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string tag = prefix.empty() ? it.key() : prefix + "/" + it.key();
      if (prefix.empty() && it.key() == "step") continue;
      flatten(tag, it.value(), summary, count);
    }
  } else if (j.is_number() || j.is_boolean()) {
    const double v = j.is_boolean() ? (j.get<bool>() ? 1.0 : 0.0) : j.get<double>();
    field_bytes(summary, kSummaryValue, scalar_value(prefix, v));
    ++count;
  }
}

std::string hostname() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == 0) return "localhost";
  return buf;
}

double wall_time_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

TensorBoardWriter::TensorBoardWriter(const std::string& dir, int64_t first_step) {
  static std::atomic<int> counter{0};
  if (dir.empty()) return;
  make_dirs(dir);
  const auto seconds = static_cast<long long>(wall_time_now());
  path_ = dir + "/events.out.tfevents." + std::to_string(seconds) + "." + hostname() + "." +
          std::to_string(::getpid()) + "." + std::to_string(counter++);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  R1_CHECK(fd_ >= 0, path_, ": cannot open for writing: ", std::strerror(errno));
  std::string first;
  field_bytes(first, kEventFileVersion, "brain.Event:2");
  write_event(first);
  if (first_step > 0) {
    std::string session, log;
    field_varint(log, 1, kSessionStart);  // SessionLog.status
    field_varint(session, kEventStep, static_cast<uint64_t>(first_step));
    field_bytes(session, kEventSessionLog, log);
    write_event(session);
  }
}

TensorBoardWriter::~TensorBoardWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void TensorBoardWriter::write_event(const std::string& body) {
  std::string event;
  field_double(event, kEventWallTime, wall_time_now());
  event += body;
  const std::string record = tfrecord_frame(event);
  // One write(2) per record: a killed process leaves whole records only (a regular-file write is
  // not cut short by a signal), so the file stays readable.
  std::lock_guard<std::mutex> lock(mu_);
  size_t done = 0;
  while (done < record.size()) {
    const ssize_t n = ::write(fd_, record.data() + done, record.size() - done);
    if (n < 0 && errno == EINTR) continue;
    R1_CHECK(n > 0, path_, ": write failed: ", std::strerror(errno));
    done += static_cast<size_t>(n);
  }
}

void TensorBoardWriter::scalar(const std::string& tag, int64_t step, double value) {
  if (fd_ < 0) return;
  std::string summary, event;
  field_bytes(summary, kSummaryValue, scalar_value(tag, value));
  field_varint(event, kEventStep, static_cast<uint64_t>(step));
  field_bytes(event, kEventSummary, summary);
  write_event(event);
}

void TensorBoardWriter::scalars(int64_t step, const json& record) {
  if (fd_ < 0) return;
  std::string summary, event;
  int count = 0;
  flatten("", record, summary, count);
  if (count == 0) return;
  field_varint(event, kEventStep, static_cast<uint64_t>(step));
  field_bytes(event, kEventSummary, summary);
  write_event(event);
}

void TensorBoardWriter::text(const std::string& tag, int64_t step, const std::string& markdown) {
  if (fd_ < 0) return;
  std::string plugin, metadata, tensor, value, summary, event;
  field_bytes(plugin, kPluginName, "text");
  field_bytes(metadata, kMetaPluginData, plugin);
  field_varint(metadata, kMetaDataClass, kDataClassTensor);
  field_varint(tensor, kTensorDtype, kDtString);
  field_bytes(tensor, kTensorShape, "");  // scalar: a shape with no dims
  field_bytes(tensor, kTensorStringVal, markdown);
  field_bytes(value, kValueTag, tag);
  field_bytes(value, kValueTensor, tensor);
  field_bytes(value, kValueMetadata, metadata);
  field_bytes(summary, kSummaryValue, value);
  field_varint(event, kEventStep, static_cast<uint64_t>(step));
  field_bytes(event, kEventSummary, summary);
  write_event(event);
}

std::string markdown_samples(const std::vector<json>& records, const std::vector<std::string>& numbers,
                             const std::vector<std::string>& texts, size_t max_chars) {
  auto fenced = [&](std::string s) {
    if (s.size() > max_chars) s = s.substr(0, max_chars) + " [...]";
    size_t run = 0, longest = 0;
    for (char c : s) {
      run = c == '`' ? run + 1 : 0;
      longest = std::max(longest, run);
    }
    const std::string fence(std::max<size_t>(3, longest + 1), '`');
    return fence + "\n" + s + "\n" + fence + "\n";
  };
  std::string out;
  for (size_t i = 0; i < records.size(); ++i) {
    const json& r = records[i];
    out += "### sample " + std::to_string(i + 1) + "\n\n";
    std::string line;
    for (const auto& k : numbers) {
      if (!r.contains(k)) continue;
      line += (line.empty() ? "" : " · ") + k + " = " + (r[k].is_string() ? r[k].get<std::string>() : r[k].dump());
    }
    if (!line.empty()) out += line + "\n\n";
    for (const auto& k : texts) {
      if (!r.contains(k)) continue;
      out += "**" + k + "**\n\n" + fenced(r[k].is_string() ? r[k].get<std::string>() : r[k].dump()) + "\n";
    }
  }
  return out;
}

}  // namespace r1kit
