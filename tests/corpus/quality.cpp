#include "corpus/quality.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

namespace airlock::corpus {
namespace {

bool overlaps(std::size_t a_offset, std::size_t a_length, std::size_t b_offset, std::size_t b_length) {
    return a_offset < b_offset + b_length && b_offset < a_offset + a_length;
}

std::string printable(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (static_cast<unsigned char>(c) < 0x20) {
            out += '.';
        } else {
            out.push_back(c);
        }
    }
    return out;
}

}  // namespace

double TypeScore::precision() const {
    return findings == 0 ? 1.0 : static_cast<double>(true_positives) / static_cast<double>(findings);
}

double TypeScore::recall() const {
    return positives == 0 ? 0.0 : static_cast<double>(true_positives) / static_cast<double>(positives);
}

Score score(const Corpus& corpus, const std::vector<std::vector<Found>>& findings,
            const std::vector<std::string>& detector_ids) {
    Score result;
    std::map<std::string, std::size_t> row;
    auto row_of = [&](const std::string& type) -> TypeScore& {
        auto [it, inserted] = row.try_emplace(type, result.types.size());
        if (inserted) result.types.push_back(TypeScore{type});
        return result.types[it->second];
    };
    for (const std::string& id : detector_ids) row_of(id);

    for (std::size_t d = 0; d < corpus.documents.size(); ++d) {
        const Document& doc = corpus.documents[d];
        std::vector<bool> matched(doc.positives.size(), false);
        for (const Label& label : doc.positives) ++row_of(label.type).positives;
        if (d >= findings.size()) continue;
        for (const Found& f : findings[d]) {
            TypeScore& s = row_of(f.type);
            ++s.findings;
            bool true_positive = false;
            std::string on;
            for (std::size_t i = 0; i < doc.positives.size(); ++i) {
                const Label& label = doc.positives[i];
                if (!overlaps(f.offset, f.length, label.offset, label.length)) continue;
                if (label.type != f.type) {
                    if (on.empty()) on = label.type;
                    continue;
                }
                if (matched[i]) {
                    on = label.type + " (already found)";
                    continue;
                }
                matched[i] = true;
                true_positive = true;
                ++s.true_positives;
                if (f.offset == label.offset && f.length == label.length) ++s.exact;
                break;
            }
            if (true_positive) continue;
            if (!on.empty() && on.find(' ') == std::string::npos) ++s.misnamed;
            if (on.empty()) {
                for (const Label& negative : doc.negatives) {
                    if (overlaps(f.offset, f.length, negative.offset, negative.length)) {
                        on = negative.type;
                        break;
                    }
                }
            }
            result.problems.push_back(Problem{false, f.type, d, f.offset, f.length, on});
        }
        for (std::size_t i = 0; i < doc.positives.size(); ++i) {
            if (!matched[i]) {
                const Label& label = doc.positives[i];
                result.problems.push_back(Problem{true, label.type, d, label.offset, label.length, {}});
            }
        }
    }
    return result;
}

std::string format_table(const Score& score) {
    std::string out;
    char line[256];
    std::snprintf(line, sizeof line, "%-28s %9s %8s %6s %5s %5s %9s %7s %6s\n", "detector", "positives", "findings", "TP",
                  "FP", "FN", "precision", "recall", "exact");
    out += line;
    std::size_t positives = 0, findings = 0, tp = 0;
    for (const TypeScore& s : score.types) {
        std::snprintf(line, sizeof line, "%-28s %9zu %8zu %6zu %5zu %5zu %9.3f %7.3f %6zu\n", s.type.c_str(), s.positives,
                      s.findings, s.true_positives, s.false_positives(), s.false_negatives(), s.precision(), s.recall(),
                      s.exact);
        out += line;
        positives += s.positives;
        findings += s.findings;
        tp += s.true_positives;
    }
    const double precision = findings == 0 ? 1.0 : static_cast<double>(tp) / static_cast<double>(findings);
    const double recall = positives == 0 ? 0.0 : static_cast<double>(tp) / static_cast<double>(positives);
    std::snprintf(line, sizeof line, "%-28s %9zu %8zu %6zu %5zu %5zu %9.3f %7.3f\n", "all", positives, findings, tp,
                  findings - tp, positives - tp, precision, recall);
    out += line;
    return out;
}

std::string describe(const Corpus& corpus, const Problem& problem) {
    const Document& doc = corpus.documents.at(problem.document);
    const std::size_t from = problem.offset > 40 ? problem.offset - 40 : 0;
    const std::size_t to = std::min(doc.text.size(), problem.offset + problem.length + 40);
    std::string out = problem.missed ? "missed " : "false positive ";
    out += problem.type + " in " + doc.name + " at " + std::to_string(problem.offset) + "+" +
           std::to_string(problem.length);
    if (!problem.overlaps.empty()) out += " on " + problem.overlaps;
    out += ": ..." + printable(std::string_view(doc.text).substr(from, problem.offset - from)) + "[[" +
           printable(std::string_view(doc.text).substr(problem.offset, problem.length)) + "]]" +
           printable(std::string_view(doc.text).substr(problem.offset + problem.length,
                                                       to - problem.offset - problem.length)) +
           "...";
    return out;
}

}  // namespace airlock::corpus
