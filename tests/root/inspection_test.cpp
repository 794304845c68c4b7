// Content inspection under a real daemon: an agent opening a file whose rule
// inspects is held, masked or refused on what the file holds; the findings
// reach prompts and audit rows masked, never as values; and a session that
// read personal data has its later connects escalated.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <random>

#include "harness.hpp"
#include "policy_fixture.hpp"

namespace airlock::test {
namespace {

using namespace std::chrono_literals;

// Values the detectors accept. Built at run time so that this source file is
// not itself a secret-scanner finding.
const std::string k_ssn_1 = std::string("536-22-") + "8451";
const std::string k_ssn_2 = std::string("219-09-") + "9999";
const std::string k_email = std::string("jane.roe") + "@corp-mail.io";

std::string github_token() {
    static const std::string alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    std::mt19937 rng(7);
    std::string body;
    for (int i = 0; i < 36; ++i) body += alnum[rng() % alnum.size()];
    return std::string("gh") + "p_" + body;
}

class InspectionTest : public ::testing::Test {
protected:
    void SetUp() override {
        AIRLOCK_REQUIRE_ROOT();
        work_ = make_temp_dir();
        for (const char* sub : {"srv", "masked", "open-data", "big", "lenient"})
            std::filesystem::create_directories(work_ + "/" + sub);
        write_file(work_ + "/lenient/notes.txt", "plain text\n");
        write_file(work_ + "/srv/customers.csv",
                   "name,ssn,email\nJane Roe,SSN " + k_ssn_1 + "," + k_email + "\nJohn Doe,SSN " + k_ssn_2 + ",-\n");
        write_file(work_ + "/srv/config.env", "GITHUB_TOKEN=" + github_token() + "\n");
        write_file(work_ + "/srv/clean.txt", "nothing to see here\n");
        write_file(work_ + "/masked/people.txt", "Contact " + k_email + ", SSN " + k_ssn_1 + ".\n");
        write_file(work_ + "/open-data/list.txt", "mail " + k_email + " and ops@corp-mail.io\n");
        write_file(work_ + "/big/blob.txt", std::string(4096, 'x'));
    }
    void TearDown() override {
        daemon_.reset();
        std::error_code ec;
        if (!work_.empty()) std::filesystem::remove_all(work_, ec);
    }
    Daemon& start() {
        const std::string rules =
            "  - name: customer-data\n"
            "    match: { action: open, path: [\"" + work_ + "/srv/**\"] }\n"
            "    inspect: true\n"
            "    on_data:\n"
            "      - { classes: [\"secret.*\"], verdict: deny, errno: EPERM }\n"
            "      - { classes: [\"pii.us_ssn\", \"pii.credit_card\"], min_count: 1, verdict: ask }\n"
            "      - { classes: [\"pii.*\"], verdict: mask }\n"
            "    verdict: allow\n"
            "  - name: masked\n"
            "    match: { action: open, path: [\"" + work_ + "/masked/**\"] }\n"
            "    inspect: true\n"
            "    on_data: [{ classes: [\"pii.*\"], verdict: mask }]\n"
            "    verdict: allow\n"
            "  - name: open-data\n"
            "    match: { action: open, path: [\"" + work_ + "/open-data/**\"] }\n"
            "    inspect: true\n"
            "    verdict: allow\n"
            "  - name: big\n"
            "    match: { action: open, path: [\"" + work_ + "/big/**\"] }\n"
            "    inspect: true\n"
            "    too_large: deny\n"
            "    errno: EFBIG\n"
            "    verdict: allow\n"
            "  - name: lenient\n"
            "    match: { action: open, path: [\"" + work_ + "/lenient/**\"] }\n"
            "    inspect: true\n"
            "    too_large: allow\n"
            "    verdict: allow\n"
            "  - name: exfiltration\n"
            "    match: { action: connect, session_read: [\"pii.*\"] }\n"
            "    verdict: ask\n"
            "  - name: tokens-on-command-lines\n"
            "    match: { action: exec, path: [\"/usr/bin/env\"] }\n"
            "    inspect: true\n"
            "    on_data: [{ classes: [\"secret.*\"], verdict: deny, errno: EPERM }]\n"
            "    verdict: allow\n";
        // max_size applies to every inspecting rule; 1 KiB makes big/ too large.
        std::string policy = test_policy(work_, rules);
        policy.replace(policy.find("rules:\n"), 7, "inspection: { max_size: 1KiB }\nrules:\n");
        daemon_ = std::make_unique<Daemon>(policy);
        return *daemon_;
    }
    std::string probe(const std::vector<std::string>& args) {
        auto out = daemon_->run_probe(args).wait();
        return trim(out.out) + (out.err.empty() ? "" : " [stderr: " + out.err + "]");
    }
    // Every byte the daemon wrote about this test: log, audit rows, pending.
    void expect_no_raw_values(const std::string& where, const std::string& text) {
        for (const std::string& raw : {k_ssn_1, k_ssn_2, k_email, github_token(), std::string("5362284")})
            EXPECT_EQ(text.find(raw), std::string::npos) << where << " holds a raw value: " << raw;
    }
    std::string work_;
    std::unique_ptr<Daemon> daemon_;
};

// The example: SSNs in a customer file hold the open for a person,
// who sees what is in it (masked), and the agent gets the file once approved.
TEST_F(InspectionTest, FileWithSsnsIsHeldWithMaskedFindings) {
    auto& d = start();
    auto agent = d.run_probe({"read", work_ + "/srv/customers.csv"});
    auto pending = d.wait_pending(1);
    ASSERT_EQ(pending.size(), 1u) << d.log_text();
    const auto& r = pending[0];
    EXPECT_EQ(r["rule"], "customer-data");
    EXPECT_EQ(r["data_reason"], "on_data #2: 2 findings of pii.us_ssn, pii.credit_card") << r.dump();
    ASSERT_TRUE(r.contains("data")) << r.dump();
    EXPECT_EQ(r["data"]["by_type"]["pii.us_ssn"], 2) << r.dump();
    EXPECT_EQ(r["data"]["by_type"]["pii.email"], 1) << r.dump();
    bool masked_preview_shown = false;
    for (const auto& f : r["data"]["shown"]) {
        EXPECT_FALSE(f["keyed_hash"].get<std::string>().empty());
        if (f["type"] == "pii.us_ssn" && f["preview"] == "***-**-8451") masked_preview_shown = true;
    }
    EXPECT_TRUE(masked_preview_shown) << r.dump();
    expect_no_raw_values("pending", pending.dump());
    // The CLI's list shows the findings too.
    auto listed = d.cli({"pending"});
    EXPECT_NE(listed.out.find("pii.us_ssn"), std::string::npos) << listed.out;
    expect_no_raw_values("airlock pending", listed.out);

    ASSERT_EQ(d.cli({"approve", std::to_string(r["id"].get<std::int64_t>())}).status, 0);
    auto out = agent.wait();
    EXPECT_EQ(trim(out.out).rfind("ok name,ssn,email", 0), 0u) << out.out << out.err;
    EXPECT_NE(out.out.find(k_ssn_1), std::string::npos) << "approved: the real file";

    auto allowed_row = [&](const nlohmann::json& rows) {
        for (const auto& row : rows)
            if (row["kind"] == "decision" && row["verdict"] == "allow" && row["rule"] == "customer-data" &&
                row["detail"].is_object() && row["detail"].contains("data"))
                return true;
        return false;
    };
    auto rows = d.audit_rows(allowed_row);
    EXPECT_TRUE(allowed_row(rows)) << rows.dump();
    expect_no_raw_values("audit", rows.dump());
    expect_no_raw_values("daemon log", d.log_text());
}

// mask: the agent reads a sealed, read-only copy with every finding redacted.
TEST_F(InspectionTest, MaskHandsOverASealedRedactedCopy) {
    auto& d = start();
    const std::string path = work_ + "/masked/people.txt";
    EXPECT_EQ(probe({"read", path}), "ok Contact [REDACTED:pii.email], SSN ***-**-8451.") << d.log_text();
    const std::string sealed = probe({"sealed", path});
    // F_SEAL_SEAL|SHRINK|GROW|WRITE = 1|2|4|8
    EXPECT_NE(sealed.find("seals=15"), std::string::npos) << sealed;
    EXPECT_NE(sealed.find("write=EBADF"), std::string::npos) << sealed;
    EXPECT_NE(sealed.find("reopen_rw=E"), std::string::npos) << sealed;
    // A writable open of a file that would be masked is refused.
    EXPECT_EQ(probe({"open", path, "rdwr"}), "err EACCES");
    EXPECT_EQ(probe({"open", path, "wronly|trunc"}), "err EACCES");
    std::ifstream in(path);
    std::string kept((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(kept.find(k_ssn_1), std::string::npos) << "the refused O_TRUNC open must not have truncated it";
    auto masked_row = [&](const nlohmann::json& rows) {
        for (const auto& row : rows)
            if (row["kind"] == "decision" && row["verdict"] == "mask" && row["rule"] == "masked") return true;
        return false;
    };
    auto rows = d.audit_rows(masked_row);
    EXPECT_TRUE(masked_row(rows)) << rows.dump();
    expect_no_raw_values("audit", rows.dump());
}

TEST_F(InspectionTest, SecretIsRefusedAndCleanFileAllowed) {
    auto& d = start();
    EXPECT_EQ(probe({"read", work_ + "/srv/config.env"}), "err EPERM") << d.log_text();
    EXPECT_EQ(probe({"read", work_ + "/srv/clean.txt"}), "ok nothing to see here");
    // Past inspection's max_size the rule's too_large decides (ask by
    // default; here deny, with the rule's errno).
    EXPECT_EQ(probe({"read", work_ + "/big/blob.txt"}), "err EFBIG");
    auto denied_rows = [&](const nlohmann::json& rows) {
        bool secret = false, big = false;
        for (const auto& row : rows) {
            if (row["kind"] != "decision" || row["verdict"] != "deny") continue;
            const std::string reason = row["reason"];
            secret = secret || (row["rule"] == "customer-data" &&
                                reason.find("on_data #1: 1 finding of secret.*") != std::string::npos);
            big = big || (row["rule"] == "big" && reason == "EFBIG; not inspected (larger than 1 KiB): too_large: deny");
        }
        return secret && big;
    };
    auto rows = d.audit_rows(denied_rows);
    EXPECT_TRUE(denied_rows(rows)) << rows.dump();
    expect_no_raw_values("audit", rows.dump());
    expect_no_raw_values("daemon log", d.log_text());
}

// A re-open of an unchanged file costs a lookup; a changed one is scanned again.
TEST_F(InspectionTest, UnchangedFilesAreNotScannedTwiceChangedOnesAre) {
    auto& d = start();
    const std::string path = work_ + "/open-data/list.txt";
    // Files changed within the last two seconds are never cached (coarse timestamps).
    std::this_thread::sleep_for(2100ms);
    EXPECT_EQ(probe({"read", path}).rfind("ok mail", 0), 0u);
    EXPECT_EQ(probe({"read", path}).rfind("ok mail", 0), 0u);
    auto cached_row = [&](const nlohmann::json& rows) {
        for (const auto& row : rows)
            if (row["kind"] == "decision" && row["rule"] == "open-data" && row["detail"].is_object() &&
                row["detail"]["data"].value("cached", false))
                return true;
        return false;
    };
    auto rows = d.audit_rows(cached_row);
    EXPECT_TRUE(cached_row(rows)) << rows.dump();
    // Now a secret appears in it: the cache must not hide it.
    write_file(path, "GITHUB_TOKEN=" + github_token() + "\n");
    write_file(work_ + "/srv/was-clean.txt", "clean\n");
    EXPECT_EQ(probe({"read", path}).rfind("ok GITHUB_TOKEN=gh", 0), 0u);  // open-data has no on_data
    auto secret_row = [&](const nlohmann::json& all) {
        for (const auto& row : all)
            if (row["kind"] == "decision" && row["rule"] == "open-data" && row["detail"].is_object() &&
                row["detail"]["data"]["by_type"].contains("secret.github_token"))
                return true;
        return false;
    };
    rows = d.audit_rows(secret_row);
    EXPECT_TRUE(secret_row(rows)) << rows.dump();
}

// A session that read personal data and then connects out is asked about it,
// with what it read as the reason.
TEST_F(InspectionTest, ConnectAfterReadingPiiIsEscalated) {
    auto& d = start();
    // Before reading anything the local port is allowed (a non-blocking
    // connect that is under way: EINPROGRESS).
    EXPECT_EQ(probe({"connect", "127.0.0.1", "20001", "nonblock"}), "err EINPROGRESS");
    auto agent = d.run_probe({"read-then-connect", work_ + "/open-data/list.txt", "127.0.0.1", "20001"});
    auto pending = d.wait_pending(1);
    ASSERT_EQ(pending.size(), 1u) << d.log_text();
    EXPECT_EQ(pending[0]["rule"], "exfiltration");
    EXPECT_EQ(pending[0]["data_reason"], "this session read 1 file holding 2 pii.email") << pending[0].dump();
    ASSERT_EQ(d.cli({"deny", std::to_string(pending[0]["id"].get<std::int64_t>())}).status, 0);
    auto out = agent.wait();
    EXPECT_EQ(trim(out.out), "read ok\nerr EACCES") << out.err;
    // A masked read taints nothing: the agent never saw the values.
    EXPECT_EQ(trim(d.run_probe({"read-then-connect", work_ + "/masked/people.txt", "127.0.0.1", "20001"}).wait().out),
              "read ok\nerr EINPROGRESS");
}

// A token on a command line is found in argv (or the environment) and the
// exec refused; audit rows show the command line redacted.
TEST_F(InspectionTest, ExecWithATokenInItsArgumentsIsRefused) {
    auto& d = start();
    if (!std::filesystem::exists("/usr/bin/env")) GTEST_SKIP() << "/usr/bin/env is missing";
    // The probe puts $PROBE_TOKEN where "{TOKEN}" is: the session's own
    // command line (logged as it is) never holds the value.
    const std::string token = github_token();
    auto with_token = [&](const std::vector<std::string>& args) {
        auto out = d.run_probe(args, {}, [token] { ::setenv("PROBE_TOKEN", token.c_str(), 1); }).wait();
        return trim(out.out) + (out.err.empty() ? "" : " [stderr: " + out.err + "]");
    };
    EXPECT_EQ(with_token({"exec-clean-env", "/usr/bin/env", "TOKEN={TOKEN}", "/bin/true"}), "err EPERM")
        << d.log_text();
    EXPECT_EQ(with_token({"exec-clean-env", "/usr/bin/env", "PLAIN=1", "/bin/echo", "ran"}), "ran");
    // The environment counts as much as the arguments.
    EXPECT_EQ(with_token({"exec-with-env", "TOKEN={TOKEN}", "/usr/bin/env", "/bin/true"}), "err EPERM");
    auto denied_row = [&](const nlohmann::json& rows) {
        for (const auto& row : rows)
            if (row["kind"] == "decision" && row["verdict"] == "deny" && row["rule"] == "tokens-on-command-lines")
                return true;
        return false;
    };
    auto rows = d.audit_rows(denied_row);
    ASSERT_TRUE(denied_row(rows)) << rows.dump();
    EXPECT_NE(rows.dump().find("[REDACTED:secret.github_token]"), std::string::npos) << rows.dump();
    expect_no_raw_values("audit", rows.dump());
    expect_no_raw_values("daemon log", d.log_text());
}

// Other ways to the same bytes are inspected too: a symlink, an O_PATH
// handle reopened through /proc/self/fd, a hard link or rename elsewhere.
TEST_F(InspectionTest, OtherNamesForInspectedDataAreInspectedOrAsked) {
    auto& d = start();
    const std::string masked = work_ + "/masked/people.txt";
    const std::string expected = "ok Contact [REDACTED:pii.email], SSN ***-**-8451.";
    ASSERT_EQ(::symlink(masked.c_str(), (work_ + "/data-link").c_str()), 0);
    EXPECT_EQ(probe({"read", work_ + "/data-link"}), expected) << d.log_text();
    EXPECT_EQ(probe({"read-via-opath", masked}), expected);
    EXPECT_EQ(probe({"read", "/proc/self/root" + masked}), expected);
    // A second name where reads are not inspected goes to a person; denied,
    // it is not made.
    auto agent = d.run_probe({"link", masked, work_ + "/plain-copy"});
    auto pending = d.wait_pending(1);
    ASSERT_EQ(pending.size(), 1u) << d.log_text();
    EXPECT_EQ(pending[0]["action"], "link");
    EXPECT_EQ(pending[0]["data_reason"], "data read only after inspection would get a name that is read without it");
    ASSERT_EQ(d.cli({"deny", std::to_string(pending[0]["id"].get<std::int64_t>())}).status, 0);
    EXPECT_EQ(trim(agent.wait().out), "err EACCES");
    EXPECT_FALSE(std::filesystem::exists(work_ + "/plain-copy"));
    // Within the inspected tree a rename keeps it inspected: allowed.
    EXPECT_EQ(probe({"rename", masked, work_ + "/masked/renamed.txt"}), "ok");
    EXPECT_EQ(probe({"read", work_ + "/masked/renamed.txt"}), expected);
}

// When the inspector itself cannot work (here: its key file is readable by
// others, so it is refused), inspected calls are denied, even under a rule
// whose too_large would let unscannable data through.
TEST_F(InspectionTest, ABrokenInspectorDeniesRatherThanAllows) {
    auto& d = start();
    write_file(d.state_dir() + "/inspect.key", std::string(64, 'a'), 0644);
    EXPECT_EQ(probe({"read", work_ + "/lenient/notes.txt"}), "err EACCES") << d.log_text();
    EXPECT_NE(d.log_text().find("inspection failed"), std::string::npos) << d.log_text();
    // Rules that do not inspect are unaffected.
    EXPECT_EQ(probe({"read", "/etc/os-release"}).rfind("ok", 0), 0u);
}

}  // namespace
}  // namespace airlock::test
