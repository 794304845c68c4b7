// The policies compiled into the binary (policies/*.yaml), so the daemon runs
// with nothing installed under /etc.
#pragma once

#include <expected>
#include <optional>
#include <string_view>
#include <vector>

#include "policy/policy.hpp"

namespace airlock::policy {

// YAML text of a built-in policy: "default" or "strict".
[[nodiscard]] std::optional<std::string_view> builtin_policy_text(std::string_view name);
[[nodiscard]] std::vector<std::string_view> builtin_policy_names();

// Parses a built-in policy with source name "<embedded:NAME>". An unknown name
// is a single diagnostic listing the known ones.
[[nodiscard]] std::expected<Policy, std::vector<Diagnostic>> load_builtin_policy(std::string_view name);

}  // namespace airlock::policy
