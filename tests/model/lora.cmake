# LoRA (model/lora.*): unit tests on tiny random models, and parity with Hugging Face PEFT on the
# ../shared fixtures in both directions (tests/model/peft_reference.py; skipped without peft). The
# r1kit -> PEFT direction trains its adapter with the SFT trainer, hence r1_sft.
r1_add_test(lora_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/lora_test.cc DEPS r1_sft TORCH LABELS unit;parity)
