// Asynchronous rollout: a background thread generates the batches of later steps while the trainer
// trains the current one, at most `max_staleness` policy versions behind. The batch of step s may
// start once the policy of version s - 1 - max_staleness is in the pool (version v = the weights
// after step v; the run starts from version first_step - 1). max_staleness 0 therefore generates
// step s only after step s - 1's weights are in the pool: the synchronous schedule, on a thread.
// With threaded = false next() generates inline (the synchronous trainer).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "grpo/rollout_batch.h"

namespace r1kit::grpo {

class AsyncRollout {
 public:
  using Produce = std::function<RolloutBatch(int64_t position)>;
  // Steps first_step .. last_step; the first batch starts at stream `position`.
  AsyncRollout(Produce produce, int64_t first_step, int64_t last_step, int64_t position, int64_t max_staleness,
               bool threaded);
  ~AsyncRollout();  // stops after the batch in flight (if any) and joins
  AsyncRollout(const AsyncRollout&) = delete;
  AsyncRollout& operator=(const AsyncRollout&) = delete;

  // The batch of `step` (steps are taken in order). Rethrows an error of the generating thread.
  RolloutBatch next(int64_t step);
  // The weights after `step` are in the pool: generation may run up to step + 1 + max_staleness.
  void weights_published(int64_t step);

 private:
  void loop();

  Produce produce_;
  const int64_t last_step_, max_staleness_;
  const bool threaded_;
  int64_t next_step_to_make_, position_, published_;
  bool stop_ = false;
  std::exception_ptr error_;
  std::deque<std::pair<int64_t, RolloutBatch>> ready_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
};

}  // namespace r1kit::grpo
