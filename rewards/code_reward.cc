#include "rewards/code_reward.h"

#include <random>
#include <set>
#include <sstream>

#include "core/check.h"
#include "core/config.h"
#include "rewards/code_extract.h"
#include "rewards/code_harness.h"
#include "sandbox/language.h"

namespace r1kit::rewards {
namespace {

using sandbox::ExecResult;
using sandbox::Status;

std::string random_nonce() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::ostringstream ss;
  ss << "R1OK" << std::hex << rng() << rng();
  return ss.str();
}

std::string head(const std::string& s, std::size_t n = 500) { return s.size() <= n ? s : s.substr(0, n) + "..."; }

RewardOutput error_output(double score, const std::string& message, json diagnostics) {
  RewardOutput out;
  out.score = score;
  out.error = true;
  out.error_message = message;
  out.diagnostics = std::move(diagnostics);
  out.diagnostics["error"] = message;
  return out;
}

}  // namespace

CodeReward::CodeReward(CodeRewardOptions options) : CodeReward(options, sandbox::make_runner(options.sandbox)) {}

CodeReward::CodeReward(CodeRewardOptions options, std::shared_ptr<sandbox::Runner> runner)
    : options_(std::move(options)), runner_(std::move(runner)) {
  R1_CHECK(runner_ != nullptr, "code reward: null sandbox runner");
  const std::set<std::string> styles = {"auto", "assert", "stdio"};
  R1_CHECK(styles.count(options_.test_style), "code reward: test_style must be auto|assert|stdio, got '",
           options_.test_style, "'");
  if (options_.language != "auto") sandbox::language(options_.language);  // throws on unknown
  pool_ = std::make_unique<sandbox::SandboxPool>(*runner_, options_.parallel);
}

sandbox::ExecRequest CodeReward::request(const std::string& lang, std::string source, std::string stdin_data) const {
  sandbox::ExecRequest r;
  r.language = lang;
  r.source = std::move(source);
  r.stdin_data = std::move(stdin_data);
  r.limits.time_limit_s = options_.time_limit_s;
  r.limits.memory_mb = options_.memory_mb;
  r.limits.max_stdout_bytes = options_.max_stdout_bytes;
  return r;
}

RewardOutput CodeReward::score_one(const RewardInput& input) const {
  // Which language and which block.
  std::vector<std::string> tags;
  if (!options_.fence.empty()) {
    tags = {options_.fence};
  } else if (options_.language == "auto") {
    for (const auto& l : sandbox::languages()) tags.insert(tags.end(), l.fence_tags.begin(), l.fence_tags.end());
  } else {
    tags = sandbox::language(options_.language).fence_tags;
  }
  CodeBlock block = extract_code_block(input.completion, tags, options_.accept_untagged_fence);
  std::string lang = options_.language;
  if (lang == "auto") {
    const sandbox::Language* l = block.tag.empty() ? nullptr : sandbox::language_for_fence(block.tag);
    lang = l ? l->name : "python";
  }
  const json& f = input.fields;
  std::string style = options_.test_style;
  if (style == "auto") {
    if (f.contains("tests") && f["tests"].is_array()) style = "stdio";
    else if (f.contains("test_list") || (f.contains("test") && f.contains("entry_point"))) style = "assert";
  }
  json diag = {{"language", lang}, {"test_style", style}, {"code_found", block.found}, {"runner", runner_->name()}};
  if (style == "auto")
    return error_output(options_.error_score,
                        "code reward: sample has no tests (fields 'tests', 'test_list' or 'test' + 'entry_point')", diag);
  if (!block.found) {
    RewardOutput out;
    out.score = 0;
    out.components = {{"pass_rate", 0.0}, {"code_found", 0.0}};
    out.diagnostics = diag;
    out.diagnostics["first_failure"] = {{"reason", "no fenced code block for tags " + json(tags).dump()}};
    return out;
  }
  RewardOutput out;
  try {
    out = style == "stdio" ? score_stdio(lang, block.code, f.at("tests")) : score_assert(lang, block.code, f);
  } catch (const std::exception& e) {
    return error_output(options_.error_score, std::string("code reward: ") + e.what(), diag);
  }
  for (auto& [k, v] : diag.items()) out.diagnostics[k] = v;
  out.components["code_found"] = 1.0;
  if (out.error) out.score = options_.error_score;
  return out;
}

