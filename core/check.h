// R1_CHECK: the project's one way to report bad input or a broken invariant.
// Throws r1kit::Error whose message names what failed; callers add the file / field / line they know.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace r1kit {

// Every error r1kit raises on bad input. The message is meant for a user: it names the file,
// line, key or tensor involved.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
inline void str_append(std::ostringstream&) {}
template <class T, class... R>
void str_append(std::ostringstream& os, const T& v, const R&... rest) {
  os << v;
  str_append(os, rest...);
}
}  // namespace detail

// Concatenates anything streamable: str_cat("layer ", 3, ": ", name).
template <class... A>
std::string str_cat(const A&... args) {
  std::ostringstream os;
  detail::str_append(os, args...);
  return os.str();
}

}  // namespace r1kit

#define R1_FAIL(...) throw ::r1kit::Error(::r1kit::str_cat(__VA_ARGS__))
#define R1_CHECK(cond, ...)     \
  do {                          \
    if (!(cond)) R1_FAIL(__VA_ARGS__); \
  } while (0)
