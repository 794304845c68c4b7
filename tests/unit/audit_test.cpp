// Audit log tests: real SQLite files in a private temp dir; tampering is done
// through a second, independent sqlite3 connection (or by editing the journal
// file), as an attacker would. commit() only writes the journal and a
// background ingester copies rows into SQLite a few milliseconds later: tests
// that look at the database flush() first, and tests that look at the queue,
// the journal or the database between commit() and flush() hold the ingester
// (hold_ingest_for_test) so it cannot race them.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "audit/audit_log.hpp"
#include "audit/format.hpp"

namespace fs = std::filesystem;
using namespace airlock::audit;

namespace {

std::string sha256_hex(const std::string& data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int len = 0;
    EXPECT_EQ(EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr), 1);
    std::string out;
    static constexpr char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < len; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 0xf];
    }
    return out;
}

Event make_event(int i, std::int64_t session = 1) {
    Event e;
    e.time_us = 1'700'000'000'000'000 + i;
    e.kind = EventKind::decision;
    e.session = session;
    e.pid = 1000 + i;
    e.action = "open";
    e.object = "/home/u/file" + std::to_string(i);
    e.verdict = (i % 2 != 0) ? "allow" : "deny";
    e.rule = "rule-" + std::to_string(i);
    e.actor = "policy";
    e.detail_json = R"({"i":)" + std::to_string(i) + "}";
    return e;
}

// An independent connection that plays the attacker (or the auditor).
class Sql {
public:
    explicit Sql(const std::string& path) {
        EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
        sqlite3_busy_timeout(db_, 5000);
    }
    Sql(const Sql&) = delete;
    Sql& operator=(const Sql&) = delete;
    ~Sql() { sqlite3_close_v2(db_); }

    // Runs sql; returns the error text, empty on success.
    std::string exec(const std::string& sql) {
        char* err = nullptr;
        const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
        std::string msg = rc == SQLITE_OK ? "" : (err != nullptr ? err : "error");
        sqlite3_free(err);
        return msg;
    }
    void must(const std::string& sql) { ASSERT_EQ(exec(sql), "") << sql; }
    // The first column of the first row as text ("" when no row).
    std::string scalar(const std::string& sql) {
        sqlite3_stmt* st = nullptr;
        EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
        std::string out;
        if (st != nullptr && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != nullptr) {
            out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
        }
        sqlite3_finalize(st);
        return out;
    }
    // What an attacker does first: the append-only triggers only stop accidents.
    void drop_guards() {
        must("DROP TRIGGER events_no_update");
        must("DROP TRIGGER events_no_delete");
    }

private:
    sqlite3* db_ = nullptr;
};

class AuditTest : public ::testing::Test {
protected:
    void SetUp() override {
        const char* tmp = std::getenv("TMPDIR");
        std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/audit_test.XXXXXX";
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
        path_ = dir_ + "/audit.db";
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    AuditLog open_log() {
        auto log = AuditLog::open(path_);
        if (!log) ADD_FAILURE() << log.error().to_string();
        return std::move(*log);
    }

    // A log with rows 1..n, closed again.
    void make_log(int n) {
        auto log = open_log();
        for (int i = 1; i <= n; ++i) ASSERT_TRUE(log.append(make_event(i)).has_value());
    }

    // Rows 1..n committed to the journal as one batch, then a crash before
    // the ingester copied any of them into SQLite.
    void crash_with_batch_in_journal(int n) {
        auto log = open_log();
        log.hold_ingest_for_test();
        ASSERT_TRUE(log.begin().has_value());
        for (int i = 1; i <= n; ++i) ASSERT_TRUE(log.append(make_event(i)).has_value());
        ASSERT_TRUE(log.commit().has_value());
        log.abandon_for_test();
    }

    VerifyReport verify() {
        auto r = AuditLog::verify(path_);
        if (!r) {
            ADD_FAILURE() << r.error().to_string();
            return VerifyReport{.ok = false, .rows_checked = -1, .first_bad_seq = -1, .problem = "error"};
        }
        return *r;
    }

    // Every row, after moving the journal into SQLite (query() reads SQLite only).
    std::vector<Event> all(AuditLog& log) {
        if (auto f = log.flush(); !f) ADD_FAILURE() << f.error().to_string();
        auto rows = log.query({});
        if (!rows) {
            ADD_FAILURE() << rows.error().to_string();
            return {};
        }
        return *rows;
    }

    std::string journal() const { return path_ + ".journal"; }
    std::uintmax_t journal_size() const {
        std::error_code ec;
        const auto n = fs::file_size(journal(), ec);
        return ec ? static_cast<std::uintmax_t>(-1) : n;
    }

    std::string dir_;
    std::string path_;
};

#define EXPECT_BAD_AT(report, seq, words)                                   \
    do {                                                                    \
        const VerifyReport r_ = (report);                                   \
        EXPECT_FALSE(r_.ok);                                                \
        EXPECT_EQ(r_.first_bad_seq, (seq)) << r_.problem;                   \
        EXPECT_NE(r_.problem.find(words), std::string::npos) << r_.problem; \
    } while (0)

// ---------------------------------------------------------------------------
// Append, query, chain

TEST_F(AuditTest, AppendQueryRoundTrip) {
    auto log = open_log();
    Event in;
    in.time_us = 1'234'567;
    in.kind = EventKind::request_resolved;
    in.session = 7;
    in.pid = 4242;
    in.action = "connect";
    in.object = std::string("10.0.0.1:443\0tail", 17);  // embedded NUL survives
    in.verdict = "approved";
    in.rule = "net-ask";
    in.request_id = 99;
    in.actor = "user:alice(1000)";
    in.scope = "session";
    in.reason = "looks fine | ok";
    in.latency_us = 1500;
    in.detail_json = R"({"k":"v"})";
    in.seq = 555;  // ignored
    auto out = log.append(in);
    ASSERT_TRUE(out.has_value()) << out.error().to_string();
    EXPECT_EQ(out->seq, 1);
    EXPECT_EQ(out->prev_hash, std::string(genesis_hash));
    EXPECT_EQ(out->hash.size(), 64u);

    Event now = make_event(2);
    now.time_us = 0;
    auto filled = log.append(now);
    ASSERT_TRUE(filled.has_value());
    EXPECT_EQ(filled->seq, 2);
    EXPECT_GT(filled->time_us, 1'600'000'000'000'000);  // wall clock, microseconds

    auto rows = all(log);
    ASSERT_EQ(rows.size(), 2u);
    const Event& r = rows[0];
    EXPECT_EQ(r.seq, 1);
    EXPECT_EQ(r.time_us, in.time_us);
    EXPECT_EQ(r.kind, in.kind);
    EXPECT_EQ(r.session, in.session);
    EXPECT_EQ(r.pid, in.pid);
    EXPECT_EQ(r.action, in.action);
    EXPECT_EQ(r.object, in.object);
    EXPECT_EQ(r.verdict, in.verdict);
    EXPECT_EQ(r.rule, in.rule);
    EXPECT_EQ(r.request_id, in.request_id);
    EXPECT_EQ(r.actor, in.actor);
    EXPECT_EQ(r.scope, in.scope);
    EXPECT_EQ(r.reason, in.reason);
    EXPECT_EQ(r.latency_us, in.latency_us);
    EXPECT_EQ(r.detail_json, in.detail_json);
    EXPECT_EQ(r.prev_hash, out->prev_hash);
    EXPECT_EQ(r.hash, out->hash);
    EXPECT_EQ(rows[1].time_us, filled->time_us);

    const VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 2);
}

TEST_F(AuditTest, ChainLinksAndHashFormula) {
    auto log = open_log();
    for (int i = 1; i <= 5; ++i) ASSERT_TRUE(log.append(make_event(i)).has_value());
    auto rows = all(log);
    ASSERT_EQ(rows.size(), 5u);
    EXPECT_EQ(rows[0].prev_hash, std::string(64, '0'));
    for (std::size_t i = 0; i < rows.size(); ++i) {
        EXPECT_EQ(rows[i].seq, static_cast<std::int64_t>(i + 1));
        if (i > 0) {
            EXPECT_EQ(rows[i].prev_hash, rows[i - 1].hash) << "row " << i + 1;
        }
        // Recomputed independently of the library's hashing code.
        EXPECT_EQ(rows[i].hash, sha256_hex(rows[i].prev_hash + "\n" + canonical_form(rows[i])));
        EXPECT_EQ(rows[i].hash.find_first_not_of("0123456789abcdef"), std::string::npos);
    }
}

TEST_F(AuditTest, VerifyFreshAndEmptyLogs) {
    { auto log = open_log(); }
    VerifyReport empty = verify();
    EXPECT_TRUE(empty.ok) << empty.problem;
    EXPECT_EQ(empty.rows_checked, 0);
    EXPECT_EQ(empty.first_bad_seq, 0);

    make_log(4);
    VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 4);
    EXPECT_EQ(v.first_bad_seq, 0);
    EXPECT_EQ(v.problem, "");
}

TEST_F(AuditTest, VerifyMissingFileIsAnError) {
    auto r = AuditLog::verify(dir_ + "/nope.db");
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message.find("nope.db"), std::string::npos) << r.error().message;
    EXPECT_FALSE(fs::exists(dir_ + "/nope.db"));  // read-only: never creates
}

TEST_F(AuditTest, VerifyReportsMissingTable) {
    std::ofstream(path_).close();  // an empty file is an empty SQLite database
    VerifyReport v = verify();
    EXPECT_BAD_AT(v, 1, "no events table");
}

// ---------------------------------------------------------------------------
// Tampering, each through a separate connection

TEST_F(AuditTest, UpdateOfAnySingleFieldOfMiddleRowIsCaught) {
    const std::vector<std::pair<std::string, bool>> columns = {
        {"time_us", true},    {"kind", false},        {"session", true},    {"pid", true},
        {"action", false},    {"object", false},      {"verdict", false},   {"rule", false},
        {"request_id", true}, {"actor", false},       {"scope", false},     {"reason", false},
        {"latency_us", true}, {"detail_json", false}, {"prev_hash", false}, {"hash", false}};
    for (const auto& [col, is_int] : columns) {
        SCOPED_TRACE(col);
        TearDown();
        SetUp();
        make_log(5);
        Sql sql(path_);
        sql.drop_guards();
        sql.must("UPDATE events SET " + col + " = " + (is_int ? col + " + 1" : col + " || 'x'") +
                 " WHERE seq = 3");
        const VerifyReport v = verify();
        EXPECT_FALSE(v.ok);
        EXPECT_EQ(v.first_bad_seq, 3) << v.problem;
        EXPECT_EQ(v.rows_checked, 2);
        const char* want = col == "prev_hash" ? "prev_hash mismatch" : "hash mismatch";
        EXPECT_NE(v.problem.find(want), std::string::npos) << v.problem;
    }
}

TEST_F(AuditTest, AppendOnlyTriggersStopAccidentalEdits) {
    make_log(2);
    Sql sql(path_);
    EXPECT_NE(sql.exec("UPDATE events SET verdict = 'allow' WHERE seq = 1").find("append-only"),
              std::string::npos);
    EXPECT_NE(sql.exec("DELETE FROM events WHERE seq = 2").find("append-only"), std::string::npos);
    EXPECT_TRUE(verify().ok);
}

TEST_F(AuditTest, DeleteOfMiddleRowIsCaught) {
    make_log(5);
    Sql sql(path_);
    sql.drop_guards();
    sql.must("DELETE FROM events WHERE seq = 3");
    EXPECT_BAD_AT(verify(), 3, "seq gap");
}

