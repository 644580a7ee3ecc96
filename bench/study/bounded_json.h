// JSON from untrusted text (study configs, safetensors headers) with a nesting limit. nlohmann
// parses iteratively but copies and dumps recursively, and the loaders dump the offending value
// into their error messages: a document nested a hundred thousand levels deep (a few hundred
// KB) overflowed the stack. The formats nest three levels; the limit leaves room to spare.
#pragma once

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace graphshard::study {

constexpr int kMaxJsonDepth = 64;

// Throws nlohmann::json::parse_error for malformed text and std::length_error for nesting
// deeper than kMaxJsonDepth; callers turn both into their c10::ValueError.
inline nlohmann::json parse_bounded_json(const std::string& text) {
  return nlohmann::json::parse(text, [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > kMaxJsonDepth) {
      throw std::length_error("nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    return true;
  });
}

}  // namespace graphshard::study
