// Tamper-evident audit log: one append-only SQLite table (WAL mode) whose rows
// are chained: hash = SHA-256(prev_hash || canonical(row)). Editing, deleting or
// reordering any row breaks the chain at that row; deleting the newest rows is
// caught through sqlite_sequence (AUTOINCREMENT keeps the highest seq issued).
//
// Not thread-safe: the daemon's event loop owns the one AuditLog.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace airlock::audit {

// Kinds of rows. Stable strings: they are part of the chain's canonical form.
enum class EventKind {
    daemon_start,      // detail: version, policy digest
    session_start,     // session, owner uid, agent uid, argv, policy, labels (detail)
    session_end,       // session, exit detail
    decision,          // a verdict applied to a held call (allow/deny, incl. after approval)
    request_created,   // an ask: approval request created (before anyone is notified)
    request_resolved,  // approval request decided: approved/denied/timeout/cancelled, by whom
    policy_reload,     // detail: new digest, or the errors that refused it
};
[[nodiscard]] std::string_view to_string(EventKind k);
// Inverse of to_string; nullopt for a string no EventKind produces.
[[nodiscard]] std::optional<EventKind> parse_kind(std::string_view s);

// Per-field size caps applied by append() before hashing, so an agent that
// controls a path, argv or approval text cannot grow rows without bound. A
// capped string ends with a "...[truncated, original N bytes]" marker; a capped
// detail_json is replaced by {"truncated":true,"original_bytes":N,"prefix":"..."}.
inline constexpr std::size_t max_object_bytes = 4096;
inline constexpr std::size_t max_reason_bytes = 1024;
inline constexpr std::size_t max_detail_json_bytes = 16384;
inline constexpr std::size_t max_short_field_bytes = 256;  // action, verdict, rule, actor, scope

// prev_hash of the first row.
inline constexpr std::string_view genesis_hash =
    "0000000000000000000000000000000000000000000000000000000000000000";
// Version of the SQLite schema, stored in meta.schema_version.
inline constexpr int schema_version = 1;

// One row. Fields not meaningful for a kind stay empty / 0.
struct Event {
    std::int64_t seq = 0;          // assigned by append(); ignored on input
    std::int64_t time_us = 0;      // wall clock, microseconds since epoch; append() fills when 0
    EventKind kind = EventKind::decision;
    std::int64_t session = 0;
    std::int64_t pid = 0;
    std::string action;            // open | connect | exec
    std::string object;            // path, "ip:port", unix socket path, binary + argv
    std::string verdict;           // allow | deny | ask | approved | denied | timeout | cancelled
    std::string rule;              // deciding rule name
    std::int64_t request_id = 0;   // approval request id, when the row is about one
    std::string actor;             // who decided: "policy", "user:alice(1000)", "timeout"
    std::string scope;             // once | session (approvals)
    std::string reason;            // free text from approver, or error text
    std::int64_t latency_us = 0;   // from notification to verdict
    std::string detail_json;       // extra structured data, a JSON object or empty
    std::string prev_hash;         // hex; filled by append()
    std::string hash;              // hex; filled by append()
};

struct VerifyReport {
    bool ok = true;
    std::int64_t rows_checked = 0;
    std::int64_t first_bad_seq = 0;  // 0 when ok
    std::string problem;             // why that row is bad (hash mismatch, gap, missing tail...)
};

struct Filter {
    std::optional<std::int64_t> session;
    std::optional<std::int64_t> since_seq;  // rows with seq > since_seq
    std::int64_t limit = 0;                 // 0 = no limit
};

class AuditLog {
public:
    // Opens (creating with 0600 if missing) the database, sets WAL and
    // synchronous=NORMAL, creates the schema, and loads the chain head.
    [[nodiscard]] static common::Result<AuditLog> open(const std::string& db_path);

    // Opens an existing log for query() only (the `airlock audit` CLI): never
    // creates, chmods or writes the file and takes no write lock, so it cannot
    // stall the daemon. append/begin/commit fail on it.
    [[nodiscard]] static common::Result<AuditLog> open_read_only(const std::string& db_path);

    // Appends one row inside the current transaction if one is open (see
    // Batch), else in its own transaction. Returns the row with seq and hashes.
    [[nodiscard]] common::Result<Event> append(Event event);

    // Groups appends into one transaction: the daemon appends every decision of
    // one event-loop turn, commits, and only then releases the held calls.
    [[nodiscard]] common::Status begin();
    [[nodiscard]] common::Status commit();
    // Drops uncommitted rows; the in-memory chain head goes back to the last commit.
    void rollback();

    [[nodiscard]] common::Result<std::vector<Event>> query(const Filter& filter) const;

    // Highest session and approval-request ids ever logged, so a restarted
    // daemon never reuses an id that rows already refer to.
    struct MaxIds {
        std::int64_t session = 0;
        std::int64_t request = 0;
    };
    [[nodiscard]] common::Result<MaxIds> max_ids() const;

    // Re-reads every row from the file at db_path (read-only) and checks the chain.
    [[nodiscard]] static common::Result<VerifyReport> verify(const std::string& db_path);

    AuditLog(AuditLog&&) noexcept;
    AuditLog& operator=(AuditLog&&) noexcept;
    ~AuditLog();

private:
    struct Impl;
    explicit AuditLog(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// The canonical byte string hashed for a row (exposed for tests and docs).
[[nodiscard]] std::string canonical_form(const Event& e);

}  // namespace airlock::audit
