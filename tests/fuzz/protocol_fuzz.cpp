// The control-socket protocol as the daemon meets it: a byte stream cut
// into lines by LineBuffer (fed in chunks derived from the input), each line
// parsed as a request and as a reply.
//   - LineBuffer returns exactly the input's lines (a trailing '\r' and
//     empty lines dropped), an error in place of each line over the cap,
//     and holds at most the cap plus one chunk when drained after appends;
//   - a request that parses encodes to a line that parses back to the same
//     encoding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fuzz_check.hpp"
#include "protocol/protocol.hpp"

using namespace airlock::protocol;

namespace {

// Small, so that oversized lines come up; the real cap is 64 KiB.
constexpr std::size_t max_line = 48;

// What LineBuffer must return for `input`: each line, or nullopt for an
// oversized one. The unterminated end counts only when it is oversized.
std::vector<std::optional<std::string>> expected_lines(std::string_view input) {
    std::vector<std::optional<std::string>> out;
    while (!input.empty()) {
        const std::size_t nl = input.find('\n');
        std::string_view line = input.substr(0, nl);
        if (line.size() > max_line) {
            out.emplace_back(std::nullopt);
        } else if (nl != std::string_view::npos) {
            if (line.ends_with('\r')) line.remove_suffix(1);
            if (!line.empty()) out.emplace_back(std::string(line));
        }
        if (nl == std::string_view::npos) break;
        input.remove_prefix(nl + 1);
    }
    return out;
}

void check_line(std::string_view line) {
    if (auto request = parse_request(line)) {
        const std::string encoded = encode_request(*request);
        auto again = parse_request(encoded);
        FUZZ_CHECK(again.has_value());
        FUZZ_CHECK(encode_request(*again) == encoded);
        FUZZ_CHECK(!op_name(request->body).empty());
    } else {
        FUZZ_CHECK(!request.error().code.empty() && !request.error().message.empty());
        (void)encode_error(request.error());
    }
    if (auto reply = parse_reply(line)) (void)reply->result.dump();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input = airlock::fuzz::as_text(data, size);
    // Whole input as one line too: the parsers then see bytes up to the
    // real cap, newlines included.
    check_line(input);

    airlock::fuzz::Choices choices(airlock::fuzz::fingerprint(input));
    const bool drain_every_time = choices.below(4) != 0;
    LineBuffer buffer(max_line);
    std::vector<std::optional<std::string>> got;
    auto drain = [&] {
        while (auto line = buffer.next()) {
            if (*line) {
                FUZZ_CHECK(line->value().find('\n') == std::string::npos);
                check_line(line->value());
                got.emplace_back(line->value());
            } else {
                got.emplace_back(std::nullopt);
            }
        }
    };
    for (std::size_t at = 0; at < input.size();) {
        const std::size_t length = std::min(input.size() - at, choices.below(2 * max_line + 2));
        buffer.append(input.substr(at, length));
        at += length;
        if (drain_every_time || at == input.size()) {
            drain();
            if (drain_every_time) FUZZ_CHECK(buffer.buffered() <= max_line + length);
        }
    }
    FUZZ_CHECK(got == expected_lines(input));
    return 0;
}
