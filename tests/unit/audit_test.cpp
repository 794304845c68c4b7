// Audit log tests: real SQLite files in a private temp dir; tampering is done
// through a second, independent sqlite3 connection, as an attacker would.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
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

    VerifyReport verify() {
        auto r = AuditLog::verify(path_);
        if (!r) {
            ADD_FAILURE() << r.error().to_string();
            return VerifyReport{.ok = false, .rows_checked = -1, .first_bad_seq = -1, .problem = "error"};
        }
        return *r;
    }

    std::vector<Event> all(AuditLog& log) {
        auto rows = log.query({});
        if (!rows) {
            ADD_FAILURE() << rows.error().to_string();
            return {};
        }
        return *rows;
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
    ASSERT_TRUE(log.append(make_event(1)).has_value());
    ASSERT_TRUE(log.begin().has_value());
    for (int i = 2; i <= 4; ++i) ASSERT_TRUE(log.append(make_event(i)).has_value());
    {
        Sql other(path_);
        EXPECT_EQ(other.scalar("SELECT count(*) FROM events"), "1");  // not yet committed
    }
    ASSERT_TRUE(log.commit().has_value());
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
    EXPECT_EQ(all(log).size(), 5u);  // the batch sees its own rows
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

rlim_t current_max_size(const std::string& path) {
    std::uintmax_t m = 0;
    for (const char* suffix : {"", "-wal", "-shm"}) {
        std::error_code ec;
        const auto sz = fs::file_size(path + suffix, ec);
        if (!ec) m = std::max(m, sz);
    }
    return static_cast<rlim_t>(m);
}

Event big_event() {
    Event e = make_event(100);
    e.object = std::string(4000, 'o');
    e.detail_json = R"({"pad":")" + std::string(15000, 'p') + "\"}";
    return e;
}

TEST_F(AuditTest, FailedAppendLeavesTheHeadUnchanged) {
    auto log = open_log();
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE(log.append(make_event(i)).has_value());
    const std::string head = all(log).back().hash;

    FsizeLimit limit(current_max_size(path_));
    ASSERT_TRUE(limit.ok());
    auto failed = log.append(big_event());
    limit.lift();
    ASSERT_FALSE(failed.has_value());
    EXPECT_NE(failed.error().message.find(path_), std::string::npos) << failed.error().to_string();
    EXPECT_NE(failed.error().message.find("append seq 4"), std::string::npos) << failed.error().to_string();

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
    for (int i = 1; i <= 2; ++i) ASSERT_TRUE(log.append(make_event(i)).has_value());
    const std::string head = all(log).back().hash;

    ASSERT_TRUE(log.begin().has_value());
    ASSERT_TRUE(log.append(make_event(3)).has_value());
    FsizeLimit limit(current_max_size(path_));
    ASSERT_TRUE(limit.ok());
    // The page cache may absorb the insert; the write then fails at COMMIT.
    bool failed = false;
    for (int i = 0; i < 3 && !failed; ++i) failed = !log.append(big_event()).has_value();
    if (!failed) failed = !log.commit().has_value();
    limit.lift();
    ASSERT_TRUE(failed);
    log.rollback();

    auto rows = all(log);
    ASSERT_EQ(rows.size(), 2u);
    auto next = log.append(make_event(4));
    ASSERT_TRUE(next.has_value()) << next.error().to_string();
    EXPECT_EQ(next->seq, 3);
    EXPECT_EQ(next->prev_hash, head);
    const VerifyReport v = verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 3);
}

// SQLite rolls the whole transaction back on an I/O error at COMMIT; the head
// must follow even if the caller never calls rollback().
TEST_F(AuditTest, FailedCommitResetsTheHeadByItself) {
    auto log = open_log();
    ASSERT_TRUE(log.append(make_event(1)).has_value());
    const std::string head = all(log).back().hash;

    ASSERT_TRUE(log.begin().has_value());
    ASSERT_TRUE(log.append(make_event(2)).has_value());
    ASSERT_TRUE(log.append(big_event()).has_value());  // still in the page cache
    FsizeLimit limit(current_max_size(path_));
    ASSERT_TRUE(limit.ok());
    auto committed = log.commit();
    limit.lift();
    ASSERT_FALSE(committed.has_value());
    EXPECT_NE(committed.error().message.find("COMMIT"), std::string::npos) << committed.error().message;
    EXPECT_NE(committed.error().message.find("rolled back"), std::string::npos) << committed.error().message;

    auto next = log.append(make_event(3));  // no rollback() call
    ASSERT_TRUE(next.has_value()) << next.error().to_string();
    EXPECT_EQ(next->seq, 2);
    EXPECT_EQ(next->prev_hash, head);
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
        for (const char* suffix : {"", "-wal", "-shm"}) {
            struct stat st {};
            ASSERT_EQ(::stat((path_ + suffix).c_str(), &st), 0) << suffix;
            EXPECT_EQ(st.st_mode & 07777, 0600u) << suffix;
        }
    }
    ::umask(old);
}

TEST_F(AuditTest, ExistingLooseModeIsTightened) {
    { std::ofstream(path_).close(); }
    ASSERT_EQ(::chmod(path_.c_str(), 0644), 0);
    auto log = open_log();
    struct stat st {};
    ASSERT_EQ(::stat(path_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
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

    // A second AuditLog on the same file (e.g. the CLI) does not disturb it.
    {
        auto reader = open_log();
        EXPECT_EQ(all(reader).size(), 5u);
    }
    ASSERT_TRUE(log.append(make_event(6)).has_value());

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
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE(writer.append(make_event(i, i)).has_value());
    ASSERT_TRUE(writer.begin().has_value());  // the daemon mid-batch holds the write lock
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
    ASSERT_TRUE(writer.commit().has_value());
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
