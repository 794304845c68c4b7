#include "audit/audit_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <utility>

#include "audit/chain.hpp"
#include "audit/sqlite_util.hpp"
#include "common/unique_fd.hpp"

namespace airlock::audit {

namespace {

using detail::DbPtr;
using detail::StmtPtr;
using detail::StmtReset;

// STRICT makes SQLite refuse a value of the wrong type, so the stored bytes are
// exactly the ones that were hashed. The triggers only stop accidents (a stray
// UPDATE in an admin's sqlite3 shell); an attacker drops them, which is what the
// hash chain is for.
constexpr const char* schema_sql = R"sql(
CREATE TABLE IF NOT EXISTS meta(
  key   TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
) STRICT;
INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '1');
CREATE TABLE IF NOT EXISTS events(
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  time_us     INTEGER NOT NULL,
  kind        TEXT    NOT NULL,
  session     INTEGER NOT NULL DEFAULT 0,
  pid         INTEGER NOT NULL DEFAULT 0,
  action      TEXT    NOT NULL DEFAULT '',
  object      TEXT    NOT NULL DEFAULT '',
  verdict     TEXT    NOT NULL DEFAULT '',
  rule        TEXT    NOT NULL DEFAULT '',
  request_id  INTEGER NOT NULL DEFAULT 0,
  actor       TEXT    NOT NULL DEFAULT '',
  scope       TEXT    NOT NULL DEFAULT '',
  reason      TEXT    NOT NULL DEFAULT '',
  latency_us  INTEGER NOT NULL DEFAULT 0,
  detail_json TEXT    NOT NULL DEFAULT '',
  prev_hash   TEXT    NOT NULL,
  hash        TEXT    NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS events_session ON events(session);
CREATE INDEX IF NOT EXISTS events_kind ON events(kind);
CREATE VIEW IF NOT EXISTS sessions AS
  SELECT * FROM events WHERE kind IN ('session_start', 'session_end');
CREATE VIEW IF NOT EXISTS decisions AS
  SELECT * FROM events WHERE kind = 'decision';
CREATE VIEW IF NOT EXISTS approvals AS
  SELECT * FROM events WHERE kind IN ('request_created', 'request_resolved');
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
  BEGIN SELECT RAISE(ABORT, 'airlock audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'airlock audit log is append-only'); END;
)sql";

constexpr std::string_view columns_sql =
    "seq, time_us, kind, session, pid, action, object, verdict, rule, request_id, actor, "
    "scope, reason, latency_us, detail_json, prev_hash, hash";

// Column indexes of columns_sql.
enum Col : int {
    c_seq,
    c_time_us,
    c_kind,
    c_session,
    c_pid,
    c_action,
    c_object,
    c_verdict,
    c_rule,
    c_request_id,
    c_actor,
    c_scope,
    c_reason,
    c_latency_us,
    c_detail_json,
    c_prev_hash,
    c_hash,
    c_count
};

constexpr const char* column_names[c_count] = {
    "seq",        "time_us", "kind",  "session", "pid",        "action",      "object",    "verdict", "rule",
    "request_id", "actor",   "scope", "reason",  "latency_us", "detail_json", "prev_hash", "hash"};

bool is_int_column(int c) {
    return c == c_seq || c == c_time_us || c == c_session || c == c_pid || c == c_request_id ||
           c == c_latency_us;
}

std::string_view col_text(sqlite3_stmt* stmt, int col) {
    const unsigned char* p = sqlite3_column_text(stmt, col);
    const int n = sqlite3_column_bytes(stmt, col);
    if (p == nullptr || n <= 0) return {};
    return {reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)};
}

std::int64_t now_us() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1'000;
}

std::string prefix(std::string_view what, const std::string& path) {
    return "audit log " + path + ": " + std::string(what);
}

