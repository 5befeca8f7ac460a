#include "sandbox/bench.h"

#include "core/progress.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/check.h"
#include "core/thread_pool.h"
#include "sandbox/language.h"
#include "sandbox/pool.h"
#include "sandbox/spawn.h"

namespace fs = std::filesystem;

namespace r1kit::sandbox {
namespace {

// The same small program in each language: sum the numbers on stdin.
const char* program(const std::string& lang) {
  if (lang == "python") return "import sys\nprint(sum(int(t) for t in sys.stdin.read().split()))\n";
  if (lang == "cpp")
    return "#include <iostream>\nint main(){ long s = 0, x; while (std::cin >> x) s += x; std::cout << s << \"\\n\"; }\n";
  R1_FAIL("sandbox bench: no benchmark program for language '", lang, "'");
}
constexpr const char* kInput = "1 2 3 4 5 6 7 8 9 10\n";
constexpr const char* kOutput = "55\n";

double thread_cpu_ms() {
  struct rusage ru {};
  getrusage(RUSAGE_THREAD, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-3;
}

json stats(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  double sum = 0;
  for (double v : ms) sum += v;
  return {{"mean", sum / ms.size()}, {"median", ms[ms.size() / 2]}, {"p90", ms[ms.size() * 9 / 10]},
          {"min", ms.front()}};
}

// Unsandboxed: the same argv in a temp directory, no namespaces, no limits, no uid change.
struct Bare {
  std::string dir;
  std::vector<std::string> argv;
  explicit Bare(const Language& lang, const std::string& source) {
    char tmpl[] = "/tmp/r1kit-bench-XXXXXX";
    R1_CHECK(mkdtemp(tmpl) != nullptr, "sandbox bench: mkdtemp failed");
    dir = tmpl;
    std::ofstream(dir + "/" + lang.source_file) << source;
    auto subst = [&](std::string a) {
      for (auto [k, v] : {std::pair<std::string, std::string>{"{source}", lang.source_file},
                          std::pair<std::string, std::string>{"{binary}", lang.binary_file}})
        for (auto p = a.find(k); p != std::string::npos; p = a.find(k)) a.replace(p, k.size(), v);
      return a;
    };
    if (!lang.compile_argv.empty()) {
      SpawnSpec c;
      for (const auto& a : lang.compile_argv) c.argv.push_back(subst(a));
      c.cwd = dir;
      c.env = {{"PATH", "/usr/bin:/bin"}};
      c.wall_timeout_s = 120;
      SpawnResult r = spawn_and_wait(c);
      R1_CHECK(r.started && WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 0,
               "sandbox bench: bare compile failed: ", r.err);
    }
    for (const auto& a : lang.run_argv) argv.push_back(subst(a));
    if (argv[0].rfind("./", 0) == 0) argv[0] = dir + argv[0].substr(1);
  }
  ~Bare() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  // Wall milliseconds; `cpu_ms` gets the child's CPU (user + system).
  double run_ms(double* cpu_ms = nullptr) const {
    SpawnSpec s;
    s.argv = argv;
    s.cwd = dir;
    s.env = {{"PATH", "/usr/bin:/bin"}};
    s.stdin_data = kInput;
    auto t0 = std::chrono::steady_clock::now();
    SpawnResult r = spawn_and_wait(s);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    R1_CHECK(r.started && r.out == kOutput, "sandbox bench: bare run gave '", r.out, "' ", r.err);
    if (cpu_ms) *cpu_ms = r.cpu_s * 1e3;
    return ms;
  }
};

}  // namespace

json run_bench(const SandboxOptions& sandbox_options, const BenchOptions& options) {
  R1_CHECK(options.runs >= 1 && options.batch >= 1, "sandbox bench: runs and batch must be >= 1");
  auto runner_ptr = make_runner(sandbox_options);
  Runner& runner = *runner_ptr;
  const unsigned parallel = options.parallel ? options.parallel : std::max(1u, std::thread::hardware_concurrency());
  std::vector<char> resident(static_cast<std::size_t>(std::max<std::int64_t>(0, options.resident_mb)) << 20);
  for (std::size_t i = 0; i < resident.size(); i += 4096) resident[i] = 1;  // touch every page
  struct utsname u {};
  uname(&u);
  json out = {{"host", {{"kernel", u.release}, {"cpus", std::thread::hardware_concurrency()}, {"runner", runner.name()},
                        {"parallel", parallel}, {"runs", options.runs}, {"batch", options.batch},
                        {"resident_mb", options.resident_mb}}}};
  if (auto* b = dynamic_cast<BwrapRunner*>(&runner)) out["host"]["cgroups"] = b->cgroup_mode();

  std::stringstream langs(options.languages);
  std::string name;
  while (std::getline(langs, name, ',')) {
    const Language& lang = language(name);
    ExecRequest req;
    req.language = name;
    req.source = program(name);
    req.stdin_data = kInput;
    req.limits.time_limit_s = 10;
    auto check = [&](const ExecResult& r) {
      R1_CHECK(r.status == Status::ok && r.stdout_data == kOutput, "sandbox bench: ", name, " run gave ",
               to_string(r.status), " '", r.stdout_data, "' ", r.message, " ", r.stderr_data, r.compile_output);
    };
    Bare bare(lang, req.source);
    check(runner.run(req));  // warm-up; compiles and caches the binary
    bare.run_ms();
    // Interleaved, so that load changes on the machine hit both modes alike.
    // CPU as well as wall time: on a shared machine wall time mostly measures waiting for a core,
    // CPU time (program + bwrap processes via the cgroup, + our launching thread) does not.
    std::vector<double> bare_ms, box_ms, bare_cpu, box_cpu;
    ProgressOptions bar;
    bar.label = "bench " + name;
    bar.unit = "run";
    bar.total = options.runs + 2 * options.batch;
    Progress progress(bar);
    for (int i = 0; i < options.runs; ++i) {
      double cpu = 0;
      bare_ms.push_back(bare.run_ms(&cpu));
      bare_cpu.push_back(cpu);
      double c0 = thread_cpu_ms();
      auto t0 = std::chrono::steady_clock::now();
      ExecResult r = runner.run(req);
      box_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      box_cpu.push_back(thread_cpu_ms() - c0 + r.cpu_s * 1e3);
      check(r);
      progress.advance();
    }
    json bs = stats(bare_ms), ss = stats(box_ms), bc = stats(bare_cpu), sc = stats(box_cpu);
    json entry = {{"bare_ms", bs}, {"sandbox_ms", ss},
                  {"overhead_ms_median", ss["median"].get<double>() - bs["median"].get<double>()},
                  {"overhead_ms_mean", ss["mean"].get<double>() - bs["mean"].get<double>()},
                  {"bare_cpu_ms", bc}, {"sandbox_cpu_ms", sc},
                  {"overhead_cpu_ms_median", sc["median"].get<double>() - bc["median"].get<double>()}};
    // Throughput: `batch` runs through `parallel` workers.
    {
      ThreadPool pool(parallel);
      auto t0 = std::chrono::steady_clock::now();
      parallel_for(pool, options.batch, [&](std::size_t) {
        bare.run_ms();
        progress.advance();
      });
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      entry["bare_runs_per_s"] = options.batch / s;
    }
    {
      SandboxPool pool(runner, parallel);
      std::vector<ExecRequest> reqs(options.batch, req);
      auto t0 = std::chrono::steady_clock::now();
      auto res = pool.run_all(reqs, &progress);
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      for (const auto& r : res) check(r);
      entry["sandbox_runs_per_s"] = options.batch / s;
    }
    out[name] = entry;
  }
  return out;
}

}  // namespace r1kit::sandbox
