# gpu_check: the checks scripts/gpu-check.sh runs on a GPU machine (fixture logits GPU vs CPU, master
# weights, decode tok/s and GRPO steps on a Qwen2.5-0.5B-shaped model); runs on the CPU too.
add_executable(gpu_check ${CMAKE_CURRENT_SOURCE_DIR}/gpu_check.cc)
target_include_directories(gpu_check PRIVATE ${CMAKE_SOURCE_DIR} ${CLI11_INCLUDE_DIR})
target_compile_options(gpu_check PRIVATE ${R1_WARNINGS})
target_compile_definitions(gpu_check PRIVATE R1_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
target_link_libraries(gpu_check PRIVATE r1_grpo r1_recipes)
r1_use_torch(gpu_check)
