# Math checker speed: median / p99 microseconds per check on MATH-500 answers and Math-Verify's cases.
#   ./build/bench/math_bench [../shared]
add_executable(math_bench ${CMAKE_CURRENT_LIST_DIR}/math_bench.cc)
target_link_libraries(math_bench PRIVATE r1_rewards_math)
target_compile_definitions(math_bench PRIVATE R1_SHARED_DIR="${R1_SHARED_DIR}")
set_target_properties(math_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
