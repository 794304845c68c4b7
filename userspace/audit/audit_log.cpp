#include "audit/audit_log.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>

#include "audit/chain.hpp"
#include "audit/journal.hpp"
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

// Opens (creating 0600) the journal for appending and takes its writer lock.
// O_NOFOLLOW: the journal is written by root, so a symlink planted in its
// place must not redirect the writes. flock, not fcntl: SQLite's POSIX locks
// live on the database file and must not interact with this one.
common::Result<common::UniqueFd> open_journal(const std::string& db_path, const std::string& journal_path) {
    common::UniqueFd fd(
        ::open(journal_path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) return common::fail_errno(prefix("open journal " + journal_path, db_path));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return common::fail_errno(prefix("fstat journal " + journal_path, db_path));
    if (!S_ISREG(st.st_mode))
        return common::fail(prefix("journal " + journal_path + " is not a regular file", db_path));
    if ((st.st_mode & 07777) != 0600 && ::fchmod(fd.get(), 0600) != 0) {
        return common::fail_errno(prefix("fchmod 0600 journal " + journal_path, db_path));
    }
    // Two writers would each chain from their own head and one would replay
    // (and empty) the other's journal; refuse the second one up front.
    while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR) continue;
        if (errno == EWOULDBLOCK) {
            return common::fail(EBUSY, prefix("journal " + journal_path +
                                                  " is locked: another writer (a running airlockd?) has this "
                                                  "audit log open",
                                              db_path));
        }
        return common::fail_errno(prefix("flock journal " + journal_path, db_path));
    }
    return fd;
}

std::string seq_range(std::int64_t first, std::int64_t last) {
    return first == last ? "seq " + std::to_string(first)
                         : "seq " + std::to_string(first) + ".." + std::to_string(last);
}

// Ingester tuning (see AuditLog::Impl::ingest_loop). Rows gather for
// ingest_delay after the first one is queued, so one transaction takes many;
// a queue this large is taken at once.
constexpr std::chrono::milliseconds ingest_delay{5};
constexpr std::size_t ingest_wake_rows = 4096;
constexpr std::size_t ingest_wake_bytes = std::size_t{2} << 20;
// The ingester empties the journal (all of it being in SQLite) once it holds
// this much, or when asked to; below it, the ftruncate is not worth its time
// under the lock.
constexpr std::uint64_t journal_truncate_bytes = std::uint64_t{1} << 20;
// The ingester checkpoints the WAL itself, after reporting a pass, once it
// holds this many frames (SQLite's own default): run by SQLite's
// autocheckpoint inside a COMMIT, the checkpoint and its fsyncs would be part
// of the pass that a flush() or a commit() at a bound waits for.
constexpr int wal_checkpoint_frames = 1000;
// Retry delays while the database refuses rows.
constexpr std::chrono::steady_clock::duration ingest_retry_min = std::chrono::milliseconds(100);
constexpr std::chrono::steady_clock::duration ingest_retry_max = std::chrono::seconds(5);

// One pass of the ingester: what it took and how it went. Kept (under the
// lock) until the next pass, for flush() and commit()'s backpressure to report.
struct IngestPass {
    bool ok = true;
    std::size_t rows = 0;  // rows it tried to insert (0: it only had the journal to empty)
    std::int64_t first_seq = 0;
    std::int64_t last_seq = 0;
    common::Error cause;  // when !ok; stable while the same rows keep failing the same way
};

// What flush() and a refused commit() say about a failed pass.
common::Status pass_status(const IngestPass& pass) {
    if (pass.ok) return {};
    std::string what = "flush";
    if (pass.rows > 0) {
        what += " of " + std::to_string(pass.rows) + " queued rows (" +
                seq_range(pass.first_seq, pass.last_seq) + ")";
    }
    return std::unexpected(common::Error{pass.cause.code, what + ": " + pass.cause.message});
}

}  // namespace

// Threads. The owner (the one thread that calls the public methods, the
// daemon's event loop) and the ingester (started by open(), joined by the
// destructor) share the members under "shared, under mu" and nothing else:
// the owner builds batches, keeps the chain head and reads SQLite through its
// own connection (rdb); the ingester alone writes SQLite, through db.
struct AuditLog::Impl {
    using Clock = std::chrono::steady_clock;

    std::string path;
    std::string journal_path;
    // Declared before the statements so they are destroyed after them, and
    // db before rdb so the writer is the last connection to close (it
    // checkpoints the WAL).
    DbPtr db;   // writer: open() and then only the ingester; null when read_only
    DbPtr rdb;  // reader: query() and max_ids(), on the owner's thread
    StmtPtr insert;  // on db
    StmtPtr query_all;  // on rdb
    StmtPtr query_session;
    common::UniqueFd journal;  // O_APPEND, flock-ed; invalid when read_only. Written and truncated under mu.

