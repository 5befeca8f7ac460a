#include "rewards/plugin.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace r1kit::rewards {

namespace {

LineProcess::Clock::time_point deadline_after(double seconds) {
  return LineProcess::Clock::now() +
         std::chrono::duration_cast<LineProcess::Clock::duration>(std::chrono::duration<double>(seconds));
}

std::string clip(const std::string& s, std::size_t n = 200) { return s.size() <= n ? s : s.substr(0, n) + "..."; }

// Parses one result object; returns "" or what is wrong with it.
std::string parse_result(const json& r, RewardOutput& out) {
  if (!r.is_object()) return "result is not an object";
  if (r.contains("error") && !r["error"].is_null()) {
    out.error = true;
    out.error_message = r["error"].is_string() ? r["error"].get<std::string>() : r["error"].dump();
    return "";
  }
  if (!r.contains("score") || !r["score"].is_number()) return "result has no numeric 'score'";
  out.score = r["score"].get<double>();
  if (!std::isfinite(out.score)) return "score is not finite";
  if (r.contains("components")) {
    if (!r["components"].is_object()) return "'components' is not an object";
    for (auto it = r["components"].begin(); it != r["components"].end(); ++it) {
      if (!it->is_number()) return "component '" + it.key() + "' is not a number";
      out.components[it.key()] = it->get<double>();
    }
  }
  if (r.contains("diagnostics")) out.diagnostics = r["diagnostics"];
  return "";
}

}  // namespace

PluginReward::PluginReward(PluginOptions options) : options_(std::move(options)) {
  R1_CHECK(!options_.command.empty(), "plugin reward: empty command");
  if (options_.name.empty()) {
    // The script's name when an interpreter runs it ("python3 plugins/kw.py" -> "kw.py").
    auto base = [](const std::string& p) { return p.substr(p.find_last_of('/') == std::string::npos ? 0 : p.find_last_of('/') + 1); };
    std::string exe = base(options_.command[0]);
    const bool interpreter = exe.rfind("python", 0) == 0 || exe == "node" || exe == "bash" || exe == "sh" ||
                             exe == "perl" || exe == "ruby" || exe == "env";
    options_.name = interpreter && options_.command.size() > 1 ? base(options_.command[1]) : exe;
  }
}

PluginReward::~PluginReward() = default;

int PluginReward::starts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return starts_;
}
int PluginReward::failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}
pid_t PluginReward::pid() const {
  std::lock_guard<std::mutex> lock(mu_);
  return process_.pid();
}

std::string PluginReward::ensure_started() const {
  if (ready_ && process_.running()) return "";
  ready_ = false;
  ++starts_;
  try {
    process_.start(options_.command);
  } catch (const Error& e) {
    return e.what();
  }
  const auto deadline = deadline_after(options_.startup_timeout_s);
  const json hello = {{"protocol", kPluginProtocol}, {"version", kPluginProtocolVersion}, {"config", options_.config}};
  std::string error = process_.write_line(hello.dump(), deadline);
  if (!error.empty()) return "handshake: " + error;
  auto line = process_.read_line(deadline, options_.max_response_bytes, &error);
  if (!line) return "handshake: " + error;
  json reply;
  try {
    reply = json::parse(*line);
  } catch (const json::parse_error&) {
    return "handshake: not JSON: " + clip(*line);
  }
  if (!reply.is_object() || reply.value("protocol", json()) != kPluginProtocol)
    return "handshake: expected {\"protocol\": \"" + std::string(kPluginProtocol) + "\", ...}, got " + clip(*line);
  if (reply.value("version", json()) != kPluginProtocolVersion)
    return "handshake: plugin speaks protocol version " + reply.value("version", json()).dump() + ", r1kit speaks " +
           std::to_string(kPluginProtocolVersion);
  if (reply.contains("error")) return "plugin refused the handshake: " + reply["error"].dump();
  ready_ = true;
  return "";
}

