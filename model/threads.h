// Intra-op thread count. LibTorch starts with 1 thread in this environment; decoding and training
// want every core.
#pragma once

namespace r1kit {

// Sets at::set_num_threads to $R1_THREADS when set (a positive integer), else to the number of
// cores (std::thread::hardware_concurrency). Returns the count set.
int set_default_threads();

}  // namespace r1kit