RewardOutput CodeReward::score_assert(const std::string& lang, const std::string& code, const json& fields) const {
  R1_CHECK(lang == "python", "code reward: assert-style tests are Python (HumanEval / MBPP), got language ", lang);
  const std::string nonce = random_nonce();
  const AssertHarness h = build_assert_harness(code, fields, options_.all_or_nothing);
  const std::size_t n = h.n_tests;
  ExecResult r = runner_->run(request(lang, h.program, nonce + "\n" + h.tests_stdin));
  RewardOutput out;
  std::set<std::size_t> passed;
  json integrity = json::array();  // the tester's events, and pass lines the program tried to forge
  std::size_t forged = 0;
  auto scan = [&](const std::string& text, bool trusted) {
    std::istringstream ss(text);
    std::string line;
    while (std::getline(ss, line)) {
      if (trusted && line.rfind(nonce + " ", 0) == 0) {
        const std::string rest = line.substr(nonce.size() + 1);
        if (rest.rfind("event ", 0) == 0) {
          try {
            integrity.push_back(json::parse(rest.substr(6)));
          } catch (const std::exception&) {
          }
          continue;
        }
        std::istringstream ls(rest);
        std::size_t idx;
        std::string word;
        if (ls >> idx >> word && word == "pass" && idx < n) passed.insert(idx);
        continue;
      }
      // "<token> <n> pass" without this run's nonce: the program imitating the tester.
      std::istringstream ls(line);
      std::string token, word;
      long long idx;
      if (ls >> token >> idx >> word && word == "pass") ++forged;
    }
  };
  scan(r.stdout_data, true);
  scan(r.stderr_data, false);
  if (forged > 0) integrity.push_back({{"kind", "forged_pass_lines"}, {"count", forged}});
  json tests = json::array();
  json first_failure;
  for (std::size_t i = 0; i < n; ++i) {
    bool ok = passed.count(i) > 0;
    std::string st = ok ? "pass" : (r.status == Status::ok ? "fail" : sandbox::to_string(r.status));
    tests.push_back({{"index", i}, {"status", st}});
    if (!ok && first_failure.is_null())
      first_failure = {{"index", i}, {"status", st}, {"stderr", head(r.stderr_data, 2000)}, {"message", r.message}};
  }
  out.diagnostics["tests"] = tests;
  out.diagnostics["tests_total"] = n;
  out.diagnostics["tests_run"] = n;
  out.diagnostics["tests_passed"] = passed.size();
  out.diagnostics["sandbox_status"] = sandbox::to_string(r.status);
  if (!first_failure.is_null()) out.diagnostics["first_failure"] = first_failure;
  if (!integrity.empty()) {
    out.diagnostics["integrity"] = integrity;
    // Events that only a program gaming the tests (or a very broken one) causes, most telling first.
    std::string suspected;
    for (const char* kind : {"forged_pass_lines", "untrusted_type", "exit_called", "program_exited"})
      for (const auto& e : integrity)
        if (suspected.empty() && e.value("kind", "") == kind &&
            (std::string(kind) != "program_exited" || e.value("status", "") == "exit status 0"))
          suspected = kind;
    if (!suspected.empty()) {
      out.components["suspected_exploit"] = 1.0;
      out.diagnostics["suspected_exploit"] = suspected;
    }
  }
  if (r.status == Status::sandbox_error) {
    out.error = true;
    out.error_message = "sandbox error: " + r.message;
    out.diagnostics["error"] = out.error_message;
    return out;
  }
  double rate = n ? static_cast<double>(passed.size()) / n : 0.0;
  out.components["pass_rate"] = rate;
  out.score = options_.all_or_nothing ? (passed.size() == n && n > 0 ? 1.0 : 0.0) : rate;
  return out;
}

