#include "rewards/code_harness.h"

#include <sstream>

#include "core/check.h"

namespace r1kit::rewards {
namespace {

// The harness (Python 3.8+, stdlib only). _r1_main runs in the tester process; _r1_program in the
// forked program process. See code_harness.h for the protocol and why each step is there.
const char* kHarness = R"PY(
import os as _os, sys as _sys


def _r1_send(fd, obj):
    import pickle
    data = pickle.dumps(obj, protocol=4)
    buf = len(data).to_bytes(8, "little") + data
    while buf:
        buf = buf[_os.write(fd, buf):]


def _r1_recv(fd, limit=1 << 26):
    def exact(n):
        parts = []
        while n > 0:
            b = _os.read(fd, min(n, 1 << 20))
            if not b:
                return None
            parts.append(b)
            n -= len(b)
        return b"".join(parts)
    head = exact(8)
    if head is None:
        return None
    size = int.from_bytes(head, "little")
    if size > limit:
        raise ValueError("reply of %d bytes is over the limit" % size)
    return exact(size)


def _r1_program(program, req_r, res_w):
    # The program process: no stdin, stdout goes to stderr, a fresh __main__ module.
    import builtins, pickle, types
    null = _os.open(_os.devnull, _os.O_RDONLY)
    _os.dup2(null, 0)
    _os.close(null)
    _os.dup2(2, 1)
    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = builtins
    _sys.modules["__main__"] = module
    ns = module.__dict__
    status = ["ok"]
    try:
        for name, src in zip(("<test_imports>", "<program>", "<test_setup_code>"), program):
            src = src.decode("utf-8", "replace")
            if src.strip():
                exec(compile(src, name, "exec"), ns)
    except SystemExit as e:
        status = ["exit_called", repr(e.code)[:200]]
    except BaseException as e:
        import traceback
        traceback.print_exc()
        status = ["load_error", type(e).__name__, str(e)[:500]]
    if status[0] == "ok":
        status.append(sorted(k for k in ns if isinstance(k, str) and not k.startswith("__")))
    _r1_send(res_w, status)
    if status[0] != "ok":
        _os._exit(0)
    while True:
        raw = _r1_recv(req_r)
        if raw is None:
            _os._exit(0)
        req = pickle.loads(raw)
        try:
            if req[0] == "call":
                value = ns[req[1]](*req[2], **req[3])
            else:
                value = eval(compile(req[1], "<test>", "eval"), ns)
        except SystemExit as e:
            reply = ("exc", "SystemExit", repr(e.code)[:200])
        except BaseException as e:
            import traceback
            traceback.print_exc()
            reply = ("exc", type(e).__name__, str(e)[:500])
        else:
            t = type(value)
            name = "%s.%s" % (getattr(t, "__module__", "?"), getattr(t, "__qualname__", "?"))
            try:
                truth = bool(value)
            except BaseException:
                truth = None
            try:
                reply = ("ok", pickle.dumps(value, protocol=4), name, truth)
            except BaseException as e:
                reply = ("unsendable", name, str(e)[:200], truth)
        _sys.stdout.flush()
        _r1_send(res_w, reply)


_R1_SAFE_TYPES = {
    ("builtins", n) for n in ("set", "frozenset", "complex", "range", "slice", "bytearray", "list", "dict",
                              "tuple", "int", "float", "str", "bytes", "bool")
} | {("collections", n) for n in ("OrderedDict", "Counter", "defaultdict", "deque")} | {
    ("fractions", "Fraction"), ("decimal", "Decimal")
} | {("datetime", n) for n in ("date", "datetime", "time", "timedelta", "timezone")}


def _r1_tester(pid, req_w, res_r, protected):
    import builtins, io, json, pickle
    stdin = _sys.stdin.buffer
    nonce = stdin.readline().decode("ascii", "replace").strip()
    spec = json.loads(stdin.read().decode("utf-8", "replace"))
    seen = set()

