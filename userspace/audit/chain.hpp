// Hash-chain primitives shared by append(), verify() and the tests (internal).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "audit/audit_log.hpp"
#include "common/result.hpp"

namespace airlock::audit::detail {

// A row as stored: verify() hashes the stored kind string itself, so a row whose
// kind was rewritten to something no EventKind produces still gets checked.
struct RowView {
    std::int64_t seq = 0;
    std::int64_t time_us = 0;
    std::string_view kind;
    std::int64_t session = 0;
    std::int64_t pid = 0;
    std::string_view action;
    std::string_view object;
    std::string_view verdict;
    std::string_view rule;
    std::int64_t request_id = 0;
    std::string_view actor;
    std::string_view scope;
    std::string_view reason;
    std::int64_t latency_us = 0;
    std::string_view detail_json;
};

// The view of an Event that is hashed (its strings must outlive the view).
[[nodiscard]] RowView row_view(const Event& e);

[[nodiscard]] std::string canonical_form(const RowView& r);
// Appends canonical_form(r) to out (no temporary string on the commit path).
void append_canonical_form(std::string& out, const RowView& r);

// Lowercase hex SHA-256(prev_hash_hex || "\n" || canonical).
[[nodiscard]] common::Result<std::string> chain_hash(std::string_view prev_hash_hex,
                                                     std::string_view canonical);

// Caps a string at max bytes (marker included), never splitting a UTF-8 sequence.
[[nodiscard]] std::string truncate_with_marker(std::string s, std::size_t max);
// Caps detail_json at max bytes, keeping it a JSON object.
[[nodiscard]] std::string truncate_detail_json(std::string s, std::size_t max);
// Applies every per-field cap of audit_log.hpp to e.
void apply_limits(Event& e);

}  // namespace airlock::audit::detail
