// Progress: a one-line progress bar on stderr for long jobs (SFT, GRPO, generation, evaluation,
// distillation, sandbox batches), with rate, extra rates (e.g. tokens/s) and ETA:
//
//   generate  312/1000 [=========>                ] 31%  4.1 rec/s  1830 tok/s  ETA 2m48s
//
// It draws only when stderr is a terminal (so logs, CI output and files stay clean); R1_PROGRESS=0
// turns it off and R1_PROGRESS=1 forces it on (e.g. under `script`). Redraws at most ~10 times a
// second. Thread-safe: several workers may call advance() at once.
#pragma once
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace r1kit {

struct ProgressOptions {
  std::string label;          // shown first ("sft", "generate", ...)
  std::string unit = "it";    // of the main count, in the rate ("rec/s", "step/s")
  int64_t total = 0;          // 0 = unknown (no bar, no ETA)
  int64_t initial = 0;        // work already done (a resumed job): counted, but not in the rate
  int enabled = -1;           // -1: auto (terminal and R1_PROGRESS), 0 off, 1 on
  double min_redraw_s = 0.1;  // redraw interval
  int width = 24;             // bar characters
};

class Progress {
 public:
  explicit Progress(ProgressOptions options);
  ~Progress();  // finishes the line when it was drawn
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Adds `n` to the main count and `extra` to a named counter shown as a rate ("tok" -> "tok/s").
  void advance(int64_t n = 1);
  void add(const std::string& counter, double amount);
  // Free text shown after the rates (e.g. "loss 0.412"); replaced by the next call.
  void set_note(std::string note);
  // Ends the line (draws a last time). Further calls are no-ops.
  void finish();

  int64_t done() const;
  bool enabled() const { return enabled_; }
  // The line as it would be drawn now (also used by tests).
  std::string render() const;

  // Whether auto mode draws: R1_PROGRESS when set, else whether stderr is a terminal.
  static bool auto_enabled();
  // "4m05s", "1h02m", "12s"; "?" for a negative or non-finite value.
  static std::string format_duration(double seconds);

 private:
  std::string render_locked(double now_s) const;
  void maybe_draw_locked(bool force);
  double elapsed_s() const;

  ProgressOptions opts_;
  bool enabled_ = false;
  bool drawn_ = false;
  bool finished_ = false;
  int64_t done_ = 0;
  std::vector<std::pair<std::string, double>> counters_;
  std::string note_;
  std::chrono::steady_clock::time_point start_;
  double last_draw_s_ = -1e9;
  size_t last_len_ = 0;
  mutable std::mutex mu_;
};

}  // namespace r1kit
