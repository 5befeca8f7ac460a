# LibTorch flavours: Debian's 1.13 (CPU only) and official 2.x with CUDA (e.g. the PyPI wheel, which
# scripts/setup.sh --torch pip builds against). Included right after find_package(Torch).
#
# R1_TORCH_CUDA=1 compiles the CUDA-only paths (CUDA graphs, caching-allocator statistics). Without it
# they compile to their CPU fallbacks; torch::cuda::is_available() still decides at run time.
if(TARGET torch_cuda)
  set(R1_TORCH_CUDA ON)
  add_compile_definitions(R1_TORCH_CUDA=1)
  message(STATUS "r1kit: LibTorch ${Torch_VERSION} with CUDA: CUDA paths compiled")
else()
  set(R1_TORCH_CUDA OFF)
endif()

# A PyPI wheel keeps its CUDA libraries (cudart, nvrtc, cuBLAS, cuDNN, NCCL) in site-packages/nvidia/*/lib
# and libtorch_cuda.so finds them through its own RPATH. TorchConfig links our executables against the
# libcudart/libnvrtc of the system toolkit that nvcc belongs to, which can be another minor version (here
# 13.0 vs the wheel's 13.2): the first one loaded wins for the whole process. Put the wheel's directories
# first in the run path and its CUDA headers first on the include path, so one CUDA, the wheel's, is used.
set(R1_WHEEL_CUDA_LIB_DIRS)
set(R1_WHEEL_CUDA_INCLUDE_DIRS)
if(R1_TORCH_CUDA)
  get_filename_component(R1_TORCH_SITE "${TORCH_INSTALL_PREFIX}/.." ABSOLUTE)
  file(GLOB R1_WHEEL_CUDA_LIB_DIRS LIST_DIRECTORIES true "${R1_TORCH_SITE}/nvidia/*/lib")
  file(GLOB R1_WHEEL_CUDA_INCLUDE_DIRS LIST_DIRECTORIES true "${R1_TORCH_SITE}/nvidia/cu*/include")
endif()
if(R1_WHEEL_CUDA_LIB_DIRS)
  list(PREPEND CMAKE_BUILD_RPATH "${TORCH_INSTALL_PREFIX}/lib" ${R1_WHEEL_CUDA_LIB_DIRS})
  message(STATUS "r1kit: run path prefers the torch wheel's CUDA libraries in ${R1_TORCH_SITE}/nvidia")
endif()

# LibTorch 2.x ships fmt 12 headers in its include directory, which would shadow the system fmt 9 that
# Debian's spdlog was built against (errors such as "'basic_runtime' is not a member of 'fmt'"). A
# directory holding only a link to the system fmt headers goes first on every include path.
if(EXISTS "${TORCH_INSTALL_PREFIX}/include/fmt")
  find_package(fmt REQUIRED)
  get_target_property(R1_FMT_INCLUDE fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
  list(GET R1_FMT_INCLUDE 0 R1_FMT_INCLUDE)
  set(R1_FMT_SHIM "${CMAKE_BINARY_DIR}/r1_system_fmt")
  file(MAKE_DIRECTORY "${R1_FMT_SHIM}")
  file(CREATE_LINK "${R1_FMT_INCLUDE}/fmt" "${R1_FMT_SHIM}/fmt" SYMBOLIC)
  include_directories(BEFORE SYSTEM "${R1_FMT_SHIM}")
endif()
