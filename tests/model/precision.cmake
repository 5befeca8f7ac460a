# Mixed precision and GPU-path machinery (r1_model), tested on CPU: fp32 master weights with bf16
# tensors, autocast, activation checkpointing, the static decode step.
r1_add_test(model_precision_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/master_weights_test.cc
            ${CMAKE_CURRENT_LIST_DIR}/compute_options_test.cc ${CMAKE_CURRENT_LIST_DIR}/static_decode_test.cc
            ${CMAKE_CURRENT_LIST_DIR}/device_test.cc ${CMAKE_CURRENT_LIST_DIR}/fused_adamw_test.cc
            DEPS r1_model TORCH)
