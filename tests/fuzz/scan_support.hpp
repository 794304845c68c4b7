// The scanner the scanning targets share, and how two scan results are
// compared.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz_check.hpp"
#include "inspect/scanner.hpp"

namespace airlock::fuzz {

// Every detector, keyed hashes on (they feed the differential comparisons).
// Compiled once per process: compiling takes about a second.
inline const inspect::Scanner& shared_scanner() {
    static const inspect::Scanner scanner = [] {
        inspect::Options options;
        options.hash_key = "fuzz-key";
        auto created = inspect::Scanner::create(options);
        if (!created) {
            std::fprintf(stderr, "creating the scanner: %s\n", created.error().to_string().c_str());
            std::abort();
        }
        return std::move(*created);
    }();
    return scanner;
}

inline std::string describe(const inspect::Finding& f) {
    return std::string(f.type) + "@" + std::to_string(f.offset) + "+" + std::to_string(f.length) + " line " +
           std::to_string(f.line) + " conf " + std::to_string(f.confidence) + " test " +
           std::to_string(f.test_value) + " preview '" + f.preview.str() + "' hash " + f.keyed_hash.hex().substr(0, 8);
}

// Empty when both results report the same findings (every field) and
// flags; otherwise what differs first. Printed before a check fails, so a
// crash report says what the two scans disagreed on.
inline std::string difference(const inspect::ScanResult& a, const inspect::ScanResult& b) {
    if (a.truncated != b.truncated) return "truncated differs";
    if (a.skipped != b.skipped) return "skipped differs";
    if (a.bytes_scanned != b.bytes_scanned) return "bytes_scanned differs";
    for (std::size_t i = 0; i < a.findings.size() || i < b.findings.size(); ++i) {
        if (i >= a.findings.size()) return "only the second has " + describe(b.findings[i]);
        if (i >= b.findings.size()) return "only the first has " + describe(a.findings[i]);
        const std::string first = describe(a.findings[i]);
        const std::string second = describe(b.findings[i]);
        if (first != second || a.findings[i].keyed_hash != b.findings[i].keyed_hash ||
            a.findings[i].severity != b.findings[i].severity) {
            return "finding " + std::to_string(i) + ": " + first + " vs " + second;
        }
    }
    return {};
}

}  // namespace airlock::fuzz
