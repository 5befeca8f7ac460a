# Decoder (r1_model): fixture parity against ../shared/fixtures (label parity), KV cache and
# checkpoint unit tests (tiny random models; some also use the fixtures).
r1_add_test(model_parity_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/model_parity_test.cc DEPS r1_model TORCH
            LABELS unit;parity)
r1_add_test(model_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/kv_cache_test.cc ${CMAKE_CURRENT_LIST_DIR}/checkpoint_test.cc
            ${CMAKE_CURRENT_LIST_DIR}/huge_pages_test.cc
            DEPS r1_model TORCH)
# Decode kernels of every instruction set the CPU has, kernel choices, fused projections,
# shared-prefix and packed (sequence packing) training forwards, the fused training ops, bfloat16
# weight copies for decoding.
r1_add_test(model_kernels_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/cpu_kernels_test.cc
            ${CMAKE_CURRENT_LIST_DIR}/layer_ops_test.cc ${CMAKE_CURRENT_LIST_DIR}/packed_forward_test.cc
            ${CMAKE_CURRENT_LIST_DIR}/train_ops_test.cc ${CMAKE_CURRENT_LIST_DIR}/decode_weight_copy_test.cc
            DEPS r1_model TORCH)