TEST_F(AuditTest, DeleteOfFirstRowIsCaught) {
    make_log(3);
    Sql sql(path_);
    sql.drop_guards();
    sql.must("DELETE FROM events WHERE seq = 1");
    EXPECT_BAD_AT(verify(), 1, "seq gap");
}

TEST_F(AuditTest, DeleteOfLastRowIsCaughtThroughSqliteSequence) {
    make_log(5);
    Sql sql(path_);
    sql.drop_guards();
    sql.must("DELETE FROM events WHERE seq = 5");
    const VerifyReport v = verify();
    EXPECT_BAD_AT(v, 5, "tail truncated");
    EXPECT_EQ(v.rows_checked, 4);
}

TEST_F(AuditTest, DeleteOfLastTwoRowsNamesTheFirstMissing) {
    make_log(5);
    Sql sql(path_);
    sql.drop_guards();
    sql.must("DELETE FROM events WHERE seq >= 4");
    EXPECT_BAD_AT(verify(), 4, "rows 4..5");
}

TEST_F(AuditTest, DeleteOfEveryRowIsCaught) {
    make_log(3);
    Sql sql(path_);
    sql.drop_guards();
    sql.must("DELETE FROM events");
    EXPECT_BAD_AT(verify(), 1, "tail truncated");
}

TEST_F(AuditTest, SwapOfTwoRowsIsCaught) {
    make_log(5);
    Sql sql(path_);
    sql.drop_guards();
    const std::string cols =
        "time_us, kind, session, pid, action, object, verdict, rule, request_id, actor, scope, reason, "
        "latency_us, detail_json, prev_hash, hash";
    sql.must("CREATE TEMP TABLE t AS SELECT * FROM events WHERE seq IN (2, 3)");
    sql.must("UPDATE events SET (" + cols + ") = (SELECT " + cols +
             " FROM t WHERE t.seq = 5 - events.seq) WHERE seq IN (2, 3)");
    ASSERT_EQ(sql.scalar("SELECT object FROM events WHERE seq = 2"), "/home/u/file3");
    EXPECT_BAD_AT(verify(), 2, "prev_hash mismatch");
}

TEST_F(AuditTest, SwapOfRowContentsKeepingHashesIsCaught) {
    make_log(5);
    Sql sql(path_);
    sql.drop_guards();
    const std::string cols = "time_us, pid, object, verdict, rule, detail_json";
    sql.must("CREATE TEMP TABLE t AS SELECT * FROM events WHERE seq IN (2, 3)");
    sql.must("UPDATE events SET (" + cols + ") = (SELECT " + cols +
             " FROM t WHERE t.seq = 5 - events.seq) WHERE seq IN (2, 3)");
    EXPECT_BAD_AT(verify(), 2, "hash mismatch");
}

TEST_F(AuditTest, ForgedRowAtTheEndIsCaught) {
    make_log(5);
    Sql sql(path_);
    const std::string last_hash = sql.scalar("SELECT hash FROM events WHERE seq = 5");
    // Links correctly but the attacker guessed the hash.
    sql.must(
        "INSERT INTO events(seq, time_us, kind, verdict, prev_hash, hash) VALUES(6, 1, 'decision', "
        "'allow', '" +
        last_hash + "', '" + std::string(64, 'f') + "')");
    const VerifyReport v = verify();
    EXPECT_BAD_AT(v, 6, "hash mismatch");
    EXPECT_EQ(v.rows_checked, 5);
}

TEST_F(AuditTest, ForgedRowAfterAGapIsCaught) {
    make_log(5);
    Sql sql(path_);
    sql.must("INSERT INTO events(seq, time_us, kind, prev_hash, hash) VALUES(9, 1, 'decision', 'a', 'b')");
    EXPECT_BAD_AT(verify(), 6, "seq gap");
}

TEST_F(AuditTest, ForgedRowBeforeTheStartIsCaught) {
    make_log(3);
    Sql sql(path_);
    sql.must("INSERT INTO events(seq, time_us, kind, prev_hash, hash) VALUES(0, 1, 'decision', '" +
             std::string(genesis_hash) + "', 'b')");
    EXPECT_BAD_AT(verify(), 1, "seq not increasing");
}

TEST_F(AuditTest, LoweredSqliteSequenceIsCaught) {
    make_log(5);
    Sql sql(path_);
    sql.must("UPDATE sqlite_sequence SET seq = 3 WHERE name = 'events'");
    EXPECT_BAD_AT(verify(), 4, "counter was edited");
}

TEST_F(AuditTest, DeletedSqliteSequenceEntryIsCaught) {
    make_log(2);
    Sql sql(path_);
    sql.must("DELETE FROM sqlite_sequence WHERE name = 'events'");
    EXPECT_BAD_AT(verify(), 3, "tail truncation cannot be ruled out");
}

// The documented limits: without an off-host anchor, an attacker who can write
// the file and recomputes hashes consistently is not detected.
TEST_F(AuditTest, LimitationConsistentForgeryIsNotDetected) {
    make_log(3);
    Sql sql(path_);
    Event forged = make_event(4);
    forged.seq = 4;
    forged.verdict = "allow";
    forged.prev_hash = sql.scalar("SELECT hash FROM events WHERE seq = 3");
    forged.hash = sha256_hex(forged.prev_hash + "\n" + canonical_form(forged));
    sql.must(
        "INSERT INTO events(seq, time_us, kind, session, pid, action, object, verdict, rule, actor, "
        "detail_json, prev_hash, hash) VALUES(4, " +
        std::to_string(forged.time_us) + ", 'decision', 1, " + std::to_string(forged.pid) + ", 'open', '" +
        forged.object + "', 'allow', '" + forged.rule + "', 'policy', '" + forged.detail_json + "', '" +
        forged.prev_hash + "', '" + forged.hash + "')");
    const VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 4);
}

TEST_F(AuditTest, LimitationTruncationWithFixedSqliteSequenceIsNotDetected) {
    make_log(5);
    Sql sql(path_);
    sql.drop_guards();
    sql.must("DELETE FROM events WHERE seq = 5");
    sql.must("UPDATE sqlite_sequence SET seq = 4 WHERE name = 'events'");
    const VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 4);
}

// After tail truncation, a restarted daemon must not reuse the deleted seqs:
// that would make max(seq) catch up with sqlite_sequence and erase the evidence.
TEST_F(AuditTest, ReopenAfterTailTruncationKeepsTheEvidence) {
    make_log(5);
    {
        Sql sql(path_);
        sql.drop_guards();
        sql.must("DELETE FROM events WHERE seq >= 4");
    }
    {
        auto log = open_log();
        for (int i = 0; i < 4; ++i) {
            auto e = log.append(make_event(10 + i));
            ASSERT_TRUE(e.has_value());
            EXPECT_EQ(e->seq, 6 + i);
        }
    }
    EXPECT_BAD_AT(verify(), 4, "seq gap");
}

// ---------------------------------------------------------------------------
// Transactions

TEST_F(AuditTest, BatchCommitMakesAllRowsVisible) {
    auto log = open_log();
    log.hold_ingest_for_test();  // look at the queue before the ingester takes it
    ASSERT_TRUE(log.append(make_event(1)).has_value());
    ASSERT_TRUE(log.flush().has_value());
    ASSERT_TRUE(log.begin().has_value());
    for (int i = 2; i <= 4; ++i) ASSERT_TRUE(log.append(make_event(i)).has_value());
    {
        Sql other(path_);
        EXPECT_EQ(other.scalar("SELECT count(*) FROM events"), "1");  // not yet committed
    }
    ASSERT_TRUE(log.commit().has_value());
    EXPECT_EQ(log.queued_rows(), 3u);
    ASSERT_TRUE(log.flush().has_value());
    Sql other(path_);
    EXPECT_EQ(other.scalar("SELECT count(*) FROM events"), "4");
    const VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 4);
}

TEST_F(AuditTest, RollbackDropsRowsAndRestoresTheHead) {
    auto log = open_log();
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE(log.append(make_event(i)).has_value());
    const std::string committed_hash = all(log).back().hash;

    ASSERT_TRUE(log.begin().has_value());
    ASSERT_TRUE(log.append(make_event(4)).has_value());
    ASSERT_TRUE(log.append(make_event(5)).has_value());
    EXPECT_EQ(all(log).size(), 3u);  // an open batch is in neither the journal nor SQLite
    log.rollback();

    auto rows = all(log);
    ASSERT_EQ(rows.size(), 3u);
    for (const auto& r : rows) EXPECT_NE(r.object, "/home/u/file4");

    auto next = log.append(make_event(6));
    ASSERT_TRUE(next.has_value());
    EXPECT_EQ(next->seq, 4);
    EXPECT_EQ(next->prev_hash, committed_hash);
    const VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 4);
}

TEST_F(AuditTest, TransactionMisuseIsReported) {
    auto log = open_log();
    EXPECT_FALSE(log.commit().has_value());
    ASSERT_TRUE(log.begin().has_value());
    auto again = log.begin();
    ASSERT_FALSE(again.has_value());
    EXPECT_NE(again.error().message.find(path_), std::string::npos);
    ASSERT_TRUE(log.commit().has_value());
    log.rollback();  // no open transaction: harmless
    ASSERT_TRUE(log.append(make_event(1)).has_value());
    EXPECT_TRUE(verify().ok);
}

TEST_F(AuditTest, DestroyingWithAnOpenBatchDropsIt) {
    {
        auto log = open_log();
        ASSERT_TRUE(log.append(make_event(1)).has_value());
        ASSERT_TRUE(log.begin().has_value());
        ASSERT_TRUE(log.append(make_event(2)).has_value());
    }
    auto log = open_log();
    EXPECT_EQ(all(log).size(), 1u);
    auto e = log.append(make_event(3));
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->seq, 2);
    EXPECT_TRUE(verify().ok);
}

TEST_F(AuditTest, ReopenKeepsChaining) {
    make_log(3);
    std::string last_hash;
    {
        auto log = open_log();
        auto rows = all(log);
        ASSERT_EQ(rows.size(), 3u);
        last_hash = rows.back().hash;
        auto e = log.append(make_event(4));
        ASSERT_TRUE(e.has_value());
        EXPECT_EQ(e->seq, 4);
        EXPECT_EQ(e->prev_hash, last_hash);
        ASSERT_TRUE(log.append(make_event(5)).has_value());
    }
    const VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 5);
}

TEST_F(AuditTest, MovedFromLogFailsCleanly) {
    auto log = open_log();
    AuditLog other = std::move(log);
    EXPECT_FALSE(log.append(make_event(1)).has_value());  // NOLINT(bugprone-use-after-move)
    EXPECT_FALSE(log.begin().has_value());
    EXPECT_FALSE(log.query({}).has_value());
    log.rollback();
    EXPECT_TRUE(other.append(make_event(1)).has_value());
}

// ---------------------------------------------------------------------------
// Failure paths: a real write failure via RLIMIT_FSIZE (EFBIG, no root needed)