    def emit(line):
        data = (line + "\n").encode()
        while data:
            data = data[_os.write(1, data):]

    def event(kind, **info):
        key = (kind, info.get("test"))
        if key not in seen:
            seen.add(key)
            info["kind"] = kind
            emit(nonce + " event " + json.dumps(info))

    class Untrusted(pickle.UnpicklingError):
        pass

    class Loader(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) in _R1_SAFE_TYPES:
                return super().find_class(module, name)
            raise Untrusted("%s.%s" % (module, name))

    def loads(data):
        return Loader(io.BytesIO(data)).load()

    class ProgramGone(Exception):
        pass

    class Opaque:
        # What the tests get for a value that is not plain data: its type name and its truth
        # value (so `assert f(x)` / `assert not f(x)` on re.search results still work); it equals
        # only itself.
        __slots__ = ("type_name", "truth")

        def __init__(self, type_name, truth):
            self.type_name, self.truth = type_name, truth

        def __bool__(self):
            if self.truth is None:
                raise TypeError("the truth value of the program's %s is unknown" % self.type_name)
            return self.truth

        def __repr__(self):
            return "<%s from the program>" % self.type_name

    dead = []
    current = [0]

    def describe_exit():
        _, st = _os.waitpid(pid, 0)
        if _os.WIFEXITED(st):
            return "exit status %d" % _os.WEXITSTATUS(st)
        return "signal %d" % _os.WTERMSIG(st) if _os.WIFSIGNALED(st) else "status %d" % st

    def receive():
        raw = _r1_recv(res_r)
        if raw is None:
            dead.append(describe_exit())
            event("program_exited", test=current[0], status=dead[0])
            raise ProgramGone("the program exited (%s) before answering" % dead[0])
        return loads(raw)

    def request(req):
        if dead:
            raise ProgramGone("the program exited (%s)" % dead[0])
        try:
            _r1_send(req_w, req)
        except OSError:
            pass  # the program is gone; receive() says how
        reply = receive()
        if reply[0] == "ok":
            try:
                return loads(reply[1])
            except Untrusted as e:
                # Only plain data (builtins, collections, fractions, decimal, datetime) is compared.
                event("untrusted_type", test=current[0], type=str(e))
                return Opaque(reply[2], reply[3])
        if reply[0] == "unsendable":
            event("opaque_result", test=current[0], type=reply[1])
            return Opaque(reply[1], reply[3])
        if reply[1] == "SystemExit":
            event("exit_called", test=current[0], code=reply[2])
        exc = getattr(builtins, reply[1], None)
        if isinstance(exc, type) and issubclass(exc, Exception) and reply[1] != "SystemExit":
            raise exc(reply[2])
        raise RuntimeError("%s: %s" % (reply[1], reply[2]))

    if not protected:
        event("unprotected", detail="prctl(PR_SET_DUMPABLE) failed")
    tests = spec["tests"]
    try:
        status = receive()
    except ProgramGone:
        status = ["program_exited"]
    if status[0] != "ok":
        if status[0] != "program_exited":
            event(status[0], test=0, detail=status[1:])
        _sys.stderr.write("r1kit harness: the program did not load (%s); no test can pass\n" % status[0])
        return
    program_names = set(status[1])

    def r1_call(name, args, kwargs):
        return request(("call", name, tuple(args), dict(kwargs)))

    def r1_eval(src):
        return request(("eval", src))

