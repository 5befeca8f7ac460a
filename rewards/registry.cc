#include "rewards/registry.h"

#include <mutex>

#include "core/check.h"
#include "rewards/builtin_rewards.h"

namespace r1kit::rewards {

namespace {
std::mutex& registry_mutex() {
  static std::mutex mu;
  return mu;
}
}  // namespace

RewardRegistry& RewardRegistry::global() {
  // Built-ins are registered here rather than by static initialisers: objects in a static
  // library that nothing references are dropped by the linker.
  static RewardRegistry* registry = [] {
    auto* r = new RewardRegistry();
    register_builtin_rewards(*r);
    return r;
  }();
  return *registry;
}

void RewardRegistry::add(RewardInfo info) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  R1_CHECK(!info.name.empty(), "reward registry: empty reward name");
  R1_CHECK(info.factory, "reward registry: reward '", info.name, "' has no factory");
  std::vector<std::string> names = info.aliases;
  names.push_back(info.name);
  for (const auto& n : names)
    R1_CHECK(!by_name_.count(n) && !alias_to_name_.count(n), "reward registry: name '", n, "' registered twice");
  for (const auto& a : info.aliases) alias_to_name_[a] = info.name;
  std::string name = info.name;
  by_name_.emplace(std::move(name), std::move(info));
}

std::string RewardRegistry::canonical(const std::string& name) const {
  std::lock_guard<std::mutex> lock(registry_mutex());
  if (by_name_.count(name)) return name;
  auto it = alias_to_name_.find(name);
  return it == alias_to_name_.end() ? "" : it->second;
}

bool RewardRegistry::contains(const std::string& name) const { return !canonical(name).empty(); }

std::unique_ptr<Reward> RewardRegistry::create(const std::string& name, ConfigNode& options) const {
  const std::string canon = canonical(name);
  if (canon.empty()) {
    std::string known;
    for (const auto& info : list()) known += (known.empty() ? "" : ", ") + info.name;
    R1_FAIL(options.where(), ": unknown reward '", name, "' (registered: ", known, ")");
  }
  RewardFactory factory;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    factory = by_name_.at(canon).factory;
  }
  std::unique_ptr<Reward> reward = factory(options);
  R1_CHECK(reward != nullptr, "reward registry: factory of '", canon, "' returned null");
  options.finish();
  return reward;
}

std::unique_ptr<Reward> RewardRegistry::create(const std::string& name) const {
  ConfigNode empty(json::object(), "<defaults>", name);
  return create(name, empty);
}

std::vector<RewardInfo> RewardRegistry::list() const {
  std::lock_guard<std::mutex> lock(registry_mutex());
  std::vector<RewardInfo> out;
  for (const auto& [name, info] : by_name_) out.push_back(info);
  return out;
}

}  // namespace r1kit::rewards