class FsizeLimit {
public:
    explicit FsizeLimit(rlim_t bytes) {
        old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
        ::getrlimit(RLIMIT_FSIZE, &old_);
        rlimit lim{bytes, old_.rlim_max};
        ok_ = ::setrlimit(RLIMIT_FSIZE, &lim) == 0;
    }
    FsizeLimit(const FsizeLimit&) = delete;
    FsizeLimit& operator=(const FsizeLimit&) = delete;
    ~FsizeLimit() { lift(); }
    void lift() {
        if (!lifted_) {
            ::setrlimit(RLIMIT_FSIZE, &old_);
            ::signal(SIGXFSZ, old_handler_);
            lifted_ = true;
        }
    }
    [[nodiscard]] bool ok() const { return ok_; }

private:
    rlimit old_{};
    sighandler_t old_handler_ = SIG_DFL;
    bool ok_ = false;
    bool lifted_ = false;
};

Event big_event() {
    Event e = make_event(100);
    e.object = std::string(4000, 'o');
    e.detail_json = R"({"pad":")" + std::string(15000, 'p') + "\"}";
    return e;
}

// The limit sits inside the next record, so write() first succeeds partially
// and then fails with EFBIG: exactly the case that must leave no partial record.
TEST_F(AuditTest, FailedAppendLeavesTheHeadUnchanged) {
    auto log = open_log();
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE(log.append(make_event(i)).has_value());
    const std::string head = all(log).back().hash;  // flushed: the journal is empty again
    EXPECT_EQ(journal_size(), 0u);

    FsizeLimit limit(1000);
    ASSERT_TRUE(limit.ok());
    auto failed = log.append(big_event());
    limit.lift();
    ASSERT_FALSE(failed.has_value());
    EXPECT_EQ(failed.error().code, EFBIG) << failed.error().to_string();
    EXPECT_NE(failed.error().message.find(journal()), std::string::npos) << failed.error().to_string();
    EXPECT_NE(failed.error().message.find("seq 4 "), std::string::npos) << failed.error().to_string();
    EXPECT_EQ(journal_size(), 0u);  // the partial record was cut off
    EXPECT_EQ(log.queued_rows(), 0u);

    auto next = log.append(make_event(4));
    ASSERT_TRUE(next.has_value()) << next.error().to_string();
    EXPECT_EQ(next->seq, 4);
    EXPECT_EQ(next->prev_hash, head);
    EXPECT_EQ(all(log).size(), 4u);
    const VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 4);
}

TEST_F(AuditTest, FailedBatchRollsBackToLastCommit) {
    auto log = open_log();
    log.hold_ingest_for_test();  // look at the queue before the ingester takes it
    for (int i = 1; i <= 2; ++i) ASSERT_TRUE(log.append(make_event(i)).has_value());
    // Rows 1..2 stay in the journal: the failed batch must not disturb them.
    const auto before = journal_size();
    ASSERT_GT(before, 0u);

    ASSERT_TRUE(log.begin().has_value());
    ASSERT_TRUE(log.append(make_event(3)).has_value());
    ASSERT_TRUE(log.append(big_event()).has_value());
    FsizeLimit limit(static_cast<rlim_t>(before + 500));
    ASSERT_TRUE(limit.ok());
    auto committed = log.commit();
    limit.lift();
    ASSERT_FALSE(committed.has_value());
    EXPECT_NE(committed.error().message.find("seq 3..4"), std::string::npos) << committed.error().message;
    EXPECT_EQ(journal_size(), before);
    EXPECT_EQ(log.queued_rows(), 2u);
    log.rollback();  // what the daemon does; harmless here

    auto rows = all(log);
    ASSERT_EQ(rows.size(), 2u);
    auto next = log.append(make_event(4));
    ASSERT_TRUE(next.has_value()) << next.error().to_string();
    EXPECT_EQ(next->seq, 3);
    EXPECT_EQ(next->prev_hash, rows.back().hash);
    const VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 3);
}

// The head must follow a failed commit even if the caller never calls rollback().
TEST_F(AuditTest, FailedCommitResetsTheHeadByItself) {
    auto log = open_log();
    log.hold_ingest_for_test();  // look at the queue before the ingester takes it
    auto first = log.append(make_event(1));
    ASSERT_TRUE(first.has_value());
    const auto before = journal_size();

    ASSERT_TRUE(log.begin().has_value());
    ASSERT_TRUE(log.append(make_event(2)).has_value());
    ASSERT_TRUE(log.append(big_event()).has_value());
    FsizeLimit limit(static_cast<rlim_t>(before));  // not one more byte
    ASSERT_TRUE(limit.ok());
    auto committed = log.commit();
    limit.lift();
    ASSERT_FALSE(committed.has_value());
    EXPECT_NE(committed.error().message.find("journal"), std::string::npos) << committed.error().message;
    EXPECT_NE(committed.error().message.find("dropped"), std::string::npos) << committed.error().message;
    EXPECT_EQ(journal_size(), before);

    auto next = log.append(make_event(3));  // no rollback() call
    ASSERT_TRUE(next.has_value()) << next.error().to_string();
    EXPECT_EQ(next->seq, 2);
    EXPECT_EQ(next->prev_hash, first->hash);
    EXPECT_FALSE(log.commit().has_value());  // that append was its own transaction
    const VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 2);
}

TEST_F(AuditTest, OpenOfAGarbageFileFailsWithContext) {
    {
        std::ofstream f(path_);
        f << std::string(8192, 'x');
    }
    auto log = AuditLog::open(path_);
    ASSERT_FALSE(log.has_value());
    EXPECT_NE(log.error().message.find(path_), std::string::npos) << log.error().message;
    EXPECT_NE(log.error().message.find("not a database"), std::string::npos) << log.error().message;
}

TEST_F(AuditTest, OpenOfADirectoryFails) {
    auto log = AuditLog::open(dir_);
    ASSERT_FALSE(log.has_value());
    EXPECT_NE(log.error().message.find(dir_), std::string::npos);
}

TEST_F(AuditTest, OpenRejectsUnknownSchemaVersion) {
    { auto log = open_log(); }
    {
        Sql sql(path_);
        sql.must("UPDATE meta SET value = '99' WHERE key = 'schema_version'");
    }
    auto log = AuditLog::open(path_);
    ASSERT_FALSE(log.has_value());
    EXPECT_NE(log.error().message.find("schema_version '99'"), std::string::npos) << log.error().message;
    EXPECT_FALSE(AuditLog::verify(path_).has_value());
}

// ---------------------------------------------------------------------------
// File, schema, pragmas

TEST_F(AuditTest, FilesAreMode0600WhateverTheUmask) {
    const mode_t old = ::umask(0);
    {
        auto log = open_log();
        ASSERT_TRUE(log.append(make_event(1)).has_value());
        ASSERT_TRUE(log.flush().has_value());  // creates -wal and -shm content
        ASSERT_TRUE(log.append(make_event(2)).has_value());
        for (const char* suffix : {"", "-wal", "-shm", ".journal"}) {
            struct stat st {};
            ASSERT_EQ(::stat((path_ + suffix).c_str(), &st), 0) << suffix;
            EXPECT_EQ(st.st_mode & 07777, 0600u) << suffix;
        }
    }
    ::umask(old);
}

TEST_F(AuditTest, ExistingLooseModeIsTightened) {
    { std::ofstream(path_).close(); }
    { std::ofstream(journal()).close(); }
    ASSERT_EQ(::chmod(path_.c_str(), 0644), 0);
    ASSERT_EQ(::chmod(journal().c_str(), 0644), 0);
    auto log = open_log();
    for (const std::string& p : {path_, journal()}) {
        struct stat st {};
        ASSERT_EQ(::stat(p.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0600u) << p;
    }
}

TEST_F(AuditTest, SchemaViewsIndexesAndPragmas) {
    auto log = open_log();
    Event start = make_event(1);
    start.kind = EventKind::session_start;
    Event created = make_event(2);
    created.kind = EventKind::request_created;
    Event resolved = make_event(3);
    resolved.kind = EventKind::request_resolved;
    Event end = make_event(4);
    end.kind = EventKind::session_end;
    for (const Event& e : {start, make_event(5), created, resolved, make_event(6), end}) {
        ASSERT_TRUE(log.append(e).has_value());
    }
    ASSERT_TRUE(log.flush().has_value());
    Sql sql(path_);
    EXPECT_EQ(sql.scalar("SELECT value FROM meta WHERE key = 'schema_version'"), "1");
    EXPECT_EQ(sql.scalar("PRAGMA journal_mode"), "wal");
    EXPECT_EQ(sql.scalar("SELECT count(*) FROM sessions"), "2");
    EXPECT_EQ(sql.scalar("SELECT count(*) FROM decisions"), "2");
    EXPECT_EQ(sql.scalar("SELECT count(*) FROM approvals"), "2");
    EXPECT_EQ(sql.scalar("SELECT group_concat(seq) FROM approvals"), "3,4");
    EXPECT_EQ(sql.scalar("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name IN "
                         "('events_session', 'events_kind')"),
              "2");
    EXPECT_EQ(sql.scalar("SELECT strict FROM pragma_table_list WHERE name = 'events'"), "1");
}

// ---------------------------------------------------------------------------
// Verify against a live writer

TEST_F(AuditTest, VerifyWorksWhileTheLogIsOpenForWriting) {
    auto log = open_log();
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE(log.append(make_event(i)).has_value());
    VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 3);

    // Uncommitted rows (and their sqlite_sequence bump) are invisible, not a
    // false "tail truncated".
    ASSERT_TRUE(log.begin().has_value());
    ASSERT_TRUE(log.append(make_event(4)).has_value());
    ASSERT_TRUE(log.append(make_event(5)).has_value());
    v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 3);
    ASSERT_TRUE(log.commit().has_value());
    v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 5);

    // A reader (the CLI) does not disturb it; it sees rows once flushed.
    ASSERT_TRUE(log.flush().has_value());
    {
        auto reader = AuditLog::open_read_only(path_);
        ASSERT_TRUE(reader.has_value()) << reader.error().to_string();
        EXPECT_EQ(reader->query({})->size(), 5u);
    }
    ASSERT_TRUE(log.append(make_event(6)).has_value());
    v = verify();  // 5 rows in SQLite, 1 in the journal
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 6);

    Sql sql(path_);
    sql.drop_guards();
    sql.must("UPDATE events SET verdict = 'allow' WHERE seq = 2");
    EXPECT_BAD_AT(verify(), 2, "hash mismatch");
}

// ---------------------------------------------------------------------------
// Query

