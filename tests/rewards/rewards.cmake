# Tests of r1_rewards (registry, reward set, rule rewards, plugins, offline scoring). The math and
# code rewards' own tests live in math.cmake / code.cmake.
r1_add_test(rewards_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/reward_cases_test.cc ${CMAKE_CURRENT_LIST_DIR}/reward_set_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/pathological_test.cc ${CMAKE_CURRENT_LIST_DIR}/score_jsonl_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/text_util_test.cc
  DEPS r1_rewards)
r1_add_test(rewards_plugin_tests SOURCES ${CMAKE_CURRENT_LIST_DIR}/plugin_test.cc DEPS r1_rewards)
if(TARGET r1kit)
  add_test(NAME rewards_cli COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/cli_reward_test.sh $<TARGET_FILE:r1kit>)
  set_tests_properties(rewards_cli PROPERTIES LABELS unit)
endif()
# Model-based rewards (rewards/model_*): reward model vs transformers (tests/rewards/rm_reference.py,
# skipped without it), LLM judge on a tiny random model.
r1_add_test(rewards_model_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/model_reward_test.cc DEPS r1_rewards TORCH
            LABELS unit;parity)
