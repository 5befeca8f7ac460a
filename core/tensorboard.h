// TensorBoard event files written natively (no TensorFlow, no protobuf library): each record is
// TFRecord-framed (length, masked CRC32C of the length, payload, masked CRC32C of the payload)
// and the payload is a hand-encoded `Event` message (tensorboard/compat/proto/event.proto):
//
//   Event    { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5;
//              SessionLog session_log = 7; }
//   Summary  { repeated Value value = 1; }
//   Value    { string tag = 1; float simple_value = 2; TensorProto tensor = 8; SummaryMetadata metadata = 9; }
//
// Scalars use simple_value (float32, what every TensorBoard version reads); text uses a DT_STRING
// tensor with the "text" plugin, rendered as Markdown. A writer opened by a resumed job first
// writes SessionLog{START} at its first step, so TensorBoard drops the interrupted process's
// events from that step on and the curves show every step once.
//
//   TensorBoardWriter tb(run_dir + "/tensorboard", /*first_step=*/resumed_step + 1);
//   tb.scalars(step, metrics_record);     // every numeric field, tag = key ("reward/mean")
//   tb.text("samples", step, markdown);
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/json.h"

namespace r1kit {

// CRC-32C (Castagnoli), as TFRecord uses; `crc` continues a previous value.
uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);
// TFRecord's masked CRC: rotate right by 15, add 0xa282ead8.
uint32_t masked_crc32c(const void* data, size_t size);
// One TFRecord: u64 length, u32 masked crc(length), payload, u32 masked crc(payload); little endian.
std::string tfrecord_frame(const std::string& payload);

class TensorBoardWriter {
 public:
  TensorBoardWriter() = default;  // not open: every write is a no-op
  // Creates `dir` and a new events.out.tfevents.<time>.<host>.<pid>.<n> file in it. `first_step` > 0
  // records a restart at that step (see above). An empty `dir` gives a writer that is not open.
  explicit TensorBoardWriter(const std::string& dir, int64_t first_step = 0);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  void scalar(const std::string& tag, int64_t step, double value);
  // Every number or boolean of `record` as a scalar at `step`, in one event; nested objects give
  // "a/b" tags; the "step" key itself, strings, arrays and nulls are skipped.
  void scalars(int64_t step, const json& record);
  // A Markdown text entry (TensorBoard's Text tab).
  void text(const std::string& tag, int64_t step, const std::string& markdown);

  bool is_open() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }

 private:
  void write_event(const std::string& event_body);  // adds wall_time, frames, writes, flushes
  int fd_ = -1;
  std::string path_;
  std::mutex mu_;
};

// Renders sample records for TensorBoard's Text tab: per record a heading, the `numbers` fields on
// one line, and each `texts` field in a code block (cut to max_chars; fences longer than any
// backtick run inside, so the text cannot break out of its block).
std::string markdown_samples(const std::vector<json>& records, const std::vector<std::string>& numbers,
                             const std::vector<std::string>& texts, size_t max_chars = 4000);

}  // namespace r1kit