TEST_F(AuditTest, QueryFilters) {
    auto log = open_log();
    for (int i = 1; i <= 8; ++i) ASSERT_TRUE(log.append(make_event(i, i % 2 == 0 ? 2 : 1)).has_value());
    ASSERT_TRUE(log.flush().has_value());

    auto seqs = [&](const Filter& f) {
        std::vector<std::int64_t> out;
        auto rows = log.query(f);
        if (!rows) {
            ADD_FAILURE() << rows.error().to_string();
            return out;
        }
        for (const auto& r : *rows) out.push_back(r.seq);
        return out;
    };
    using V = std::vector<std::int64_t>;
    using std::nullopt;
    auto f = [](std::optional<std::int64_t> session, std::optional<std::int64_t> since, std::int64_t limit) {
        return Filter{.session = session, .since_seq = since, .limit = limit};
    };
    EXPECT_EQ(seqs({}), (V{1, 2, 3, 4, 5, 6, 7, 8}));
    EXPECT_EQ(seqs(f(2, nullopt, 0)), (V{2, 4, 6, 8}));
    EXPECT_EQ(seqs(f(nullopt, 5, 0)), (V{6, 7, 8}));
    EXPECT_EQ(seqs(f(nullopt, nullopt, 3)), (V{1, 2, 3}));
    EXPECT_EQ(seqs(f(1, 2, 2)), (V{3, 5}));
    EXPECT_EQ(seqs(f(3, nullopt, 0)), V{});
    EXPECT_EQ(seqs(f(nullopt, 8, 0)), V{});
    EXPECT_EQ(seqs(f(nullopt, -10, -1)), (V{1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST_F(AuditTest, ReadOnlyOpenQueriesButNeverWrites) {
    auto missing = AuditLog::open_read_only(path_);
    ASSERT_FALSE(missing.has_value());
    EXPECT_NE(missing.error().message.find(path_), std::string::npos);
    EXPECT_FALSE(fs::exists(path_));

    auto writer = open_log();
    writer.hold_ingest_for_test();  // look at the queue before the ingester takes it
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE(writer.append(make_event(i, i)).has_value());
    ASSERT_TRUE(writer.flush().has_value());
    ASSERT_TRUE(writer.begin().has_value());  // the daemon mid-batch
    ASSERT_TRUE(writer.append(make_event(4)).has_value());

    auto reader = AuditLog::open_read_only(path_);
    ASSERT_TRUE(reader.has_value()) << reader.error().to_string();
    auto rows = reader->query({.session = 2, .since_seq = std::nullopt, .limit = 0});
    ASSERT_TRUE(rows.has_value()) << rows.error().to_string();
    ASSERT_EQ(rows->size(), 1u);
    EXPECT_EQ((*rows)[0].seq, 2);
    EXPECT_EQ(reader->query({})->size(), 3u);  // the uncommitted row is invisible
    EXPECT_FALSE(reader->append(make_event(9)).has_value());
    EXPECT_FALSE(reader->begin().has_value());
    EXPECT_FALSE(reader->flush().has_value());
    ASSERT_TRUE(writer.commit().has_value());
    EXPECT_EQ(reader->query({})->size(), 3u);  // journaled, not yet in SQLite
    ASSERT_TRUE(writer.flush().has_value());
    EXPECT_EQ(reader->query({})->size(), 4u);

    std::ofstream(dir_ + "/plain.db").close();
    EXPECT_FALSE(AuditLog::open_read_only(dir_ + "/plain.db").has_value());
}

TEST_F(AuditTest, QueryReportsAnUnknownKind) {
    make_log(2);
    {
        Sql sql(path_);
        sql.drop_guards();
        sql.must("UPDATE events SET kind = 'bogus' WHERE seq = 2");
    }
    auto log = open_log();
    auto rows = log.query({});
    ASSERT_FALSE(rows.has_value());
    EXPECT_NE(rows.error().message.find("bogus"), std::string::npos);
    EXPECT_BAD_AT(verify(), 2, "hash mismatch");
}

// ---------------------------------------------------------------------------
// Journal: commit() writes <db>.journal, flush() moves rows into SQLite

// Independent of the library: the record format as docs/audit.md states it.
std::uint32_t crc32_ref(std::string_view data) {
    std::uint32_t crc = 0xFFFFFFFFu;
    for (char ch : data) {
        crc ^= static_cast<unsigned char>(ch);
        for (int k = 0; k < 8; ++k) crc = (crc & 1) != 0 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
    }
    return ~crc;
}

std::uint32_t le32(std::string_view b, std::size_t at) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(b[at])) |
           static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 1])) << 8 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 2])) << 16 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 3])) << 24;
}

void put_le32(std::string& b, std::size_t at, std::uint32_t v) {
    for (std::size_t i = 0; i < 4; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

struct Rec {
    std::size_t offset = 0;
    std::size_t size = 0;
    std::string prev_hash;
    std::string hash;
    std::string canonical;
};

// Splits a journal image into records, checking the framing as documented.
std::vector<Rec> parse_records(const std::string& bytes) {
    std::vector<Rec> out;
    std::size_t at = 0;
    while (at < bytes.size()) {
        EXPECT_GE(bytes.size() - at, 12u);
        if (bytes.size() - at < 12) break;
        EXPECT_EQ(bytes.substr(at, 4), "ALJ1");
        const std::uint32_t n = le32(bytes, at + 4);
        EXPECT_LE(at + 12 + n, bytes.size());
        if (at + 12 + n > bytes.size()) break;
        EXPECT_EQ(le32(bytes, at + 8 + n), crc32_ref(std::string_view(bytes).substr(at, 8 + n)));
        const std::string body = bytes.substr(at + 8, n);
        Rec r;
        r.offset = at;
        r.size = 12 + n;
        r.prev_hash = body.substr(0, 64);
        EXPECT_EQ(body[64], '\n');
        r.hash = body.substr(65, 64);
        EXPECT_EQ(body[129], '\n');
        r.canonical = body.substr(130);
        out.push_back(r);
        at += r.size;
    }
    return out;
}

// Recomputes a record's checksum after an edit, as a careful attacker would.
void reseal(std::string& bytes, const Rec& r) {
    const std::size_t crc_at = r.offset + r.size - 4;
    put_le32(bytes, crc_at, crc32_ref(std::string_view(bytes).substr(r.offset, crc_at - r.offset)));
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << bytes;
}

std::string must_fail_open(const std::string& path) {
    auto log = AuditLog::open(path);
    if (log) {
        ADD_FAILURE() << "open succeeded";
        return {};
    }
    return log.error().message;
}

TEST(AuditJournalFormat, Crc32IsTheZlibOne) {
    EXPECT_EQ(crc32_ref("123456789"), 0xCBF43926u);  // the standard check value
}

TEST_F(AuditTest, CommitWritesTheJournalNotTheDatabase) {
    auto log = open_log();
    log.hold_ingest_for_test();  // look at the queue before the ingester takes it
    EXPECT_EQ(journal_size(), 0u);
    Sql sql(path_);
    ASSERT_TRUE(log.begin().has_value());
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE(log.append(make_event(i)).has_value());
    EXPECT_EQ(journal_size(), 0u);  // the open batch is only in memory
    ASSERT_TRUE(log.commit().has_value());
    const auto after_batch = journal_size();
    EXPECT_GT(after_batch, 0u);
    EXPECT_EQ(log.queued_rows(), 3u);
    EXPECT_EQ(sql.scalar("SELECT count(*) FROM events"), "0");
    EXPECT_EQ(log.query({})->size(), 0u);

    ASSERT_TRUE(log.append(make_event(4)).has_value());  // outside begin/commit: journaled at once
    EXPECT_GT(journal_size(), after_batch);
    EXPECT_EQ(log.queued_rows(), 4u);
    EXPECT_EQ(sql.scalar("SELECT count(*) FROM events"), "0");

    ASSERT_TRUE(log.begin().has_value());  // an empty turn writes nothing
    const auto before_empty = journal_size();
    ASSERT_TRUE(log.commit().has_value());
    EXPECT_EQ(journal_size(), before_empty);

    // Rows already durable in the journal count for verify.
    const VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 4);
}

TEST_F(AuditTest, FlushIngestsAndEmptiesTheJournal) {
    std::vector<Event> returned;
    {
        auto log = open_log();
        ASSERT_TRUE(log.begin().has_value());
        for (int i = 1; i <= 5; ++i) {
            auto e = log.append(make_event(i));
            ASSERT_TRUE(e.has_value());
            returned.push_back(*e);
        }
        ASSERT_TRUE(log.commit().has_value());
        ASSERT_TRUE(log.flush().has_value());
        EXPECT_EQ(log.queued_rows(), 0u);
        EXPECT_EQ(journal_size(), 0u);
        Sql sql(path_);
        EXPECT_EQ(sql.scalar("SELECT count(*) FROM events"), "5");
        EXPECT_EQ(sql.scalar("SELECT hash FROM events WHERE seq = 5"), returned.back().hash);
        ASSERT_TRUE(log.flush().has_value());  // nothing queued: a no-op

        // The destructor flushes too.
        ASSERT_TRUE(log.append(make_event(6)).has_value());
        EXPECT_GT(journal_size(), 0u);
        EXPECT_EQ(log.recovery_note(), "");
    }
    EXPECT_EQ(journal_size(), 0u);
    Sql sql(path_);
    EXPECT_EQ(sql.scalar("SELECT count(*) FROM events"), "6");
    auto log = open_log();
    EXPECT_EQ(log.recovery_note(), "");  // clean shutdown: nothing to recover
    const VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 6);
}

TEST_F(AuditTest, JournalRecordsFollowTheDocumentedFormat) {
    auto log = open_log();
    std::vector<Event> rows;
    Event odd = make_event(1);
    odd.object = std::string("/a|b\n\0c\xff", 9);  // delimiters, NUL, invalid UTF-8
    rows.push_back(*log.append(odd));
    ASSERT_TRUE(log.begin().has_value());
    rows.push_back(*log.append(make_event(2)));
    rows.push_back(*log.append(make_event(3)));
    ASSERT_TRUE(log.commit().has_value());

    const std::vector<Rec> recs = parse_records(read_file(journal()));
    ASSERT_EQ(recs.size(), 3u);
    for (std::size_t i = 0; i < recs.size(); ++i) {
        SCOPED_TRACE(i);
        EXPECT_EQ(recs[i].prev_hash, rows[i].prev_hash);
        EXPECT_EQ(recs[i].hash, rows[i].hash);
        EXPECT_EQ(recs[i].canonical, canonical_form(rows[i]));
        EXPECT_EQ(recs[i].hash, sha256_hex(recs[i].prev_hash + "\n" + recs[i].canonical));
    }
    EXPECT_EQ(recs[0].prev_hash, std::string(genesis_hash));
}

// The invariant the daemon relies on: once commit() returned, a crash of the
// process loses nothing. The child is SIGKILLed right after commit(): no
// destructor, no flush.
TEST_F(AuditTest, CrashAfterCommitLosesNothing) {
    { auto log = open_log(); }  // the schema exists before the crash
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        auto log = AuditLog::open(path_);
        if (!log) ::_exit(2);
        log->hold_ingest_for_test();  // the crash comes before any ingestion
        if (!log->append(make_event(1))) ::_exit(3);
        if (!log->begin()) ::_exit(4);
        for (int i = 2; i <= 5; ++i) {
            if (!log->append(make_event(i))) ::_exit(5);
        }
        if (!log->commit()) ::_exit(6);
        ::kill(::getpid(), SIGKILL);
        ::_exit(7);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;

    {
        Sql sql(path_);
        EXPECT_EQ(sql.scalar("SELECT count(*) FROM events"), "0");
    }
    EXPECT_GT(journal_size(), 0u);
    VerifyReport v = verify();  // the journal continues the (empty) database
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 5);

    auto log = open_log();
    EXPECT_NE(log.recovery_note().find("recovered 5 rows (seq 1..5)"), std::string::npos)
        << log.recovery_note();
    EXPECT_EQ(journal_size(), 0u);
    auto rows = log.query({});
    ASSERT_TRUE(rows.has_value());
    ASSERT_EQ(rows->size(), 5u);
    for (int i = 1; i <= 5; ++i) EXPECT_EQ((*rows)[i - 1].object, make_event(i).object);
    auto next = log.append(make_event(6));
    ASSERT_TRUE(next.has_value());
    EXPECT_EQ(next->seq, 6);
    EXPECT_EQ(next->prev_hash, rows->back().hash);
    v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 6);
}

