#include "grpo/async_rollout.h"

#include "core/check.h"

namespace r1kit::grpo {

AsyncRollout::AsyncRollout(Produce produce, int64_t first_step, int64_t last_step, int64_t position,
                           int64_t max_staleness, bool threaded)
    : produce_(std::move(produce)),
      last_step_(last_step),
      max_staleness_(max_staleness),
      threaded_(threaded),
      next_step_to_make_(first_step),
      position_(position),
      published_(first_step - 1) {
  R1_CHECK(max_staleness >= 0, "async rollout: max_staleness must be >= 0, got ", max_staleness);
  if (threaded_ && first_step <= last_step) thread_ = std::thread([this] { loop(); });
}

AsyncRollout::~AsyncRollout() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AsyncRollout::loop() {
  for (;;) {
    int64_t step, position;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Bounded staleness: step s needs the weights of version >= s - 1 - max_staleness.
      cv_.wait(lock, [&] { return stop_ || next_step_to_make_ - 1 - published_ <= max_staleness_; });
      if (stop_ || next_step_to_make_ > last_step_) return;
      step = next_step_to_make_++;
      position = position_;
    }
    try {
      RolloutBatch b = produce_(position);
      std::lock_guard<std::mutex> lock(mu_);
      position_ = b.data_position_end;
      ready_.emplace_back(step, std::move(b));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      error_ = std::current_exception();
      stop_ = true;
    }
    cv_.notify_all();
  }
}

RolloutBatch AsyncRollout::next(int64_t step) {
  if (!threaded_) {
    R1_CHECK(step == next_step_to_make_, "async rollout: step ", step, " requested, expected ", next_step_to_make_);
    RolloutBatch b = produce_(position_);
    position_ = b.data_position_end;
    ++next_step_to_make_;
    return b;
  }
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return error_ || !ready_.empty(); });
  if (ready_.empty()) std::rethrow_exception(error_);
  R1_CHECK(ready_.front().first == step, "async rollout: step ", step, " requested, next ready is ",
           ready_.front().first);
  RolloutBatch b = std::move(ready_.front().second);
  ready_.pop_front();
  return b;
}

void AsyncRollout::weights_published(int64_t step) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    published_ = std::max(published_, step);
  }
  cv_.notify_all();
}

}  // namespace r1kit::grpo
