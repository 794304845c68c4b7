// Rendering of audit rows for the `airlock audit` CLI.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "audit/audit_log.hpp"

namespace airlock::audit {

// Every field, always present (stable keys for jq), plus "time" as ISO-8601 UTC.
// "detail" is detail_json parsed when it is valid JSON, else the raw string, and
// null when empty. Strings are made valid UTF-8 (see sanitize_utf8), so dump()
// never throws on a row holding a non-UTF-8 path. Never throws.
[[nodiscard]] nlohmann::json to_json(const Event& e);

// One line for humans: "#seq time kind key=value..." with only non-empty
// fields. Values are quoted when they contain spaces, quotes or '=', and control
// bytes, invalid UTF-8 and bidi overrides are escaped, so an agent-chosen path
// cannot forge extra lines or rewrite the terminal. Never throws.
[[nodiscard]] std::string format_text(const Event& e);

// "2026-01-02T03:04:05.123456Z" for microseconds since the epoch.
[[nodiscard]] std::string format_time_us(std::int64_t time_us);

// s with every invalid UTF-8 sequence replaced by U+FFFD.
[[nodiscard]] std::string sanitize_utf8(std::string_view s);

}  // namespace airlock::audit
