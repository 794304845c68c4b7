// `airlock scan`: runs the built airlock binary over files, directories and
// standard input and checks exit statuses, JSON and SARIF output, --types,
// --max-size, and that no raw value ever reaches the output.
//
// Credential-shaped values are assembled at run time, so that no complete
// token sits in the source for a repository secret scanner to flag.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>

#include "support/files.hpp"

namespace {

namespace fs = std::filesystem;
using airlock::test_files::slurp;
const auto& quote = airlock::test_files::shell_quote;
using nlohmann::json;

std::string github_token() {
    std::mt19937 rng(4242);
    constexpr std::string_view alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    std::string out = std::string("gh") + "p_";
    for (int i = 0; i < 36; ++i) out.push_back(alnum[rng() % alnum.size()]);
    return out;
}

const std::string k_ssn = "536-22-8451";

struct Outcome {
    int status = -1;
    std::string out;
    std::string err;
};

class ScanCli : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/airlock-scan-test-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        token_ = github_token();
        // The token on line 2, the SSN (with its context word) on line 4.
        secrets_ = dir_ / "secrets.txt";
        write(secrets_, "config\ngithub: " + token_ + "\nname: Bob\nSSN " + k_ssn + "\n");
        clean_ = dir_ / "clean.txt";
        write(clean_, "hello world\nnothing to see here, version 1.2.3\n");
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    static void write(const fs::path& p, const std::string& content) {
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << content;
    }

    // Runs `airlock scan ARGS` with stdin from `stdin_file` (or /dev/null).
    Outcome scan(const std::string& args, const std::string& stdin_file = "/dev/null") {
        const fs::path out = dir_ / ".out", err = dir_ / ".err";
        const std::string cmd = quote(std::string(AIRLOCK_BINARY_DIR) + "/airlock") + " scan " + args + " <" +
                                quote(stdin_file) + " >" + quote(out) + " 2>" + quote(err);
        const int raw = std::system(cmd.c_str());
        Outcome r;
        r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
        r.out = slurp(out);
        r.err = slurp(err);
        fs::remove(out);
        fs::remove(err);
        return r;
    }

    void expect_no_raw_values(const Outcome& r) {
        EXPECT_EQ(r.out.find(token_), std::string::npos) << "raw token in output";
        EXPECT_EQ(r.out.find(token_.substr(4, 12)), std::string::npos) << "token body in output";
        EXPECT_EQ(r.out.find(k_ssn), std::string::npos) << "raw SSN in output";
        EXPECT_EQ(r.out.find("536228451"), std::string::npos);
        EXPECT_EQ(r.err.find(token_), std::string::npos);
    }

    static std::set<std::string> types(const json& report) {
        std::set<std::string> out;
        for (const auto& f : report.at("findings")) out.insert(f.at("type").get<std::string>());
        return out;
    }

    fs::path dir_;
    fs::path secrets_;
    fs::path clean_;
    std::string token_;
};

TEST_F(ScanCli, CleanFileExitsZero) {
    Outcome r = scan(quote(clean_));
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("0 findings in 1 file"), std::string::npos) << r.out;
}

TEST_F(ScanCli, FindingsExitOneWithLinesAndMaskedPreviews) {
    Outcome r = scan("--json " + quote(secrets_));
    ASSERT_EQ(r.status, 1) << r.out << r.err;
    const json report = json::parse(r.out);
    ASSERT_EQ(report.at("findings").size(), 2u) << r.out;
    EXPECT_EQ(types(report), (std::set<std::string>{"secret.github_token", "pii.us_ssn"}));
    for (const auto& f : report.at("findings")) {
        for (const char* key : {"type", "path", "offset", "length", "line", "preview"})
            EXPECT_TRUE(f.contains(key)) << key;
        EXPECT_EQ(f.at("path"), secrets_.string());
        if (f.at("type") == "secret.github_token") {
            EXPECT_EQ(f.at("line"), 2);
            EXPECT_EQ(f.at("preview"), "ghp_****");
            EXPECT_EQ(f.at("length"), token_.size());
            EXPECT_EQ(f.at("offset"), std::string("config\ngithub: ").size());
        } else {
            EXPECT_EQ(f.at("line"), 4);
            EXPECT_EQ(f.at("preview"), "***-**-8451");
        }
    }
    const json& stats = report.at("stats");
    EXPECT_EQ(stats.at("files"), 1);
    EXPECT_EQ(stats.at("findings"), 2);
    EXPECT_EQ(stats.at("bytes"), fs::file_size(secrets_));
    EXPECT_EQ(stats.at("skipped"), 0);
    EXPECT_EQ(stats.at("errors"), 0);
    EXPECT_TRUE(stats.at("seconds").is_number());
    expect_no_raw_values(r);
}

