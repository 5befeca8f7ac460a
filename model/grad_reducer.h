// Gradient all-reduce overlapped with backward, the way PyTorch's DDP does it: every trainable
// parameter gets a hook on its gradient accumulator; the parameters are grouped, in reverse order
// (backward produces the last layers' gradients first), into buckets of about `bucket_bytes`; as soon
// as all gradients of a bucket are final its asynchronous all-reduce starts on the process group
// (c10d work handles, model/process_group.h), while backward computes the earlier layers.
//
//   GradReducer reducer(dp.group_ptr(), optimizer);   // a null group: every call is a no-op
//   per optimiser step:
//     micro-batches 1..k-1: backward(); optimizer.accumulate_grads();   // no sync: local sums only
//     last micro-batch:     reducer.prepare_for_backward(); backward(); // buckets start during it
//     reducer.finish();     // waits; every (master) gradient is the sum over ranks
//     optimizer.clip_grad_norm(...); optimizer.step();
//
// What is summed is the gradient AdamW uses: the fp32 master gradient of a bf16 model (the hook folds
// the parameter's low-precision gradient into it first, as MasterWeights::accumulate_grads does), the
// parameter's own .grad of a float32 model. Only the trainable parameters the optimiser holds take
// part (LoRA: the adapters). Buckets start in the same order on every rank (a ready bucket waits for
// the earlier ones), as c10d requires. finish() also reduces, after the buckets, which parameters had
// a gradient on any rank: those get the summed gradient everywhere (zeros where a rank had none), the
// others keep none, so AdamW skips the same parameters as in one process.
//
// prepare_for_backward() arms the hooks for the next backward call only: call it right before the
// step's last backward call (a micro-batch that runs several backward calls arms before its last).
// Gradients that are final before it (earlier micro-batches, earlier backward calls, unused
// parameters) are reduced by finish(). A parameter whose gradient changes after its bucket started
// is an Error (it would be summed stale).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <memory>

#include "model/master_weights.h"
#include "model/process_group.h"

namespace r1kit {

struct GradReducerOptions {
  int64_t bucket_bytes = 25 << 20;  // DDP's bucket_cap_mb default (25 MB)
};

class GradReducer {
 public:
  // `optimizer` must outlive the reducer. No hooks are installed when `pg` is null.
  GradReducer(std::shared_ptr<ProcessGroup> pg, MasterWeights& optimizer, GradReducerOptions options = {});
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // The next backward call is the step's last: its final gradients start their buckets' all-reduce.
  void prepare_for_backward();
  // Starts the buckets not started yet, waits for all, and leaves the summed gradients in the
  // optimiser's (master) gradients. Every rank calls it once per optimiser step.
  void finish();

  int64_t num_buckets() const;
  // Buckets whose all-reduce started inside the last armed backward (the overlap), for tests and logs.
  int64_t buckets_started_in_backward() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace r1kit
