// External reward plugins: any executable speaking JSON lines over stdin / stdout (protocol in
// docs/reward_plugins.md). The process is started on first use and kept running; batches are sent
// as one request line each. A crash, hang (timeout), garbage line or wrong result count gives
// every sample of the request an error output (score = error_score), logs the error, kills the
// process and starts a fresh one for the next batch. It never throws out of score_batch.
#pragma once
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/config.h"
#include "rewards/plugin_process.h"
#include "rewards/reward.h"

namespace r1kit::rewards {

// The protocol this build speaks; the plugin's handshake must name the same version.
inline constexpr const char* kPluginProtocol = "r1kit.reward_plugin";
inline constexpr int kPluginProtocolVersion = 1;

struct PluginOptions {
  std::vector<std::string> command;      // argv; argv[0] is searched in PATH
  json config = json::object();          // sent to the plugin in the handshake
  std::string name;                      // for logs; default: the command's last path component
  double timeout_s = 30.0;               // per request (write + response)
  double startup_timeout_s = 10.0;       // from start to the plugin's handshake line
  std::size_t max_batch_size = 64;       // larger batches are split into several requests
  std::size_t max_response_bytes = 64u << 20;  // a longer response line is a protocol error
  double error_score = 0.0;              // score of samples whose reward could not be computed
};

class PluginReward : public Reward {
 public:
  explicit PluginReward(PluginOptions options);
  ~PluginReward() override;
  std::vector<RewardOutput> score_batch(const std::vector<RewardInput>& inputs, ThreadPool* pool) const override;

  // For tests and metrics: processes started so far and requests that failed.
  int starts() const;
  int failures() const;
  pid_t pid() const;

 private:
  // Each returns an error message, "" on success. Called with mu_ held.
  std::string ensure_started() const;
  std::string request(const std::vector<RewardInput>& inputs, std::size_t begin, std::size_t end,
                      std::vector<RewardOutput>& out) const;
  void fail_range(const std::string& error, std::size_t begin, std::size_t end, std::vector<RewardOutput>& out) const;

  PluginOptions options_;
  mutable std::mutex mu_;  // one request at a time per plugin process
  mutable LineProcess process_;
  mutable bool ready_ = false;  // handshake done
  mutable long long next_id_ = 1;
  mutable int starts_ = 0;
  mutable int failures_ = 0;
};

std::unique_ptr<Reward> make_plugin_reward(ConfigNode& options);

}  // namespace r1kit::rewards
