// Data parallelism for the GRPO trainer (the pieces trainer.cc calls; the collectives are c10d's,
// model/process_group.h). With W ranks each step's B prompts are split into W equal shares; rank r
// generates, scores and trains on prompts [r·B/W, (r+1)·B/W) of the global batch, with the same
// per-record sampling seeds a single process would use. The loss normaliser and the gradients are
// summed over ranks, so every rank takes the optimiser step of the unsplit global batch and the
// replicas stay identical. Rank 0 writes metrics, samples, checkpoints and the final model.
#pragma once
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "grpo/loss.h"
#include "model/master_weights.h"
#include "model/process_group.h"
#include "model/transformer.h"

namespace r1kit::grpo {

class DataParallel {
 public:
  DataParallel() = default;  // one process
  explicit DataParallel(std::shared_ptr<ProcessGroup> pg) : pg_(std::move(pg)) {}
  // From the launcher's environment (model/process_group.h): one process when WORLD_SIZE is unset or 1.
  static DataParallel from_env(torch::Device device);

  bool active() const { return pg_ != nullptr; }
  int rank() const { return pg_ ? pg_->rank() : 0; }
  int world_size() const { return pg_ ? pg_->world_size() : 1; }
  bool is_main() const { return rank() == 0; }
  ProcessGroup* group() const { return pg_.get(); }

  // This rank's [begin, end) of n global items (n must divide evenly; checked by the caller).
  std::pair<int64_t, int64_t> shard(int64_t n) const;
  // Rank 0's parameters to every rank (identical starting replicas).
  void broadcast_parameters(Transformer& model) const;
  // Global denominators: each field summed over ranks.
  void all_reduce(LossNormalizer& normalizer) const;
  // Sums the accumulated gradients (fp32 master gradients when masters are kept) over ranks, in buckets.
  void all_reduce_grads(MasterWeights& optimizer) const;
  // Element-wise sums / rank-order concatenation (identity in one process).
  std::vector<double> sum(std::vector<double> values) const;
  std::vector<double> gather(const std::vector<double>& values) const;
  void barrier() const;

 private:
  std::shared_ptr<ProcessGroup> pg_;
};

}  // namespace r1kit::grpo