TEST_F(AuditTest, AbandonedLogIsReplayedByteExact) {
    std::vector<Event> returned;
    {
        auto log = open_log();
        log.hold_ingest_for_test();  // the crash comes before any ingestion
        for (int i = 1; i <= 2; ++i) returned.push_back(*log.append(make_event(i)));
        ASSERT_TRUE(log.flush().has_value());
        Event odd = make_event(3);
        odd.kind = EventKind::request_resolved;
        odd.object = std::string("/x|y=1:z\n\0\xc3(", 13);
        odd.reason = "r|latency_us=5";
        odd.request_id = 77;
        odd.time_us = -12;
        odd.detail_json = "not json {";
        returned.push_back(*log.append(odd));
        ASSERT_TRUE(log.begin().has_value());
        for (int i = 4; i <= 5; ++i) returned.push_back(*log.append(make_event(i)));
        ASSERT_TRUE(log.commit().has_value());
        ASSERT_TRUE(log.begin().has_value());
        ASSERT_TRUE(log.append(make_event(99)).has_value());  // never committed: must not appear
        log.abandon_for_test();
        EXPECT_FALSE(log.append(make_event(1)).has_value());  // moved-from now
    }
    auto log = open_log();
    EXPECT_NE(log.recovery_note().find("recovered 3 rows (seq 3..5)"), std::string::npos)
        << log.recovery_note();
    auto rows = log.query({});
    ASSERT_TRUE(rows.has_value());
    ASSERT_EQ(rows->size(), returned.size());
    for (std::size_t i = 0; i < returned.size(); ++i) {
        SCOPED_TRACE(i);
        const Event& a = (*rows)[i];
        const Event& b = returned[i];
        EXPECT_EQ(a.seq, b.seq);
        EXPECT_EQ(canonical_form(a), canonical_form(b));
        EXPECT_EQ(a.prev_hash, b.prev_hash);
        EXPECT_EQ(a.hash, b.hash);
    }
    const VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 5);
}

// A crash after flush's COMMIT but before the journal was emptied.
TEST_F(AuditTest, ReplaySkipsRowsAlreadyInTheDatabase) {
    std::string stale;
    {
        auto log = open_log();
        log.hold_ingest_for_test();  // the crash comes before any ingestion
        for (int i = 1; i <= 3; ++i) ASSERT_TRUE(log.append(make_event(i)).has_value());
        stale = read_file(journal());
        ASSERT_TRUE(log.flush().has_value());
        for (int i = 4; i <= 5; ++i) ASSERT_TRUE(log.append(make_event(i)).has_value());
        const std::string fresh = read_file(journal());
        log.abandon_for_test();
        write_file(journal(), stale + fresh);
    }
    EXPECT_TRUE(verify().ok);
    auto log = open_log();
    EXPECT_NE(log.recovery_note().find("recovered 2 rows (seq 4..5)"), std::string::npos)
        << log.recovery_note();
    EXPECT_NE(log.recovery_note().find("skipped 3 journal rows (seq 1..3)"), std::string::npos)
        << log.recovery_note();
    EXPECT_EQ(log.query({})->size(), 5u);
    const VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 5);

    // Only the stale part: nothing new, still reported.
    log.abandon_for_test();
    write_file(journal(), stale);
    auto again = open_log();
    EXPECT_NE(again.recovery_note().find("already in the database"), std::string::npos)
        << again.recovery_note();
    EXPECT_EQ(journal_size(), 0u);
}

TEST_F(AuditTest, TornTrailingRecordIsIgnoredWithANote) {
    struct Case {
        const char* name;
        std::function<void(std::string&, const std::vector<Rec>&)> damage;
        std::size_t rows_kept;
        const char* words;
    };
    const std::vector<Case> cases = {
        {"cut inside the last record",
         [](std::string& b, const std::vector<Rec>& r) { b.resize(r[2].offset + 20); }, 2,
         "incomplete record"},
        {"cut inside the last header",
         [](std::string& b, const std::vector<Rec>& r) { b.resize(r[2].offset + 5); }, 2,
         "incomplete record header"},
        {"zero-filled tail after a power cut",
         [](std::string& b, const std::vector<Rec>&) { b.append(4096, '\0'); }, 3, "no record magic"},
        {"last record only partly on disk",
         [](std::string& b, const std::vector<Rec>& r) { b[r[2].offset + r[2].size - 40] ^= 0x01; }, 2,
         "checksum"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        TearDown();
        SetUp();
        ASSERT_NO_FATAL_FAILURE(crash_with_batch_in_journal(3));
        std::string bytes = read_file(journal());
        const auto recs = parse_records(bytes);
        ASSERT_EQ(recs.size(), 3u);
        c.damage(bytes, recs);
        write_file(journal(), bytes);
        const std::size_t torn_at = c.rows_kept == 3 ? recs[2].offset + recs[2].size : recs[2].offset;

        VerifyReport v = verify();  // a torn tail looks like a write in progress: not a problem
        EXPECT_TRUE(v.ok) << v.problem;
        EXPECT_EQ(v.rows_checked, static_cast<std::int64_t>(c.rows_kept));

        auto log = open_log();
        const std::string note = log.recovery_note();
        EXPECT_NE(note.find("incomplete final record"), std::string::npos) << note;
        EXPECT_NE(note.find("at offset " + std::to_string(torn_at) + " "), std::string::npos) << note;
        EXPECT_NE(note.find(c.words), std::string::npos) << note;
        EXPECT_EQ(journal_size(), 0u);  // the torn bytes are gone, the next record starts clean
        EXPECT_EQ(log.query({})->size(), c.rows_kept);
        auto next = log.append(make_event(9));
        ASSERT_TRUE(next.has_value());
        EXPECT_EQ(next->seq, static_cast<std::int64_t>(c.rows_kept) + 1);
        v = verify();
        EXPECT_TRUE(v.ok) << v.problem;
    }
}

TEST_F(AuditTest, CorruptedRecordFailsOpenNamingTheOffset) {
    struct Case {
        const char* name;
        std::function<void(std::string&, const std::vector<Rec>&)> damage;
        std::size_t bad_record;
        std::int64_t bad_seq;
        const char* words;
    };
    auto edit = [](std::string& b, const Rec& r, const std::string& from, const std::string& to) {
        const std::size_t at = b.find(from, r.offset + 8 + 130);
        ASSERT_LT(at, r.offset + r.size);
        b.replace(at, from.size(), to);
    };
    const std::vector<Case> cases = {
        {"byte flipped in a middle record",
         [](std::string& b, const std::vector<Rec>& r) { b[r[1].offset + 200] ^= 0x01; }, 1, 2,
         "a complete record follows"},
        {"middle record edited, checksum recomputed",
         [&](std::string& b, const std::vector<Rec>& r) {
             edit(b, r[1], "verdict=4:deny", "verdict=4:DENY");
             reseal(b, r[1]);
         },
         1, 2, "hash mismatch"},
        {"last record edited, checksum recomputed",
         [&](std::string& b, const std::vector<Rec>& r) {
             edit(b, r[2], "verdict=5:allow", "verdict=5:ALLOW");
             reseal(b, r[2]);
         },
         2, 3, "hash mismatch"},
        {"middle record removed",
         [](std::string& b, const std::vector<Rec>& r) { b.erase(r[1].offset, r[1].size); }, 1, 2,
         "follows seq 1"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        TearDown();
        SetUp();
        ASSERT_NO_FATAL_FAILURE(crash_with_batch_in_journal(3));
        std::string bytes = read_file(journal());
        const auto recs = parse_records(bytes);
        ASSERT_EQ(recs.size(), 3u);
        c.damage(bytes, recs);
        write_file(journal(), bytes);

        EXPECT_BAD_AT(verify(), c.bad_seq, c.words);
        const std::string msg = must_fail_open(path_);
        EXPECT_NE(msg.find("record at offset " + std::to_string(recs[c.bad_record].offset)),
                  std::string::npos)
            << msg;
        EXPECT_NE(msg.find(c.words), std::string::npos) << msg;
        EXPECT_NE(msg.find(journal()), std::string::npos) << msg;
        // Evidence is kept: neither file changed.
        EXPECT_EQ(read_file(journal()), bytes);
        Sql sql(path_);
        EXPECT_EQ(sql.scalar("SELECT count(*) FROM events"), "0");
    }
}

// Builds, in other_path, a log of `n` rows that differ from make_event(i) and
// returns its journal (rows not flushed).
std::string foreign_journal(const std::string& other_path, int n) {
    auto log = AuditLog::open(other_path);
    EXPECT_TRUE(log.has_value());
    log->hold_ingest_for_test();
    for (int i = 1; i <= n; ++i) EXPECT_TRUE(log->append(make_event(100 + i)).has_value());
    log->abandon_for_test();
    return read_file(other_path + ".journal");
}

TEST_F(AuditTest, JournalThatDoesNotContinueTheDatabaseIsCaught) {
    make_log(3);  // rows 1..3 in SQLite, journal empty
    const std::string other = foreign_journal(dir_ + "/other.db", 5);
    const auto recs = parse_records(other);
    ASSERT_EQ(recs.size(), 5u);

    // Rows 4..5 of another chain: seq fits, prev_hash does not.
    write_file(journal(), other.substr(recs[3].offset));
    EXPECT_BAD_AT(verify(), 4, "does not continue the database chain");
    std::string msg = must_fail_open(path_);
    EXPECT_NE(msg.find("does not continue the database chain"), std::string::npos) << msg;
    EXPECT_NE(msg.find("offset 0"), std::string::npos) << msg;

    // Row 5 alone: row 4 is in neither file.
    write_file(journal(), other.substr(recs[4].offset));
    EXPECT_BAD_AT(verify(), 4, "rows missing");
    msg = must_fail_open(path_);
    EXPECT_NE(msg.find("does not continue"), std::string::npos) << msg;

    // Rows 1..3 of another chain where the database has its own rows 1..3.
    write_file(journal(), other.substr(0, recs[3].offset));
    EXPECT_BAD_AT(verify(), 1, "differs from the database row");
    msg = must_fail_open(path_);
    EXPECT_NE(msg.find("differs from the database row"), std::string::npos) << msg;

    Sql sql(path_);
    EXPECT_EQ(sql.scalar("SELECT count(*) FROM events"), "3");
}

TEST_F(AuditTest, VerifyDetectsATamperedJournalRecord) {
    {
        auto log = open_log();
        log.hold_ingest_for_test();  // the crash comes before any ingestion
        for (int i = 1; i <= 2; ++i) ASSERT_TRUE(log.append(make_event(i)).has_value());
        ASSERT_TRUE(log.flush().has_value());
        for (int i = 3; i <= 5; ++i) ASSERT_TRUE(log.append(make_event(i)).has_value());
        log.abandon_for_test();
    }
    const std::string clean = read_file(journal());
    const auto recs = parse_records(clean);
    ASSERT_EQ(recs.size(), 3u);  // seq 3..5
    VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 5);

    // Seq 4 (deny) rewritten to allow, checksum fixed.
    std::string bytes = clean;
    const std::size_t at = bytes.find("verdict=4:deny", recs[1].offset);
    ASSERT_LT(at, recs[1].offset + recs[1].size);
    bytes.replace(at, 14, "verdict=4:DENY");
    reseal(bytes, recs[1]);
    write_file(journal(), bytes);
    v = verify();
    EXPECT_BAD_AT(v, 4, "hash mismatch");
    EXPECT_NE(v.problem.find(journal()), std::string::npos) << v.problem;
    EXPECT_NE(v.problem.find("offset " + std::to_string(recs[1].offset)), std::string::npos) << v.problem;
    EXPECT_EQ(v.rows_checked, 3);

    // A record forged with a correct hash and checksum still has to link.
    bytes = clean;
    Event forged = make_event(4);
    forged.seq = 4;
    forged.verdict = "allow";
    forged.prev_hash = std::string(64, 'e');
    forged.hash = sha256_hex(forged.prev_hash + "\n" + canonical_form(forged));
    std::string body = forged.prev_hash + "\n" + forged.hash + "\n" + canonical_form(forged);
    std::string rec = "ALJ1" + std::string(4, '\0') + body + std::string(4, '\0');
    put_le32(rec, 4, static_cast<std::uint32_t>(body.size()));
    Rec whole;
    whole.size = rec.size();
    reseal(rec, whole);
    bytes.replace(recs[1].offset, recs[1].size, rec);
    write_file(journal(), bytes);
    EXPECT_BAD_AT(verify(), 4, "prev_hash mismatch");
}

TEST_F(AuditTest, VerifySaysWhenItCannotReadTheJournal) {
    make_log(2);
    ASSERT_EQ(journal_size(), 0u);
    fs::remove(journal());
    fs::create_directory(journal());
    auto r = AuditLog::verify(path_);
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message.find("cannot read journal"), std::string::npos) << r.error().message;
    EXPECT_FALSE(AuditLog::open(path_).has_value());
    fs::remove(journal());

    // Never followed: a symlink in its place could redirect root's writes.
    write_file(dir_ + "/elsewhere", "");
    fs::create_symlink(dir_ + "/elsewhere", journal());
    r = AuditLog::verify(path_);
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message.find("cannot read journal"), std::string::npos) << r.error().message;
    const std::string msg = must_fail_open(path_);
    EXPECT_NE(msg.find(journal()), std::string::npos) << msg;
}

