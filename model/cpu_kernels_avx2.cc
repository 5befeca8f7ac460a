// The kernels of model/cpu_kernels_impl.h for avx2 (compiled with its -m flags: model/CMakeLists.txt).
#if defined(__x86_64__)
#define R1_VEC_WIDTH 8
#define R1_KERNEL_NS avx2
#define R1_KERNEL_ISA "avx2"
#include "model/cpu_kernels_impl.h"
#endif
