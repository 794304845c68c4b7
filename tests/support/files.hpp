// Small file and shell helpers for tests that run the built binaries.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace airlock::test_files {

// Single-quoted for sh -c: any byte but NUL survives.
inline std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') out += "'\\''";
        else out.push_back(c);
    }
    return out + "'";
}

inline std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace airlock::test_files
