// Process-wide settings of the C allocator for training and generation.
#pragma once

namespace r1kit {

// Keep freed memory in the process instead of handing it back to the kernel at once. glibc serves
// every block over 128 KB (after its dynamic threshold settles, a few MB) with a fresh mmap and
// returns it on free, so each step's activations and gradients (MBs each) were page-faulted in
// again, zeroed by the kernel, every step: ~3-8% of a tiny-recipe SFT step. Blocks up to 32 MB
// (glibc's ceiling for this threshold) now come from the heap and are reused; the heap's top is
// trimmed only beyond 1 GB free. Peak memory is unchanged; memory held after a peak is not given
// back until it exceeds that. No effect on other C libraries. Call once, early, from main.
void keep_freed_memory();

}  // namespace r1kit
