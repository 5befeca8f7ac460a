// `r1kit sandbox run`: run one program in the sandbox and print the result as one JSON line.
//   r1kit sandbox run --lang python|cpp --source FILE [--stdin FILE] [--time-limit S] [--memory-limit MB]
// `r1kit sandbox bench`: per-run overhead and runs/s against unsandboxed execution, same run.
//   r1kit sandbox bench [--runs N] [--batch N] [--parallel N] [--languages python,cpp] [--resident-mb N]
//                       [--out FILE]
// Both refuse to run when bubblewrap is unusable, unless --unsafe-no-isolation.
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "core/check.h"
#include "core/fs.h"
#include "core/json.h"
#include "sandbox/bench.h"
#include "sandbox/bwrap_runner.h"

namespace {

using namespace r1kit;
using namespace r1kit::sandbox;

struct RunArgs {
  std::string lang = "python", source, stdin_file;
  Limits limits;
  bool unsafe = false;
};

struct BenchArgs {
  BenchOptions bench;
  std::string out;
  bool unsafe = false;
};

json result_json(const ExecResult& r) {
  return {{"status", to_string(r.status)},
          {"exit_code", r.exit_code},
          {"signal", r.signal},
          {"stdout", r.stdout_data},
          {"stderr", r.stderr_data},
          {"compile_output", r.compile_output},
          {"compile_cached", r.compile_cached},
          {"wall_s", r.wall_s},
          {"cpu_s", r.cpu_s},
          {"peak_memory_bytes", r.peak_memory_bytes},
          {"message", r.message}};
}

int run_one(const RunArgs& a) {
  R1_CHECK(!a.source.empty(), "--source is required");
  SandboxOptions so;
  so.unsafe_no_isolation = a.unsafe;
  auto runner = make_runner(so);
  ExecRequest req;
  req.language = a.lang;
  req.source = read_file(a.source);
  if (!a.stdin_file.empty()) req.stdin_data = read_file(a.stdin_file);
  req.limits = a.limits;
  ExecResult r = runner->run(req);
  json j = result_json(r);
  j["runner"] = runner->name();
  // Invalid UTF-8 in the program's output must not make the JSON line unprintable.
  std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << std::endl;
  return r.status == Status::sandbox_error ? 2 : 0;
}

int run_bench_cmd(const BenchArgs& a) {
  SandboxOptions so;
  so.unsafe_no_isolation = a.unsafe;
  json r = run_bench(so, a.bench);
  if (!a.out.empty()) write_file_atomic(a.out, r.dump(2) + "\n");
  for (const auto& [lang, v] : r.items()) {
    if (lang == "host") continue;
    std::printf("%-7s wall: bare %.2f ms, sandbox %.2f ms, overhead %.2f ms | cpu: bare %.2f ms, sandbox %.2f ms, "
                "overhead %.2f ms (medians) | %.1f runs/s bare, %.1f runs/s sandboxed\n",
                lang.c_str(), v["bare_ms"]["median"].get<double>(), v["sandbox_ms"]["median"].get<double>(),
                v["overhead_ms_median"].get<double>(), v["bare_cpu_ms"]["median"].get<double>(),
                v["sandbox_cpu_ms"]["median"].get<double>(), v["overhead_cpu_ms_median"].get<double>(),
                v["bare_runs_per_s"].get<double>(), v["sandbox_runs_per_s"].get<double>());
  }
  std::cout << r.dump() << std::endl;
  return 0;
}

r1kit::cli::Registrar reg{
    "sandbox", "run untrusted code in the bubblewrap sandbox (run, bench)", [](CLI::App& sub) {
      sub.require_subcommand(1);
      auto ra = std::make_shared<RunArgs>();
      CLI::App* run = sub.add_subcommand("run", "run one program; prints a JSON result on the last line");
      run->add_option("--lang", ra->lang, "python | cpp");
      run->add_option("--source", ra->source, "program source file")->required();
      run->add_option("--stdin", ra->stdin_file, "file fed to the program's stdin");
      run->add_option("--time-limit", ra->limits.time_limit_s, "CPU seconds (wall clock: 2x + 1 s)")
          ->check(CLI::PositiveNumber);
      run->add_option("--wall-limit", ra->limits.wall_limit_s, "wall-clock seconds (0 = 2 x time limit + 1)");
      run->add_option("--memory-limit", ra->limits.memory_mb, "megabytes")->check(CLI::PositiveNumber);
      run->add_option("--max-tasks", ra->limits.max_tasks, "processes + threads");
      run->add_option("--max-output", ra->limits.max_stdout_bytes, "stdout bytes kept");
      run->add_flag("--unsafe-no-isolation", ra->unsafe, "run WITHOUT isolation if bubblewrap is unusable");

      auto ba = std::make_shared<BenchArgs>();
      CLI::App* bench = sub.add_subcommand("bench", "overhead and runs/s against unsandboxed execution");
      bench->add_option("--runs", ba->bench.runs, "sequential runs per language and mode");
      bench->add_option("--batch", ba->bench.batch, "runs for the throughput part");
      bench->add_option("--parallel", ba->bench.parallel, "workers for the throughput part (0 = cores)");
      bench->add_option("--languages", ba->bench.languages, "comma-separated");
      bench->add_option("--resident-mb", ba->bench.resident_mb,
                        "touched memory held while launching (as a trainer holding a model would)");
      bench->add_option("--out", ba->out, "also write the JSON result to this file");
      bench->add_flag("--unsafe-no-isolation", ba->unsafe, "bench the unsafe runner if bubblewrap is unusable");
      return [run, bench, ra, ba]() -> int {
        if (run->parsed()) return run_one(*ra);
        if (bench->parsed()) return run_bench_cmd(*ba);
        return 1;
      };
    }};

}  // namespace