TEST_F(ScanCli, HumanOutputNamesPathLineTypeAndPreview) {
    Outcome r = scan(quote(secrets_));
    ASSERT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_NE(r.out.find(secrets_.string() + ":2: secret.github_token ghp_****"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(secrets_.string() + ":4: pii.us_ssn ***-**-8451"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("2 findings in 1 file"), std::string::npos) << r.out;
    expect_no_raw_values(r);
}

TEST_F(ScanCli, ReadsStandardInput) {
    Outcome dash = scan("--json -", secrets_);
    ASSERT_EQ(dash.status, 1) << dash.out << dash.err;
    json report = json::parse(dash.out);
    EXPECT_EQ(types(report), (std::set<std::string>{"secret.github_token", "pii.us_ssn"}));
    EXPECT_EQ(report.at("findings").at(0).at("path"), "-");
    expect_no_raw_values(dash);

    Outcome none = scan("--json", secrets_);  // no PATH: standard input too
    EXPECT_EQ(none.status, 1) << none.err;
    Outcome clean = scan("-", clean_);
    EXPECT_EQ(clean.status, 0) << clean.out << clean.err;
}

TEST_F(ScanCli, WalksDirectoriesRecursively) {
    const fs::path tree = dir_ / "tree";
    write(tree / "a" / "b" / "deep.txt", "row 1\nrow 2\nssn: " + k_ssn + "\n");
    write(tree / "top.txt", "nothing\n");
    ASSERT_EQ(::mkfifo((tree / "a" / "pipe").c_str(), 0600), 0);  // skipped, never opened
    // A symlink to a directory is not followed (it would scan deep.txt twice).
    fs::create_directory_symlink(tree / "a", tree / "link");
    Outcome r = scan("--json " + quote(tree));
    ASSERT_EQ(r.status, 1) << r.out << r.err;
    const json report = json::parse(r.out);
    ASSERT_EQ(report.at("findings").size(), 1u) << r.out;
    EXPECT_EQ(report.at("findings")[0].at("path"), (tree / "a" / "b" / "deep.txt").string());
    EXPECT_EQ(report.at("findings")[0].at("line"), 3);
    EXPECT_EQ(report.at("stats").at("files"), 2);
    EXPECT_EQ(report.at("stats").at("skipped"), 1);
    EXPECT_NE(r.err.find("FIFO"), std::string::npos) << r.err;

    fs::remove(tree / "a" / "b" / "deep.txt");
    EXPECT_EQ(scan(quote(tree)).status, 0);
}

TEST_F(ScanCli, TypesRestrictTheDetectors) {
    Outcome gh = scan("--json --types secret.github_token " + quote(secrets_));
    ASSERT_EQ(gh.status, 1) << gh.err;
    EXPECT_EQ(types(json::parse(gh.out)), (std::set<std::string>{"secret.github_token"}));

    Outcome pii = scan("--json --types 'pii.*' " + quote(secrets_));
    ASSERT_EQ(pii.status, 1) << pii.err;
    EXPECT_EQ(types(json::parse(pii.out)), (std::set<std::string>{"pii.us_ssn"}));

    Outcome both = scan("--json --types 'pii.us_ssn, secret.*' " + quote(secrets_));
    ASSERT_EQ(both.status, 1) << both.err;
    EXPECT_EQ(types(json::parse(both.out)), (std::set<std::string>{"secret.github_token", "pii.us_ssn"}));

    EXPECT_EQ(scan("--types pii.email " + quote(secrets_)).status, 0);
}

TEST_F(ScanCli, UnknownTypeIsAUsageError) {
    Outcome r = scan("--types pii.*,secret.no_such_thing " + quote(secrets_));
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("secret.no_such_thing"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_EQ(scan("--no-such-option " + quote(clean_)).status, 2);
    EXPECT_EQ(scan("--json --sarif " + quote(clean_)).status, 2);
}

TEST_F(ScanCli, MissingOrUnreadableInputExitsTwoButScanningContinues) {
    const fs::path missing = dir_ / "does-not-exist";
    Outcome r = scan("--json " + quote(missing) + " " + quote(secrets_));
    EXPECT_EQ(r.status, 2) << r.out << r.err;  // errors win over findings
    EXPECT_NE(r.err.find(missing.string()), std::string::npos) << r.err;
    const json report = json::parse(r.out);  // the rest was still scanned
    EXPECT_EQ(report.at("findings").size(), 2u);
    EXPECT_EQ(report.at("stats").at("errors"), 1);

    EXPECT_EQ(scan(quote(missing) + " " + quote(clean_)).status, 2);
    // Opens but fails to read, even as root (EIO: nothing is mapped at offset 0).
    Outcome eio = scan("/proc/self/mem");
    EXPECT_EQ(eio.status, 2) << eio.out << eio.err;
    EXPECT_NE(eio.err.find("/proc/self/mem"), std::string::npos) << eio.err;
    if (::geteuid() != 0) {  // root reads mode-000 files
        const fs::path locked = dir_ / "locked.txt";
        write(locked, "nothing\n");
        fs::permissions(locked, fs::perms::none);
        EXPECT_EQ(scan(quote(locked)).status, 2);
    }
}

TEST_F(ScanCli, SarifIsValid) {
    Outcome r = scan("--sarif " + quote(secrets_) + " " + quote(clean_));
    ASSERT_EQ(r.status, 1) << r.err;
    const json sarif = json::parse(r.out);
    EXPECT_EQ(sarif.at("version"), "2.1.0");
    ASSERT_EQ(sarif.at("runs").size(), 1u);
    const json& run = sarif.at("runs")[0];
    EXPECT_EQ(run.at("tool").at("driver").at("name"), "airlock");
    std::set<std::string> rules;
    for (const auto& rule : run.at("tool").at("driver").at("rules")) rules.insert(rule.at("id").get<std::string>());
    EXPECT_TRUE(rules.contains("pii.us_ssn"));
    EXPECT_TRUE(rules.contains("secret.github_token"));
    ASSERT_EQ(run.at("results").size(), 2u);
    for (const auto& result : run.at("results")) {
        EXPECT_TRUE(rules.contains(result.at("ruleId").get<std::string>()));
        EXPECT_TRUE(result.at("message").at("text").is_string());
        const json& loc = result.at("locations").at(0).at("physicalLocation");
        EXPECT_EQ(loc.at("artifactLocation").at("uri"), "file://" + secrets_.string());
        EXPECT_EQ(loc.at("region").at("startLine"), result.at("ruleId") == "pii.us_ssn" ? 4 : 2);
    }
    expect_no_raw_values(r);

    Outcome restricted = scan("--sarif --types secret.github_token " + quote(clean_));
    ASSERT_EQ(restricted.status, 0) << restricted.err;
    const json only = json::parse(restricted.out);
    ASSERT_EQ(only.at("runs")[0].at("tool").at("driver").at("rules").size(), 1u);
    EXPECT_TRUE(only.at("runs")[0].at("results").empty());
}

TEST_F(ScanCli, MaxSizeSkipsLargerFiles) {
    Outcome r = scan("--json --max-size 10 " + quote(secrets_) + " " + quote(clean_));
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    json report = json::parse(r.out);
    EXPECT_TRUE(report.at("findings").empty());
    EXPECT_EQ(report.at("stats").at("skipped"), 2);
    EXPECT_EQ(report.at("stats").at("files"), 0);
    EXPECT_NE(r.err.find("--max-size"), std::string::npos) << r.err;

    Outcome fits = scan("--json --max-size 1K " + quote(secrets_));
    EXPECT_EQ(fits.status, 1) << fits.err;
    EXPECT_EQ(json::parse(fits.out).at("stats").at("skipped"), 0);

    EXPECT_EQ(scan("--max-size 12Q " + quote(clean_)).status, 2);
    EXPECT_EQ(scan("--max-size lots " + quote(clean_)).status, 2);
}

TEST_F(ScanCli, MaxFindingsStopsAFileWithAWarning) {
    std::string many;
    for (int i = 0; i < 30; ++i) many += "SSN " + k_ssn + "\n";
    const fs::path dense = dir_ / "dense.txt";
    write(dense, many);
    Outcome all = scan("--json " + quote(dense));
    EXPECT_EQ(json::parse(all.out).at("findings").size(), 30u) << all.err;
    EXPECT_EQ(all.err.find("stopped after"), std::string::npos) << all.err;
    Outcome capped = scan("--json --max-findings 5 " + quote(dense));
    EXPECT_EQ(capped.status, 1);
    EXPECT_EQ(json::parse(capped.out).at("findings").size(), 5u);
    EXPECT_NE(capped.err.find("stopped after 5 findings"), std::string::npos) << capped.err;
    for (const char* bad : {"0", "-1", "lots", "100000001"})
        EXPECT_EQ(scan(std::string("--max-findings ") + bad + " " + quote(dense)).status, 2) << bad;
}

TEST_F(ScanCli, FindsAValueAcrossChunkBoundariesInLargeFiles) {
    // 3 MiB of filler with the SSN straddling the 1 MiB read boundary.
    std::string big(std::size_t{1} << 20, 'x');
    for (std::size_t i = 99; i < big.size(); i += 100) big[i] = '\n';
    big.resize(big.size() - 6);
    big += " SSN " + k_ssn + " \n";
    big += std::string(std::size_t{2} << 20, 'y');
    const fs::path file = dir_ / "big.txt";
    write(file, big);
    Outcome r = scan("--json " + quote(file));
    ASSERT_EQ(r.status, 1) << r.err;
    const json report = json::parse(r.out);
    ASSERT_EQ(report.at("findings").size(), 1u);
    EXPECT_EQ(report.at("findings")[0].at("offset"), big.find(k_ssn));
    EXPECT_EQ(report.at("stats").at("bytes"), big.size());
}

TEST_F(ScanCli, ListTypesNamesEveryDetectorOnce) {
    const Outcome r = scan("--list-types");
    ASSERT_EQ(r.status, 0) << r.err;
    std::istringstream lines(r.out);
    std::set<std::string> ids;
    std::string line;
    std::size_t count = 0;
    while (std::getline(lines, line)) {
        ++count;
        const std::string id = line.substr(0, line.find('\t'));
        EXPECT_TRUE(id.starts_with("pii.") || id.starts_with("secret.")) << line;
        EXPECT_NE(line.find('\t'), std::string::npos) << line;
        ids.insert(id);
    }
    EXPECT_EQ(ids.size(), count) << "duplicate ids";
    for (const char* id : {"pii.us_ssn", "pii.email", "pii.credit_card", "secret.github_token", "secret.private_key"})
        EXPECT_TRUE(ids.contains(id)) << id;
    // Every listed id is one --types accepts.
    EXPECT_EQ(scan("--types " + *ids.begin() + " " + quote(clean_)).status, 0);
}

// `airlock policy explain` shows what an inspecting rule does with data, and
// a session_read rule only when told what the session read.
TEST_F(ScanCli, PolicyExplainShowsInspectionAndSessionRead) {
    const fs::path policy = dir_ / "policy.yaml";
    write(policy, "version: 1\ndefault: deny\nrules:\n"
                  "  - name: exfil\n    match: { action: connect, session_read: { classes: [\"pii.*\"], min_count: 10 } }\n"
                  "    verdict: ask\n"
                  "  - name: data\n    match: { action: open, path: [\"/srv/**\"] }\n    inspect: true\n"
                  "    on_data: [{ classes: [\"secret.*\"], verdict: deny }, { classes: [\"pii.*\"], verdict: mask }]\n"
                  "    verdict: allow\n");
    auto explain = [&](const std::string& args) {
        const fs::path out = dir_ / ".out";
        const std::string cmd = quote(std::string(AIRLOCK_BINARY_DIR) + "/airlock") + " policy explain --policy " +
                                quote(policy) + " " + args + " >" + quote(out) + " 2>&1";
        const int raw = std::system(cmd.c_str());
        Outcome r;
        r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
        r.out = slurp(out);
        return r;
    };
    Outcome r = explain("open /srv/customers.csv");
    EXPECT_EQ(r.out,
              "allow by rule 'data'\n"
              "  inspects the data first (up to 16 MiB; larger or unscannable: ask):\n"
              "    on_data #1: secret.* (at least 1) -> deny\n"
              "    on_data #2: pii.* (at least 1) -> mask\n"
              "    nothing of those -> allow\n");
    EXPECT_EQ(explain("connect 93.184.216.34:443").out.rfind("deny by rule 'default'", 0), 0u);
    EXPECT_EQ(explain("--session-read pii.email=9 connect 93.184.216.34:443").out.rfind("deny by rule 'default'", 0), 0u);
    r = explain("--session-read pii.email=9 --session-read pii.us_ssn connect 93.184.216.34:443");
    EXPECT_EQ(r.out.rfind("ask by rule 'exfil'", 0), 0u) << r.out;
    r = explain("--session-read pii.ssn=3 connect 93.184.216.34:443");
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.out.find("unknown data class 'pii.ssn'"), std::string::npos) << r.out;
}

}  // namespace
