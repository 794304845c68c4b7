// What the fuzz targets share: a check that stops the run with a message
// (libFuzzer saves the input that triggered it), and choices derived from
// the input.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace airlock::fuzz {

// Not assert(): it must hold in every build type, and the message says which
// property broke.
[[noreturn]] inline void violated(const char* what, const char* file, int line) {
    std::fprintf(stderr, "\n%s:%d: property violated: %s\n", file, line, what);
    std::abort();
}

#define FUZZ_CHECK(condition) \
    ((condition) ? static_cast<void>(0) : ::airlock::fuzz::violated(#condition, __FILE__, __LINE__))

inline std::string_view as_text(const unsigned char* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// FNV-1a: the same input always gets the same derived choices (chunk
// boundaries), so a saved crash reproduces.
inline std::uint64_t fingerprint(std::string_view bytes) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ULL;
    return h;
}

// splitmix64, seeded from fingerprint().
class Choices {
public:
    explicit Choices(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    // Uniform enough in [0, bound) for picking sizes; bound > 0.
    std::size_t below(std::size_t bound) { return static_cast<std::size_t>(next() % bound); }

private:
    std::uint64_t state_;
};

}  // namespace airlock::fuzz
