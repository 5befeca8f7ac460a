#include "grpo/data_parallel.h"

namespace r1kit::grpo {

void all_reduce(const DataParallel& dp, LossNormalizer& n) {
  if (!dp.active()) return;
  std::vector<double> v = dp.sum({static_cast<double>(n.num_rows), n.num_tokens, static_cast<double>(n.num_nonempty_rows)});
  n.num_rows = static_cast<int64_t>(v[0]);
  n.num_tokens = v[1];
  n.num_nonempty_rows = static_cast<int64_t>(v[2]);
}

}  // namespace r1kit::grpo
