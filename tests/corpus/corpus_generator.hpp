// A labelled corpus for measuring the inspector's precision and recall.
//
// generate_corpus() writes documents that look like the files the inspector
// meets (environment files, YAML, JSON, CSV, logs, source code, e-mails,
// prose) with, for every detector the generator knows, many values in varied
// formats, each labelled with its detector id and exact span; and hard
// negatives — values a careless detector would report (checksum-invalid
// numbers, UUIDs, hashes, versions, timestamps, lookalike prefixes,
// placeholders) — whose spans are recorded separately so that a false
// positive can be traced to what provoked it.
//
// The output depends only on the options (seeded, no clock, no locale): a
// failing run can be reproduced exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::corpus {

struct Label {
    // Positives: the detector id that must report the span. Hard negatives:
    // the kind of lookalike ("neg.card_luhn"), which no detector may report.
    std::string type;
    std::size_t offset = 0;
    std::size_t length = 0;
};

struct Document {
    std::string name;  // a file name fitting the content, unique in the corpus ("env-12.txt")
    std::string text;
    std::vector<Label> positives;  // ordered by offset, non-overlapping
    std::vector<Label> negatives;  // ordered by offset
};

struct CorpusOptions {
    std::uint64_t seed = 20240611;
    // Values per detector id; at 100 a detector at 0.98 may miss two.
    std::size_t positives_per_type = 100;
    // Planted lookalikes per negative kind.
    std::size_t negatives_per_kind = 25;
};

struct Corpus {
    std::vector<Document> documents;
};

[[nodiscard]] Corpus generate_corpus(const CorpusOptions& options = {});

// Detector ids the generator writes positives for.
[[nodiscard]] std::vector<std::string> corpus_types();

}  // namespace airlock::corpus