    tns = {"__builtins__": builtins, "__name__": "__r1_tests__", "_r1_call": r1_call, "_r1_eval": r1_eval}
    for src in spec["tester_setup"]:
        try:
            exec(compile(src, "<test setup>", "exec"), tns)
        except Exception:
            pass
    compiled = []
    if spec["mode"] == "humaneval":
        entry = spec["entry_point"]
        tns["_r1_candidate"] = lambda *a, **k: r1_call(entry, a, k)
        tns[entry] = tns["_r1_candidate"]  # some checks call the function by name (HumanEval/33)
        try:
            exec(compile(spec["test_defs"], "<test>", "exec"), tns)
            compiled.append(compile("check(_r1_candidate)", "<test 0>", "exec"))
        except BaseException as e:
            compiled.append(e)
    else:
        for i, t in enumerate(tests):
            try:
                compiled.append(_r1_rewrite(t, i, tns, program_names))
            except BaseException as e:
                compiled.append(e)
    for i, code in enumerate(compiled):
        current[0] = i
        try:
            if isinstance(code, BaseException):
                raise code
            exec(code, tns)
            emit("%s %d pass" % (nonce, i))
        except BaseException:
            import traceback
            traceback.print_exc()
            if spec["stop"]:
                break


def _r1_rewrite(src, index, tns, program_names):
    # An MBPP assert, with every use of a name the program defines sent to the program process:
    # f(args) -> _r1_call("f", [args], {}) (arguments evaluated here), anything involving the
    # program's other objects (MBPP setup values) -> _r1_eval("source"). A program name that
    # shadows a builtin (MBPP 126 defines sum) is the program's only when called on constants, so
    # it cannot launder another result (abs(f(x) - y) < eps uses the real abs).
    import ast, builtins
    tree = ast.parse(src, mode="exec")
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    bound |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments) for a in n.args + n.kwonlyargs}

    def remote(name):
        return name in program_names and name not in tns and name not in bound

    def constant(node):
        return not any(isinstance(n, (ast.Name, ast.Call, ast.Attribute, ast.Subscript)) for n in ast.walk(node))

    def uses_program_objects(node):
        return any(isinstance(n, ast.Name) and remote(n.id) for n in ast.walk(node))

    def call(name, args):
        return ast.Call(ast.Name(name, ast.Load()), args, [])

    class Rewrite(ast.NodeTransformer):
        def visit_Call(self, node):
            if isinstance(node.func, ast.Name) and remote(node.func.id):
                parts = node.args + [k.value for k in node.keywords]
                if hasattr(builtins, node.func.id) and not all(constant(p) for p in parts):
                    return self.generic_visit(node)  # the real builtin
                simple = not any(isinstance(a, ast.Starred) for a in node.args) and all(
                    k.arg is not None for k in node.keywords)
                if simple and not any(uses_program_objects(p) for p in parts):
                    args = ast.List([self.visit(a) for a in node.args], ast.Load())
                    kwargs = ast.Dict([ast.Constant(k.arg) for k in node.keywords],
                                      [self.visit(k.value) for k in node.keywords])
                    return ast.copy_location(call("_r1_call", [ast.Constant(node.func.id), args, kwargs]), node)
                return ast.copy_location(call("_r1_eval", [ast.Constant(ast.get_source_segment(src, node))]), node)
            if uses_program_objects(node.func):
                return ast.copy_location(call("_r1_eval", [ast.Constant(ast.get_source_segment(src, node))]), node)
            return self.generic_visit(node)

        def visit_Name(self, node):
            if isinstance(node.ctx, ast.Load) and remote(node.id) and not hasattr(builtins, node.id):
                return ast.copy_location(call("_r1_eval", [ast.Constant(node.id)]), node)
            return node

    tree = ast.fix_missing_locations(Rewrite().visit(tree))
    return compile(tree, "<test %d>" % index, "exec")


