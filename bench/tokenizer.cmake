# Tokenizer encode speed on GSM8K test texts (question + "\n" + answer), single-threaded, warm BPE
# cache; plus load time and decode speed. HF's number comes from a separate Node.js harness, see
# docs/tokenizer.md.
#   ./build/bench/tokenizer_bench [--tokenizer DIR] [--data FILE] [--passes N] [--threads N]
add_executable(tokenizer_bench ${CMAKE_CURRENT_LIST_DIR}/tokenizer_bench.cc)
target_link_libraries(tokenizer_bench PRIVATE r1_tokenizer)
target_compile_definitions(tokenizer_bench PRIVATE R1_SHARED_DIR="${R1_SHARED_DIR}")
set_target_properties(tokenizer_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
