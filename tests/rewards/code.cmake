# Code reward tests (rewards/code_*): extraction and comparison, the reward against a scripted fake
# runner, and the acceptance suite on the real sandbox (HumanEval 164 + MBPP reference solutions pass,
# a broken variant of each fails; own stdin/stdout solutions against CodeContests tests).
r1_add_test(code_reward_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/code_extract_test.cc ${CMAKE_CURRENT_LIST_DIR}/code_reward_test.cc
  DEPS r1_rewards_code)
r1_add_test(code_acceptance_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/code_acceptance_test.cc
  DEPS r1_rewards_code)
r1_add_test(code_acceptance_mbpp_full_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/code_acceptance_mbpp_full_test.cc
  DEPS r1_rewards_code LABELS slow)
r1_add_test(code_exploit_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/code_exploit_test.cc
  DEPS r1_rewards_code)
