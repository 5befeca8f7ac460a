# model_bench: batched KV-cache decode step time of the decoder against the time of the same
# step's weight matmuls alone (the BLAS floor), measured in the same run.
add_executable(model_bench ${CMAKE_CURRENT_SOURCE_DIR}/model_bench.cc)
target_include_directories(model_bench PRIVATE ${CMAKE_SOURCE_DIR})
target_compile_options(model_bench PRIVATE ${R1_WARNINGS})
target_link_libraries(model_bench PRIVATE r1_model)
r1_use_torch(model_bench)
