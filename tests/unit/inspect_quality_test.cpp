// Precision and recall of every detector on the labelled corpus
// (tests/corpus/corpus_generator.hpp), scanned with the library in block
// mode: each detector must reach 0.98 in both, and every detector in the
// catalogue must have positives in the corpus, so a new detector cannot pass
// without being measured. The table is printed to the test log.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "corpus/corpus_generator.hpp"
#include "corpus/quality.hpp"
#include "inspect/detectors.hpp"
#include "inspect/scanner.hpp"

namespace {

using namespace airlock;
using corpus::Found;

constexpr double k_required = 0.98;
constexpr std::size_t k_problems_shown_per_type = 12;

std::vector<std::string> catalogue_ids() {
    std::vector<std::string> ids;
    for (const inspect::Detector& d : inspect::all_detectors()) ids.emplace_back(d.id);
    return ids;
}

std::vector<std::vector<Found>> scan_corpus(const corpus::Corpus& c) {
    auto scanner = inspect::Scanner::create(inspect::Options{});
    EXPECT_TRUE(scanner.has_value()) << (scanner ? "" : scanner.error().to_string());
    if (!scanner) return {};
    auto session = scanner->new_session();
    EXPECT_TRUE(session.has_value());
    if (!session) return {};
    std::vector<std::vector<Found>> out;
    for (const corpus::Document& doc : c.documents) {
        auto result = session->scan(doc.text, doc.name);
        EXPECT_TRUE(result.has_value()) << doc.name;
        std::vector<Found> found;
        if (result) {
            EXPECT_FALSE(result->truncated) << doc.name;
            for (const inspect::Finding& f : result->findings) found.push_back({std::string(f.type), f.offset, f.length});
        }
        out.push_back(std::move(found));
    }
    return out;
}

// Fails the test for every detector under the bar, with the problems behind it.
void expect_quality(const corpus::Corpus& c, const corpus::Score& score) {
    std::cout << corpus::format_table(score) << std::flush;
    // AIRLOCK_QUALITY_VERBOSE=1 lists every problem, also of passing detectors.
    const bool verbose = std::getenv("AIRLOCK_QUALITY_VERBOSE") != nullptr;
    std::map<std::string, std::size_t> shown;
    for (const corpus::TypeScore& s : score.types) {
        EXPECT_GT(s.positives, 0U) << s.type << " has no positives in the corpus: teach the generator its formats";
        EXPECT_GE(s.precision(), k_required) << s.type << ": " << s.false_positives() << " false positives";
        EXPECT_GE(s.recall(), k_required) << s.type << ": " << s.false_negatives() << " missed";
        if (!verbose && s.precision() >= k_required && s.recall() >= k_required) {
            shown[s.type] = k_problems_shown_per_type;
        }
    }
    for (const corpus::Problem& p : score.problems) {
        if (verbose || shown[p.type]++ < k_problems_shown_per_type) std::cout << corpus::describe(c, p) << "\n";
    }
}

TEST(InspectQuality, EveryDetectorReachesPrecisionAndRecallOnTheCorpus) {
    const auto started = std::chrono::steady_clock::now();
    const corpus::Corpus c = corpus::generate_corpus();
    const auto findings = scan_corpus(c);
    ASSERT_EQ(findings.size(), c.documents.size());
    const corpus::Score score = corpus::score(c, findings, catalogue_ids());
    expect_quality(c, score);
    std::cout << c.documents.size() << " documents scanned and scored in "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() << " s\n";
}

// Another seed: the bar holds for the generator's formats, not for one draw
// of them.
TEST(InspectQuality, AnotherSeedToo) {
    corpus::CorpusOptions options;
    options.seed = 7;
    options.positives_per_type = 60;
    const corpus::Corpus c = corpus::generate_corpus(options);
    const corpus::Score score = corpus::score(c, scan_corpus(c), catalogue_ids());
    expect_quality(c, score);
}

TEST(InspectQuality, TheGeneratorCoversTheCatalogueAndIsDeterministic) {
    const std::vector<std::string> types = corpus::corpus_types();
    for (const std::string& id : catalogue_ids()) {
        EXPECT_NE(std::find(types.begin(), types.end(), id), types.end()) << id << " has no generator";
    }
    corpus::CorpusOptions small;
    small.positives_per_type = 5;
    small.negatives_per_kind = 3;
    const corpus::Corpus a = corpus::generate_corpus(small);
    const corpus::Corpus b = corpus::generate_corpus(small);
    ASSERT_EQ(a.documents.size(), b.documents.size());
    for (std::size_t i = 0; i < a.documents.size(); ++i) EXPECT_EQ(a.documents[i].text, b.documents[i].text);
    small.seed += 1;
    EXPECT_NE(corpus::generate_corpus(small).documents.front().text, a.documents.front().text);
    // Labels lie inside their document, in order, without overlapping.
    for (const corpus::Document& doc : a.documents) {
        std::size_t end = 0;
        for (const corpus::Label& label : doc.positives) {
            EXPECT_GE(label.offset, end) << doc.name;
            EXPECT_GT(label.length, 0U);
            EXPECT_LE(label.offset + label.length, doc.text.size()) << doc.name;
            end = label.offset + label.length;
        }
    }
}

// The scoring itself: a detector that misnames, splits or invents findings
// must lose precision, one that misses must lose recall.
TEST(InspectQuality, ScoringCountsMisnamedSplitAndMissedValues) {
    corpus::Corpus c;
    corpus::Document doc;
    doc.name = "one.txt";
    doc.text = "SSN 536-22-8451 card 4539148803436467 mail a@b.io lookalike";
    doc.positives = {{"pii.us_ssn", 4, 11}, {"pii.credit_card", 21, 16}, {"pii.email", 43, 6}};
    doc.negatives = {{"neg.thing", 50, 9}};
    c.documents.push_back(doc);
    const std::vector<std::vector<Found>> findings = {{
        {"pii.us_ssn", 4, 3},           // overlaps: a true positive, not exact
        {"pii.us_ssn", 8, 7},           // the same SSN again: a false positive
        {"pii.phone", 21, 16},          // the card, misnamed
        {"pii.email", 50, 9},           // on the lookalike
    }};
    const corpus::Score s = corpus::score(c, findings, {"pii.us_ssn", "pii.credit_card", "pii.email", "pii.phone"});
    ASSERT_EQ(s.types.size(), 4U);
    EXPECT_EQ(s.types[0].true_positives, 1U);
    EXPECT_EQ(s.types[0].false_positives(), 1U);
    EXPECT_EQ(s.types[0].exact, 0U);
    EXPECT_DOUBLE_EQ(s.types[0].recall(), 1.0);
    EXPECT_DOUBLE_EQ(s.types[0].precision(), 0.5);
    EXPECT_DOUBLE_EQ(s.types[1].recall(), 0.0);   // misnamed, so not recalled
    EXPECT_DOUBLE_EQ(s.types[2].recall(), 0.0);
    EXPECT_DOUBLE_EQ(s.types[2].precision(), 0.0);
    EXPECT_EQ(s.types[3].misnamed, 1U);
    EXPECT_DOUBLE_EQ(s.types[3].precision(), 0.0);
    EXPECT_EQ(s.problems.size(), 5U);  // three false positives, two misses
}

}  // namespace
