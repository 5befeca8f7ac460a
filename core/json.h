// JSON helpers shared by every folder: JSONL reading with line numbers, YAML -> JSON, parsing
// with errors that name the file.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace r1kit {

using json = nlohmann::json;

// Parses `text` as JSON; on failure throws Error "<where>: invalid JSON: ...".
json parse_json(const std::string& text, const std::string& where);

// Loads a .json, .yaml or .yml file (by extension; YAML is converted to JSON values:
// scalars become numbers / bools / null when they parse as such, otherwise strings).
json load_json_or_yaml(const std::string& path);

// Calls fn(record, line_number) for each non-empty line of a JSONL file. A malformed line throws
// Error "<path>:<line>: invalid JSON: ...". Errors thrown by fn are prefixed with "<path>:<line>: ".
void for_each_jsonl(const std::string& path, const std::function<void(const json&, int)>& fn);

// Dumps a JSON value the way r1kit writes JSONL: one line, UTF-8 kept, invalid UTF-8 replaced.
std::string dump_line(const json& j);

}  // namespace r1kit