TEST_F(AuditTest, SecondWriterIsRefused) {
    auto log = open_log();
    log.hold_ingest_for_test();  // look at the queue before the ingester takes it
    ASSERT_TRUE(log.append(make_event(1)).has_value());
    auto second = AuditLog::open(path_);
    ASSERT_FALSE(second.has_value());
    EXPECT_EQ(second.error().code, EBUSY);
    EXPECT_NE(second.error().message.find("locked"), std::string::npos) << second.error().message;
    // The refused writer replayed nothing and emptied nothing.
    EXPECT_EQ(log.queued_rows(), 1u);
    EXPECT_GT(journal_size(), 0u);
    ASSERT_TRUE(log.append(make_event(2)).has_value());
    EXPECT_EQ(all(log).size(), 2u);
}

TEST_F(AuditTest, ReadOnlyOpenNeverTouchesTheJournal) {
    {
        auto log = open_log();
        log.hold_ingest_for_test();  // the crash comes before any ingestion
        for (int i = 1; i <= 3; ++i) ASSERT_TRUE(log.append(make_event(i)).has_value());
        log.abandon_for_test();
    }
    const std::string bytes = read_file(journal());
    ASSERT_FALSE(bytes.empty());
    {
        auto reader = AuditLog::open_read_only(path_);
        ASSERT_TRUE(reader.has_value()) << reader.error().to_string();
        EXPECT_EQ(reader->query({})->size(), 0u);  // journaled rows are not in SQLite yet
        EXPECT_EQ(reader->queued_rows(), 0u);
    }
    EXPECT_TRUE(verify().ok);
    EXPECT_EQ(read_file(journal()), bytes);
}

TEST_F(AuditTest, MaxIdsCountQueuedAndBatchedRows) {
    auto log = open_log();
    Event start = make_event(1, 7);
    start.kind = EventKind::session_start;
    ASSERT_TRUE(log.append(start).has_value());
    ASSERT_TRUE(log.flush().has_value());
    Event asked = make_event(2, 9);
    asked.kind = EventKind::request_created;
    asked.request_id = 11;
    ASSERT_TRUE(log.append(asked).has_value());  // journal only
    auto ids = log.max_ids();
    ASSERT_TRUE(ids.has_value());
    EXPECT_EQ(ids->session, 9);
    EXPECT_EQ(ids->request, 11);

    ASSERT_TRUE(log.begin().has_value());
    Event more = make_event(3, 12);
    more.request_id = 13;
    ASSERT_TRUE(log.append(more).has_value());
    ids = log.max_ids();
    EXPECT_EQ(ids->session, 12);
    EXPECT_EQ(ids->request, 13);
    log.rollback();
    ids = log.max_ids();
    EXPECT_EQ(ids->session, 9);
    EXPECT_EQ(ids->request, 11);

    log.abandon_for_test();  // after a crash, replay restores them
    auto reopened = open_log();
    ids = reopened.max_ids();
    EXPECT_EQ(ids->session, 9);
    EXPECT_EQ(ids->request, 11);
}

// Renaming the table away makes every INSERT fail, like a broken database.
void break_table(const std::string& path) {
    Sql sql(path);
    sql.must("ALTER TABLE events RENAME TO events_away");
}
void repair_table(const std::string& path) {
    Sql sql(path);
    sql.must("ALTER TABLE events_away RENAME TO events");
}

TEST_F(AuditTest, FailedFlushKeepsRowsQueued) {
    auto log = open_log();
    log.hold_ingest_for_test();  // look at the queue before the ingester takes it
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE(log.append(make_event(i)).has_value());
    const std::string bytes = read_file(journal());
    break_table(path_);
    auto f = log.flush();
    ASSERT_FALSE(f.has_value());
    EXPECT_NE(f.error().message.find("stay queued"), std::string::npos) << f.error().message;
    EXPECT_NE(f.error().message.find("seq 1..3"), std::string::npos) << f.error().message;
    EXPECT_EQ(log.queued_rows(), 3u);
    EXPECT_EQ(read_file(journal()), bytes);
    ASSERT_TRUE(log.append(make_event(4)).has_value());  // commits still work meanwhile

    repair_table(path_);
    ASSERT_TRUE(log.flush().has_value());
    EXPECT_EQ(log.queued_rows(), 0u);
    EXPECT_EQ(journal_size(), 0u);
    Sql sql(path_);
    EXPECT_EQ(sql.scalar("SELECT count(*) FROM events"), "4");
    EXPECT_TRUE(verify().ok);
}

TEST_F(AuditTest, QueueBoundRefusesWhenTheDatabaseTakesNoRows) {
    auto log = open_log();
    log.hold_ingest_for_test();  // only commits at the bound make it run
    break_table(path_);
    constexpr int per_batch = 1024;
    static_assert(max_queued_rows % per_batch == 0);
    std::int64_t seq = 0;
    for (std::size_t b = 0; b < max_queued_rows / per_batch; ++b) {
        ASSERT_TRUE(log.begin().has_value());
        for (int i = 0; i < per_batch; ++i) ASSERT_TRUE(log.append(make_event(i)).has_value());
        auto c = log.commit();
        ASSERT_TRUE(c.has_value()) << c.error().to_string();  // below the bound: no flush needed
        seq += per_batch;
    }
    EXPECT_EQ(log.queued_rows(), max_queued_rows);
    const auto full = journal_size();

    ASSERT_TRUE(log.begin().has_value());
    ASSERT_TRUE(log.append(make_event(1)).has_value());
    auto refused = log.commit();
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error().code, ENOSPC);
    EXPECT_NE(refused.error().message.find("not accepting rows; refusing to release more decisions"),
              std::string::npos)
        << refused.error().message;
    EXPECT_NE(refused.error().message.find("no such table"), std::string::npos) << refused.error().message;
    EXPECT_FALSE(log.append(make_event(2)).has_value());  // a single append too
    EXPECT_EQ(log.queued_rows(), max_queued_rows);
    EXPECT_EQ(journal_size(), full);

    repair_table(path_);
    auto next = log.append(make_event(3));  // over the bound: flushes first, then journals
    ASSERT_TRUE(next.has_value()) << next.error().to_string();
    EXPECT_EQ(next->seq, seq + 1);
    EXPECT_EQ(log.queued_rows(), 1u);
    const VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, seq + 1);
}

// verify runs while a writer commits and flushes (the journal is emptied and
// refilled under it); it must never report a false problem.
TEST_F(AuditTest, VerifyIsStableAgainstALiveWriter) {
    auto log = open_log();
    std::atomic<bool> done{false};
    std::string writer_error;
    std::thread writer([&] {
        for (int i = 1; i <= 6000 && writer_error.empty(); ++i) {
            if (!log.begin()) writer_error = "begin";
            if (!log.append(make_event(i))) writer_error = "append";
            if (auto c = log.commit(); !c) writer_error = c.error().to_string();
            if (i % 25 == 0) {
                if (auto f = log.flush(); !f) writer_error = f.error().to_string();
            }
        }
        done = true;
    });
    int runs = 0;
    while (!done) {
        auto r = AuditLog::verify(path_);
        ASSERT_TRUE(r.has_value()) << r.error().to_string();
        EXPECT_TRUE(r->ok) << "run " << runs << ": seq " << r->first_bad_seq << ": " << r->problem;
        ++runs;
    }
    writer.join();
    EXPECT_EQ(writer_error, "");
    EXPECT_GT(runs, 0);
    const VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 6000);
}

// ---------------------------------------------------------------------------
// Background ingestion: the ingester thread moves committed rows into SQLite

// Polls cond every millisecond for up to `limit`; true once it held.
bool eventually(const std::function<bool()>& cond,
                std::chrono::milliseconds limit = std::chrono::seconds(15)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!cond()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

TEST_F(AuditTest, IngesterMovesRowsWithoutFlush) {
    auto log = open_log();
    std::vector<Event> returned;
    for (int i = 1; i <= 10; ++i) returned.push_back(*log.append(make_event(i)));
    // No flush(): the ingester gets them there by itself.
    EXPECT_TRUE(eventually([&] { return log.queued_rows() == 0; }));
    auto rows = log.query({});
    ASSERT_TRUE(rows.has_value()) << rows.error().to_string();
    ASSERT_EQ(rows->size(), returned.size());
    for (std::size_t i = 0; i < returned.size(); ++i) EXPECT_EQ((*rows)[i].hash, returned[i].hash);
    EXPECT_FALSE(log.last_ingest_error().has_value());
    // A small journal of ingested rows is left for the next flush (or the
    // destructor) to empty: a ftruncate per pass is not worth it.
    EXPECT_GT(journal_size(), 0u);
    ASSERT_TRUE(log.flush().has_value());
    EXPECT_EQ(journal_size(), 0u);
}

// Many commits from the owner's thread race the ingester; reads from that
// thread always see a prefix of the chain, max_ids counts what is queued, and
// in the end every row is in SQLite in chain order.
TEST_F(AuditTest, CommitsRacingTheIngesterLandInChainOrder) {
    auto log = open_log();
    constexpr int total = 20000;
    std::mt19937 rng(20240611);
    std::vector<Event> returned;
    returned.reserve(total);
    std::int64_t visible = 0;  // rows seen in SQLite so far, always the chain's prefix
    auto read_more = [&] {
        auto rows = log.query({.session = std::nullopt, .since_seq = visible, .limit = 0});
        ASSERT_TRUE(rows.has_value()) << rows.error().to_string();
        for (const Event& r : *rows) {
            ASSERT_EQ(r.seq, visible + 1);
            ASSERT_LT(static_cast<std::size_t>(visible), returned.size());
            ASSERT_EQ(r.hash, returned[static_cast<std::size_t>(visible)].hash);
            ++visible;
        }
    };
    int i = 0;
    while (i < total) {
        const int n = 1 + static_cast<int>(rng() % 40);
        ASSERT_TRUE(log.begin().has_value());
        for (int k = 0; k < n && i < total; ++k) {
            ++i;
            auto e = log.append(make_event(i, i));  // session = i: max_ids must follow every commit
            ASSERT_TRUE(e.has_value()) << e.error().to_string();
            returned.push_back(std::move(*e));
        }
        auto c = log.commit();
        ASSERT_TRUE(c.has_value()) << c.error().to_string();
        switch (rng() % 32) {
            case 0: {
                read_more();
                // Rows of a pass that is just committing may still count as
                // queued (over, never under): bounded by what was committed.
                EXPECT_LE(log.queued_rows(), returned.size());
                auto ids = log.max_ids();
                ASSERT_TRUE(ids.has_value()) << ids.error().to_string();
                EXPECT_EQ(ids->session, i);
                break;
            }
            case 1: std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000)); break;
            case 2: std::this_thread::yield(); break;
            default: break;
        }
    }
    // Without flush(), everything gets there.
    EXPECT_TRUE(eventually([&] { return log.queued_rows() == 0; }));
    read_more();
    EXPECT_EQ(visible, total);
    ASSERT_TRUE(log.flush().has_value());
    EXPECT_EQ(journal_size(), 0u);
    EXPECT_FALSE(log.last_ingest_error().has_value());

    auto rows = log.query({});
    ASSERT_TRUE(rows.has_value());
    ASSERT_EQ(rows->size(), returned.size());
    for (std::size_t k = 0; k < returned.size(); ++k) {
        const Event& a = (*rows)[k];
        const Event& b = returned[k];
        ASSERT_EQ(a.seq, static_cast<std::int64_t>(k + 1));
        ASSERT_EQ(a.prev_hash, b.prev_hash);
        ASSERT_EQ(a.hash, b.hash);
        ASSERT_EQ(canonical_form(a), canonical_form(b));
    }
    const VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, total);
}

