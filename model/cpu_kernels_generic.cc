// The kernels of model/cpu_kernels_impl.h for any CPU (4-float vectors; compiled without extra -m flags).
#if 1
#define R1_VEC_WIDTH 4
#define R1_KERNEL_NS generic
#define R1_KERNEL_ISA "generic"
#include "model/cpu_kernels_impl.h"
#endif
