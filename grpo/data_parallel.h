// Data parallelism in the GRPO trainer (model/data_parallel.h has the rank, shards and collectives;
// model/grad_reducer.h the overlapped gradient all-reduce). Each step's B prompts are split into W
// equal shares; rank r generates, scores and trains on prompts [r·B/W, (r+1)·B/W) of the global
// batch, with the same per-record sampling seeds a single process would use. Rank 0 writes metrics,
// samples, checkpoints and the final model.
#pragma once
#include "grpo/loss.h"
#include "model/data_parallel.h"

namespace r1kit::grpo {

using r1kit::DataParallel;

// Global denominators: each field of the normaliser summed over ranks (identity in one process).
void all_reduce(const DataParallel& dp, LossNormalizer& normalizer);

}  // namespace r1kit::grpo
