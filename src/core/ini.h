// A small INI tokenizer and the value parsers the config schema uses. It knows
// nothing about keys: config.cc maps what it yields onto the schema.
//
// Syntax: `[section]`, `key = value`, whole-line comments starting with `#`
// or `;`, blank lines. Whitespace around names and values is trimmed. A value
// may be quoted with "..." and is then taken literally (no escapes); an
// unquoted value keeps any `#` or `;` it contains.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace hearth::config::ini {

struct Entry {
  enum class Kind { kSection, kKeyValue };
  Kind kind;
  int line;                // 1-based
  std::string_view name;   // section name or key, trimmed
  std::string_view value;  // key = value only: raw value, trimmed, quotes kept
};

// Splits `text` into section headers and key = value lines, dropping blank and
// comment lines. Views point into `text`. Errors read "FILE:LINE: ...".
Result<std::vector<Entry>> tokenize(std::string_view text, std::string_view filename);

std::string_view trim(std::string_view s);

// Removes one pair of surrounding double quotes, if any. `key` names the key
// in error messages ("'key' has an unterminated quote; ...").
Result<std::string> unquote(std::string_view raw, std::string_view key);

// Comma-separated items, each trimmed and unquoted; commas inside quotes do
// not split. An empty value is an empty list; an empty item is an error.
Result<std::vector<std::string>> split_list(std::string_view raw, std::string_view key);

// true/false, yes/no, on/off (lowercase).
bool parse_bool(std::string_view text, bool* out);
// Optional '-', decimal digits, nothing else; fails on overflow.
bool parse_int(std::string_view text, int64_t* out);

// Optimal string alignment distance (edits, with adjacent transpositions
// counting as one), for "did you mean" hints.
size_t edit_distance(std::string_view a, std::string_view b);

// `s` in single quotes for messages, shortened if long.
std::string quoted(std::string_view s);

}  // namespace hearth::config::ini
