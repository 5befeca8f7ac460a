# model_bench: batched KV-cache decode step time of the decoder against the time of the same
# step's weight matmuls alone (the BLAS floor), measured in the same run.
add_executable(model_bench ${CMAKE_CURRENT_SOURCE_DIR}/model_bench.cc)
target_include_directories(model_bench PRIVATE ${CMAKE_SOURCE_DIR})
target_compile_options(model_bench PRIVATE ${R1_WARNINGS})
target_link_libraries(model_bench PRIVATE r1_model)
r1_use_torch(model_bench)

# train_ops_bench: the fused training ops (model/train_ops.h) against their eager formulas,
# forward + backward, in the same run.
add_executable(train_ops_bench ${CMAKE_CURRENT_SOURCE_DIR}/train_ops_bench.cc)
target_include_directories(train_ops_bench PRIVATE ${CMAKE_SOURCE_DIR})
target_compile_options(train_ops_bench PRIVATE ${R1_WARNINGS})
target_link_libraries(train_ops_bench PRIVATE r1_model)
r1_use_torch(train_ops_bench)