    // ---- Owner's thread only -------------------------------------------
    // Chain head: seq and hash of the newest row, including uncommitted ones.
    std::int64_t head_seq = 0;
    std::string head_hash{genesis_hash};
    // The head as of the last commit, restored by rollback.
    std::int64_t committed_seq = 0;
    std::string committed_hash{genesis_hash};
    bool in_txn = false;
    bool read_only = false;  // open_read_only(): query() only
    // Encoded journal records of the open batch, which commit() writes with
    // one write(). Keeping the records encoded means no row is copied on the
    // commit path; the ingester reads them back.
    std::string batch;
    std::size_t batch_rows = 0;
    // Highest ids in the open batch and in every row committed since open(),
    // for max_ids(): queued rows count without decoding the queue.
    std::int64_t batch_max_session = 0;
    std::int64_t batch_max_request = 0;
    std::int64_t committed_max_session = 0;
    std::int64_t committed_max_request = 0;
    std::string recovery_note;
    bool flush_on_destroy = true;
    std::thread ingester;  // started and joined by the owner

    // ---- Shared, under mu ----------------------------------------------
    mutable std::mutex mu;
    std::condition_variable ingest_cv;  // wakes the ingester: rows queued, a demand, stop
    std::condition_variable done_cv;    // a pass finished (served moved)
    // Records in the journal that the ingester has not taken yet, in order.
    std::string queue;
    std::size_t queue_rows = 0;
    // Rows the ingester took (into `taken`) and has not got into SQLite yet:
    // being inserted, or kept after a failed pass for the next one.
    std::size_t taken_rows = 0;
    std::size_t taken_bytes = 0;
    // Bytes of whole records in the journal; a failed write is cut back to it.
    std::uint64_t journal_size = 0;
    // A failed write left bytes past journal_size that ftruncate could not
    // remove; the next write must remove them first or the journal would hold
    // a damaged record in its middle.
    bool journal_tail_dirty = false;
    // Demands (flush(), backpressure) are tickets: the ingester serves every
    // ticket issued before it takes the queue with that pass, then sets
    // served to the newest of them.
    std::uint64_t demands = 0;
    std::uint64_t served = 0;
    IngestPass last_pass;
    std::optional<common::Error> ingest_error;  // the last pass's cause while it failed
    bool hold = false;                           // hold_ingest_for_test()
    bool stop = false;                           // destructor
    // abandon_for_test(): set under mu, also read by the ingester between
    // inserts, so a simulated crash can land in the middle of a transaction.
    std::atomic<bool> abandoned{false};
    // Mirrors ingest_error.has_value(), for last_ingest_error()'s fast path.
    std::atomic<bool> ingest_failing{false};

    // ---- Ingester's thread only ----------------------------------------
    std::string taken;  // records taken from the queue, not yet in SQLite
    int wal_frames = 0;  // frames in the WAL after the last commit (wal hook)

    static int on_wal_commit(void* self, sqlite3* /*db*/, const char* /*name*/, int frames) {
        static_cast<Impl*>(self)->wal_frames = frames;
        return SQLITE_OK;
    }

    Impl() = default;
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;
    ~Impl() {
        // The open batch (never journaled) is dropped; journaled rows go to
        // SQLite so a clean shutdown leaves the journal empty. On failure they
        // stay in the journal for the next open() to replay.
        if (!ingester.joinable()) return;
        {
            std::unique_lock lk(mu);
            if (flush_on_destroy && !abandoned.load()) (void)wait_for_pass(lk);
            stop = true;
        }
        ingest_cv.notify_one();
        ingester.join();
    }

    common::Status prepare_queries() {
        sqlite3* conn = rdb.get();
        const std::string cols(columns_sql);
        auto all = detail::prepare(conn, path,
                                   "SELECT " + cols + " FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2");
        if (!all) return std::unexpected(all.error());
        query_all = std::move(*all);
        auto by_session = detail::prepare(
            conn, path,
            "SELECT " + cols + " FROM events WHERE seq > ?1 AND session = ?3 ORDER BY seq LIMIT ?2");
        if (!by_session) return std::unexpected(by_session.error());
        query_session = std::move(*by_session);
        return {};
    }

    void restore_committed_head() {
        head_seq = committed_seq;
        head_hash = committed_hash;
    }

