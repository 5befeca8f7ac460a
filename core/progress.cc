#include "core/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace r1kit {

bool Progress::auto_enabled() {
  if (const char* env = std::getenv("R1_PROGRESS"); env && *env) return std::strcmp(env, "0") != 0;
  return isatty(STDERR_FILENO) == 1;
}

std::string Progress::format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto total = static_cast<int64_t>(std::llround(s));
  char buf[32];
  if (total >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(total / 3600),
                  static_cast<long long>(total / 60 % 60));
  else if (total >= 60)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(total / 60), static_cast<long long>(total % 60));
  else
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(total));
  return buf;
}

Progress::Progress(ProgressOptions options)
    : opts_(std::move(options)), start_(std::chrono::steady_clock::now()) {
  enabled_ = opts_.enabled < 0 ? auto_enabled() : opts_.enabled == 1;
  done_ = opts_.initial;
}

Progress::~Progress() { finish(); }

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::advance(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  done_ += n;
  maybe_draw_locked(false);
}

void Progress::add(const std::string& counter, double amount) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, value] : counters_) {
    if (name == counter) {
      value += amount;
      return;
    }
  }
  counters_.emplace_back(counter, amount);
}

void Progress::set_note(std::string note) {
  std::lock_guard<std::mutex> lock(mu_);
  note_ = std::move(note);
}

int64_t Progress::done() const {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

std::string Progress::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  return render_locked(elapsed_s());
}

static std::string format_rate(double per_s) {
  char buf[32];
  if (per_s >= 100)
    std::snprintf(buf, sizeof buf, "%.0f", per_s);
  else if (per_s >= 10)
    std::snprintf(buf, sizeof buf, "%.1f", per_s);
  else
    std::snprintf(buf, sizeof buf, "%.2f", per_s);
  return buf;
}

std::string Progress::render_locked(double now_s) const {
  std::string line = opts_.label.empty() ? std::string() : opts_.label + "  ";
  line += std::to_string(done_);
  const int64_t fresh = done_ - opts_.initial;  // the rate counts only this run's work
  if (opts_.total > 0) {
    line += "/" + std::to_string(opts_.total) + " [";
    const double frac = std::min(1.0, std::max(0.0, static_cast<double>(done_) / static_cast<double>(opts_.total)));
    const int filled = static_cast<int>(frac * opts_.width);
    for (int i = 0; i < opts_.width; ++i) line += i < filled ? '=' : (i == filled ? '>' : ' ');
    line += "] " + std::to_string(static_cast<int>(frac * 100)) + "%";
  }
  if (now_s > 0 && fresh > 0) line += "  " + format_rate(fresh / now_s) + " " + opts_.unit + "/s";
  for (const auto& [name, value] : counters_)
    if (now_s > 0) line += "  " + format_rate(value / now_s) + " " + name + "/s";
  if (opts_.total > 0 && fresh > 0 && done_ < opts_.total) {
    const double eta = (opts_.total - done_) * now_s / static_cast<double>(fresh);
    line += "  ETA " + format_duration(eta);
  } else if (opts_.total > 0 && done_ >= opts_.total) {
    line += "  " + format_duration(now_s);
  }
  if (!note_.empty()) line += "  " + note_;
  return line;
}

void Progress::maybe_draw_locked(bool force) {
  if (!enabled_ || finished_) return;
  const double now = elapsed_s();
  if (!force && now - last_draw_s_ < opts_.min_redraw_s) return;
  last_draw_s_ = now;
  std::string line = render_locked(now);
  const size_t len = line.size();
  if (len < last_len_) line.append(last_len_ - len, ' ');  // wipe the tail of a longer previous line
  last_len_ = len;
  std::fprintf(stderr, "\r%s", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  maybe_draw_locked(true);
  finished_ = true;
  if (drawn_) {
    std::fputc('\n', stderr);
    std::fflush(stderr);
  }
}

}  // namespace r1kit
