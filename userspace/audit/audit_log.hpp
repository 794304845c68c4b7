// Tamper-evident audit log: one append-only SQLite table (WAL mode) whose rows
// are chained: hash = SHA-256(prev_hash || canonical(row)). Editing, deleting or
// reordering any row breaks the chain at that row; deleting the newest rows is
// caught through sqlite_sequence (AUTOINCREMENT keeps the highest seq issued).
//
// Journal first: commit() does not touch SQLite. It write()s the batch's rows,
// already chained, to the append-only file <db_path>.journal and queues them;
// a background ingester thread, owned by the AuditLog, later inserts the queue
// into SQLite in one transaction per pass, off the caller's thread. When
// commit() has returned, the rows are as durable as a SQLite WAL commit with
// synchronous=NORMAL: a crash of the process loses none of them (open()
// replays the journal), a power cut may lose the last ones. query() reads
// SQLite only, so rows show there once the ingester (or flush()) has run:
// a few milliseconds after commit() on an idle machine.
//
// Threads. One thread at a time owns an AuditLog and calls its methods (the
// daemon's event loop); calls from several threads at once are not supported.
// The ingester is internal: it shares only the queue and the journal with the
// owner, under a mutex (never held during SQLite work), writes SQLite through
// its own connection, and blocks every signal. query() and max_ids() read
// through the owner's own connection and may run while the ingester writes.
// queued_rows() and last_ingest_error() may also be called from any thread.
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
    kernel,            // the kernel layer acted on its own (an exec killed by the exec guard)
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

// Bounds on rows journaled but not yet in SQLite. A commit() that would pass
// either first waits for the ingester to take the queue; if the database still
// does not take the rows, the commit fails (ENOSPC) and the daemon denies: a
// broken database must stop decisions, not let the queue grow until memory
// runs out.
inline constexpr std::size_t max_queued_rows = 65536;
inline constexpr std::size_t max_queued_bytes = std::size_t{64} << 20;  // encoded journal records
// Bound on the journal file. The ingester may empty the journal only when
// every record in it is in SQLite, which under constant load may never happen
// by itself; a commit() that would grow the journal past this bound first
// waits until the ingester has caught up and emptied it (backpressure). Not
// applied while the database refuses rows (the queue bounds govern then), so
// the journal stays under this bound plus max_queued_bytes.
inline constexpr std::size_t max_journal_bytes = std::size_t{8} << 20;

// One row. Fields not meaningful for a kind stay empty / 0.
struct Event {
    std::int64_t seq = 0;      // assigned by append(); ignored on input
    std::int64_t time_us = 0;  // wall clock, microseconds since epoch; append() fills when 0
    EventKind kind = EventKind::decision;
    std::int64_t session = 0;
    std::int64_t pid = 0;
    std::string action;           // open | connect | exec
    std::string object;           // path, "ip:port", unix socket path, binary + argv
    std::string verdict;          // allow | deny | ask | approved | denied | timeout | cancelled
    std::string rule;             // deciding rule name
    std::int64_t request_id = 0;  // approval request id, when the row is about one
    std::string actor;            // who decided: "policy", "user:alice(1000)", "timeout"
    std::string scope;            // once | session (approvals)
    std::string reason;           // free text from approver, or error text
    std::int64_t latency_us = 0;  // from notification to verdict
    std::string detail_json;      // extra structured data, a JSON object or empty
    std::string prev_hash;        // hex; filled by append()
    std::string hash;             // hex; filled by append()
};

struct VerifyReport {
    bool ok = true;
    std::int64_t rows_checked = 0;   // database rows plus journal rows beyond them
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
    // synchronous=NORMAL, creates the schema, and loads the chain head. Then
    // opens <db_path>.journal (0600) under an exclusive flock -- a second
    // writer on the same log fails here -- and replays it: every record is
    // checked (checksum, canonical form, hash, chain), rows newer than the
    // database are inserted, rows already in it are skipped (so replay is
    // idempotent), and the journal is emptied. A damaged record that is not a
    // torn final write fails open() with its offset and leaves both files
    // untouched. Then starts the ingester thread.
    [[nodiscard]] static common::Result<AuditLog> open(const std::string& db_path);

    // Opens an existing log for query() only (the `airlock audit` CLI): never
    // creates, chmods or writes the file and takes no write lock, so it cannot
    // stall the daemon. Never touches the journal, so rows not yet ingested
    // by the writer are not shown. append/begin/commit/flush fail on it. Starts
    // no thread.
    [[nodiscard]] static common::Result<AuditLog> open_read_only(const std::string& db_path);

