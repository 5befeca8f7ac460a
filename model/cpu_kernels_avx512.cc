// The kernels of model/cpu_kernels_impl.h for avx512 (compiled with its -m flags: model/CMakeLists.txt).
#if defined(__x86_64__)
#define R1_VEC_WIDTH 16
#define R1_KERNEL_NS avx512
#define R1_KERNEL_ISA "avx512"
#include "model/cpu_kernels_impl.h"
#endif