// abandon_for_test() right after commits, at three points of the ingester:
// before it took the rows (held), after it inserted them but before the
// journal was emptied, and wherever it happens to be (often inside its
// transaction: it takes thousands of rows). Reopening must find every
// committed row, once, in order.
TEST_F(AuditTest, CrashWhileTheIngesterRunsLosesNothing) {
    std::mt19937 rng(4242);
    std::vector<Event> returned;
    int next = 1;
    for (int round = 0; round < 30; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        const int mode = round % 3;  // 0: before the ingester, 1: after it, 2: wherever it is
        auto log = open_log();
        EXPECT_EQ(log.recovery_note(), "");
        if (mode == 0) log.hold_ingest_for_test();
        // At most 2000 rows (~800 KB): under the size at which a pass empties
        // the journal by itself, and under the queue length that wakes it early.
        const int batches = 1 + static_cast<int>(rng() % 10);
        std::size_t committed = 0;
        for (int b = 0; b < batches; ++b) {
            ASSERT_TRUE(log.begin().has_value());
            const int n = 1 + static_cast<int>(rng() % 200);
            for (int k = 0; k < n; ++k) {
                auto e = log.append(make_event(next++));
                ASSERT_TRUE(e.has_value());
                returned.push_back(std::move(*e));
            }
            ASSERT_TRUE(log.commit().has_value());
            committed += static_cast<std::size_t>(n);
        }
        if (mode == 0) {
            EXPECT_EQ(log.queued_rows(), committed);
        } else if (mode == 1) {
            ASSERT_TRUE(eventually([&] { return log.queued_rows() == 0; }));
            EXPECT_GT(journal_size(), 0u);  // ingested, not emptied yet
        } else {
            std::this_thread::sleep_for(std::chrono::microseconds(2000 + rng() % 12000));
        }
        log.abandon_for_test();

        auto reopened = open_log();
        const std::string note = reopened.recovery_note();
        const std::string rows = std::to_string(committed) + " ";
        if (mode == 0) {
            EXPECT_NE(note.find("recovered " + rows), std::string::npos) << note;
            EXPECT_EQ(note.find("skipped"), std::string::npos) << note;
        } else if (mode == 1) {
            EXPECT_NE(note.find("skipped " + rows), std::string::npos) << note;
            EXPECT_EQ(note.find("recovered"), std::string::npos) << note;
        }
        const std::size_t before = returned.size() - committed;
        const Filter since{.session = std::nullopt, .since_seq = static_cast<std::int64_t>(before), .limit = 0};
        auto new_rows = reopened.query(since);
        ASSERT_TRUE(new_rows.has_value());
        ASSERT_EQ(new_rows->size(), committed) << note;
        for (std::size_t k = 0; k < committed; ++k) {
            ASSERT_EQ((*new_rows)[k].seq, static_cast<std::int64_t>(before + k + 1));
            ASSERT_EQ((*new_rows)[k].hash, returned[before + k].hash);
        }
        reopened.abandon_for_test();  // replay emptied the journal: nothing left to lose
    }
    auto log = open_log();
    auto rows = log.query({});
    ASSERT_TRUE(rows.has_value());
    ASSERT_EQ(rows->size(), returned.size());
    for (std::size_t k = 0; k < returned.size(); ++k) {
        ASSERT_EQ((*rows)[k].seq, static_cast<std::int64_t>(k + 1));
        ASSERT_EQ((*rows)[k].hash, returned[k].hash);
    }
    const VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, static_cast<std::int64_t>(returned.size()));
}

// The same with a real crash: a child commits without pause (the ingester is
// always busy) and reports every commit that returned; it is SIGKILLed at a
// random moment. Every reported row must be in the reopened log.
TEST_F(AuditTest, KillWhileTheIngesterRunsLosesNothing) {
    { auto log = open_log(); }
    std::mt19937 rng(99);
    std::int64_t reported = 0;
    for (int round = 0; round < 4; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        int fds[2];
        ASSERT_EQ(::pipe(fds), 0);
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            ::close(fds[0]);
            auto log = AuditLog::open(path_);
            if (!log) ::_exit(2);
            const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
            for (int i = 1; std::chrono::steady_clock::now() < give_up; ++i) {
                if (!log->begin()) ::_exit(3);
                std::int64_t last = 0;
                for (int k = 0; k < 8; ++k) {
                    auto e = log->append(make_event(i));
                    if (!e) ::_exit(4);
                    last = e->seq;
                }
                if (!log->commit()) ::_exit(5);
                if (::write(fds[1], &last, sizeof last) != sizeof last) ::_exit(6);
            }
            ::_exit(7);
        }
        ::close(fds[1]);
        std::this_thread::sleep_for(std::chrono::milliseconds(30 + rng() % 150));
        ::kill(pid, SIGKILL);
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;
        std::int64_t seq = 0;
        while (::read(fds[0], &seq, sizeof seq) == sizeof seq) reported = std::max(reported, seq);
        ::close(fds[0]);

        auto log = open_log();
        auto rows = log.query({});
        ASSERT_TRUE(rows.has_value());
        ASSERT_GE(static_cast<std::int64_t>(rows->size()), reported) << log.recovery_note();
        for (std::size_t k = 0; k < rows->size(); ++k) {
            ASSERT_EQ((*rows)[k].seq, static_cast<std::int64_t>(k + 1));
        }
        const VerifyReport v = verify();
        EXPECT_TRUE(v.ok) << v.problem;
        EXPECT_EQ(v.rows_checked, static_cast<std::int64_t>(rows->size()));
    }
    EXPECT_GT(reported, 0);
}

// Under constant load the journal never has a moment with nothing pending, so
// a pass alone would never empty it: commit() must stop at max_journal_bytes
// until the ingester has caught up. Held, only that backpressure runs it.
TEST_F(AuditTest, JournalStaysBoundedUnderSustainedCommits) {
    for (const bool held : {true, false}) {
        SCOPED_TRACE(held ? "ingester held" : "ingester running");
        TearDown();
        SetUp();
        auto log = open_log();
        if (held) log.hold_ingest_for_test();
        constexpr int per_batch = 16;
        std::uintmax_t written = 0;  // bytes commit() appended, whether or not still in the journal
        std::uintmax_t largest = 0;
        std::uintmax_t last = 0;
        int emptied = 0;  // seen inside commit() (backpressure) or between two (a pass)
        std::int64_t rows = 0;
        while (written < 3 * max_journal_bytes) {
            ASSERT_TRUE(log.begin().has_value());
            for (int k = 0; k < per_batch; ++k) {
                ASSERT_TRUE(log.append(make_event(static_cast<int>(++rows))).has_value());
            }
            const std::uintmax_t before = journal_size();
            if (before < last) ++emptied;
            auto c = log.commit();
            ASSERT_TRUE(c.has_value()) << c.error().to_string();
            const std::uintmax_t after = journal_size();
            if (after > before) {
                written += after - before;
            } else {
                ++emptied;
                written += after;  // emptied, then this batch appended
            }
            last = after;
            largest = std::max(largest, after);
            ASSERT_LE(after, max_journal_bytes) << "after " << rows << " rows";
        }
        EXPECT_GE(emptied, 2);  // 3x the bound went through a journal never above it
        if (held) {
            EXPECT_GT(largest, max_journal_bytes / 2);  // only backpressure emptied it
        }
        ASSERT_TRUE(log.flush().has_value());
        EXPECT_EQ(journal_size(), 0u);
        EXPECT_EQ(log.queued_rows(), 0u);
        EXPECT_EQ(log.query({})->size(), static_cast<std::size_t>(rows));
        const VerifyReport v = verify();
        EXPECT_TRUE(v.ok) << v.problem;
        EXPECT_EQ(v.rows_checked, rows);
    }
}

// A failing database is reported through last_ingest_error() without any
// flush(), with a message that stays the same while the same fault lasts, and
// the ingester recovers by itself once the database takes rows again.
TEST_F(AuditTest, IngestErrorIsReportedAndClears) {
    auto log = open_log();
    EXPECT_FALSE(log.last_ingest_error().has_value());
    ASSERT_TRUE(log.append(make_event(1)).has_value());
    ASSERT_TRUE(log.flush().has_value());
    break_table(path_);
    for (int i = 2; i <= 4; ++i) ASSERT_TRUE(log.append(make_event(i)).has_value());

    ASSERT_TRUE(eventually([&] { return log.last_ingest_error().has_value(); }));
    const airlock::common::Error first = *log.last_ingest_error();
    EXPECT_NE(first.message.find("no such table"), std::string::npos) << first.message;
    EXPECT_NE(first.message.find("insert seq 2 "), std::string::npos) << first.message;
    EXPECT_NE(first.message.find(path_), std::string::npos) << first.message;
    EXPECT_EQ(log.queued_rows(), 3u);

    // More rows, another (forced) failed pass: same message, logged once.
    ASSERT_TRUE(log.append(make_event(5)).has_value());
    auto f = log.flush();
    ASSERT_FALSE(f.has_value());
    EXPECT_NE(f.error().message.find("seq 2..5"), std::string::npos) << f.error().message;
    ASSERT_TRUE(log.last_ingest_error().has_value());
    EXPECT_EQ(log.last_ingest_error()->message, first.message);
    EXPECT_EQ(log.queued_rows(), 4u);

    repair_table(path_);
    // No flush(): the ingester retries on its backoff.
    ASSERT_TRUE(eventually([&] { return !log.last_ingest_error().has_value() && log.queued_rows() == 0; }));
    EXPECT_EQ(log.query({})->size(), 5u);
    const VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 5);
}

