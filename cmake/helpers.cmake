# Helpers that keep each folder's CMakeLists short.
#
# r1_add_library(NAME SOURCES a.cc b.cc DEPS r1_core ... [TORCH])
#   A static library r1_<NAME>. TORCH links LibTorch and reuses the shared torch precompiled header.
# r1_add_test(NAME SOURCES x_test.cc DEPS r1_model ... [LABELS unit;parity] [TORCH])
#   A GoogleTest executable registered with ctest (gtest_discover_tests). Labels: unit (default),
#   parity (against ../shared references), slow; select with `ctest -L parity`.

set(R1_SHARED_DIR "${CMAKE_SOURCE_DIR}/../shared" CACHE PATH "reference data (fixtures, tokenizers, data)")
set(R1_WARNINGS -Wall -Wextra -Wno-unused-parameter)

# One precompiled <torch/torch.h> for every torch-using target: parsing it costs ~10 s per file otherwise.
add_library(r1_torch_pch STATIC ${CMAKE_SOURCE_DIR}/cmake/torch_pch.cc)
target_link_libraries(r1_torch_pch PUBLIC ${TORCH_LIBRARIES})
target_include_directories(r1_torch_pch PUBLIC ${TORCH_INCLUDE_DIRS})
target_include_directories(r1_torch_pch SYSTEM BEFORE PUBLIC ${R1_WHEEL_CUDA_INCLUDE_DIRS})
target_precompile_headers(r1_torch_pch PRIVATE <torch/torch.h>)

function(r1_use_torch target)
  target_link_libraries(${target} PUBLIC ${TORCH_LIBRARIES})
  target_include_directories(${target} SYSTEM PUBLIC ${TORCH_INCLUDE_DIRS})
  target_include_directories(${target} SYSTEM BEFORE PUBLIC ${R1_WHEEL_CUDA_INCLUDE_DIRS})
  target_precompile_headers(${target} REUSE_FROM r1_torch_pch)
endfunction()

function(r1_add_library NAME)
  cmake_parse_arguments(A "TORCH" "" "SOURCES;DEPS" ${ARGN})
  add_library(r1_${NAME} STATIC ${A_SOURCES})
  target_include_directories(r1_${NAME} PUBLIC ${CMAKE_SOURCE_DIR})
  target_compile_options(r1_${NAME} PRIVATE ${R1_WARNINGS})
  target_link_libraries(r1_${NAME} PUBLIC ${A_DEPS})
  if(A_TORCH)
    r1_use_torch(r1_${NAME})
  endif()
endfunction()

function(r1_add_test NAME)
  cmake_parse_arguments(A "TORCH" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${NAME} ${A_SOURCES})
  target_compile_options(${NAME} PRIVATE ${R1_WARNINGS})
  target_link_libraries(${NAME} PRIVATE ${A_DEPS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${NAME} PRIVATE
    R1_SHARED_DIR="${R1_SHARED_DIR}" R1_TEST_DATA_DIR="${CMAKE_SOURCE_DIR}/tests/data"
    R1_SOURCE_DIR="${CMAKE_SOURCE_DIR}" R1_BINARY_DIR="${CMAKE_BINARY_DIR}")
  if(A_TORCH)
    r1_use_torch(${NAME})
  endif()
  if(NOT A_LABELS)
    set(A_LABELS unit)
  endif()
  include(GoogleTest)
  # gtest_discover_tests (CMake 3.25) splits a list-valued property into separate arguments, so
  # several labels become one joined label: "unit;parity" -> "unit-parity". ctest -L takes a regular
  # expression, so both `ctest -L unit` and `ctest -L parity` still select it.
  string(REPLACE ";" "-" labels "${A_LABELS}")
  # testing::TempDir() is /tmp/ by default, shared by every checkout and test run on the machine: two
  # suites running at once (a clean-clone check beside a work tree) wrote the same fixed-name
  # directories. Each test executable gets its own under this build tree instead.
  set(tmp "${CMAKE_BINARY_DIR}/test-tmp/${NAME}")
  file(MAKE_DIRECTORY "${tmp}")
  gtest_discover_tests(${NAME} PROPERTIES LABELS "${labels}" ENVIRONMENT "TEST_TMPDIR=${tmp}" DISCOVERY_TIMEOUT 120)
endfunction()
