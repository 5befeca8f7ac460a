# decode_bench: r1kit's rollout engine against ../shared/peers/eager_decode.py (PyTorch eager) on the
# same HF checkpoint, same threads, alternating in the same run; prints tok/s and the ratio.
add_executable(decode_bench ${CMAKE_CURRENT_SOURCE_DIR}/decode_bench.cc)
target_include_directories(decode_bench PRIVATE ${CMAKE_SOURCE_DIR} ${CLI11_INCLUDE_DIR})
target_compile_options(decode_bench PRIVATE ${R1_WARNINGS})
target_compile_definitions(decode_bench PRIVATE R1_SHARED_DIR="${R1_SHARED_DIR}")
target_link_libraries(decode_bench PRIVATE r1_rollout)
r1_use_torch(decode_bench)
