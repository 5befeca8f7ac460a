#include "core/json.h"

#include <yaml-cpp/yaml.h>

#include <fstream>

#include "core/check.h"
#include "core/fs.h"

namespace r1kit {

json parse_json(const std::string& text, const std::string& where) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    R1_FAIL(where, ": invalid JSON: ", e.what());
  }
}

static json yaml_to_json(const YAML::Node& node, const std::string& path) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Sequence: {
      json arr = json::array();
      for (const auto& item : node) arr.push_back(yaml_to_json(item, path));
      return arr;
    }
    case YAML::NodeType::Map: {
      json obj = json::object();
      for (const auto& kv : node) obj[kv.first.as<std::string>()] = yaml_to_json(kv.second, path);
      return obj;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (node.Tag() == "!") return s;  // quoted scalar: always a string
      if (s == "true" || s == "True") return true;
      if (s == "false" || s == "False") return false;
      if (s == "null" || s == "~") return nullptr;
      // Integers and floats as YAML 1.2 core schema reads them.
      char* end = nullptr;
      errno = 0;
      long long i = std::strtoll(s.c_str(), &end, 10);
      if (!s.empty() && *end == '\0' && errno == 0) return i;
      double d = std::strtod(s.c_str(), &end);
      if (!s.empty() && *end == '\0' && s.find_first_of("0123456789") != std::string::npos) return d;
      return s;
    }
  }
  return nullptr;
}

json load_json_or_yaml(const std::string& path) {
  const std::string text = read_file(path);
  auto ends_with = [&](const char* ext) {
    std::string e(ext);
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  if (ends_with(".yaml") || ends_with(".yml")) {
    try {
      return yaml_to_json(YAML::Load(text), path);
    } catch (const YAML::Exception& e) {
      R1_FAIL(path, ":", e.mark.line + 1, ": invalid YAML: ", e.msg);
    }
  }
  return parse_json(text, path);
}

void for_each_jsonl(const std::string& path, const std::function<void(const json&, int)>& fn) {
  std::ifstream in(path);
  R1_CHECK(in, path, ": cannot open");
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json rec = parse_json(line, str_cat(path, ":", line_no));
    try {
      fn(rec, line_no);
    } catch (const Error& e) {
      R1_FAIL(path, ":", line_no, ": ", e.what());
    } catch (const json::exception& e) {
      R1_FAIL(path, ":", line_no, ": ", e.what());
    }
  }
}

std::string dump_line(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace r1kit