RewardOutput CodeReward::score_stdio(const std::string& lang, const std::string& code, const json& tests_json) const {
  R1_CHECK(tests_json.is_array() && !tests_json.empty(), "code reward: field 'tests' must be a non-empty array");
  std::size_t n = tests_json.size();
  if (options_.max_tests > 0) n = std::min(n, options_.max_tests);
  std::vector<std::string> inputs(n), expected(n);
  for (std::size_t i = 0; i < n; ++i) {
    const json& t = tests_json[i];
    R1_CHECK(t.is_object() && t.contains("input") && t.contains("output"), "code reward: tests[", i,
             "] needs string fields 'input' and 'output'");
    inputs[i] = t["input"].get<std::string>();
    expected[i] = t["output"].get<std::string>();
  }
  std::vector<ExecResult> results;
  if (options_.all_or_nothing) {
    // Sequential, stopping at the first failure: a wrong program costs one run, not n.
    for (std::size_t i = 0; i < n; ++i) {
      results.push_back(runner_->run(request(lang, code, inputs[i])));
      const ExecResult& r = results.back();
      if (r.status != Status::ok || !outputs_match(r.stdout_data, expected[i], options_.float_tolerance)) break;
    }
  } else {
    std::vector<std::future<ExecResult>> futs;
    for (std::size_t i = 0; i < n; ++i) futs.push_back(pool_->submit(request(lang, code, inputs[i])));
    for (auto& fu : futs) results.push_back(fu.get());
  }
  RewardOutput out;
  json tests = json::array(), first_failure;
  std::size_t passed = 0;
  std::string sandbox_status = "ok", sandbox_error;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const ExecResult& r = results[i];
    std::string why;
    bool ok = r.status == Status::ok && outputs_match(r.stdout_data, expected[i], options_.float_tolerance, &why);
    std::string st = ok ? "pass" : (r.status == Status::ok ? "wrong_answer" : sandbox::to_string(r.status));
    if (r.status != Status::ok && sandbox_status == "ok") sandbox_status = sandbox::to_string(r.status);
    if (r.status == Status::sandbox_error && sandbox_error.empty()) sandbox_error = r.message;
    passed += ok;
    tests.push_back({{"index", i}, {"status", st}, {"wall_s", r.wall_s}});
    if (!ok && first_failure.is_null()) {
      first_failure = {{"index", i}, {"status", st}, {"stdout", head(r.stdout_data)}, {"expected", head(expected[i])},
                       {"stderr", head(r.stderr_data, 2000)}, {"message", why.empty() ? r.message : why}};
      if (r.status == Status::compile_error) first_failure["compile_output"] = head(r.compile_output, 4000);
    }
  }
  out.diagnostics["tests"] = tests;
  out.diagnostics["tests_total"] = n;
  out.diagnostics["tests_run"] = results.size();
  out.diagnostics["tests_passed"] = passed;
  out.diagnostics["sandbox_status"] = sandbox_status;
  if (!first_failure.is_null()) out.diagnostics["first_failure"] = first_failure;
  if (!sandbox_error.empty()) {
    out.error = true;
    out.error_message = "sandbox error: " + sandbox_error;
    out.diagnostics["error"] = out.error_message;
    return out;
  }
  double rate = static_cast<double>(passed) / n;
  out.components["pass_rate"] = rate;
  out.score = options_.all_or_nothing ? (passed == n ? 1.0 : 0.0) : rate;
  return out;
}

std::unique_ptr<Reward> make_code_reward(ConfigNode& node) {
  CodeRewardOptions o;
  node.read("language", o.language);
  node.read_enum("test_style", o.test_style, {"auto", "assert", "stdio"});
  node.read("all_or_nothing", o.all_or_nothing);
  node.read("float_tolerance", o.float_tolerance);
  node.read("time_limit_s", o.time_limit_s);
  node.read("memory_mb", o.memory_mb);
  node.read("fence", o.fence);
  node.read("accept_untagged_fence", o.accept_untagged_fence);
  node.read("max_tests", o.max_tests);
  node.read("max_stdout_bytes", o.max_stdout_bytes);
  node.read("parallel", o.parallel);
  node.read("error_score", o.error_score);
  if (o.language != "auto") {
    try {
      sandbox::language(o.language);
    } catch (const Error& e) {
      node.fail("language", e.what());
    }
  }
  if (o.time_limit_s <= 0) node.fail("time_limit_s", "must be > 0");
  if (o.memory_mb < 16) node.fail("memory_mb", "must be >= 16");
  if (o.float_tolerance < 0) node.fail("float_tolerance", "must be >= 0");
  if (node.has("sandbox")) {
    ConfigNode sb = node.child("sandbox");
    o.sandbox = sandbox::SandboxOptions::from_config(sb);
    sb.finish();
  }
  return std::make_unique<CodeReward>(o);
}

}  // namespace r1kit::rewards
