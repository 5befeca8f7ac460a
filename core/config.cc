#include "core/config.h"

namespace r1kit {

void apply_override(json& root, const std::string& assignment) {
  auto eq = assignment.find('=');
  R1_CHECK(eq != std::string::npos && eq > 0, "override '", assignment, "': expected key=value");
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  json value;
  try {
    value = json::parse(text);
  } catch (const json::parse_error&) {
    value = text;
  }
  json* node = &root;
  std::size_t start = 0;
  while (true) {
    auto dot = key.find('.', start);
    std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    R1_CHECK(!part.empty(), "override '", assignment, "': empty key component");
    if (node->is_null()) *node = json::object();
    R1_CHECK(node->is_object(), "override '", assignment, "': '", key.substr(0, start ? start - 1 : 0),
             "' is not an object");
    if (dot == std::string::npos) {
      (*node)[part] = value;
      return;
    }
    node = &(*node)[part];
    start = dot + 1;
  }
}

ConfigNode::ConfigNode(json value, std::string where, std::string path)
    : value_(std::move(value)), where_(std::move(where)), path_(std::move(path)) {
  if (value_.is_null()) value_ = json::object();
  R1_CHECK(value_.is_object(), where_, ": '", path_.empty() ? "<root>" : path_, "' must be an object");
}

ConfigNode ConfigNode::load(const std::string& file, const std::vector<std::string>& overrides) {
  json root = load_json_or_yaml(file);
  for (const auto& o : overrides) apply_override(root, o);
  return ConfigNode(std::move(root), file);
}

bool ConfigNode::has(const std::string& key) const { return value_.contains(key) && !value_.at(key).is_null(); }

void ConfigNode::read_enum(const std::string& key, std::string& out, const std::vector<std::string>& allowed) {
  read(key, out);
  for (const auto& a : allowed)
    if (a == out) return;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  fail(key, str_cat("'", out, "' is not one of: ", list));
}

ConfigNode ConfigNode::child(const std::string& key) {
  read_keys_.insert(key);
  if (!has(key)) return ConfigNode(json::object(), where_, key_path(key));
  R1_CHECK(value_.at(key).is_object(), where_, ": key '", key_path(key), "' must be an object");
  return ConfigNode(value_.at(key), where_, key_path(key));
}

void ConfigNode::finish() const {
  for (auto it = value_.begin(); it != value_.end(); ++it) {
    if (!read_keys_.count(it.key())) R1_FAIL(where_, ": unknown key '", key_path(it.key()), "'");
  }
}

void ConfigNode::fail(const std::string& key, const std::string& message) const {
  R1_FAIL(where_, ": key '", key_path(key), "': ", message);
}

}  // namespace r1kit
