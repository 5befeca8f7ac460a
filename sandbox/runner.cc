#include "sandbox/runner.h"

#include "core/check.h"

namespace r1kit::sandbox {

const char* to_string(Status s) {
  switch (s) {
    case Status::ok: return "ok";
    case Status::timeout: return "timeout";
    case Status::memory: return "memory";
    case Status::runtime_error: return "runtime_error";
    case Status::compile_error: return "compile_error";
    case Status::output_limit: return "output_limit";
    case Status::denied: return "denied";
    case Status::sandbox_error: return "sandbox_error";
  }
  return "sandbox_error";
}

Status status_from_string(const std::string& name) {
  for (Status s : {Status::ok, Status::timeout, Status::memory, Status::runtime_error, Status::compile_error,
                   Status::output_limit, Status::denied, Status::sandbox_error})
    if (name == to_string(s)) return s;
  R1_FAIL("unknown sandbox status '", name, "'");
}

}  // namespace r1kit::sandbox