// airlockd takes SIGTERM/SIGHUP from a signalfd and blocks them only after
// opening the log: the ingester must never be the thread a signal goes to.
TEST_F(AuditTest, IngesterBlocksSignals) {
    auto log = open_log();
    bool found = false;
    for (const auto& task : fs::directory_iterator("/proc/self/task")) {
        std::ifstream comm(task.path() / "comm");
        std::string name;
        std::getline(comm, name);
        if (name != "airlock-ingest") continue;
        found = true;
        std::ifstream status(task.path() / "status");
        std::string line;
        std::uint64_t blocked = 0;
        while (std::getline(status, line)) {
            if (line.rfind("SigBlk:", 0) == 0) blocked = std::stoull(line.substr(7), nullptr, 16);
        }
        for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGPIPE}) {
            EXPECT_NE(blocked & (std::uint64_t{1} << (sig - 1)), 0u) << "signal " << sig << " not blocked";
        }
    }
    EXPECT_TRUE(found);
}

// ---------------------------------------------------------------------------
// Canonical form

TEST(AuditCanonical, GoldenForm) {
    Event e;
    e.seq = 12;
    e.time_us = -5;
    e.kind = EventKind::request_resolved;
    e.session = 3;
    e.pid = 77;
    e.action = "open";
    e.object = "/a|b";
    e.verdict = "approved";
    e.rule = "";
    e.request_id = 9;
    e.actor = "user:alice(1000)";
    e.scope = "once";
    e.reason = "ok";
    e.latency_us = 10;
    e.detail_json = "{}";
    e.prev_hash = "ignored";
    e.hash = "ignored";
    // Pinned: changing it invalidates every existing log.
    EXPECT_EQ(canonical_form(e),
              "airlock-audit-v1|seq=12|time_us=-5|kind=16:request_resolved|session=3|pid=77|action=4:open|"
              "object=4:/a|b|verdict=8:approved|rule=0:|request_id=9|actor=16:user:alice(1000)|"
              "scope=4:once|reason=2:ok|latency_us=10|detail_json=2:{}");
}

TEST(AuditCanonical, EverySingleFieldChangeChangesTheForm) {
    const Event base = make_event(1);
    std::vector<std::function<void(Event&)>> edits = {
        [](Event& e) { e.seq += 1; },
        [](Event& e) { e.time_us += 1; },
        [](Event& e) { e.kind = EventKind::session_end; },
        [](Event& e) { e.session += 1; },
        [](Event& e) { e.pid += 1; },
        [](Event& e) { e.action += "x"; },
        [](Event& e) { e.object += "x"; },
        [](Event& e) { e.verdict += "x"; },
        [](Event& e) { e.rule += "x"; },
        [](Event& e) { e.request_id += 1; },
        [](Event& e) { e.actor += "x"; },
        [](Event& e) { e.scope += "x"; },
        [](Event& e) { e.reason += "x"; },
        [](Event& e) { e.latency_us += 1; },
        [](Event& e) { e.detail_json += "x"; },
    };
    std::set<std::string> forms{canonical_form(base)};
    for (std::size_t i = 0; i < edits.size(); ++i) {
        Event e = base;
        edits[i](e);
        EXPECT_TRUE(forms.insert(canonical_form(e)).second) << "edit " << i;
    }
    // Hashes are not part of the form (they are computed over it).
    Event h = base;
    h.prev_hash = "x";
    h.hash = "y";
    EXPECT_EQ(canonical_form(h), canonical_form(base));
}

TEST(AuditCanonical, DelimitersInsideFieldsAreUnambiguous) {
    auto pair_form = [](std::string action, std::string object) {
        Event e;
        e.action = std::move(action);
        e.object = std::move(object);
        return canonical_form(e);
    };
    EXPECT_NE(pair_form("a|", "b"), pair_form("a", "|b"));
    EXPECT_NE(pair_form("a", ""), pair_form("", "a"));
    // A field value that spells out the following fields.
    EXPECT_NE(pair_form("x|object=1:y", ""), pair_form("x", "y"));
    EXPECT_NE(pair_form("1:", ""), pair_form("", "1:"));

    Event a;
    a.reason = "r|latency_us=5";
    Event b;
    b.reason = "r";
    b.latency_us = 5;
    EXPECT_NE(canonical_form(a), canonical_form(b));
}

TEST(AuditCanonical, KindStringsRoundTrip) {
    for (EventKind k :
         {EventKind::daemon_start, EventKind::session_start, EventKind::session_end, EventKind::decision,
          EventKind::request_created, EventKind::request_resolved, EventKind::policy_reload}) {
        EXPECT_EQ(parse_kind(to_string(k)), k);
    }
    EXPECT_EQ(to_string(EventKind::request_resolved), "request_resolved");
    EXPECT_FALSE(parse_kind("bogus").has_value());
    EXPECT_FALSE(parse_kind("").has_value());
}

// ---------------------------------------------------------------------------
// Size limits

TEST_F(AuditTest, OversizedFieldsAreTruncatedBeforeHashing) {
    auto log = open_log();
    Event e = make_event(1);
    e.object = std::string(10000, 'a');
    e.reason = std::string(5000, 'r');
    e.rule = std::string(1000, 'n');
    e.detail_json = R"({"argv":")" + std::string(20000, '\x01') + "\"}";
    auto out = log.append(e);
    ASSERT_TRUE(out.has_value());
    EXPECT_LE(out->object.size(), max_object_bytes);
    EXPECT_EQ(out->object.substr(0, 100), std::string(100, 'a'));
    EXPECT_NE(out->object.find("...[truncated, original 10000 bytes]"), std::string::npos);
    EXPECT_LE(out->reason.size(), max_reason_bytes);
    EXPECT_NE(out->reason.find("[truncated, original 5000 bytes]"), std::string::npos);
    EXPECT_LE(out->rule.size(), max_short_field_bytes);
    EXPECT_LE(out->detail_json.size(), max_detail_json_bytes);
    auto detail = nlohmann::json::parse(out->detail_json, nullptr, false);
    ASSERT_FALSE(detail.is_discarded()) << out->detail_json;
    EXPECT_EQ(detail["truncated"], true);
    EXPECT_EQ(detail["original_bytes"], e.detail_json.size());
    EXPECT_TRUE(detail["prefix"].is_string());

    auto rows = all(log);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].object, out->object);
    EXPECT_EQ(rows[0].detail_json, out->detail_json);
    EXPECT_EQ(rows[0].hash, sha256_hex(rows[0].prev_hash + "\n" + canonical_form(rows[0])));
    EXPECT_TRUE(verify().ok);
}

TEST_F(AuditTest, FieldsAtTheLimitAreKeptAndUtf8IsNotSplit) {
    auto log = open_log();
    Event exact = make_event(1);
    exact.object = std::string(max_object_bytes, 'a');
    exact.reason = std::string(max_reason_bytes, 'r');
    exact.detail_json = R"({"p":")" + std::string(max_detail_json_bytes - 8, 'p') + "\"}";
    ASSERT_EQ(exact.detail_json.size(), max_detail_json_bytes);
    auto out = log.append(exact);
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(out->object, exact.object);
    EXPECT_EQ(out->reason, exact.reason);
    EXPECT_EQ(out->detail_json, exact.detail_json);

    Event wide = make_event(2);
    for (int i = 0; i < 3000; ++i) wide.object += "\xC3\xA9";  // U+00E9, two bytes each
    auto cut = log.append(wide);
    ASSERT_TRUE(cut.has_value());
    EXPECT_LE(cut->object.size(), max_object_bytes);
    EXPECT_EQ(sanitize_utf8(cut->object), cut->object);
    EXPECT_TRUE(verify().ok);
}

// ---------------------------------------------------------------------------
// Formatting

TEST(AuditFormat, TextLineHasOnlyNonEmptyFieldsAndIsOneLine) {
    Event e;
    e.seq = 7;
    e.time_us = 1'700'000'000'123'456;
    e.kind = EventKind::decision;
    e.session = 3;
    e.pid = 4321;
    e.action = "open";
    e.object = "/tmp/evil\n#8 1970-01-01T00:00:00Z decision verdict=allow";
    e.verdict = "deny";
    e.rule = "no-tmp";
    e.actor = "policy";
    const std::string line = format_text(e);
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
    EXPECT_EQ(line.rfind("#7 2023-11-14T22:13:20.123456Z decision session=3 pid=4321 action=open ", 0), 0u)
        << line;
    EXPECT_NE(line.find(R"(object="/tmp/evil\n#8 1970-01-01T00:00:00Z decision verdict=allow")"),
              std::string::npos)
        << line;
    EXPECT_NE(line.find(" verdict=deny rule=no-tmp actor=policy"), std::string::npos) << line;
    EXPECT_EQ(line.find("reason="), std::string::npos);
    EXPECT_EQ(line.find("scope="), std::string::npos);
    EXPECT_EQ(line.find("request="), std::string::npos);

    Event t;
    t.time_us = 1;
    t.kind = EventKind::daemon_start;
    t.reason = "a \"quoted\" \x1b[31mred\xff \xE2\x80\xAE";
    const std::string l2 = format_text(t);
    EXPECT_EQ(l2, R"(1970-01-01T00:00:00.000001Z daemon_start reason="a \"quoted\" \x1b[31mred\xff \u202e")");
}

TEST(AuditFormat, TimeFormatting) {
    EXPECT_EQ(format_time_us(0), "1970-01-01T00:00:00.000000Z");
    EXPECT_EQ(format_time_us(1'000'002), "1970-01-01T00:00:01.000002Z");
    EXPECT_EQ(format_time_us(-1), "1969-12-31T23:59:59.999999Z");
}

TEST(AuditFormat, JsonHasEveryFieldAndAlwaysDumps) {
    Event e = make_event(3);
    e.seq = 3;
    e.object =
        "/bad\xff\xfe"
        "utf8";
    e.hash = std::string(64, 'a');
    nlohmann::json j = to_json(e);
    ASSERT_TRUE(j.is_object());
    for (const char* key :
         {"seq", "time_us", "time", "kind", "session", "pid", "action", "object", "verdict", "rule",
          "request_id", "actor", "scope", "reason", "latency_us", "detail", "prev_hash", "hash"}) {
        EXPECT_TRUE(j.contains(key)) << key;
    }
    EXPECT_EQ(j["kind"], "decision");
    EXPECT_EQ(j["seq"], 3);
    EXPECT_EQ(j["detail"]["i"], 3);
    EXPECT_EQ(j["object"], "/bad\xEF\xBF\xBD\xEF\xBF\xBDutf8");
    std::string dumped;
    EXPECT_NO_THROW(dumped = j.dump());
    EXPECT_FALSE(dumped.empty());

    e.detail_json = "not json";
    EXPECT_EQ(to_json(e)["detail"], "not json");
    e.detail_json = "";
    EXPECT_TRUE(to_json(e)["detail"].is_null());
}

TEST(AuditFormat, SanitizeUtf8) {
    EXPECT_EQ(sanitize_utf8("plain"), "plain");
    EXPECT_EQ(sanitize_utf8("\xC3\xA9"), "\xC3\xA9");
    EXPECT_EQ(sanitize_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong '/'
    EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
    EXPECT_EQ(sanitize_utf8("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");
    EXPECT_EQ(sanitize_utf8("a\xE2\x82"), "a\xEF\xBF\xBD\xEF\xBF\xBD");  // cut short
}

}  // namespace
