// Differential: a stream fed the input in chunks must report exactly what
// one block scan of the whole input reports (scanner.hpp promises "a value
// split across chunks is found once, exactly as in one buffer"): same
// findings, offsets, lines, previews, hashes, flags.
//
// The chunk boundaries are derived from the input's fingerprint, so every
// mutation is also tried with new boundaries and a saved crash replays
// with the same ones. Kinds of chunking: byte by byte, small pieces, large
// pieces, one split, with empty chunks mixed in.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "scan_support.hpp"
#include "inspect/scanner.hpp"

namespace {

using namespace airlock::inspect;
using airlock::fuzz::Choices;

Session& session() {
    static Session session = [] {
        auto created = airlock::fuzz::shared_scanner().new_session();
        FUZZ_CHECK(created.has_value());
        return std::move(*created);
    }();
    return session;
}

// "Tens of KiB at most" of tail plus the chunk being fed (scanner.hpp).
constexpr std::size_t max_held_back = 64 * 1024;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input = airlock::fuzz::as_text(data, size);
    auto whole = session().scan(input);
    FUZZ_CHECK(whole.has_value());

    Choices choices(airlock::fuzz::fingerprint(input));
    const std::size_t kind = choices.below(4);
    const std::size_t single_split = input.empty() ? 0 : choices.below(input.size() + 1);
    auto stream = session().open_stream();
    FUZZ_CHECK(stream.has_value());
    std::string boundaries;  // printed when the results differ
    std::size_t at = 0;
    for (std::size_t chunks = 0; at < input.size(); ++chunks) {
        std::size_t length = 0;
        switch (kind) {
            case 0: length = 1; break;
            case 1: length = choices.below(17); break;  // 0: an empty chunk
            case 2: length = choices.below(1025); break;
            default: length = chunks == 0 ? single_split : input.size(); break;
        }
        length = std::min(length, input.size() - at);
        const std::string_view chunk = input.substr(at, length);
        FUZZ_CHECK(stream->feed(chunk).has_value());
        FUZZ_CHECK(stream->buffered_bytes() <= max_held_back + chunk.size());
        at += length;
        if (boundaries.size() < 2000) boundaries += std::to_string(at) + " ";
    }
    auto streamed = stream->finish();
    FUZZ_CHECK(streamed.has_value());

    const std::string diff = airlock::fuzz::difference(*whole, *streamed);
    if (!diff.empty()) {
        std::fprintf(stderr, "block scan and stream differ (chunks end at %s): %s\n", boundaries.c_str(), diff.c_str());
    }
    FUZZ_CHECK(diff.empty());
    return 0;
}
