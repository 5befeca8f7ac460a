// Named rewards. Each built-in reward registers a factory under a name (plus aliases) with help
// text; configs select rewards by name and pass options, which the factory reads from a
// ConfigNode (so unknown options are rejected naming the config file and key).
//
//   auto r = RewardRegistry::global().create("format", options_node);   // options_node.finish() done
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "rewards/reward.h"

namespace r1kit::rewards {

// Builds a reward from its options. Must read every option it understands; create() then calls
// options.finish(), which rejects the rest.
using RewardFactory = std::function<std::unique_ptr<Reward>(ConfigNode& options)>;

struct RewardInfo {
  std::string name;                  // canonical name, e.g. "accuracy"
  std::vector<std::string> aliases;  // other names that select it, e.g. {"math"}
  std::string help;                  // one paragraph: what it scores and its options
  RewardFactory factory;
};

class RewardRegistry {
 public:
  // The process-wide registry, with every built-in reward registered (see builtin_rewards.h).
  static RewardRegistry& global();

  // Registers a reward; a name or alias already taken is an Error. Thread-safe.
  void add(RewardInfo info);

  // Builds `name` (or an alias) with `options`, then rejects options the factory did not read.
  // Unknown names are an Error naming options.where() and the known names.
  std::unique_ptr<Reward> create(const std::string& name, ConfigNode& options) const;
  // Same with no options.
  std::unique_ptr<Reward> create(const std::string& name) const;

  bool contains(const std::string& name) const;
  // The canonical name for a name or alias ("" when unknown).
  std::string canonical(const std::string& name) const;
  // Every registered reward, sorted by name.
  std::vector<RewardInfo> list() const;

 private:
  std::map<std::string, RewardInfo> by_name_;
  std::map<std::string, std::string> alias_to_name_;
};

}  // namespace r1kit::rewards
