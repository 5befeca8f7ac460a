# Prompt encoding (r1_tokenizer, torch-free): BOS and chat templates against transformers' output for
# the tokenizers of ../shared/tokenizers (tests/data/tokenizer/prompt_ids.json).
r1_add_test(tokenizer_prompt_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/tokenizer_prompt_test.cc DEPS r1_tokenizer
            LABELS unit;parity)