// Stored text quoted in an error or problem string may have been planted by an
// attacker; keep it short and printable so it cannot forge terminal output.
std::string printable(std::string_view v, std::size_t max = 64) {
    std::string out;
    for (char c : v.substr(0, max)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
    if (v.size() > max) out += "...";
    return out;
}

std::string short_hash(std::string_view h) {
    return printable(h, 16);
}

// Creates the file ourselves so its mode is 0600 whatever the umask, and
// tightens an existing one: rows hold paths and argv of the user's work. The
// fd is closed before SQLite opens the file, because closing any fd of a file
// drops every POSIX lock this process holds on it, SQLite's included.
common::Status create_private_file(const std::string& path) {
    common::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) return common::fail_errno(prefix("open", path));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return common::fail_errno(prefix("fstat", path));
    if (!S_ISREG(st.st_mode)) return common::fail(prefix("not a regular file", path));
    if ((st.st_mode & 07777) != 0600 && ::fchmod(fd.get(), 0600) != 0) {
        return common::fail_errno(prefix("fchmod 0600", path));
    }
    return {};
}

common::Result<std::string> single_text(sqlite3* db, const std::string& path, std::string_view sql) {
    auto stmt = detail::prepare(db, path, sql);
    if (!stmt) return std::unexpected(stmt.error());
    const int rc = sqlite3_step(stmt->get());
    if (rc == SQLITE_ROW) return std::string(col_text(stmt->get(), 0));
    if (rc == SQLITE_DONE) return std::string();
    return std::unexpected(detail::sqlite_error(db, path, sql, rc));
}

}  // namespace

struct AuditLog::Impl {
    std::string path;
    DbPtr db;  // declared before the statements so it is destroyed after them
    StmtPtr insert;
    StmtPtr query_all;
    StmtPtr query_session;

    // Chain head: seq and hash of the newest row, including uncommitted ones.
    std::int64_t head_seq = 0;
    std::string head_hash{genesis_hash};
    // The head as of the last commit, restored by rollback.
    std::int64_t committed_seq = 0;
    std::string committed_hash{genesis_hash};
    bool in_txn = false;
    bool read_only = false;  // open_read_only(): query() only

