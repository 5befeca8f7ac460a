// Process-wide settings of the C allocator for training and generation.
#pragma once

namespace r1kit {

// Keep freed memory in the process instead of handing it back to the kernel at once. By default
// glibc serves large blocks (over its mmap threshold, 128 KB at first) with a fresh mmap and trims
// the heap's free top beyond 128 KB, so each step's activations and gradients (MBs each) were
// page-faulted in again, zeroed by the kernel, every step: 3.5-5% of a tiny-recipe SFT step in A/B
// runs. Blocks up to 32 MB (glibc's ceiling for this threshold) now come from the heap and are
// reused; the heap's top is trimmed only beyond 1 GB free. Peak memory is unchanged; memory held
// after a peak is not given back until it exceeds that. No effect on other C libraries. Call once, early, from main.
void keep_freed_memory();

}  // namespace r1kit
