// Names of the GRPO trainer's per-step metrics that the recipe plots and prints.
#pragma once

namespace r1kit::recipes {

inline constexpr const char* kGrpoRewardKey = "reward/mean";
inline constexpr const char* kGrpoAccuracyKey = "reward/accuracy";
inline constexpr const char* kGrpoLengthKey = "completion_length/mean";
inline constexpr const char* kGrpoEvalAccuracyKey = "eval/accuracy";  // periodic held-out evaluation

}  // namespace r1kit::recipes
