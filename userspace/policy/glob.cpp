#include "policy/glob.hpp"

#include <algorithm>
#include <utility>

namespace airlock::policy {
namespace {

constexpr std::size_t npos = std::string_view::npos;

// Returns the index just past the ']' closing the set that opens at text[open].
std::expected<std::size_t, std::string> parse_byte_set(std::string_view text, std::size_t open, std::bitset<256>& set) {
    std::size_t i = open + 1;
    const bool negated = i < text.size() && (text[i] == '!' || text[i] == '^');
    if (negated) ++i;

    // Reads one member byte, honouring a backslash escape; advances i.
    auto read_member = [&](unsigned char& out) -> bool {
        if (text[i] == '\\') {
            if (i + 1 >= text.size()) return false;
            ++i;
        }
        out = static_cast<unsigned char>(text[i]);
        ++i;
        return true;
    };

    bool first = true;  // a ']' right after '[' or '[!' is a member, as in the shell
    while (true) {
        if (i >= text.size()) return std::unexpected("unterminated '[' character class");
        if (text[i] == ']' && !first) break;
        first = false;
        unsigned char low = 0;
        if (!read_member(low)) return std::unexpected("unterminated '[' character class");
        unsigned char high = low;
        const bool is_range = i + 1 < text.size() && text[i] == '-' && text[i + 1] != ']';
        if (is_range) {
            ++i;
            if (!read_member(high)) return std::unexpected("unterminated '[' character class");
            if (high < low) {
                return std::unexpected("character class range '" + std::string(1, static_cast<char>(low)) + "-" +
                                       std::string(1, static_cast<char>(high)) + "' is reversed");
            }
        }
        for (unsigned c = low; c <= high; ++c) set.set(c);
    }
    if (negated) set.flip();
    return i + 1;
}

std::size_t skip_slashes(std::string_view s, std::size_t pos) noexcept {
    while (pos < s.size() && s[pos] == '/') ++pos;
    return pos;
}

std::size_t component_end(std::string_view s, std::size_t pos) noexcept {
    const std::size_t slash = s.find('/', pos);
    return slash == npos ? s.size() : slash;
}

// A trailing run of '/' removed; "/" itself becomes "" so that "~" for a user
// whose home is "/" expands to paths starting at the root.
std::string_view trim_trailing_slashes(std::string_view s) noexcept {
    while (!s.empty() && s.back() == '/') s.remove_suffix(1);
    return s;
}

bool is_glob_metacharacter(char c) noexcept { return c == '*' || c == '?' || c == '[' || c == '\\'; }

// "/usr/lib/*.so" -> "/usr/lib". Stops at the first component holding any
// metacharacter (an escape included, to keep this simple and conservative).
std::string literal_prefix(std::string_view rest) {
    std::size_t end = 0;
    for (std::size_t pos = 1; pos <= rest.size();) {
        const std::size_t component_stop = component_end(rest, pos);
        const std::string_view component = rest.substr(pos, component_stop - pos);
        if (std::any_of(component.begin(), component.end(), is_glob_metacharacter)) break;
        end = component_stop;
        pos = component_stop + 1;
    }
    return std::string(rest.substr(0, end));
}

}  // namespace

std::expected<NamePattern, std::string> NamePattern::compile(std::string_view text) {
    NamePattern pattern;
    bool previous_was_run = false;
    for (std::size_t i = 0; i < text.size();) {
        const char c = text[i];
        Token token;
        if (c == '\\') {
            if (i + 1 >= text.size()) return std::unexpected("a trailing '\\' escapes nothing");
            token = {Op::byte, static_cast<unsigned char>(text[i + 1]), 0};
            i += 2;
        } else if (c == '*') {
            // "x**y" looks like it would cross '/', but it cannot; reject the
            // misunderstanding instead of silently treating it as '*'.
            if (previous_was_run) {
                return std::unexpected("'**' must be a whole path component; use '*' within a name");
            }
            token = {Op::any_run, 0, 0};
            ++i;
        } else if (c == '?') {
            token = {Op::any_byte, 0, 0};
            ++i;
        } else if (c == '[') {
            std::bitset<256> set;
            auto end = parse_byte_set(text, i, set);
            if (!end) return std::unexpected(std::move(end.error()));
            pattern.sets_.push_back(set);
            token = {Op::byte_set, 0, static_cast<std::uint32_t>(pattern.sets_.size() - 1)};
            i = *end;
        } else {
            token = {Op::byte, static_cast<unsigned char>(c), 0};
            ++i;
        }
        previous_was_run = token.op == Op::any_run;
        if (token.op != Op::byte) pattern.is_literal_ = false;
        pattern.tokens_.push_back(token);
    }
    if (pattern.is_literal_) {
        for (const Token& t : pattern.tokens_) pattern.literal_.push_back(static_cast<char>(t.byte));
        pattern.tokens_.clear();
    }
    return pattern;
}

bool NamePattern::token_matches(const Token& token, unsigned char c) const noexcept {
    switch (token.op) {
        case Op::byte:
            return c == token.byte;
        case Op::any_byte:
            return true;
        case Op::byte_set:
            return sets_[token.set_index].test(c);
        case Op::any_run:
            return false;
    }
    return false;
}

// Greedy match with backtracking to the most recent '*' only: every other token
// consumes exactly one byte, so the leftmost placement after a '*' is always
// safe and the walk is O(pattern * name) with no recursion.
bool NamePattern::matches(std::string_view name) const noexcept {
    if (is_literal_) return name == literal_;
    const std::size_t count = tokens_.size();
    std::size_t t = 0;
    std::size_t s = 0;
    std::size_t star_t = npos;
    std::size_t star_s = 0;
    while (s < name.size()) {
        if (t < count && tokens_[t].op == Op::any_run) {
            star_t = t++;
            star_s = s;
        } else if (t < count && token_matches(tokens_[t], static_cast<unsigned char>(name[s]))) {
            ++t;
            ++s;
        } else if (star_t != npos) {
            t = star_t + 1;
            s = ++star_s;
        } else {
            return false;
        }
    }
    while (t < count && tokens_[t].op == Op::any_run) ++t;
    return t == count;
}

std::expected<PathGlob, std::string> PathGlob::compile(std::string_view pattern) {
    if (pattern.empty()) return std::unexpected("empty pattern");
    if (pattern.size() > max_glob_length) {
        return std::unexpected("pattern is longer than " + std::to_string(max_glob_length) + " bytes");
    }

    PathGlob glob;
    glob.text_ = std::string(pattern);
    std::string_view rest;
    if (pattern[0] == '~') {
        if (pattern.size() > 1 && pattern[1] != '/') {
            return std::unexpected("'~user' is not supported; '~' means the session user's home");
        }
        glob.relative_to_home_ = true;
        rest = pattern.substr(1);
    } else if (pattern[0] == '/') {
        rest = pattern;
    } else {
        return std::unexpected("pattern must be absolute (start with '/' or '~')");
    }

    // "/" and "~/" name the root and the home directory themselves.
    if (rest.empty() || rest == "/") return glob;
    if (rest.back() == '/') {
        // The supervisor never reports a trailing slash, so such a pattern would
        // silently match nothing; say which of the two likely intents to write.
        const std::string base(trim_trailing_slashes(pattern));
        return std::unexpected("trailing '/' matches nothing; write '" + base + "' for the directory itself or '" +
                               base + "/**' for everything below it");
    }

    for (std::size_t pos = 1; pos <= rest.size();) {
        const std::size_t end = component_end(rest, pos);
        const std::string_view component = rest.substr(pos, end - pos);
        pos = end + 1;
        if (component.empty()) return std::unexpected("empty path component ('//')");
        if (component == "." || component == "..") {
            return std::unexpected("'.' and '..' components never match (paths are normalized)");
        }
        if (component == "**") {
            glob.segments_.push_back(Segment{true, {}});
            continue;
        }
        auto name = NamePattern::compile(component);
        if (!name) return std::unexpected(std::move(name.error()));
        glob.segments_.push_back(Segment{false, std::move(*name)});
    }
    glob.literal_prefix_ = literal_prefix(rest);
    return glob;
}

bool PathGlob::matches(std::string_view path, std::string_view home) const noexcept {
    if (path.empty() || path[0] != '/') return false;
    std::string_view rest = path;
    if (relative_to_home_) {
        if (home.empty() || home[0] != '/') return false;
        home = trim_trailing_slashes(home);
        if (!path.starts_with(home)) return false;
        rest = path.substr(home.size());
        // "/home/al" must not claim "/home/alice".
        if (!rest.empty() && rest[0] != '/') return false;
    }
    // A filter only: "/usr" also prefixes "/usrx", which the full match rejects.
    if (!rest.starts_with(literal_prefix_)) return false;
    return matches_components(rest);
}

// Same greedy scheme as NamePattern::matches, one level up: "**" is the star and
// every other segment consumes exactly one component.
bool PathGlob::matches_components(std::string_view rest) const noexcept {
    const std::size_t count = segments_.size();
    std::size_t seg = 0;
    std::size_t pos = skip_slashes(rest, 0);
    std::size_t star_seg = npos;
    std::size_t star_pos = 0;
    while (pos < rest.size()) {
        const std::size_t end = component_end(rest, pos);
        if (seg < count && segments_[seg].any_depth) {
            star_seg = seg++;
            star_pos = pos;
        } else if (seg < count && segments_[seg].name.matches(rest.substr(pos, end - pos))) {
            ++seg;
            pos = skip_slashes(rest, end);
        } else if (star_seg != npos) {
            seg = star_seg + 1;
            star_pos = skip_slashes(rest, component_end(rest, star_pos));
            pos = star_pos;
        } else {
            return false;
        }
    }
    while (seg < count && segments_[seg].any_depth) ++seg;
    return seg == count;
}

PathGlob::Placement PathGlob::place(std::string_view dir, std::string_view home,
                                    std::string_view& rest) const noexcept {
    if (dir.empty() || dir[0] != '/') return Placement::outside;
    rest = dir;
    if (!relative_to_home_) return Placement::inside;
    if (home.empty() || home[0] != '/') return Placement::outside;
    home = trim_trailing_slashes(home);
    if (dir.starts_with(home) && (dir.size() == home.size() || dir[home.size()] == '/')) {
        rest = dir.substr(home.size());
        return Placement::inside;
    }
    // Home itself lies below `dir` ("/home" for "/home/alice"): so does every
    // path a "~" pattern names.
    const std::string_view base = trim_trailing_slashes(dir);
    if (home.starts_with(base) && home.size() > base.size() && home[base.size()] == '/') return Placement::above;
    return Placement::outside;
}

// An NFA walk over the segments: unlike matches_components, which only needs
// one way through, the "below" questions need every position a match can be
// at once `dir` is consumed.
std::vector<char> PathGlob::states_after(std::string_view rest) const {
    const std::size_t count = segments_.size();
    std::vector<char> current(count + 1, 0), next(count + 1, 0);
    // "**" also matches zero components: a position on one reaches the next.
    auto close = [&](std::vector<char>& states) {
        for (std::size_t i = 0; i < count; ++i)
            if (states[i] && segments_[i].any_depth) states[i + 1] = 1;
    };
    current[0] = 1;
    close(current);
    for (std::size_t pos = skip_slashes(rest, 0); pos < rest.size();) {
        const std::size_t end = component_end(rest, pos);
        const std::string_view name = rest.substr(pos, end - pos);
        std::fill(next.begin(), next.end(), 0);
        for (std::size_t i = 0; i < count; ++i) {
            if (!current[i]) continue;
            if (segments_[i].any_depth) next[i] = 1;
            else if (segments_[i].name.matches(name)) next[i + 1] = 1;
        }
        close(next);
        current.swap(next);
        pos = skip_slashes(rest, end);
    }
    return current;
}

bool PathGlob::may_match_below(std::string_view dir, std::string_view home) const {
    std::string_view rest;
    switch (place(dir, home, rest)) {
        case Placement::outside: return false;
        case Placement::above: return true;
        case Placement::inside: break;
    }
    // Any segment left to match can take at least one more component.
    const auto states = states_after(rest);
    return std::find(states.begin(), states.end() - 1, 1) != states.end() - 1;
}

bool PathGlob::matches_all_below(std::string_view dir, std::string_view home) const {
    std::string_view rest;
    if (place(dir, home, rest) != Placement::inside) return false;
    const auto states = states_after(rest);
    const std::size_t count = segments_.size();
    for (std::size_t i = 0; i < count; ++i) {
        if (!states[i]) continue;
        bool only_any_depth = true;
        for (std::size_t j = i; j < count && only_any_depth; ++j) only_any_depth = segments_[j].any_depth;
        if (only_any_depth) return true;
    }
    return false;
}

}  // namespace airlock::policy