    Impl() = default;
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;
    ~Impl() {
        // An unfinished batch is dropped, never half-committed.
        if (in_txn && db && sqlite3_get_autocommit(db.get()) == 0) {
            sqlite3_exec(db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
        }
    }

    common::Status prepare_queries() {
        const std::string cols(columns_sql);
        auto all = detail::prepare(db.get(), path,
                                   "SELECT " + cols + " FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2");
        if (!all) return std::unexpected(all.error());
        query_all = std::move(*all);
        auto by_session = detail::prepare(
            db.get(), path,
            "SELECT " + cols + " FROM events WHERE seq > ?1 AND session = ?3 ORDER BY seq LIMIT ?2");
        if (!by_session) return std::unexpected(by_session.error());
        query_session = std::move(*by_session);
        return {};
    }

    void restore_committed_head() {
        head_seq = committed_seq;
        head_hash = committed_hash;
    }

    // After a failed statement inside a batch SQLite may have rolled back the
    // whole transaction (it does for disk full and I/O errors); then the rows
    // appended so far are gone and the head must go back with them.
    void note_failure_in_txn(common::Error& err) {
        if (in_txn && sqlite3_get_autocommit(db.get()) != 0) {
            in_txn = false;
            restore_committed_head();
            err.message += "; SQLite rolled back the open transaction, its uncommitted rows are lost";
        }
    }

    common::Status load_head() {
        {
            auto stmt =
                detail::prepare(db.get(), path, "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1");
            if (!stmt) return std::unexpected(stmt.error());
            const int rc = sqlite3_step(stmt->get());
            if (rc == SQLITE_ROW) {
                head_seq = sqlite3_column_int64(stmt->get(), 0);
                head_hash = std::string(col_text(stmt->get(), 1));
            } else if (rc != SQLITE_DONE) {
                return std::unexpected(detail::sqlite_error(db.get(), path, "loading chain head", rc));
            }
        }
        // Mirror AUTOINCREMENT: never reuse a seq that was issued before. If the
        // newest rows were deleted, chaining on from max(seq) would overwrite the
        // evidence in sqlite_sequence; skipping past it leaves a gap that verify
        // keeps reporting.
        auto stmt = detail::prepare(db.get(), path, "SELECT seq FROM sqlite_sequence WHERE name = 'events'");
        if (!stmt) return std::unexpected(stmt.error());
        const int rc = sqlite3_step(stmt->get());
        if (rc == SQLITE_ROW) {
            head_seq = std::max<std::int64_t>(head_seq, sqlite3_column_int64(stmt->get(), 0));
        } else if (rc != SQLITE_DONE) {
            return std::unexpected(detail::sqlite_error(db.get(), path, "reading sqlite_sequence", rc));
        }
        committed_seq = head_seq;
        committed_hash = head_hash;
        return {};
    }
};

AuditLog::AuditLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AuditLog::AuditLog(AuditLog&&) noexcept = default;
AuditLog& AuditLog::operator=(AuditLog&&) noexcept = default;
AuditLog::~AuditLog() = default;

common::Result<AuditLog> AuditLog::open(const std::string& db_path) {
    if (db_path.empty()) return common::fail("audit log: empty database path");
    if (auto st = create_private_file(db_path); !st) return std::unexpected(st.error());

    auto impl = std::make_unique<Impl>();
    impl->path = db_path;
    sqlite3* raw = nullptr;
    // NOMUTEX: the daemon's event loop is the only user of the handle.
    const int rc = sqlite3_open_v2(
        db_path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nullptr);
    impl->db.reset(raw);
    if (rc != SQLITE_OK) return std::unexpected(detail::sqlite_error(raw, db_path, "sqlite3_open_v2", rc));
    sqlite3* db = impl->db.get();
    sqlite3_busy_timeout(db, 5000);

    // trusted_schema=OFF: views and triggers in the file may not call
    // functions with side effects, in case someone planted some.
    for (const char* pragma : {"PRAGMA trusted_schema = OFF", "PRAGMA foreign_keys = ON"}) {
        if (auto st = detail::exec(db, db_path, pragma, pragma); !st) return std::unexpected(st.error());
    }
    auto mode = single_text(db, db_path, "PRAGMA journal_mode = WAL");
    if (!mode) return std::unexpected(mode.error());
    if (*mode != "wal") {
        return common::fail(prefix("PRAGMA journal_mode = WAL: SQLite kept journal mode '" +
                                       printable(*mode) +
                                       "' (WAL needs shared memory; is this a network filesystem?)",
                                   db_path));
    }
    // NORMAL in WAL mode: COMMIT write()s the frames to the WAL before it
    // returns (a daemon crash loses nothing) and fsyncs only at checkpoints (a
    // power cut may lose the last commits).
    if (auto st = detail::exec(db, db_path, "PRAGMA synchronous = NORMAL", "PRAGMA synchronous = NORMAL");
        !st) {
        return std::unexpected(st.error());
    }

    if (auto st = detail::exec(db, db_path, "BEGIN IMMEDIATE", "creating schema: BEGIN"); !st) {
        return std::unexpected(st.error());
    }
    auto schema = [&]() -> common::Status {
        if (auto st = detail::exec(db, db_path, schema_sql, "creating schema"); !st) return st;
        auto version = single_text(db, db_path, "SELECT value FROM meta WHERE key = 'schema_version'");
        if (!version) return std::unexpected(version.error());
        if (*version != std::to_string(schema_version)) {
            return common::fail(prefix("unsupported schema_version '" + printable(*version) +
                                           "' (this build reads " + std::to_string(schema_version) + ")",
                                       db_path));
        }
        return detail::exec(db, db_path, "COMMIT", "creating schema: COMMIT");
    }();
    if (!schema) {
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        return std::unexpected(schema.error());
    }

    auto insert = detail::prepare(db, db_path,
                                  "INSERT INTO events(" + std::string(columns_sql) +
                                      ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
                                      "?14, ?15, ?16, ?17)");
    if (!insert) return std::unexpected(insert.error());
    impl->insert = std::move(*insert);
    if (auto st = impl->prepare_queries(); !st) return std::unexpected(st.error());
    if (auto st = impl->load_head(); !st) return std::unexpected(st.error());
    return AuditLog(std::move(impl));
}

common::Result<AuditLog> AuditLog::open_read_only(const std::string& db_path) {
    auto impl = std::make_unique<Impl>();
    impl->path = db_path;
    impl->read_only = true;
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(
        db_path.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nullptr);
    impl->db.reset(raw);
    if (rc != SQLITE_OK) {
        return std::unexpected(detail::sqlite_error(raw, db_path, "sqlite3_open_v2 (read-only)", rc));
    }
    sqlite3* db = impl->db.get();
    sqlite3_busy_timeout(db, 5000);
    if (auto st = detail::exec(db, db_path, "PRAGMA trusted_schema = OFF", "PRAGMA trusted_schema"); !st) {
        return std::unexpected(st.error());
    }
    auto version = single_text(db, db_path,
                               "SELECT value FROM meta WHERE key = 'schema_version' AND EXISTS "
                               "(SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'events')");
    if (!version) return std::unexpected(version.error());
    if (*version != std::to_string(schema_version)) {
        return common::fail(prefix("not an airlock audit log of schema_version " +
                                       std::to_string(schema_version) + " (found '" + printable(*version) +
                                       "')",
                                   db_path));
    }
    if (auto st = impl->prepare_queries(); !st) return std::unexpected(st.error());
    return AuditLog(std::move(impl));
}

common::Result<Event> AuditLog::append(Event event) {
    if (!impl_) return common::fail("audit log: append on a moved-from AuditLog");
    Impl& s = *impl_;
    if (s.read_only) return common::fail(prefix("append: opened read-only", s.path));
    if (s.head_seq == std::numeric_limits<std::int64_t>::max()) {
        return common::fail(prefix("append: seq space exhausted", s.path));
    }

    // Caps go first: the hash covers exactly what is stored.
    detail::apply_limits(event);
    if (event.time_us == 0) event.time_us = now_us();
    event.seq = s.head_seq + 1;
    event.prev_hash = s.head_hash;
    auto hash = detail::chain_hash(event.prev_hash, canonical_form(event));
    if (!hash) return std::unexpected(hash.error().wrap(prefix("append", s.path)));
    event.hash = std::move(*hash);

    sqlite3_stmt* stmt = s.insert.get();
    StmtReset reset(stmt);
    const std::string_view kind = to_string(event.kind);
    auto text = [&](int col, std::string_view v) {
        // SQLITE_STATIC: every bound string outlives the sqlite3_step below.
        return sqlite3_bind_text(stmt, col + 1, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    };
    auto integer = [&](int col, std::int64_t v) { return sqlite3_bind_int64(stmt, col + 1, v); };
    int rc = SQLITE_OK;
    for (int r : {integer(c_seq, event.seq), integer(c_time_us, event.time_us), text(c_kind, kind),
                  integer(c_session, event.session), integer(c_pid, event.pid), text(c_action, event.action),
                  text(c_object, event.object), text(c_verdict, event.verdict), text(c_rule, event.rule),
                  integer(c_request_id, event.request_id), text(c_actor, event.actor),
                  text(c_scope, event.scope), text(c_reason, event.reason),
                  integer(c_latency_us, event.latency_us), text(c_detail_json, event.detail_json),
                  text(c_prev_hash, event.prev_hash), text(c_hash, event.hash)}) {
        if (r != SQLITE_OK && rc == SQLITE_OK) rc = r;
    }
    if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) {
        common::Error err = detail::sqlite_error(
            s.db.get(), s.path, "append seq " + std::to_string(event.seq) + " (" + std::string(kind) + ")",
            rc);
        s.note_failure_in_txn(err);
        return std::unexpected(std::move(err));
    }

    s.head_seq = event.seq;
    s.head_hash = event.hash;
    if (!s.in_txn) {
        s.committed_seq = s.head_seq;
        s.committed_hash = s.head_hash;
    }
    return event;
}

common::Status AuditLog::begin() {
    if (!impl_) return common::fail("audit log: begin on a moved-from AuditLog");
    Impl& s = *impl_;
    if (s.read_only) return common::fail(prefix("begin: opened read-only", s.path));
    if (s.in_txn) return common::fail(prefix("begin: a transaction is already open", s.path));
    // IMMEDIATE takes the write lock now, so a competing writer shows up as an
    // error here rather than halfway through a batch.
    if (auto st = detail::exec(s.db.get(), s.path, "BEGIN IMMEDIATE", "BEGIN IMMEDIATE"); !st) return st;
    s.in_txn = true;
    return {};
}

common::Status AuditLog::commit() {
    if (!impl_) return common::fail("audit log: commit on a moved-from AuditLog");
    Impl& s = *impl_;
    if (!s.in_txn) return common::fail(prefix("commit: no transaction is open", s.path));
    if (auto st = detail::exec(s.db.get(), s.path, "COMMIT", "COMMIT"); !st) {
        common::Error err = st.error();
        s.note_failure_in_txn(err);
        if (s.in_txn) err.message += "; the transaction is still open: retry commit() or call rollback()";
        return std::unexpected(std::move(err));
    }
    s.in_txn = false;
    s.committed_seq = s.head_seq;
    s.committed_hash = s.head_hash;
    return {};
}

void AuditLog::rollback() {
    if (!impl_) return;
    Impl& s = *impl_;
    if (s.in_txn && sqlite3_get_autocommit(s.db.get()) == 0) {
        // Nothing useful to do on failure: the connection keeps no transaction
        // either way once ROLLBACK has run.
        sqlite3_exec(s.db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
    s.in_txn = false;
    s.restore_committed_head();
}

common::Result<AuditLog::MaxIds> AuditLog::max_ids() const {
    if (!impl_) return common::fail("audit log: max_ids on a moved-from AuditLog");
    auto stmt = detail::prepare(impl_->db.get(), impl_->path,
                                "SELECT COALESCE(MAX(session), 0), COALESCE(MAX(request_id), 0) FROM events");
    if (!stmt) return std::unexpected(stmt.error());
    int rc = sqlite3_step(stmt->get());
    if (rc != SQLITE_ROW) return std::unexpected(detail::sqlite_error(impl_->db.get(), impl_->path, "max ids", rc));
    return MaxIds{sqlite3_column_int64(stmt->get(), 0), sqlite3_column_int64(stmt->get(), 1)};
}

common::Result<std::vector<Event>> AuditLog::query(const Filter& filter) const {
    if (!impl_) return common::fail("audit log: query on a moved-from AuditLog");
    Impl& s = *impl_;
    sqlite3_stmt* stmt = filter.session ? s.query_session.get() : s.query_all.get();
    StmtReset reset(stmt);
    sqlite3_bind_int64(stmt, 1, filter.since_seq.value_or(std::numeric_limits<std::int64_t>::min()));
    sqlite3_bind_int64(stmt, 2, filter.limit > 0 ? filter.limit : -1);  // LIMIT -1: no limit
    if (filter.session) sqlite3_bind_int64(stmt, 3, *filter.session);

    std::vector<Event> out;
    int rc = SQLITE_OK;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        Event e;
        e.seq = sqlite3_column_int64(stmt, c_seq);
        e.time_us = sqlite3_column_int64(stmt, c_time_us);
        const std::string_view kind = col_text(stmt, c_kind);
        const auto parsed = parse_kind(kind);
        if (!parsed) {
            return common::fail(prefix("query: row seq " + std::to_string(e.seq) + " has unknown kind '" +
                                           printable(kind) + "' (run verify)",
                                       s.path));
        }
        e.kind = *parsed;
        e.session = sqlite3_column_int64(stmt, c_session);
        e.pid = sqlite3_column_int64(stmt, c_pid);
        e.action = col_text(stmt, c_action);
        e.object = col_text(stmt, c_object);
        e.verdict = col_text(stmt, c_verdict);
        e.rule = col_text(stmt, c_rule);
        e.request_id = sqlite3_column_int64(stmt, c_request_id);
        e.actor = col_text(stmt, c_actor);
        e.scope = col_text(stmt, c_scope);
        e.reason = col_text(stmt, c_reason);
        e.latency_us = sqlite3_column_int64(stmt, c_latency_us);
        e.detail_json = col_text(stmt, c_detail_json);
        e.prev_hash = col_text(stmt, c_prev_hash);
        e.hash = col_text(stmt, c_hash);
        out.push_back(std::move(e));
    }
    if (rc != SQLITE_DONE)
        return std::unexpected(detail::sqlite_error(s.db.get(), s.path, "query events", rc));
    return out;
}

namespace {

VerifyReport bad(VerifyReport r, std::int64_t seq, std::string problem) {
    r.ok = false;
    r.first_bad_seq = seq;
    r.problem = std::move(problem);
    return r;
}

// Walks the chain inside one read transaction, so rows and sqlite_sequence come
// from the same snapshot even while the daemon keeps appending.
common::Result<VerifyReport> verify_snapshot(sqlite3* db, const std::string& path) {
    VerifyReport report;

    auto has_events =
        single_text(db, path, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name = 'events'");
    if (!has_events) return std::unexpected(has_events.error());
    if (has_events->empty()) {
        return bad(report, 1, "no events table: not an airlock audit log, or the table was dropped");
    }
    auto has_meta =
        single_text(db, path, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name = 'meta'");
    if (!has_meta) return std::unexpected(has_meta.error());
    if (!has_meta->empty()) {
        auto version = single_text(db, path, "SELECT value FROM meta WHERE key = 'schema_version'");
        if (!version) return std::unexpected(version.error());
        if (!version->empty() && *version != std::to_string(schema_version)) {
            return common::fail(
                prefix("verify: unsupported schema_version '" + printable(*version) + "'", path));
        }
    }

    auto stmt = detail::prepare(db, path, "SELECT " + std::string(columns_sql) + " FROM events ORDER BY seq");
    if (!stmt) return std::unexpected(stmt.error());
    sqlite3_stmt* st = stmt->get();

    std::int64_t last_seq = 0;
    std::string expected_prev(genesis_hash);
    int rc = SQLITE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const std::int64_t seq = sqlite3_column_int64(st, c_seq);
        // STRICT rejects wrong types, but an attacker can rebuild the table
        // without it; '5' and 5 would hash alike after conversion.
        for (int c = 0; c < c_count; ++c) {
            const int type = sqlite3_column_type(st, c);
            const int want = is_int_column(c) ? SQLITE_INTEGER : SQLITE_TEXT;
            if (type != want) {
                return bad(report, seq,
                           "column " + std::string(column_names[c]) + " has the wrong storage type " +
                               "(table rebuilt or row edited)");
            }
        }
        const std::int64_t expected_seq = last_seq + 1;
        // Only possible for the first row (seq is a unique key read in order):
        // a row at seq <= 0 was slipped in front of the chain. The chain's first
        // position is what is broken, and 0 would read as "ok".
        if (seq < expected_seq) {
            return bad(report, expected_seq,
                       "seq not increasing: row with seq " + std::to_string(seq) + " where " +
                           std::to_string(expected_seq) + " was expected (row inserted before the start)");
        }
        if (seq > expected_seq) {
            return bad(report, expected_seq,
                       "seq gap: rows " + std::to_string(expected_seq) + ".." + std::to_string(seq - 1) +
                           " are missing (deleted), next row is seq " + std::to_string(seq));
        }
        const std::string_view prev = col_text(st, c_prev_hash);
        if (prev != expected_prev) {
            return bad(report, seq,
                       "prev_hash mismatch: row links to " + short_hash(prev) +
                           " but the previous row's hash is " + short_hash(expected_prev) +
                           " (row inserted, reordered, or previous row rewritten)");
        }
        const detail::RowView row{
            .seq = seq,
            .time_us = sqlite3_column_int64(st, c_time_us),
            .kind = col_text(st, c_kind),
            .session = sqlite3_column_int64(st, c_session),
            .pid = sqlite3_column_int64(st, c_pid),
            .action = col_text(st, c_action),
            .object = col_text(st, c_object),
            .verdict = col_text(st, c_verdict),
            .rule = col_text(st, c_rule),
            .request_id = sqlite3_column_int64(st, c_request_id),
            .actor = col_text(st, c_actor),
            .scope = col_text(st, c_scope),
            .reason = col_text(st, c_reason),
            .latency_us = sqlite3_column_int64(st, c_latency_us),
            .detail_json = col_text(st, c_detail_json),
        };
        auto computed = detail::chain_hash(prev, detail::canonical_form(row));
        if (!computed) return std::unexpected(computed.error().wrap(prefix("verify", path)));
        const std::string_view stored = col_text(st, c_hash);
        if (stored != *computed) {
            return bad(report, seq,
                       "hash mismatch: stored " + short_hash(stored) + ", computed " + short_hash(*computed) +
                           " (row edited)");
        }
        expected_prev = *computed;
        last_seq = seq;
        ++report.rows_checked;
    }
    if (rc != SQLITE_DONE)
        return std::unexpected(detail::sqlite_error(db, path, "verify: reading events", rc));

    // AUTOINCREMENT records the highest seq ever issued; rows above max(seq)
    // that are gone were deleted from the tail.
    auto has_counter = single_text(
        db, path, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name = 'sqlite_sequence'");
    if (!has_counter) return std::unexpected(has_counter.error());
    std::optional<std::int64_t> issued;
    if (!has_counter->empty()) {
        auto counter = detail::prepare(db, path, "SELECT seq FROM sqlite_sequence WHERE name = 'events'");
        if (!counter) return std::unexpected(counter.error());
        rc = sqlite3_step(counter->get());
        if (rc == SQLITE_ROW) {
            if (sqlite3_column_type(counter->get(), 0) != SQLITE_INTEGER) {
                return bad(report, last_seq + 1,
                           "sqlite_sequence entry for events is not an integer (edited)");
            }
            issued = sqlite3_column_int64(counter->get(), 0);
        } else if (rc != SQLITE_DONE) {
            return std::unexpected(detail::sqlite_error(db, path, "verify: reading sqlite_sequence", rc));
        }
    }
    // No entry is normal only for a log that never had a row.
    if (!issued) {
        if (report.rows_checked > 0) {
            return bad(
                report, last_seq + 1,
                "sqlite_sequence has no entry for events although rows exist: the counter was deleted, "
                "so tail truncation cannot be ruled out");
        }
        return report;
    }
    if (*issued > last_seq) {
        return bad(report, last_seq + 1,
                   "tail truncated: rows " + std::to_string(last_seq + 1) + ".." + std::to_string(*issued) +
                       " are missing (sqlite_sequence=" + std::to_string(*issued) + ", last row seq " +
                       std::to_string(last_seq) + ")");
    }
    if (*issued < last_seq) {
        return bad(report, *issued + 1,
                   "sqlite_sequence (" + std::to_string(*issued) + ") is below the last row's seq (" +
                       std::to_string(last_seq) + "): the counter was edited");
    }
    return report;
}

}  // namespace

common::Result<VerifyReport> AuditLog::verify(const std::string& db_path) {
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(
        db_path.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nullptr);
    DbPtr db(raw);
    if (rc != SQLITE_OK)
        return std::unexpected(detail::sqlite_error(raw, db_path, "verify: sqlite3_open_v2 (read-only)", rc));
    sqlite3_busy_timeout(db.get(), 5000);
    if (auto st =
            detail::exec(db.get(), db_path, "PRAGMA trusted_schema = OFF", "verify: PRAGMA trusted_schema");
        !st) {
        return std::unexpected(st.error());
    }
    if (auto st = detail::exec(db.get(), db_path, "BEGIN", "verify: BEGIN"); !st)
        return std::unexpected(st.error());
    auto report = verify_snapshot(db.get(), db_path);
    sqlite3_exec(db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    return report;
}

}  // namespace airlock::audit
