// Acceptance on the full MBPP set (974 tasks): every reference solution passes its asserts and a
// broken variant of each fails one. About 2,000 sandboxed runs: labelled "slow".
#include "tests/rewards/code_acceptance_util.h"

namespace r1kit::rewards::acceptance {
namespace {

TEST(CodeAcceptance, MbppFullReferencePassAndBrokenFail) { run_mbpp("data/mbpp/mbpp_full.jsonl", "MBPP-full"); }

}  // namespace
}  // namespace r1kit::rewards::acceptance
