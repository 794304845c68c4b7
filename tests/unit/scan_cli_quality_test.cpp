// `airlock scan --json` on the labelled corpus (tests/corpus) written out as
// files: every detector must reach 0.98 precision and recall from the
// command's own JSON output, which also exercises the streaming path the
// command reads files through.
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "corpus/corpus_generator.hpp"
#include "corpus/quality.hpp"
#include "inspect/detectors.hpp"
#include "support/files.hpp"

namespace {

namespace fs = std::filesystem;
using airlock::test_files::slurp;
const auto& quote = airlock::test_files::shell_quote;
using namespace airlock;
using nlohmann::json;

constexpr double k_required = 0.98;

class ScanCliQuality : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/airlock-scan-quality-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    fs::path dir_;
};

TEST_F(ScanCliQuality, ScanFindsEveryDetectorsPositivesAtPrecisionAndRecall) {
    const corpus::Corpus c = corpus::generate_corpus();
    const fs::path tree = dir_ / "corpus";
    fs::create_directories(tree);
    std::map<std::string, std::size_t> document_of_path;
    for (std::size_t i = 0; i < c.documents.size(); ++i) {
        const fs::path p = tree / c.documents[i].name;
        std::ofstream(p, std::ios::binary) << c.documents[i].text;
        ASSERT_TRUE(document_of_path.emplace(p.string(), i).second) << "duplicate name " << p;
    }

    const fs::path out = dir_ / "report.json", err = dir_ / "stderr.txt";
    const std::string cmd = quote(std::string(AIRLOCK_BINARY_DIR) + "/airlock") + " scan --json " + quote(tree) +
                            " </dev/null >" + quote(out) + " 2>" + quote(err);
    const int raw = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(raw)) << raw;
    EXPECT_EQ(WEXITSTATUS(raw), 1) << slurp(err);  // something was found
    const json report = json::parse(slurp(out));
    EXPECT_EQ(report.at("stats").at("files"), c.documents.size());
    EXPECT_EQ(report.at("stats").at("errors"), 0);

    std::vector<std::vector<corpus::Found>> findings(c.documents.size());
    for (const json& f : report.at("findings")) {
        const auto it = document_of_path.find(f.at("path").get<std::string>());
        ASSERT_NE(it, document_of_path.end()) << f.at("path");
        findings[it->second].push_back(
            {f.at("type").get<std::string>(), f.at("offset").get<std::size_t>(), f.at("length").get<std::size_t>()});
    }
    std::vector<std::string> ids;
    for (const inspect::Detector& d : inspect::all_detectors()) ids.emplace_back(d.id);
    const corpus::Score score = corpus::score(c, findings, ids);
    std::cout << corpus::format_table(score) << std::flush;
    for (const corpus::TypeScore& s : score.types) {
        EXPECT_GT(s.positives, 0U) << s.type << " has no positives in the corpus";
        EXPECT_GE(s.precision(), k_required) << s.type << ": " << s.false_positives() << " false positives";
        EXPECT_GE(s.recall(), k_required) << s.type << ": " << s.false_negatives() << " missed";
    }
    // AIRLOCK_QUALITY_VERBOSE=1 lists every problem, also when the bar is met.
    if (HasFailure() || std::getenv("AIRLOCK_QUALITY_VERBOSE") != nullptr) {
        std::size_t shown = 0;
        for (const corpus::Problem& p : score.problems) {
            if (shown++ < 40 || std::getenv("AIRLOCK_QUALITY_VERBOSE") != nullptr) std::cout << corpus::describe(c, p) << "\n";
        }
    }
}

}  // namespace
