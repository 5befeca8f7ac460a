// Unit tests of the tokenizer on tiny hand-made tokenizer.json files (tests/data/tokenizer).
#include <gtest/gtest.h>

#include "core/check.h"
#include "model/tokenizer.h"
#include "tests/test_util.h"

namespace r1kit {
namespace {

TEST(Tokenizer, MissingFileIsAnError) {
  EXPECT_THROW(Tokenizer::from_file("/nonexistent/tokenizer.json"), Error);
}

}  // namespace
}  // namespace r1kit
