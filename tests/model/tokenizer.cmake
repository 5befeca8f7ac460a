# Tokenizer (r1_tokenizer, torch-free): HF reference parity on ../shared/tokenizers, unit tests on
# tiny hand-made tokenizer.json files, chat templates against Jinja goldens.
r1_add_test(tokenizer_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/tokenizer_test.cc DEPS r1_tokenizer)
r1_add_test(tokenizer_reference_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/tokenizer_reference_test.cc DEPS r1_tokenizer
            LABELS unit;parity)
r1_add_test(chat_template_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/chat_template_test.cc DEPS r1_tokenizer
            LABELS unit;parity)
