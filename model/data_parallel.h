// Data parallelism for the trainers (GRPO, SFT; the collectives are c10d's, model/process_group.h).
// With W ranks each step's global batch is split into W equal shares; rank r trains on items
// [r·B/W, (r+1)·B/W). The loss normaliser and the gradients (model/grad_reducer.h, bucketed and
// overlapped with backward) are summed over ranks, so every rank takes the optimiser step of the
// unsplit global batch and the replicas stay identical. Rank 0 writes metrics, checkpoints and the
// final model.
#pragma once
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "model/process_group.h"
#include "model/transformer.h"

namespace r1kit {

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
  const std::shared_ptr<ProcessGroup>& group_ptr() const { return pg_; }  // null in one process

  // This rank's [begin, end) of n global items (n must divide evenly; checked by the caller).
  std::pair<int64_t, int64_t> shard(int64_t n) const;
  // Rank 0's parameters to every rank (identical starting replicas).
  void broadcast_parameters(Transformer& model) const;
  // Element-wise sums / rank-order concatenation (identity in one process).
  std::vector<double> sum(std::vector<double> values) const;
  std::vector<double> gather(const std::vector<double>& values) const;
  void barrier() const;

 private:
  std::shared_ptr<ProcessGroup> pg_;
};

}  // namespace r1kit
