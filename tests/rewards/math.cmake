# Math checker tests (rewards/math_*): Math-Verify's 270 cases, our own hard-case table, extraction,
# pathological inputs, thread safety, the reward and the math-check CLI.
r1_add_test(math_verify_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/math_verify_test.cc ${CMAKE_CURRENT_LIST_DIR}/math_cases_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/math_extract_test.cc ${CMAKE_CURRENT_LIST_DIR}/math_robustness_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/math_reward_test.cc
  DEPS r1_rewards_math)
if(TARGET r1kit)
  add_test(NAME math_check_cli COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/cli_math_check_test.sh $<TARGET_FILE:r1kit>)
  set_tests_properties(math_check_cli PROPERTIES LABELS unit)
endif()
