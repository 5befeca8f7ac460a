# Gradient all-reduce in buckets overlapped with backward (model/grad_reducer.*): 2 Gloo ranks as threads.
r1_add_test(grad_reducer_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/grad_reducer_test.cc DEPS r1_model TORCH LABELS unit)