    void rollback_sql() {
        // After an I/O error SQLite may already have rolled back by itself.
        if (sqlite3_get_autocommit(db.get()) == 0)
            sqlite3_exec(db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
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

    // One INSERT with the cached statement; the caller owns the transaction.
    common::Status insert_row(const detail::RecordView& rec) {
        sqlite3_stmt* stmt = insert.get();
        StmtReset reset(stmt);
        const detail::RowView& event = rec.row;
        const std::string_view kind = event.kind;
        auto text = [&](int col, std::string_view v) {
            // SQLITE_STATIC: every bound string outlives the sqlite3_step below.
            // A null pointer would bind NULL, not '' (NOT NULL columns).
            return sqlite3_bind_text(stmt, col + 1, v.data() != nullptr ? v.data() : "",
                                     static_cast<int>(v.size()), SQLITE_STATIC);
        };
        auto integer = [&](int col, std::int64_t v) { return sqlite3_bind_int64(stmt, col + 1, v); };
        int rc = SQLITE_OK;
        for (int r :
             {integer(c_seq, event.seq), integer(c_time_us, event.time_us), text(c_kind, kind),
              integer(c_session, event.session), integer(c_pid, event.pid), text(c_action, event.action),
              text(c_object, event.object), text(c_verdict, event.verdict), text(c_rule, event.rule),
              integer(c_request_id, event.request_id), text(c_actor, event.actor), text(c_scope, event.scope),
              text(c_reason, event.reason), integer(c_latency_us, event.latency_us),
              text(c_detail_json, event.detail_json), text(c_prev_hash, rec.prev_hash),
              text(c_hash, rec.hash)}) {
            if (r != SQLITE_OK && rc == SQLITE_OK) rc = r;
        }
        if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
        if (rc != SQLITE_DONE) {
            return std::unexpected(detail::sqlite_error(
                db.get(), path, "insert seq " + std::to_string(event.seq) + " (" + std::string(kind) + ")",
                rc));
        }
        return {};
    }

    // Inserts records in one transaction. A set `cancel` (abandon_for_test)
    // rolls the transaction back before its COMMIT, as a crash would.
    common::Status insert_all(const std::vector<detail::RecordView>& rows, std::string_view what,
                              const std::atomic<bool>* cancel = nullptr) {
        if (auto st =
                detail::exec(db.get(), path, "BEGIN IMMEDIATE", std::string(what) + ": BEGIN IMMEDIATE");
            !st) {
            return st;
        }
        auto cancelled = [&] { return cancel != nullptr && cancel->load(std::memory_order_relaxed); };
        for (const auto& rec : rows) {
            if (cancelled()) {
                rollback_sql();
                return common::fail(prefix("abandoned", path));
            }
            if (auto st = insert_row(rec); !st) {
                rollback_sql();
                return std::unexpected(st.error().wrap(what));
            }
        }
        if (cancelled()) {
            rollback_sql();
            return common::fail(prefix("abandoned", path));
        }
        if (auto st = detail::exec(db.get(), path, "COMMIT", std::string(what) + ": COMMIT"); !st) {
            rollback_sql();
            return st;
        }
        return {};
    }

    // ---- Ingester ---------------------------------------------------------

    // Waits (lk held on mu, released while waiting) for a pass of the
    // ingester that starts after this call, i.e. one that takes every row
    // committed so far; returns how that pass went. Owner's thread.
    common::Status wait_for_pass(std::unique_lock<std::mutex>& lk) {
        if (!ingester.joinable()) return common::fail(prefix("the ingester is not running", path));
        const std::uint64_t ticket = ++demands;
        ingest_cv.notify_one();
        done_cv.wait(lk, [&] { return served >= ticket; });
        return pass_status(last_pass);
    }

    // Inserts `taken` into SQLite in one transaction. No lock held: `taken`,
    // db and the insert statement are the ingester's own.
    void insert_taken(IngestPass& pass) {
        std::vector<detail::RecordView> rows;
        rows.reserve(pass.rows);
        const std::string_view bytes(taken);
        for (std::size_t at = 0; at < bytes.size();) {
            std::size_t size = 0;
            rows.push_back(detail::own_record_at(bytes, at, size));
            at += size;
        }
        if (rows.empty()) return;
        pass.first_seq = rows.front().row.seq;
        pass.last_seq = rows.back().row.seq;
        if (auto st = insert_all(rows, "ingesting queued rows into SQLite", &abandoned); !st) {
            pass.ok = false;
            pass.cause = st.error();
            pass.cause.message += "; the rows stay queued and in the journal, and are retried";
        }
    }

    // The ingester thread. It sleeps until rows are queued, then lets them
    // gather for ingest_delay (or until ingest_wake_rows/bytes are queued) so
    // that one transaction takes many rows, takes the whole queue, and inserts
    // it with the lock released. A demand runs a pass at once, held or not.
    void ingest_loop() {
        std::unique_lock lk(mu);
        bool gathering = false;
        Clock::time_point due{};
        Clock::time_point retry_at{};
        Clock::duration backoff = ingest_retry_min;
        for (;;) {
            if (stop || abandoned.load()) return;
            const bool demanded = demands > served;
            if (!demanded) {
                if (hold || queue_rows + taken_rows == 0) {
                    gathering = false;
                    ingest_cv.wait(lk);
                    continue;
                }
                const auto now = Clock::now();
                if (!gathering) {
                    gathering = true;
                    due = now + ingest_delay;
                }
                // While the database refuses rows, retry on a backoff instead
                // of at every commit; a large queue does not hurry that.
                const bool failing = ingest_error.has_value();
                const bool large =
                    !failing && (queue_rows >= ingest_wake_rows || queue.size() >= ingest_wake_bytes);
                const auto when = failing ? std::max(due, retry_at) : due;
                if (!large && now < when) {
                    ingest_cv.wait_until(lk, when);
                    continue;
                }
            }
            gathering = false;
            const std::uint64_t serving = demands;
            if (taken.empty()) {
                taken.swap(queue);  // no copy; the queue gets taken's old (empty) buffer
            } else {
                taken += queue;  // rows of a failed pass go first
                queue.clear();
            }
            taken_rows += queue_rows;
            taken_bytes = taken.size();
            queue_rows = 0;
            IngestPass pass;
            pass.rows = taken_rows;

            lk.unlock();
            insert_taken(pass);
            lk.lock();

            if (abandoned.load()) return;  // a simulated crash: no bookkeeping, the journal stays
            if (pass.ok) {
                taken.clear();
                // A backlog (database down for a while) may have grown the
                // buffer to the byte bound; do not keep that much memory for good.
                if (taken.capacity() > (std::size_t{1} << 20)) std::string().swap(taken);
                taken_rows = 0;
                taken_bytes = 0;
                // Every record in the journal is in SQLite now, unless rows were
                // appended since this pass took the queue. Emptying it costs a
                // ftruncate under the lock, so it waits until the journal is
                // big, or someone asked (flush, backpressure, shutdown).
                const bool worth_it =
                    demanded || journal_tail_dirty || journal_size >= journal_truncate_bytes;
                if (queue_rows == 0 && (journal_size > 0 || journal_tail_dirty) && worth_it) {
                    if (::ftruncate(journal.get(), 0) == 0) {
                        journal_size = 0;
                        journal_tail_dirty = false;
                    } else {
                        pass.ok = false;
                        pass.cause = common::Error{
                            errno, prefix("emptying journal " + journal_path +
                                              " (its rows are all in the database; retried at the next pass)",
                                          path)};
                    }
                }
            }
            if (pass.ok) {
                ingest_error.reset();
                backoff = ingest_retry_min;
            } else {
                ingest_error = pass.cause;
                retry_at = Clock::now() + backoff;
                backoff = std::min<Clock::duration>(backoff * 2, ingest_retry_max);
            }
            ingest_failing.store(ingest_error.has_value(), std::memory_order_release);
            last_pass = std::move(pass);
            served = serving;
            done_cv.notify_all();

            if (wal_frames >= wal_checkpoint_frames) {
                // PASSIVE: never waits for the owner's reads. If it cannot
                // finish, the next commit's count brings it back here.
                lk.unlock();
                sqlite3_wal_checkpoint_v2(db.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
                wal_frames = 0;
                lk.lock();
            }
        }
    }

    // ---- Commit path (owner's thread) --------------------------------------

    void drop_batch() {
        batch.clear();
        batch_rows = 0;
        batch_max_session = 0;
        batch_max_request = 0;
    }

    // Writes the open batch to the journal with one write() and queues it for
    // the ingester. The batch is consumed either way; on failure nothing of it
    // remains in the journal. The lock is held across the write: the ingester
    // empties the journal under it, and must never see a record that is in
    // the journal but not yet queued.
    common::Status write_batch() {
        if (batch_rows == 0) return {};
        // Built only on failure: the success path allocates nothing.
        // The batch's seqs follow the last commit (the head has not moved yet
        // for a single append()).
        auto rows = [&] {
            return seq_range(committed_seq + 1, committed_seq + static_cast<std::int64_t>(batch_rows));
        };
        std::unique_lock lk(mu);
        auto over_bound = [&] {
            return queue_rows + taken_rows + batch_rows > max_queued_rows ||
                   queue.size() + taken_bytes + batch.size() > max_queued_bytes;
        };
        if (over_bound()) {
            // Backpressure: wait for the ingester to take everything queued.
            // Nothing is appended meanwhile, so one pass empties the queue
            // unless the database refuses the rows.
            auto flushed = wait_for_pass(lk);
            if (over_bound()) {
                std::string msg = "audit database not accepting rows; refusing to release more decisions (" +
                                  std::to_string(queue_rows + taken_rows) + " rows, " +
                                  std::to_string(queue.size() + taken_bytes) + " bytes queued; " + rows() +
                                  " dropped";
                if (!flushed) msg += "; flush: " + flushed.error().to_string();
                msg += ")";
                drop_batch();
                return common::fail(ENOSPC, prefix(msg, path));
            }
        }
        // The ingester empties the journal only when all of it is in SQLite,
        // which under constant load may not happen by itself. Past the bound,
        // stop appending until it has caught up and emptied it. Pointless
        // while the database refuses rows: the queue bound limits that case.
        if (journal_size > 0 && journal_size + batch.size() > max_journal_bytes && !ingest_error) {
            (void)wait_for_pass(lk);
        }
        if (journal_tail_dirty) {
            if (::ftruncate(journal.get(), static_cast<off_t>(journal_size)) != 0) {
                auto err = common::fail_errno(
                    prefix("journal " + journal_path +
                               ": cannot cut off a failed write (ftruncate), refusing " + rows(),
                           path));
                drop_batch();
                return err;
            }
            journal_tail_dirty = false;
        }

        const std::size_t total = batch.size();
        const char* data = batch.data();
        std::size_t left = total;
        while (left > 0) {
            const ssize_t n = ::write(journal.get(), data, left);
            if (n > 0) {
                data += n;
                left -= static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            // write() returning 0 for a regular file has no errno; call it EIO.
            const int err = n < 0 ? errno : EIO;
            std::string msg = "journal " + journal_path + ": write of " + rows() + " (" +
                              std::to_string(total) + " bytes) failed";
            if (left < total) {
                // A partial record must not stay: the next record would follow
                // it and replay would see damage in the middle of the file.
                if (::ftruncate(journal.get(), static_cast<off_t>(journal_size)) != 0) {
                    journal_tail_dirty = true;
                    msg +=
                        " after a partial write, and cutting it off failed too (retried before the next "
                        "write)";
                }
            }
            drop_batch();
            return common::fail(err, prefix(msg + "; the batch is dropped", path));
        }
        journal_size += total;
        const std::size_t rows_before = queue_rows;
        const std::size_t bytes_before = queue.size();
        if (queue.empty()) {
            queue.swap(batch);  // no copy; the batch gets the queue's old (empty) buffer
        } else {
            queue += batch;
        }
        queue_rows += batch_rows;
        // Wake the ingester when it may be asleep with nothing to do, or when
        // the queue just became large; not for every commit.
        const bool wake = rows_before == 0 ||
                          (rows_before < ingest_wake_rows && queue_rows >= ingest_wake_rows) ||
                          (bytes_before < ingest_wake_bytes && queue.size() >= ingest_wake_bytes);
        lk.unlock();
        if (wake) ingest_cv.notify_one();

        committed_max_session = std::max(committed_max_session, batch_max_session);
        committed_max_request = std::max(committed_max_request, batch_max_request);
        drop_batch();
        if (batch.capacity() > (std::size_t{1} << 20)) std::string().swap(batch);
        return {};
    }

    // Chains event onto the head (without moving the head) and appends its
    // journal record to the batch.
    common::Status chain(Event& event) {
        if (head_seq == std::numeric_limits<std::int64_t>::max()) {
            return common::fail(prefix("append: seq space exhausted", path));
        }
        // Caps go first: the hash covers exactly what is stored.
        detail::apply_limits(event);
        if (event.time_us == 0) event.time_us = now_us();
        event.seq = head_seq + 1;
        event.prev_hash = head_hash;
        auto hash = detail::append_record(batch, event.prev_hash, detail::row_view(event));
        if (!hash) return std::unexpected(hash.error().wrap(prefix("append", path)));
        event.hash = std::move(*hash);
        ++batch_rows;
        batch_max_session = std::max(batch_max_session, event.session);
        batch_max_request = std::max(batch_max_request, event.request_id);
        return {};
    }

    // open(): brings SQLite up to date with the journal, then empties it.
    common::Status replay() {
        auto bytes = detail::read_whole_file(journal.get(), journal_path);
        if (!bytes) return std::unexpected(bytes.error().wrap(prefix("replaying journal", path)));
        if (bytes->empty()) return {};
        const detail::JournalScan scan = detail::parse_journal(*bytes);
        auto at = [&](std::uint64_t offset) {
            return "journal " + journal_path + ": record at offset " + std::to_string(offset);
        };
        if (scan.problem) {
            const auto& p = *scan.problem;
            return common::fail(prefix(
                at(p.offset) + (p.seq > 0 ? " (seq " + std::to_string(p.seq) + ")" : std::string()) + ": " +
                    p.reason + "; refusing to open, the journal and database are left as they are",
                path));
        }

        // Rows a flush already moved to SQLite (it finished, the journal was
        // not emptied yet) are skipped, but must be the same rows.
        auto lookup = detail::prepare(db.get(), path, "SELECT hash FROM events WHERE seq = ?1");
        if (!lookup) return std::unexpected(lookup.error());
        std::size_t first_new = 0;
        for (; first_new < scan.rows.size() && scan.rows[first_new].record.row.seq <= head_seq; ++first_new) {
            const detail::JournalRow& r = scan.rows[first_new];
            StmtReset reset(lookup->get());
            sqlite3_bind_int64(lookup->get(), 1, r.record.row.seq);
            const int rc = sqlite3_step(lookup->get());
            if (rc == SQLITE_ROW) {
                const std::string_view stored = col_text(lookup->get(), 0);
                if (stored != r.record.hash) {
                    return common::fail(
                        prefix(at(r.offset) + " (seq " + std::to_string(r.record.row.seq) +
                                   "): differs from the database row with that seq (journal hash " +
                                   short_hash(r.record.hash) + ", database hash " + short_hash(stored) +
                                   "); refusing to open",
                               path));
                }
            } else if (rc != SQLITE_DONE) {
                return std::unexpected(detail::sqlite_error(db.get(), path, "replay: looking up seq", rc));
            }
            // SQLITE_DONE: sqlite_sequence says the row was issued but it is
            // gone from the table. Re-inserting it would hide that; verify
            // keeps reporting the gap.
        }

        const std::size_t new_rows = scan.rows.size() - first_new;
        if (new_rows > 0) {
            const detail::RecordView& first = scan.rows[first_new].record;
            // With a predecessor in the journal the parser checked the link;
            // otherwise the first new record must link to the database's head.
            if (first_new == 0 && (first.row.seq != head_seq + 1 || first.prev_hash != head_hash)) {
                return common::fail(
                    prefix(at(scan.rows[first_new].offset) + " (seq " + std::to_string(first.row.seq) +
                               "): does not continue the database chain (database head seq " +
                               std::to_string(head_seq) + ", hash " + short_hash(head_hash) +
                               "; record links to " + short_hash(first.prev_hash) + "); refusing to open",
                           path));
            }
            std::vector<detail::RecordView> rows;
            rows.reserve(new_rows);
            for (std::size_t i = first_new; i < scan.rows.size(); ++i) rows.push_back(scan.rows[i].record);
            if (auto st = insert_all(rows, "replaying journal " + journal_path); !st) return st;
            head_seq = rows.back().row.seq;
            head_hash = std::string(rows.back().hash);
            committed_seq = head_seq;
            committed_hash = head_hash;
        }

        // Nothing in the journal is needed any more; a torn tail must go too,
        // or the next record would follow it.
        if (::ftruncate(journal.get(), 0) != 0) {
            return common::fail_errno(prefix("emptying journal " + journal_path + " after replay", path));
        }
        journal_size = 0;

        std::vector<std::string> notes;
        if (new_rows > 0) {
            notes.push_back("recovered " + std::to_string(new_rows) + " rows (" +
                            seq_range(scan.rows[first_new].record.row.seq, scan.rows.back().record.row.seq) +
                            ") from journal " + journal_path +
                            ": the previous writer did not shut down cleanly");
        }
        if (first_new > 0) {
            notes.push_back(
                "skipped " + std::to_string(first_new) + " journal rows (" +
                seq_range(scan.rows.front().record.row.seq, scan.rows[first_new - 1].record.row.seq) +
                ") already in the database");
        }
        if (scan.torn_bytes > 0) {
            notes.push_back("ignored an incomplete final record in journal " + journal_path + " at offset " +
                            std::to_string(scan.torn_offset) + " (" + std::to_string(scan.torn_bytes) +
                            " bytes, " + scan.torn_reason + "): a write torn by a crash or power loss");
        }
        for (const auto& n : notes) {
            if (!recovery_note.empty()) recovery_note += "; ";
            recovery_note += n;
        }
        return {};
    }
};

AuditLog::AuditLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AuditLog::AuditLog(AuditLog&&) noexcept = default;
AuditLog& AuditLog::operator=(AuditLog&&) noexcept = default;
AuditLog::~AuditLog() = default;

namespace {

// Opens a connection with the settings every handle gets. NOMUTEX: each
// connection is used by one thread at a time (the writer by the ingester, the
// reader by the owner).
common::Status open_connection(const std::string& db_path, int flags, DbPtr& out, std::string_view what) {
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(db_path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                                   nullptr);
    out.reset(raw);
    if (rc != SQLITE_OK) return std::unexpected(detail::sqlite_error(raw, db_path, what, rc));
    sqlite3_busy_timeout(raw, 5000);
    // trusted_schema=OFF: views and triggers in the file may not call
    // functions with side effects, in case someone planted some.
    if (auto st = detail::exec(raw, db_path, "PRAGMA trusted_schema = OFF", "PRAGMA trusted_schema"); !st)
        return st;
    return {};
}

}  // namespace

common::Result<AuditLog> AuditLog::open(const std::string& db_path) {
    if (db_path.empty()) return common::fail("audit log: empty database path");
    if (auto st = create_private_file(db_path); !st) return std::unexpected(st.error());

    auto impl = std::make_unique<Impl>();
    impl->path = db_path;
    impl->journal_path = detail::journal_path_for(db_path);
    // The writer lock comes before any SQLite write, so a second writer
    // changes nothing.
    auto journal = open_journal(db_path, impl->journal_path);
    if (!journal) return std::unexpected(journal.error());
    impl->journal = std::move(*journal);

    if (auto st = open_connection(db_path, SQLITE_OPEN_READWRITE, impl->db, "sqlite3_open_v2"); !st)
        return std::unexpected(st.error());
    sqlite3* db = impl->db.get();
    if (auto st = detail::exec(db, db_path, "PRAGMA foreign_keys = ON", "PRAGMA foreign_keys = ON"); !st)
        return std::unexpected(st.error());
    auto mode = single_text(db, db_path, "PRAGMA journal_mode = WAL");
    if (!mode) return std::unexpected(mode.error());
    if (*mode != "wal") {
        return common::fail(prefix("PRAGMA journal_mode = WAL: SQLite kept journal mode '" +
                                       printable(*mode) +
                                       "' (WAL needs shared memory; is this a network filesystem?)",
                                   db_path));
    }
    // Replaces SQLite's autocheckpoint: the ingester checkpoints between passes.
    sqlite3_wal_hook(db, &Impl::on_wal_commit, impl.get());
    // NORMAL in WAL mode: COMMIT write()s the frames to the WAL before it
    // returns (a daemon crash loses nothing) and fsyncs only at checkpoints (a
    // power cut may lose the last commits). The ingester relies on the first
    // half before it empties the journal.
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

    // The owner's own connection for reads, so query() never waits for (or
    // races with) the ingester's transaction. query_only: it never writes.
    if (auto st = open_connection(db_path, SQLITE_OPEN_READWRITE, impl->rdb, "sqlite3_open_v2 (reader)"); !st)
        return std::unexpected(st.error());
    if (auto st = detail::exec(impl->rdb.get(), db_path, "PRAGMA query_only = ON", "PRAGMA query_only"); !st)
        return std::unexpected(st.error());
    if (auto st = impl->prepare_queries(); !st) return std::unexpected(st.error());

    if (auto st = impl->load_head(); !st) return std::unexpected(st.error());
    if (auto st = impl->replay(); !st) {
        // Whatever is in the journal stays there for inspection.
        impl->flush_on_destroy = false;
        return std::unexpected(st.error());
    }

    // The ingester blocks every signal: a process-directed signal must reach
    // a thread that expects it (airlockd reads SIGTERM/SIGHUP from a signalfd
    // and blocks them only after opening the log). Set around the creation so
    // the thread never runs a moment with them unblocked.
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    try {
        Impl* s = impl.get();
        impl->ingester = std::thread([s] { s->ingest_loop(); });
        ::pthread_setname_np(impl->ingester.native_handle(), "airlock-ingest");  // for ps, top, perf
    } catch (const std::system_error& e) {
        ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
        return common::fail(e.code().value(), prefix("starting the ingester thread", db_path));
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return AuditLog(std::move(impl));
}

common::Result<AuditLog> AuditLog::open_read_only(const std::string& db_path) {
    auto impl = std::make_unique<Impl>();
    impl->path = db_path;
    impl->read_only = true;
    if (auto st = open_connection(db_path, SQLITE_OPEN_READONLY, impl->rdb, "sqlite3_open_v2 (read-only)");
        !st) {
        return std::unexpected(st.error());
    }
    auto version = single_text(impl->rdb.get(), db_path,
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
    if (auto st = s.chain(event); !st) return std::unexpected(st.error());
    if (s.in_txn) {
        s.head_seq = event.seq;
        s.head_hash = event.hash;
        return event;
    }
    // Outside begin/commit: a batch of one, journaled now. The head moves
    // only once the row is in the journal.
    if (auto st = s.write_batch(); !st) return std::unexpected(st.error());
    s.head_seq = s.committed_seq = event.seq;
    s.head_hash = s.committed_hash = event.hash;
    return event;
}

common::Status AuditLog::begin() {
    if (!impl_) return common::fail("audit log: begin on a moved-from AuditLog");
    Impl& s = *impl_;
    if (s.read_only) return common::fail(prefix("begin: opened read-only", s.path));
    if (s.in_txn) return common::fail(prefix("begin: a transaction is already open", s.path));
    s.in_txn = true;
    return {};
}

common::Status AuditLog::commit() {
    if (!impl_) return common::fail("audit log: commit on a moved-from AuditLog");
    Impl& s = *impl_;
    if (!s.in_txn) return common::fail(prefix("commit: no transaction is open", s.path));
    s.in_txn = false;
    if (auto st = s.write_batch(); !st) {
        s.restore_committed_head();
        return st;
    }
    s.committed_seq = s.head_seq;
    s.committed_hash = s.head_hash;
    return {};
}

void AuditLog::rollback() {
    if (!impl_) return;
    Impl& s = *impl_;
    s.in_txn = false;
    s.drop_batch();
    s.restore_committed_head();
}

common::Status AuditLog::flush() {
    if (!impl_) return common::fail("audit log: flush on a moved-from AuditLog");
    Impl& s = *impl_;
    if (s.read_only) return common::fail(prefix("flush: opened read-only", s.path));
    std::unique_lock lk(s.mu);
    return s.wait_for_pass(lk);
}

std::size_t AuditLog::queued_rows() const {
    if (!impl_) return 0;
    std::lock_guard lk(impl_->mu);
    return impl_->queue_rows + impl_->taken_rows;
}

std::optional<common::Error> AuditLog::last_ingest_error() const {
    if (!impl_ || !impl_->ingest_failing.load(std::memory_order_acquire)) return std::nullopt;
    std::lock_guard lk(impl_->mu);
    return impl_->ingest_error;
}

std::string AuditLog::recovery_note() const {
    return impl_ ? impl_->recovery_note : std::string();
}

void AuditLog::hold_ingest_for_test(bool hold) {
    if (!impl_) return;
    {
        std::lock_guard lk(impl_->mu);
        impl_->hold = hold;
    }
    impl_->ingest_cv.notify_one();
}

void AuditLog::abandon_for_test() {
    if (!impl_) return;
    Impl& s = *impl_;
    s.flush_on_destroy = false;
    {
        std::lock_guard lk(s.mu);
        s.abandoned.store(true);
    }
    s.ingest_cv.notify_one();
    impl_.reset();  // joins the ingester, which stops wherever it is
}

common::Result<AuditLog::MaxIds> AuditLog::max_ids() const {
    if (!impl_) return common::fail("audit log: max_ids on a moved-from AuditLog");
    const Impl& s = *impl_;
    auto stmt = detail::prepare(s.rdb.get(), s.path,
                                "SELECT COALESCE(MAX(session), 0), COALESCE(MAX(request_id), 0) FROM events");
    if (!stmt) return std::unexpected(stmt.error());
    int rc = sqlite3_step(stmt->get());
    if (rc != SQLITE_ROW) return std::unexpected(detail::sqlite_error(s.rdb.get(), s.path, "max ids", rc));
    MaxIds ids{sqlite3_column_int64(stmt->get(), 0), sqlite3_column_int64(stmt->get(), 1)};
    // Rows committed since open() (queued ones among them) and the open
    // batch count too: an id they use is taken.
    ids.session = std::max({ids.session, s.committed_max_session, s.batch_max_session});
    ids.request = std::max({ids.request, s.committed_max_request, s.batch_max_request});
    return ids;
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
        return std::unexpected(detail::sqlite_error(s.rdb.get(), s.path, "query events", rc));
    return out;
}

namespace {

VerifyReport bad(VerifyReport r, std::int64_t seq, std::string problem) {
    r.ok = false;
    r.first_bad_seq = seq;
    r.problem = std::move(problem);
    return r;
}

// The database's last row as verify saw it.
struct ChainEnd {
    std::int64_t seq = 0;
    std::string hash{genesis_hash};
};

// Walks the chain inside one read transaction, so rows and sqlite_sequence come
// from the same snapshot even while the daemon keeps appending.
common::Result<VerifyReport> verify_snapshot(sqlite3* db, const std::string& path, ChainEnd& end) {
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
    end.seq = last_seq;
    end.hash = expected_prev;
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

// Checks that the journal's records are intact and continue the database's
// chain (db_end, from the same read transaction). Sets journal_fault when the
// report's problem is the journal's.
common::Result<VerifyReport> verify_journal(sqlite3* db, const std::string& path,
                                            const std::string& journal_path, std::string_view bytes,
                                            const ChainEnd& db_end, VerifyReport report,
                                            bool& journal_fault) {
    const detail::JournalScan scan = detail::parse_journal(bytes);
    auto at = [&](std::uint64_t offset) {
        return "journal " + journal_path + " record at offset " + std::to_string(offset);
    };
    auto lookup = detail::prepare(db, path, "SELECT hash FROM events WHERE seq = ?1");
    if (!lookup) return std::unexpected(lookup.error());

    journal_fault = true;
    bool beyond = false;  // past the database's last row
    for (const detail::JournalRow& r : scan.rows) {
        const detail::RecordView& e = r.record;
        if (e.row.seq <= db_end.seq) {
            // Flushed already, journal not yet emptied: must be the same row.
            StmtReset reset(lookup->get());
            sqlite3_bind_int64(lookup->get(), 1, e.row.seq);
            const int rc = sqlite3_step(lookup->get());
            if (rc == SQLITE_ROW) {
                const std::string_view stored = col_text(lookup->get(), 0);
                if (stored != e.hash) {
                    return bad(report, e.row.seq,
                               at(r.offset) + " differs from the database row with that seq (journal hash " +
                                   short_hash(e.hash) + ", database hash " + short_hash(stored) + ")");
                }
            } else if (rc != SQLITE_DONE) {
                return std::unexpected(
                    detail::sqlite_error(db, path, "verify: looking up a journal seq", rc));
            } else {
                // Only seq <= 0 can be absent here: the database walk found 1..db_end.seq.
                return bad(report, e.row.seq,
                           at(r.offset) + " has seq " + std::to_string(e.row.seq) +
                               ", which no database row can have");
            }
            continue;
        }
        if (!beyond) {
            beyond = true;
            if (e.row.seq != db_end.seq + 1) {
                return bad(report, db_end.seq + 1,
                           "journal does not continue the database: the database ends at seq " +
                               std::to_string(db_end.seq) + " but the " + at(r.offset) + " is seq " +
                               std::to_string(e.row.seq) + " (rows missing in between)");
            }
            if (e.prev_hash != db_end.hash) {
                return bad(report, e.row.seq,
                           "journal does not continue the database chain: " + at(r.offset) + " links to " +
                               short_hash(e.prev_hash) + " but the database's last row (seq " +
                               std::to_string(db_end.seq) + ") has hash " + short_hash(db_end.hash));
            }
        }
        ++report.rows_checked;
    }
    if (scan.problem) {
        const auto& p = *scan.problem;
        std::int64_t seq = p.seq;
        if (seq == 0) seq = scan.rows.empty() ? db_end.seq + 1 : scan.rows.back().record.row.seq + 1;
        return bad(report, seq, at(p.offset) + ": " + p.reason);
    }
    // An incomplete final record is what a write in progress looks like from
    // here; open() reports a torn one when it replays.
    journal_fault = false;
    return report;
}

// One attempt: the journal is read before the database snapshot is taken.
// Rows only ever move from the journal to the database, so every journal row
// is then either in that snapshot or after its end; reading the other way
// round, a flush in between would make the journal seem to skip rows.
common::Result<VerifyReport> verify_once(const std::string& db_path, const std::string& journal_path,
                                         bool& journal_fault) {
    journal_fault = false;
    std::optional<std::string> journal;
    {
        common::UniqueFd fd(::open(journal_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
        if (fd) {
            auto bytes = detail::read_whole_file(fd.get(), journal_path);
            if (!bytes) {
                return std::unexpected(bytes.error().wrap(prefix("verify: cannot read journal", db_path)));
            }
            journal = std::move(*bytes);
        } else if (errno != ENOENT) {
            return common::fail_errno(prefix("verify: cannot read journal " + journal_path, db_path));
        }
    }

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
    ChainEnd end;
    auto report = verify_snapshot(db.get(), db_path, end);
    if (report && report->ok && journal && !journal->empty()) {
        report =
            verify_journal(db.get(), db_path, journal_path, *journal, end, std::move(*report), journal_fault);
    }
    sqlite3_exec(db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    return report;
}

}  // namespace

common::Result<VerifyReport> AuditLog::verify(const std::string& db_path) {
    const std::string journal_path = detail::journal_path_for(db_path);
    // A live daemon may empty the journal and append to it again while it is
    // being read, which can look like damage. Real damage stays put, so a
    // journal problem counts only if it shows on every attempt.
    constexpr int attempts = 3;
    common::Result<VerifyReport> report;
    for (int i = 0; i < attempts; ++i) {
        bool journal_fault = false;
        report = verify_once(db_path, journal_path, journal_fault);
        if (!report || report->ok || !journal_fault) break;
    }
    return report;
}

}  // namespace airlock::audit