    // Chains one row. Inside begin()/commit() it is only kept in memory until
    // commit(); outside, it is journaled at once, as a batch of one. Returns
    // the row with seq and hashes. On failure the chain head is unchanged.
    [[nodiscard]] common::Result<Event> append(Event event);

    // Groups appends: the daemon appends every decision of one event-loop
    // turn, commits, and only then releases the held calls. commit() writes
    // the whole batch to the journal with one write() and queues it for the
    // ingester (no SQLite work); when it returns the rows survive a crash of
    // this process. It waits for the ingester only past a bound
    // (max_queued_rows/bytes, max_journal_bytes). On failure (ENOSPC, EIO,
    // EFBIG, the queue bound) nothing of the batch stays in the journal, the
    // batch is dropped and the head goes back to the last commit, as with
    // rollback(); the caller must deny the turn's held calls.
    [[nodiscard]] common::Status begin();
    [[nodiscard]] common::Status commit();
    // Drops uncommitted rows; the in-memory chain head goes back to the last commit.
    void rollback();

    // Waits until every row committed so far is in SQLite: has the ingester
    // run a pass now (inserting everything queued in one transaction), waits
    // for it, then has it empty the journal. On failure the rows stay queued
    // and in the journal, the ingester retries them, and so does a later
    // flush(). Blocks for a SQLite commit or more: for shutdown, tests and
    // tools; the daemon does not need it while running.
    [[nodiscard]] common::Status flush();
    // Rows journaled but not yet in SQLite (queued, or being inserted). For
    // the moment between the ingester's COMMIT and its bookkeeping, the rows
    // of that pass are counted although query() may already show them: an
    // over-count, never an under-count.
    [[nodiscard]] std::size_t queued_rows() const;

    // The error of the ingester's last pass while it keeps failing (the
    // database refuses rows, or the journal could not be emptied); nullopt
    // once a pass succeeds. The message names the first row that failed and
    // the cause, not the queue's length, so it stays the same while the same
    // fault lasts: the daemon logs it once per change. Failed passes are
    // retried with a backoff (100 ms doubling to 5 s), and at once on flush()
    // or when a commit() hits a bound. Cheap (an atomic load) while healthy.
    [[nodiscard]] std::optional<common::Error> last_ingest_error() const;

    // What open() had to repair or skip (rows recovered from the journal
    // after an unclean shutdown, a torn final record ignored); empty when the
    // previous writer shut down cleanly. For the daemon to log.
    [[nodiscard]] std::string recovery_note() const;

    // Reads SQLite only, through the owner's own connection: rows appear once
    // ingested (the batch being built and queued rows are not visible); after
    // flush() every committed row is.
    [[nodiscard]] common::Result<std::vector<Event>> query(const Filter& filter) const;

    // Highest session and approval-request ids ever logged, so a restarted
    // daemon never reuses an id that rows already refer to. Counts SQLite's
    // rows, every row committed since open() (queued ones included) and the
    // open batch.
    struct MaxIds {
        std::int64_t session = 0;
        std::int64_t request = 0;
    };
    [[nodiscard]] common::Result<MaxIds> max_ids() const;

    // Re-reads every row from the file at db_path (read-only) and checks the
    // chain; then, if <db_path>.journal is not empty, checks that its records
    // are intact and continue the database's chain. Never writes either file.
    [[nodiscard]] static common::Result<VerifyReport> verify(const std::string& db_path);

    // Test hook: releases the files the way a crash would (no flush, journal
    // left as it is), leaving this object moved-from. The ingester stops
    // wherever it is: a transaction in progress is rolled back before its
    // COMMIT, or, if committed, the journal is not emptied.
    void abandon_for_test();
    // Test hook: while held, the ingester takes no rows on its own; flush(),
    // a commit() at a bound and the destructor still make it run. Lets a test
    // look at the queue, the journal and the database between commit() and
    // flush() without racing the ingester.
    void hold_ingest_for_test(bool hold = true);

    AuditLog(AuditLog&&) noexcept;
    AuditLog& operator=(AuditLog&&) noexcept;
    // Best-effort flush(), so a clean shutdown leaves the journal empty, then
    // stops and joins the ingester; an open batch is dropped, never
    // half-committed.
    ~AuditLog();

private:
    struct Impl;
    explicit AuditLog(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// The canonical byte string hashed for a row (exposed for tests and docs).
[[nodiscard]] std::string canonical_form(const Event& e);

}  // namespace airlock::audit