def _r1_main(program):
    # 1. Non-dumpable: the program process (same uid) cannot open our /proc/<pid>/mem or fd/.
    protected = False
    try:
        import ctypes
        protected = ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) == 0  # PR_SET_DUMPABLE
    except Exception:
        pass
    # 2. Fork the program process before reading anything secret (nonce, tests) from stdin.
    req_r, req_w = _os.pipe()
    res_r, res_w = _os.pipe()
    _sys.stdout.flush()
    _sys.stderr.flush()
    pid = _os.fork()
    if pid == 0:
        _os.close(req_w)
        _os.close(res_r)
        try:
            _r1_program(program, req_r, res_w)
        finally:
            _os._exit(0)
    _os.close(req_r)
    _os.close(res_w)
    try:
        _r1_tester(pid, req_w, res_r, protected)
    finally:
        try:
            _os.kill(pid, 9)
            _os.waitpid(pid, 0)
        except OSError:
            pass
)PY";

// "from __future__" imports must open the code they belong to.
void hoist_future_imports(std::string& code) {
  std::istringstream ss(code);
  std::string line, future, rest;
  while (std::getline(ss, line)) (line.rfind("from __future__ import", 0) == 0 ? future : rest) += line + "\n";
  code = future + rest;
}

std::string field_string(const json& fields, const char* key) {
  if (!fields.contains(key) || fields[key].is_null()) return "";
  R1_CHECK(fields[key].is_string(), "code reward: field '", key, "' must be a string, got ",
           fields[key].dump().substr(0, 80));
  return fields[key].get<std::string>();
}

}  // namespace

std::string python_bytes_literal(const std::string& bytes) {
  static const char* hex = "0123456789abcdef";
  std::string out = "b'";
  out.reserve(bytes.size() + 16);
  for (unsigned char c : bytes) {
    if (c == '\\' || c == '\'') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out + "'";
}

AssertHarness build_assert_harness(const std::string& code_in, const json& fields, bool stop_at_first_failure) {
  std::string code = code_in, setup, setup_after;
  json spec = {{"stop", stop_at_first_failure}, {"tester_setup", json::array()}};
  AssertHarness h;
  if (fields.contains("test_list")) {  // MBPP
    R1_CHECK(fields["test_list"].is_array(), "code reward: field 'test_list' must be an array");
    json tests = json::array();
    for (const auto& t : fields["test_list"]) {
      R1_CHECK(t.is_string(), "code reward: field 'test_list' must hold strings");
      tests.push_back(t);
    }
    if (fields.contains("test_imports") && fields["test_imports"].is_array())
      for (const auto& t : fields["test_imports"]) setup += t.get<std::string>() + "\n";
    // MBPP 367/927 build test objects from the program's own classes: run after the program.
    setup_after = field_string(fields, "test_setup_code");
    spec["mode"] = "mbpp";
    spec["tests"] = tests;
    spec["tester_setup"].push_back(setup);
    h.n_tests = tests.size();
  } else {  // HumanEval
    const std::string entry = field_string(fields, "entry_point");
    R1_CHECK(!entry.empty() && fields.contains("test"), "code reward: assert style needs 'test_list' (MBPP) or "
                                                        "'test' + 'entry_point' (HumanEval)");
    // The prompt holds the imports and helpers; a full redefinition of the function in the code wins.
    const std::string prompt = field_string(fields, "prompt");
    const bool body_only = !code.empty() && (code[0] == ' ' || code[0] == '\t');
    code = prompt + (body_only ? "" : "\n") + code;
    spec["mode"] = "humaneval";
    spec["entry_point"] = entry;
    spec["test_defs"] = field_string(fields, "test");
    spec["tests"] = json::array({"check(candidate)"});
    spec["tester_setup"].push_back(prompt);  // trusted helpers some checks call (encode_cyclic, poly)
    h.n_tests = 1;
  }
  hoist_future_imports(code);
  h.program = "# r1kit code reward: assert harness (rewards/code_harness.h)\n" + std::string(kHarness) +
              "\n_r1_main((" + python_bytes_literal(setup) + ",\n" + python_bytes_literal(code) + ",\n" +
              python_bytes_literal(setup_after) + "))\n";
  h.tests_stdin = spec.dump(-1, ' ', false, json::error_handler_t::replace);
  return h;
}

}  // namespace r1kit::rewards