std::string PluginReward::request(const std::vector<RewardInput>& inputs, std::size_t begin, std::size_t end,
                                  std::vector<RewardOutput>& out) const {
  std::string error = ensure_started();
  if (!error.empty()) return error;
  const long long id = next_id_++;
  json batch = json::array();
  for (std::size_t i = begin; i < end; ++i)
    batch.push_back({{"prompt", inputs[i].prompt}, {"completion", inputs[i].completion}, {"fields", inputs[i].fields}});
  const json req = {{"id", id}, {"batch", std::move(batch)}};
  const auto deadline = deadline_after(options_.timeout_s);
  error = process_.write_line(req.dump(-1, ' ', false, json::error_handler_t::replace), deadline);
  if (!error.empty()) return error;
  auto line = process_.read_line(deadline, options_.max_response_bytes, &error);
  if (!line) return error;
  json resp;
  try {
    resp = json::parse(*line);
  } catch (const json::parse_error&) {
    return "response is not JSON: " + clip(*line);
  }
  if (!resp.is_object() || !resp.contains("id")) return "response is not an object with an 'id': " + clip(*line);
  if (resp["id"] != id) return "response id " + resp["id"].dump() + " does not match request id " + std::to_string(id);
  if (resp.contains("error") && !resp["error"].is_null()) {
    // The plugin is healthy but could not score this batch: error outputs, no restart.
    const std::string msg = "plugin error: " + (resp["error"].is_string() ? resp["error"].get<std::string>() : resp["error"].dump());
    for (std::size_t i = begin; i < end; ++i) {
      out[i].error = true;
      out[i].error_message = msg;
      out[i].score = options_.error_score;
    }
    spdlog::warn("reward plugin '{}': {}", options_.name, clip(msg));
    return "";
  }
  if (!resp.contains("results") || !resp["results"].is_array()) return "response has no 'results' array";
  const json& results = resp["results"];
  if (results.size() != end - begin)
    return "response has " + std::to_string(results.size()) + " results for " + std::to_string(end - begin) + " samples";
  std::vector<RewardOutput> parsed(end - begin);
  for (std::size_t k = 0; k < parsed.size(); ++k) {
    const std::string why = parse_result(results[k], parsed[k]);
    if (!why.empty()) return "result " + std::to_string(k) + ": " + why;
    if (parsed[k].error) parsed[k].score = options_.error_score;
  }
  for (std::size_t k = 0; k < parsed.size(); ++k) out[begin + k] = std::move(parsed[k]);
  return "";
}

void PluginReward::fail_range(const std::string& error, std::size_t begin, std::size_t end,
                              std::vector<RewardOutput>& out) const {
  ++failures_;
  spdlog::error("reward plugin '{}': {}; {} samples scored {} as errors; the plugin is restarted", options_.name,
                clip(error, 500), end - begin, options_.error_score);
  process_.kill();
  ready_ = false;
  for (std::size_t i = begin; i < end; ++i) {
    out[i] = RewardOutput();
    out[i].error = true;
    out[i].error_message = "plugin '" + options_.name + "': " + error;
    out[i].score = options_.error_score;
  }
}

std::vector<RewardOutput> PluginReward::score_batch(const std::vector<RewardInput>& inputs, ThreadPool*) const {
  std::vector<RewardOutput> out(inputs.size());
  std::lock_guard<std::mutex> lock(mu_);
  for (std::size_t begin = 0; begin < inputs.size(); begin += options_.max_batch_size) {
    const std::size_t end = std::min(inputs.size(), begin + options_.max_batch_size);
    std::string error;
    try {
      error = request(inputs, begin, end, out);
    } catch (const std::exception& e) {  // e.g. JSON serialisation of odd fields
      error = e.what();
    }
    if (!error.empty()) fail_range(error, begin, end, out);
  }
  return out;
}

std::unique_ptr<Reward> make_plugin_reward(ConfigNode& node) {
  PluginOptions o;
  json command;
  node.require("command", command);
  if (command.is_string()) {
    o.command = {command.get<std::string>()};
  } else if (command.is_array() && !command.empty() &&
             std::all_of(command.begin(), command.end(), [](const json& a) { return a.is_string(); })) {
    o.command = command.get<std::vector<std::string>>();
  } else {
    node.fail("command", "expected a program path or a non-empty list of strings (argv)");
  }
  node.read("config", o.config);
  node.read("name", o.name);
  node.read("timeout_s", o.timeout_s);
  if (!(o.timeout_s > 0)) node.fail("timeout_s", "must be > 0");
  node.read("startup_timeout_s", o.startup_timeout_s);
  if (!(o.startup_timeout_s > 0)) node.fail("startup_timeout_s", "must be > 0");
  node.read("max_batch_size", o.max_batch_size);
  if (o.max_batch_size < 1) node.fail("max_batch_size", "must be >= 1");
  node.read("max_response_bytes", o.max_response_bytes);
  node.read("error_score", o.error_score);
  return std::make_unique<PluginReward>(o);
}

}  // namespace r1kit::rewards
