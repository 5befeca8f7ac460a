// Config: a JSON/YAML tree plus `key.path=value` overrides, read into options structs field by field.
// Every key must be read: finish() rejects unknown keys, naming the file and the full key path.
//
//   ConfigNode node = ConfigNode::load("recipe.yaml", {"grpo.lr=1e-5"});
//   node.read("lr", opts.lr);            // keeps the default when absent; type errors name the key
//   node.finish();                       // "recipe.yaml: unknown key 'grpo.lrr'"
#pragma once
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/json.h"

namespace r1kit {

// Applies one "a.b.c=value" override to `root`. The value is parsed as JSON when it parses
// (numbers, true/false, null, [..], {..}), otherwise taken as a string.
void apply_override(json& root, const std::string& assignment);

class ConfigNode {
 public:
  // `where` names the source file; `path` is the dotted key path of this node ("" at the root).
  ConfigNode(json value, std::string where, std::string path = "");

  // Loads a file and applies overrides in order.
  static ConfigNode load(const std::string& file, const std::vector<std::string>& overrides = {});

  bool has(const std::string& key) const;
  const json& raw() const { return value_; }
  const std::string& where() const { return where_; }
  std::string key_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  // Reads key into out if present (marking it read); out keeps its default otherwise.
  template <class T>
  void read(const std::string& key, T& out) {
    read_keys_.insert(key);
    if (!value_.contains(key) || value_.at(key).is_null()) return;
    const json& v = value_.at(key);
    auto type_error = [&] { fail(key, std::string("expected ") + type_name<T>() + ", got " + v.dump()); };
    // json's get<T> converts between numbers and booleans silently (steps: 1.5 -> 1, lr: true -> 1.0).
    bool ok = true;
    if constexpr (std::is_same_v<T, bool>) {
      ok = v.is_boolean();
    } else if constexpr (std::is_integral_v<T>) {
      // Whole floats are integers (1e3 in YAML or an override); the value must fit T.
      const double d = v.is_number() ? v.get<double>() : 0.5;
      // Upper bound 2^digits, exclusive: double(INT64_MAX) rounds up to 2^63, which does not fit.
      ok = v.is_number() && std::isfinite(d) && std::floor(d) == d &&
           d >= static_cast<double>(std::numeric_limits<T>::min()) &&
           d < std::ldexp(1.0, std::numeric_limits<T>::digits);
      if (ok && v.is_number_float()) {
        out = static_cast<T>(d);
        return;
      }
    } else if constexpr (std::is_floating_point_v<T>) {
      ok = v.is_number();
    }
    if (!ok) type_error();
    try {
      out = v.get<T>();
    } catch (const json::exception&) {
      type_error();
    }
  }

  // Like read, but the key must be present.
  template <class T>
  void require(const std::string& key, T& out) {
    R1_CHECK(has(key), where_, ": missing required key '", key_path(key), "'");
    read(key, out);
  }

  // Reads a string key that must be one of `allowed`.
  void read_enum(const std::string& key, std::string& out, const std::vector<std::string>& allowed);

  // A sub-object (marked read). Missing -> an empty node. Not an object -> Error.
  ConfigNode child(const std::string& key);

  // Throws if a key of this node was never read.
  void finish() const;

  // Marks keys as read without interpreting them (e.g. documentation fields like "_doc").
  void ignore(const std::string& key) { read_keys_.insert(key); }

  // Fails with the key named: for range checks after read().
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

 private:
  template <class T>
  static const char* type_name() {
    if constexpr (std::is_same_v<T, bool>) return "a boolean";
    else if constexpr (std::is_integral_v<T>) return "an integer";
    else if constexpr (std::is_floating_point_v<T>) return "a number";
    else if constexpr (std::is_same_v<T, std::string>) return "a string";
    else return "a value of another type";
  }
  json value_;
  std::string where_;
  std::string path_;
  std::set<std::string> read_keys_;
};

}  // namespace r1kit
