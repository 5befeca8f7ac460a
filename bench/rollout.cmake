# rollout_bench: decode / prefill tokens/s of the rollout engine on a random Qwen2-shaped model,
# against a no-cache loop and the machine's measured matmul throughput (same run).
add_executable(rollout_bench ${CMAKE_CURRENT_SOURCE_DIR}/rollout_bench.cc)
target_include_directories(rollout_bench PRIVATE ${CMAKE_SOURCE_DIR} ${CLI11_INCLUDE_DIR})
target_compile_options(rollout_bench PRIVATE ${R1_WARNINGS})
target_link_libraries(rollout_bench PRIVATE r1_rollout)
r1_use_torch(rollout_bench)
