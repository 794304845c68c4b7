// Path globs, compiled once when a policy loads so that matching in the
// syscall path is a walk over pre-split components with no allocation.
//
// Syntax (docs/policy.md, "Path patterns"):
//   *       any run of bytes within one component (never crosses '/')
//   ?       exactly one byte within a component
//   [abc] [a-z] [!a] [^a]   one byte from (or not from) a set
//   \c      the byte c literally
//   **      as a whole component: zero or more components
//   ~ ~/    the session user's home (supplied at match time)
// Leading dots get no special treatment: `~/**` covers `~/.ssh/id_rsa`.
#pragma once

#include <bitset>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::policy {

// Matches one path component (a name with no '/').
class NamePattern {
public:
    [[nodiscard]] static std::expected<NamePattern, std::string> compile(std::string_view text);
    [[nodiscard]] bool matches(std::string_view name) const noexcept;

private:
    enum class Op : std::uint8_t { byte, any_byte, any_run, byte_set };
    struct Token {
        Op op = Op::byte;
        unsigned char byte = 0;
        std::uint32_t set_index = 0;  // into sets_, for Op::byte_set
    };

    [[nodiscard]] bool token_matches(const Token& token, unsigned char c) const noexcept;

    // Patterns without metacharacters (most of them) compare as plain strings.
    bool is_literal_ = true;
    std::string literal_;
    std::vector<Token> tokens_;
    std::vector<std::bitset<256>> sets_;
};

class PathGlob {
public:
    // Errors are short reasons ("'**' must be a whole path component") that the
    // caller wraps with the pattern and its position.
    [[nodiscard]] static std::expected<PathGlob, std::string> compile(std::string_view pattern);

    // `path` must be absolute and normalized. `home` replaces a leading "~";
    // when it is empty or relative, home patterns match nothing.
    [[nodiscard]] bool matches(std::string_view path, std::string_view home) const noexcept;

    // For a rename of the directory `dir` (absolute, normalized), which moves
    // every path below it. Both look at paths strictly below `dir`, never
    // `dir` itself, and are conservative in the direction that makes a rename
    // stricter: a name pattern is assumed to match some name.
    //   may_match_below:   some path below `dir` could match ("~/.ssh/**"
    //                      for "~", "/tmp/**" for "/", "**/id_rsa" for anything).
    //   matches_all_below: every path below `dir` matches ("/tmp/**" for "/tmp/x").
    [[nodiscard]] bool may_match_below(std::string_view dir, std::string_view home) const;
    [[nodiscard]] bool matches_all_below(std::string_view dir, std::string_view home) const;

    [[nodiscard]] const std::string& text() const noexcept { return text_; }
    [[nodiscard]] bool relative_to_home() const noexcept { return relative_to_home_; }

private:
    struct Segment {
        bool any_depth = false;  // "**"
        NamePattern name;
    };

    [[nodiscard]] bool matches_components(std::string_view rest) const noexcept;
    // Where `dir` stands relative to the pattern's base (home for "~" patterns).
    enum class Placement { outside, inside, above };
    [[nodiscard]] Placement place(std::string_view dir, std::string_view home, std::string_view& rest) const noexcept;
    // Segment positions a match can be at after consuming exactly the
    // components of `rest` (index segments_.size() = the pattern is used up).
    [[nodiscard]] std::vector<char> states_after(std::string_view rest) const;

    std::string text_;
    bool relative_to_home_ = false;
    // The leading literal components ("/usr" for "/usr/**"), relative to home
    // for "~" patterns: one memcmp rejects most non-matching paths.
    std::string literal_prefix_;
    std::vector<Segment> segments_;
};

inline constexpr std::size_t max_glob_length = 4096;

}  // namespace airlock::policy
