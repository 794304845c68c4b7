// Scores findings against the corpus's labels, per detector.
//
// Matching rule, one document at a time:
//   - A finding of type T that overlaps a label of type T not yet matched is
//     a true positive and matches that label (overlap, not the exact span:
//     where a value ends — a trailing "\n" inside a JSON string, the
//     separators around a number — is the detector's business, the test
//     only counts the exact spans separately).
//   - A finding of type T overlapping only labels of type T that are already
//     matched is a false positive: one value reported in pieces.
//   - A finding of type T overlapping a label of another type U is a false
//     positive of T (the value is real but misnamed, and policy rules and
//     audit rows key on the name); it does not recall U's label, which only
//     a finding of type U can.
//   - Any other finding, on a planted lookalike or on text nobody labelled,
//     is a false positive.
//   - A label that no finding of its type matched is a false negative.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "corpus/corpus_generator.hpp"

namespace airlock::corpus {

struct Found {
    std::string type;
    std::size_t offset = 0;
    std::size_t length = 0;
};

struct TypeScore {
    std::string type;
    std::size_t positives = 0;       // labels of this type in the corpus
    std::size_t findings = 0;        // findings of this type
    std::size_t true_positives = 0;  // findings that matched a label (each label once)
    std::size_t exact = 0;           // true positives whose span is exactly the label's
    std::size_t misnamed = 0;        // findings of this type on another type's label
    [[nodiscard]] std::size_t false_positives() const { return findings - true_positives; }
    [[nodiscard]] std::size_t false_negatives() const { return positives - true_positives; }
    // 1 when nothing was reported: a detector that finds nothing fails on recall.
    [[nodiscard]] double precision() const;
    [[nodiscard]] double recall() const;
};

struct Problem {
    bool missed = false;  // a false negative; else a false positive
    std::string type;     // the label's type (missed) or the finding's
    std::size_t document = 0;
    std::size_t offset = 0;
    std::size_t length = 0;
    std::string overlaps;  // what a false positive sits on: a negative kind, another label's type, or empty
};

struct Score {
    std::vector<TypeScore> types;  // `detector_ids` in order, then any other type found or labelled
    std::vector<Problem> problems;
};

// `findings[i]` are the findings for `corpus.documents[i]`.
[[nodiscard]] Score score(const Corpus& corpus, const std::vector<std::vector<Found>>& findings,
                          const std::vector<std::string>& detector_ids);

[[nodiscard]] std::string format_table(const Score& score);

// A problem with the text around it, for a failing test's log (the corpus
// is synthetic; nothing real is printed).
[[nodiscard]] std::string describe(const Corpus& corpus, const Problem& problem);

}  // namespace airlock::corpus
