// Registers every built-in reward (accuracy/math, code, format, tag_count, language, cosine,
// overlong, repetition, countdown, plugin, reward_model, llm_judge) in a registry.
// RewardRegistry::global() calls it.
#pragma once

namespace r1kit::rewards {
class RewardRegistry;
void register_builtin_rewards(RewardRegistry& registry);
}  // namespace r1kit::rewards
