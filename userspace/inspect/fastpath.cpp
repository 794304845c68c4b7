#include "inspect/fastpath.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>

#include "inspect/text.hpp"
#include "inspect/validators.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AIRLOCK_INSPECT_X86 1
#endif

namespace airlock::inspect {
namespace {

// Separator lists are written as string_view literals: from plain string
// literals each call measured every one with strlen (dense profiles).
using namespace std::string_view_literals;

constexpr std::size_t npos = std::string_view::npos;
constexpr std::size_t block = 64;

// One bit per byte of a 64-byte block, bit i for byte i. `digit`, `colon`
// and `at` are enough to rule out most blocks of prose and code (nothing
// can be triggered in a block without one of them); the rest describe the
// shapes of numbers (upper..plus) and the token edges of IPv6 groups
// (hex, word: [A-Za-z0-9_]).
struct Masks {
    std::uint64_t digit = 0;
    std::uint64_t colon = 0;
    std::uint64_t at = 0;
    std::uint64_t upper = 0;
    std::uint64_t dot = 0;
    std::uint64_t space = 0;
    std::uint64_t dash = 0;
    std::uint64_t plus = 0;
    std::uint64_t hex = 0;
    std::uint64_t word = 0;
    std::uint64_t region = 0;  // bytes a number's region spans: digits, " -.+()"
    bool full = true;  // false: only digit, colon and at were computed (all zero)
    bool real = true;  // false: a stand-in for bytes before the scan's start (only the last 8 are real)
};

Masks classify_scalar(const char* p) {
    Masks m;
    for (unsigned i = 0; i < block; ++i) {
        const char c = p[i];
        const std::uint64_t bit = std::uint64_t{1} << i;
        if (is_digit(c)) m.digit |= bit;
        if (c == ':') m.colon |= bit;
        if (c == '@') m.at |= bit;
        if (is_upper(c)) m.upper |= bit;
        if (c == '.') m.dot |= bit;
        if (c == ' ') m.space |= bit;
        if (c == '-') m.dash |= bit;
        if (c == '+') m.plus |= bit;
        if (is_hex(c)) m.hex |= bit;
        if (is_word(c)) m.word |= bit;
        if (is_digit(c) || c == ' ' || c == '-' || c == '.' || c == '+' || c == '(' || c == ')') m.region |= bit;
    }
    return m;
}

#ifdef AIRLOCK_INSPECT_X86
// Unsigned range test: (v - lo) <= (hi - lo) as bytes.
inline std::uint32_t range_mask_sse2(__m128i v, char lo, char hi) {
    const __m128i shifted = _mm_sub_epi8(v, _mm_set1_epi8(lo));
    const __m128i limit = _mm_set1_epi8(static_cast<char>(hi - lo));
    return static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(shifted, limit), shifted)));
}

inline std::uint32_t equal_mask_sse2(__m128i v, char c) {
    return static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(c))));
}

Masks classify_sse2(const char* p) {
    Masks m;
    for (unsigned part = 0; part < 4; ++part) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * part));
        const __m128i folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
        const unsigned shift = 16 * part;
        const std::uint32_t digit = range_mask_sse2(v, '0', '9');
        m.digit |= std::uint64_t{digit} << shift;
        m.colon |= std::uint64_t{equal_mask_sse2(v, ':')} << shift;
        m.at |= std::uint64_t{equal_mask_sse2(v, '@')} << shift;
        m.upper |= std::uint64_t{range_mask_sse2(v, 'A', 'Z')} << shift;
        m.dot |= std::uint64_t{equal_mask_sse2(v, '.')} << shift;
        m.space |= std::uint64_t{equal_mask_sse2(v, ' ')} << shift;
        m.dash |= std::uint64_t{equal_mask_sse2(v, '-')} << shift;
        m.plus |= std::uint64_t{equal_mask_sse2(v, '+')} << shift;
        m.hex |= std::uint64_t{digit | range_mask_sse2(folded, 'a', 'f')} << shift;
        m.word |= std::uint64_t{digit | range_mask_sse2(folded, 'a', 'z') | equal_mask_sse2(v, '_')} << shift;
        m.region |= std::uint64_t{equal_mask_sse2(v, '(') | equal_mask_sse2(v, ')')} << shift;
    }
    m.region |= m.digit | m.space | m.dash | m.dot | m.plus;
    return m;
}

__attribute__((target("avx2"))) inline std::uint64_t range_mask_avx2(__m256i low, __m256i high, char lo, char hi) {
    const __m256i base = _mm256_set1_epi8(lo);
    const __m256i limit = _mm256_set1_epi8(static_cast<char>(hi - lo));
    const __m256i low_shifted = _mm256_sub_epi8(low, base);
    const __m256i high_shifted = _mm256_sub_epi8(high, base);
    const auto low_bits = static_cast<std::uint32_t>(
        _mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_min_epu8(low_shifted, limit), low_shifted)));
    const auto high_bits = static_cast<std::uint32_t>(
        _mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_min_epu8(high_shifted, limit), high_shifted)));
    return std::uint64_t{low_bits} | (std::uint64_t{high_bits} << 32);
}

__attribute__((target("avx2"))) inline std::uint64_t equal_mask_avx2(__m256i low, __m256i high, char c) {
    const __m256i needle = _mm256_set1_epi8(c);
    const auto low_bits = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(low, needle)));
    const auto high_bits = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(high, needle)));
    return std::uint64_t{low_bits} | (std::uint64_t{high_bits} << 32);
}

__attribute__((target("avx2"))) inline Masks classify_avx2(const char* p, bool lazy) {
    const __m256i low = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i high = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    Masks m;
    m.digit = range_mask_avx2(low, high, '0', '9');
    m.colon = equal_mask_avx2(low, high, ':');
    m.at = equal_mask_avx2(low, high, '@');
    if (lazy && (m.digit | m.colon | m.at) == 0) {
        m.full = false;  // prose: nothing can be triggered here; the rest only if the next block asks
        return m;
    }
    const __m256i case_bit = _mm256_set1_epi8(0x20);
    const __m256i low_folded = _mm256_or_si256(low, case_bit);
    const __m256i high_folded = _mm256_or_si256(high, case_bit);
    m.upper = range_mask_avx2(low, high, 'A', 'Z');
    m.dot = equal_mask_avx2(low, high, '.');
    m.space = equal_mask_avx2(low, high, ' ');
    m.dash = equal_mask_avx2(low, high, '-');
    m.plus = equal_mask_avx2(low, high, '+');
    m.hex = m.digit | range_mask_avx2(low_folded, high_folded, 'a', 'f');
    m.word = m.digit | range_mask_avx2(low_folded, high_folded, 'a', 'z') | equal_mask_avx2(low, high, '_');
    m.region = m.digit | m.space | m.dash | m.dot | m.plus | equal_mask_avx2(low, high, '(') |
               equal_mask_avx2(low, high, ')');
    return m;
}

#define AIRLOCK_AVX512 __attribute__((target("avx512f,avx512bw")))

AIRLOCK_AVX512 inline std::uint64_t range_mask_avx512(__m512i v, char lo, char hi) {
    return _mm512_cmple_epu8_mask(_mm512_sub_epi8(v, _mm512_set1_epi8(lo)),
                                  _mm512_set1_epi8(static_cast<char>(hi - lo)));
}

AIRLOCK_AVX512 inline std::uint64_t equal_mask_avx512(__m512i v, char c) {
    return _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(c));
}

AIRLOCK_AVX512 inline Masks classify_avx512(const char* p, bool lazy) {
    const __m512i v = _mm512_loadu_si512(p);
    Masks m;
    m.digit = range_mask_avx512(v, '0', '9');
    m.colon = equal_mask_avx512(v, ':');
    m.at = equal_mask_avx512(v, '@');
    if (lazy && (m.digit | m.colon | m.at) == 0) {
        m.full = false;  // prose: nothing can be triggered here; the rest only if the next block asks
        return m;
    }
    const __m512i folded = _mm512_or_si512(v, _mm512_set1_epi8(0x20));
    m.upper = range_mask_avx512(v, 'A', 'Z');
    m.dot = equal_mask_avx512(v, '.');
    m.space = equal_mask_avx512(v, ' ');
    m.dash = equal_mask_avx512(v, '-');
    m.plus = equal_mask_avx512(v, '+');
    m.hex = m.digit | range_mask_avx512(folded, 'a', 'f');
    m.word = m.digit | range_mask_avx512(folded, 'a', 'z') | equal_mask_avx512(v, '_');
    m.region = m.digit | m.space | m.dash | m.dot | m.plus | equal_mask_avx512(v, '(') | equal_mask_avx512(v, ')');
    return m;
}
#endif

std::atomic<SimdLevel> forced_level{SimdLevel::best};

SimdLevel resolve_level(SimdLevel requested) {
#ifdef AIRLOCK_INSPECT_X86
    const bool avx2 = __builtin_cpu_supports("avx2");
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    if (requested == SimdLevel::best) return avx512 ? SimdLevel::avx512 : (avx2 ? SimdLevel::avx2 : SimdLevel::sse2);
    if (requested == SimdLevel::avx512 && !avx512) requested = SimdLevel::avx2;
    if (requested == SimdLevel::avx2 && !avx2) return SimdLevel::sse2;
    return requested;
#else
    (void)requested;
    return SimdLevel::scalar;
#endif
}

// Bits of `cur` moved k bytes later, filled from the previous block: bit i
// of the result says whether byte i-k had the property.
[[gnu::always_inline]] inline std::uint64_t earlier(std::uint64_t cur, std::uint64_t prev, unsigned k) {
    return (cur << k) | (prev >> (64 - k));
}

// Which trigger kinds the enabled detectors need.
struct Wants {
    bool digits = false;  // cards, SSNs, ITINs, SINs, Aadhaar, phones, IPv4
    bool alpha = false;   // IBAN, NINO: capitals before digits
    bool nino = false;    // "AB 12 ...": a NINO may put a space after its letters
    bool v6 = false;
    bool email = false;
};

// Trigger positions of one block, by kind.
struct Triggers {
    std::uint64_t digit = 0;
    std::uint64_t alpha = 0;
    std::uint64_t spaced_alpha = 0;
    std::uint64_t v6 = 0;
    std::uint64_t email = 0;
    [[nodiscard]] std::uint64_t any() const { return digit | alpha | spaced_alpha | v6 | email; }
};

// Whether the block's triggers read the previous block's full masks.
[[gnu::always_inline]] inline bool needs_previous(const Masks& m, const Wants& w) {
    return ((w.digits || w.alpha) && m.digit != 0) || (w.v6 && m.colon != 0);
}

// The shapes worth a closer look, from a block's masks and those of the
// block before it (`p`, full whenever needs_previous()).
[[gnu::always_inline]] inline Triggers triggers_of(const Masks& m, const Masks& p, const Wants& w) {
    Triggers t;
    const auto e = [](std::uint64_t cur, std::uint64_t prev, unsigned k) { return earlier(cur, prev, k); };
    const std::uint64_t D = m.digit;
    const std::uint64_t pD = p.digit;
    if (w.email) t.email = m.at;
    if ((w.digits || w.alpha) && D != 0) {
        const std::uint64_t two_digits = D & e(D, pD, 1);
        if (w.digits) {
            const std::uint64_t three = two_digits & e(D, pD, 2);
            const std::uint64_t run4 = three & e(D, pD, 3);
            // 046 454 286: the only shape without a four-digit run.
            const std::uint64_t three_three =
                three & e(m.space | m.dash, p.space | p.dash, 3) & e(D, pD, 4) & e(D, pD, 5) & e(D, pD, 6);
            // +33 1 23 45 67 89: E.164 written in pairs.
            const std::uint64_t plus_digit = D & e(m.plus, p.plus, 1);
            // Two "d.d" within an octet of each other: a dotted quad, not a decimal.
            const std::uint64_t dotted = D & e(m.dot, p.dot, 1) & e(D, pD, 2);
            const std::uint64_t previous_dotted = pD & (p.dot << 1) & (pD << 2);  // within the previous block
            const std::uint64_t dotted_twice =
                dotted & (e(dotted, previous_dotted, 2) | e(dotted, previous_dotted, 3) | e(dotted, previous_dotted, 4));
            t.digit = run4 | three_three | plus_digit | dotted_twice;
        }
        if (w.alpha) {
            t.alpha = two_digits & e(m.upper, p.upper, 2) & e(m.upper, p.upper, 3);
            if (w.nino) t.spaced_alpha = two_digits & e(m.space, p.space, 2) & e(m.upper, p.upper, 3) & e(m.upper, p.upper, 4);
        }
    }
    const std::uint64_t C = m.colon;
    if (w.v6 && C != 0) {
        const std::uint64_t H = m.hex;
        const std::uint64_t pH = p.hex;
        // A token edge (not a word byte, or a colon) k bytes back.
        const std::uint64_t edge = ~m.word | C;
        const std::uint64_t pedge = ~p.word | p.colon;
        const std::uint64_t h2 = e(H, pH, 2);
        const std::uint64_t h23 = h2 & e(H, pH, 3);
        const std::uint64_t h234 = h23 & e(H, pH, 4);
        const std::uint64_t h2345 = h234 & e(H, pH, 5);
        // "::" after at most four hex digits that start a token: fe80::, db8::, ::1 (not std::).
        const std::uint64_t clean_before = e(edge, pedge, 2) | (h2 & e(edge, pedge, 3)) | (h23 & e(edge, pedge, 4)) |
                                           (h234 & e(edge, pedge, 5)) | (h2345 & e(edge, pedge, 6));
        const std::uint64_t double_colon = C & e(C, p.colon, 1) & clean_before;
        // "hhhh:" as a whole group: 2001:0db8:...
        const std::uint64_t full_group = C & e(H, pH, 1) & h234 & e(edge, pedge, 5);
        t.v6 = double_colon | full_group;
    }
    return t;
}

// digits_at()'s first test, done here for every digit trigger of a block at
// once: most sit in a region (a run of digits and " -.+()") with too few
// digits for any shape (a year, a time, a counter), and popcounts over the
// region's span tell. Such a trigger is dropped: digits_at() would return
// at once (it counts a part of the same region), and the later triggers
// its answer would skip lie in the same region and are dropped too (the
// capitals-then-digits triggers sit at a region's second byte, before any
// digit trigger of it, and '@' or ':' are not region bytes). A region may
// reach into the block before (`p`) and the block after (`n`, when
// `next_ok`: classified in full from real bytes); one that goes on past
// either, or ends where the bytes after it may not have arrived
// (`defer_from`, relative to the block), is left to digits_at(). Every
// trigger of one region gets the same answer, so one step decides a
// whole region. (Regions cut by a block edge were most of what digits_at()
// was called for on code and logs.)
[[gnu::always_inline]] inline std::uint64_t drop_short_regions(std::uint64_t digit_triggers, const Masks& p,
                                                               const Masks& m, const Masks& n, bool next_ok,
                                                               std::size_t defer_from) {
    std::uint64_t kept = 0;
    for (std::uint64_t rest = digit_triggers; rest != 0;) {
        const std::uint64_t bit = rest & (~rest + 1);
        const std::uint64_t gaps_below = ~m.region & (bit - 1);
        const std::uint64_t gaps_above = ~m.region & ~((bit - 1) | bit);
        bool open = false;  // the region's extent is not known here
        unsigned start = 0;
        std::uint64_t before = 0;  // the region's bytes in the previous block
        if (gaps_below != 0) {
            start = static_cast<unsigned>(64 - __builtin_clzll(gaps_below));
        } else {
            const std::uint64_t gaps = ~p.region;
            if (!p.full || !p.real || gaps == 0) {
                open = true;
            } else {
                const auto top = static_cast<unsigned>(64 - __builtin_clzll(gaps));  // past the last gap
                before = top == 64 ? 0 : ~((std::uint64_t{1} << top) - 1);
            }
        }
        std::size_t end = 64;  // relative to this block; may lie in the next one
        std::uint64_t span = ~std::uint64_t{0};
        std::uint64_t after = 0;  // the region's bytes in the next block
        if (gaps_above != 0) {
            end = static_cast<unsigned>(__builtin_ctzll(gaps_above));
            span = (std::uint64_t{1} << end) - 1;
        } else {
            const std::uint64_t gaps = ~n.region;
            if (!next_ok || gaps == 0) {
                open = true;
            } else {
                const auto first = static_cast<unsigned>(__builtin_ctzll(gaps));
                after = (std::uint64_t{1} << first) - 1;
                end = 64 + first;
            }
        }
        span &= ~((std::uint64_t{1} << start) - 1);
        const std::uint64_t region = (digit_triggers & span) | bit;
        rest &= ~region;
        if (open || end >= defer_from) {
            kept |= region;
            continue;
        }
        const auto digits = __builtin_popcountll(m.digit & span) + __builtin_popcountll(p.digit & before) +
                            __builtin_popcountll(n.digit & after);
        const auto dots = __builtin_popcountll(m.dot & span) + __builtin_popcountll(p.dot & before) +
                          __builtin_popcountll(n.dot & after);
        const bool plus = ((m.plus & span) | (p.plus & before) | (n.plus & after)) != 0;
        if (digits >= 9 || (plus && digits >= 8) || (dots >= 3 && digits >= 4)) kept |= region;
    }
    return kept;
}

// Classifies the 64-byte blocks at [pos, end) (end - pos a multiple of 64)
// until one has a trigger: returns its position (`found` holds its
// triggers), or `end`. `previous` holds the masks of the block before `pos`
// and `previous_bytes` its bytes (a lazily classified block is completed
// from them when the next one needs it); both move along.
using FindFn = std::size_t (*)(const char* data, std::size_t pos, std::size_t end, std::size_t defer_from,
                               Masks& previous, const char*& previous_bytes, const Wants& wants, Triggers& found);

// One loop per instruction set, so that the classifier is inlined into it.
// `previous` and `previous_bytes` live in locals during the loop (written
// back on return). With `lookahead`, each block's successor is classified
// one step ahead (it becomes the next step's block), so that
// drop_short_regions() can follow a region into it; that pays where the
// classifier is inlined and cheap (AVX-512: 16.6 vs 17.6 ms on
// BM_BlockSparseNumericOnly) and costs where it is not (AVX2: 23.6 vs
// 20.4 ms), so the other loops only look back.
#define AIRLOCK_FAST_PATH_FIND_LOOP(classify_lazy, classify_full, lookahead)       \
    Masks prev = previous;                                                         \
    const char* prev_bytes = previous_bytes;                                       \
    Masks next{};                                                                  \
    if (lookahead && pos < end) {                                                  \
        const char* p = data + pos;                                                \
        next = classify_lazy;                                                      \
    }                                                                              \
    for (; pos < end; pos += block) {                                              \
        bool next_ok = false;                                                      \
        Masks m;                                                                   \
        if (lookahead) {                                                           \
            m = next;                                                              \
            next_ok = pos + block < end;                                           \
            if (next_ok) {                                                         \
                const char* p = data + pos + block;                                \
                next = classify_lazy;                                              \
            }                                                                      \
        } else {                                                                   \
            const char* p = data + pos;                                            \
            m = classify_lazy;                                                     \
        }                                                                          \
        const char* p = data + pos;                                                \
        if (!m.full) { /* no digit, colon or '@': no trigger */                    \
            prev = m;                                                              \
            prev_bytes = p;                                                        \
            continue;                                                              \
        }                                                                          \
        if (!prev.full && needs_previous(m, wants)) {                              \
            const char* q = prev_bytes;                                            \
            prev = classify_full;                                                  \
        }                                                                          \
        Triggers t = triggers_of(m, prev, wants);                                  \
        if (t.digit != 0) {                                                        \
            t.digit = drop_short_regions(t.digit, prev, m, next, next_ok && next.full, \
                                         defer_from > pos ? defer_from - pos : 0); \
        }                                                                          \
        prev = m;                                                                  \
        prev_bytes = p;                                                            \
        if (t.any() != 0) {                                                        \
            found = t;                                                             \
            previous = prev;                                                       \
            previous_bytes = prev_bytes;                                           \
            return pos;                                                            \
        }                                                                          \
    }                                                                              \
    previous = prev;                                                               \
    previous_bytes = prev_bytes;                                                   \
    return end;

std::size_t find_scalar(const char* data, std::size_t pos, std::size_t end, std::size_t defer_from, Masks& previous,
                        const char*& previous_bytes, const Wants& wants, Triggers& found) {
    AIRLOCK_FAST_PATH_FIND_LOOP(classify_scalar(p), classify_scalar(q), false)
}

#ifdef AIRLOCK_INSPECT_X86
std::size_t find_sse2(const char* data, std::size_t pos, std::size_t end, std::size_t defer_from, Masks& previous,
                      const char*& previous_bytes, const Wants& wants, Triggers& found) {
    AIRLOCK_FAST_PATH_FIND_LOOP(classify_sse2(p), classify_sse2(q), false)
}

__attribute__((target("avx2"))) std::size_t find_avx2(const char* data, std::size_t pos, std::size_t end,
                                                       std::size_t defer_from, Masks& previous, const char*& previous_bytes,
                                                       const Wants& wants, Triggers& found) {
    AIRLOCK_FAST_PATH_FIND_LOOP(classify_avx2(p, true), classify_avx2(q, false), false)
}

AIRLOCK_AVX512 std::size_t find_avx512(const char* data, std::size_t pos, std::size_t end, std::size_t defer_from, Masks& previous,
                                       const char*& previous_bytes, const Wants& wants, Triggers& found) {
    AIRLOCK_FAST_PATH_FIND_LOOP(classify_avx512(p, false), classify_avx512(q, false), true)
}
#endif
#undef AIRLOCK_FAST_PATH_FIND_LOOP

FindFn finder(SimdLevel level) {
    switch (level) {
#ifdef AIRLOCK_INSPECT_X86
        case SimdLevel::avx512: return find_avx512;
        case SimdLevel::avx2: return find_avx2;
        case SimdLevel::sse2: return find_sse2;
#endif
        default: return find_scalar;
    }
}

bool is_region_char(char c) {
    return is_digit(c) || c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '+';
}

bool is_v6_char(char c) { return is_hex(c) || c == ':' || c == '.'; }

// Between two digit groups of one number: an optional ')', one of " .-"
// at most, an optional '(' — "-", " ", ") ", " (", ")". Anything else ends
// the number.
bool valid_separator(std::string_view s) {
    if (s.empty() || s.size() > 3) return false;
    std::size_t i = 0;
    if (s[i] == ')') ++i;
    if (i < s.size() && (s[i] == ' ' || s[i] == '.' || s[i] == '-')) ++i;
    if (i < s.size() && s[i] == '(') ++i;
    return i == s.size();
}

// "AssemblyVersion(", "FileVersion ", "appVersion": version as the end of
// a longer name, which whole-word context matching does not see.
bool mentions_version(std::string_view window) {
    constexpr std::string_view word = "version";
    for (std::size_t i = 0; i + word.size() <= window.size(); ++i) {
        if (iequals(window.substr(i, word.size()), word)) return true;
    }
    return false;
}

bool one_of(std::string_view s, std::initializer_list<std::string_view> list) {
    return std::find(list.begin(), list.end(), s) != list.end();
}

}  // namespace

// One scan call's state: the data, the groups of the current region and the
// sink. Kept out of the header so the engine stays a plain immutable object.
class FastPathScan {
public:
    FastPathScan(const FastPath& engine, std::string_view data, bool complete, std::size_t& min_start,
                FastPathSink& sink)
        : e_(engine), d_(data), n_(data.size()), complete_(complete), min_start_(min_start), sink_(sink) {}

    enum class Status { done, defer, stop };
    struct Outcome {
        Status status = Status::done;
        std::size_t next = 0;  // first position still to look at
    };

    std::size_t run(std::size_t from);

private:
    struct Group {
        std::size_t start;
        std::size_t end;
    };
    struct Match {
        const Detector* detector = nullptr;
        std::size_t start = 0;
        std::size_t end = 0;
        std::size_t last_group = 0;
        float confidence = 0;
    };

    Outcome digits_at(std::size_t t);
    Outcome email_at(std::size_t at);
    Outcome alpha_at(std::size_t t, bool spaced);
    Outcome ipv6_at(std::size_t t);
    std::optional<Match> shape_at(std::size_t i, std::size_t chain_end);
    std::optional<Match> ipv4_at(std::size_t i, std::size_t chain_end, bool& skip);
    Status try_iban(std::size_t s, std::size_t& end);
    Status try_nino(std::size_t s, std::size_t& end);
    bool emit(const Detector* detector, std::size_t start, std::size_t end, float confidence);

    bool left_ok(std::size_t ms) const {
        if (ms == 0) return true;
        const char c = d_[ms - 1];
        if (is_word(c)) return false;
        // "x-536-22-8451", "1.2.3.4.5": a dash or dot joins this to more of
        // the same token. (A comma does not: in CSV it separates fields.)
        return !((c == '-' || c == '.') && ms >= 2 && is_alnum(d_[ms - 2]));
    }
    bool right_ok(std::size_t me) const {
        if (me >= n_) return true;
        const char c = d_[me];
        if (is_word(c)) return false;
        return !((c == '-' || c == '.') && me + 1 < n_ && is_alnum(d_[me + 1]));
    }
    bool context(const Detector* detector, std::size_t ms) const {
        const std::size_t from = ms > detector->context_window ? ms - detector->context_window : 0;
        return contains_any_word(d_.substr(from, ms - from), detector->context_words);
    }
    float boosted(const Detector* detector, std::size_t ms, float confidence) const {
        return context(detector, ms) ? std::min(0.99F, confidence + 0.1F) : confidence;
    }

    std::size_t len(std::size_t k) const { return groups_[k].end - groups_[k].start; }
    std::string_view sep(std::size_t k) const {  // between group k and k+1
        return d_.substr(groups_[k].end, groups_[k + 1].start - groups_[k].end);
    }
    char before(std::size_t k) const { return groups_[k].start > 0 ? d_[groups_[k].start - 1] : '\0'; }
    bool same_separators(std::size_t i, std::size_t j, std::initializer_list<std::string_view> allowed) const {
        for (std::size_t k = i; k < j; ++k) {
            if (sep(k) != sep(i) || !one_of(sep(k), allowed)) return false;
        }
        return true;
    }
    // Digits of groups i..j; empty when there are more than fit.
    std::string_view digits(std::size_t i, std::size_t j) {
        std::size_t count = 0;
        for (std::size_t k = i; k <= j; ++k) {
            if (count + len(k) > digit_buffer_.size()) return {};
            std::memcpy(digit_buffer_.data() + count, d_.data() + groups_[k].start, len(k));
            count += len(k);
        }
        return {digit_buffer_.data(), count};
    }

    const FastPath& e_;
    std::string_view d_;
    std::size_t n_;
    bool complete_;
    std::size_t& min_start_;
    FastPathSink& sink_;
    bool stopped_ = false;
    std::array<Group, 128> groups_{};
    std::size_t group_count_ = 0;
    std::array<char, 40> digit_buffer_{};
};

bool FastPathScan::emit(const Detector* detector, std::size_t start, std::size_t end, float confidence) {
    if (start < min_start_) return false;
    min_start_ = end;
    if (!sink_.on_fast_match(FastMatch{detector, start, end, confidence})) stopped_ = true;
    return true;
}

std::size_t FastPathScan::run(std::size_t from) {
    const FindFn find = finder(resolve_level(forced_level.load(std::memory_order_relaxed)));
    Wants wants;
    wants.digits = e_.card_ || e_.ssn_ || e_.itin_ || e_.sin_ || e_.aadhaar_ || e_.phone_ || e_.ipv4_;
    wants.alpha = e_.iban_ || e_.nino_;
    wants.nino = e_.nino_ != nullptr;
    wants.v6 = e_.ipv6_ != nullptr;
    wants.email = e_.email_ != nullptr;

    // The block before the current one, for shapes that straddle the
    // boundary. At `from` it is the real bytes before it (up to 8 matter).
    alignas(64) char prefix[block] = {};
    const std::size_t have = std::min<std::size_t>(from, 8);
    std::memcpy(prefix + block - have, d_.data() + from - have, have);
    Masks previous = classify_scalar(prefix);
    previous.real = false;  // a region reaching into it must not be measured there
    const char* previous_bytes = prefix;

    const std::size_t full_end = from + (n_ - from) / block * block;
    // digits_at() defers a region ending at n_ - 1 or later (relative to `data`).
    const std::size_t defer_from = complete_ ? SIZE_MAX : n_ - 1;
    alignas(64) char tail[block];
    std::size_t skip_until = from;
    std::size_t pos = from;
    while (pos < n_) {
        Triggers found;
        std::size_t available = block;
        if (pos < full_end) {
            pos = find(d_.data(), pos, full_end, defer_from, previous, previous_bytes, wants, found);
            if (pos == full_end) continue;
        } else {
            // The last, partial block: classified from a zero-padded copy.
            available = n_ - pos;
            std::memset(tail, 0, block);
            std::memcpy(tail, d_.data() + pos, available);
            if (find(tail, 0, block, defer_from - pos, previous, previous_bytes, wants, found) == block) break;
        }
        std::uint64_t triggers = found.any();
        if (available < block) triggers &= (std::uint64_t{1} << available) - 1;
        while (triggers != 0) {
            const unsigned bit = static_cast<unsigned>(__builtin_ctzll(triggers));
            triggers &= triggers - 1;
            const std::size_t t = pos + bit;
            if (t < skip_until) continue;
            const std::uint64_t mask = std::uint64_t{1} << bit;
            Outcome outcome{Status::done, t + 1};
            if (found.email & mask) outcome = email_at(t);
            if (outcome.status == Status::done && outcome.next == t + 1 && ((found.alpha | found.spaced_alpha) & mask)) {
                outcome = alpha_at(t, (found.spaced_alpha & mask) != 0);
            }
            if (outcome.status == Status::done && outcome.next == t + 1 && (found.digit & mask)) {
                outcome = digits_at(t);
            }
            if (outcome.status == Status::done && outcome.next == t + 1 && (found.v6 & mask)) {
                outcome = ipv6_at(t);
            }
            if (outcome.status == Status::defer) return t;
            if (stopped_ || outcome.status == Status::stop) return n_;
            skip_until = std::max(skip_until, outcome.next);
        }
        pos += block;
    }
    return n_;
}

// --- Email ---------------------------------------------------------------------------

FastPathScan::Outcome FastPathScan::email_at(std::size_t at) {
    if (at + 260 > n_ && !complete_) return {Status::defer, at};
    if (at == 0 || at + 2 > n_) return {Status::done, at + 1};
    const auto located = e_.email_->locate(d_, HeadMatch{at + 2, at - 1});
    if (!located || !emit(e_.email_, located->start, located->end, e_.email_->confidence)) {
        return {Status::done, at + 1};
    }
    return {stopped_ ? Status::stop : Status::done, located->end};
}

// --- Digit regions -----------------------------------------------------------------

FastPathScan::Outcome FastPathScan::digits_at(std::size_t t) {
    const std::size_t floor = std::max(min_start_, t > 64 ? t - 64 : 0);
    std::size_t rs = t;
    while (rs > floor && is_region_char(d_[rs - 1])) --rs;
    const std::size_t ceiling = std::min(n_, t + 128);
    std::size_t re = t + 1;
    while (re < ceiling && is_region_char(d_[re])) ++re;
    if (re + 1 >= n_ && !complete_) return {Status::defer, t};

    // Most regions are years, times, counters: too few digits for any shape
    // (9 for the shortest ID, 8 after a '+', 4 in a dotted quad).
    std::size_t digit_count = 0;
    std::size_t dots = 0;
    bool plus = false;
    for (std::size_t i = rs; i < re; ++i) {
        digit_count += is_digit(d_[i]);
        dots += d_[i] == '.';
        plus = plus || d_[i] == '+';
    }
    if (digit_count < 9 && !(plus && digit_count >= 8) && !(dots >= 3 && digit_count >= 4)) {
        return {Status::done, std::max(re, t + 1)};
    }

    group_count_ = 0;
    for (std::size_t i = rs; i < re && group_count_ < groups_.size();) {
        if (!is_digit(d_[i])) {
            ++i;
            continue;
        }
        const std::size_t start = i;
        while (i < re && is_digit(d_[i])) ++i;
        groups_[group_count_++] = Group{start, i};
    }
    std::size_t i = 0;
    while (i < group_count_ && !stopped_) {
        std::size_t chain_end = i;
        while (chain_end + 1 < group_count_ && valid_separator(sep(chain_end))) ++chain_end;
        std::size_t k = i;
        while (k <= chain_end && !stopped_) {
            if (groups_[k].start < min_start_) {
                ++k;
                continue;
            }
            const auto match = shape_at(k, chain_end);
            if (match && emit(match->detector, match->start, match->end, match->confidence)) {
                k = match->last_group + 1;
            } else {
                ++k;
            }
        }
        i = chain_end + 1;
    }
    return {stopped_ ? Status::stop : Status::done, std::max(re, t + 1)};
}

std::optional<FastPathScan::Match> FastPathScan::shape_at(std::size_t i, std::size_t c) {
    const std::size_t gs = groups_[i].start;

    // E.164: '+' then 8-15 digits, possibly grouped (in pairs, up to eight
    // groups). A trunk prefix in parentheses after the country code
    // ("+44 (0)20 7946 0958", "+33 (0)1 ...") is not dialled from abroad
    // and is not part of the number.
    if (e_.phone_ && before(i) == '+' && left_ok(gs - 1)) {
        const bool trunk = i < c && len(i + 1) == 1 && d_[groups_[i + 1].start] == '0' && before(i + 1) == '(' &&
                           groups_[i + 1].end < n_ && d_[groups_[i + 1].end] == ')';
        std::array<char, 16> number{};
        std::array<std::size_t, 9> length_through{};  // digits of groups i..j, for j = i + k
        std::size_t count = 0;
        const std::size_t last = std::min(c, i + 8);
        for (std::size_t j = i; j <= last; ++j) {
            if (!(trunk && j == i + 1)) {
                for (std::size_t p = groups_[j].start; p < groups_[j].end && count < number.size(); ++p) {
                    number[count++] = d_[p];
                }
            }
            length_through[j - i] = count;
        }
        for (std::size_t j = last + 1; j-- > i;) {
            const std::size_t size = length_through[j - i];
            if (size < 8 || size > 15 || !right_ok(groups_[j].end)) continue;
            if (e164_valid(std::string_view(number.data(), size))) {
                return Match{e_.phone_, gs - 1, groups_[j].end, j, boosted(e_.phone_, gs - 1, 0.85F)};
            }
        }
    }

    // Payment cards: 4-4-4-4(-3), 4-6-5 (Amex), 4-6-4 (Diners), or 13-19 digits.
    // A grouped card number is the whole of its run of groups: four groups
    // inside "FR76 9989 5491 5412 7845 3855 506" are a stretch of something
    // longer (an account, a reference), whatever Luhn says about them.
    const bool inside_longer_run = i > 0 && i < c && sep(i - 1) == sep(i);
    if (e_.card_ && len(i) == 4 && left_ok(gs) && !inside_longer_run) {
        for (std::size_t count : {5u, 4u, 3u}) {
            const std::size_t j = i + count - 1;
            if (j > c || !same_separators(i, j, {" "sv, "-"sv}) || !right_ok(groups_[j].end)) continue;
            if (j < c && sep(j) == sep(i)) continue;  // the run goes on
            bool shape = false;
            if (count == 3) {
                shape = len(i + 1) == 6 && (len(i + 2) == 5 || len(i + 2) == 4);
            } else {
                shape = true;
                for (std::size_t k = i + 1; k < j; ++k) shape = shape && len(k) == 4;
                const std::size_t last = len(j);
                shape = shape && last >= 1 && last <= (count == 4 ? 4u : 3u);
            }
            if (!shape) continue;
            const std::string_view d = digits(i, j);
            if (d.size() >= 13 && card_number_valid(d)) {
                return Match{e_.card_, gs, groups_[j].end, j, boosted(e_.card_, gs, 0.9F)};
            }
        }
    }
    if (e_.card_ && len(i) >= 13 && len(i) <= 19 && left_ok(gs) && right_ok(groups_[i].end) &&
        card_number_valid(digits(i, i))) {
        return Match{e_.card_, gs, groups_[i].end, i, boosted(e_.card_, gs, 0.85F)};
    }

    // NANP: (415) 555-2671, 415-555-2671, 415.555.2671, 1-800-555-0199.
    if (e_.phone_) {
        std::size_t k = i;
        bool country = false;
        if (len(i) == 1 && d_[gs] == '1' && i < c && one_of(sep(i), {" "sv, "-"sv, "."sv, " ("sv})) {
            k = i + 1;
            country = true;
        }
        if (k + 2 <= c && len(k) == 3 && len(k + 1) == 3 && len(k + 2) == 4) {
            const std::string_view s1 = sep(k);
            const std::string_view s2 = sep(k + 1);
            const bool paren = before(k) == '(';
            const bool ok1 = paren ? one_of(s1, {")"sv, ") "sv, ")-"sv}) : one_of(s1, {"-"sv, "."sv, " "sv});
            const bool ok2 = one_of(s2, {"-"sv, "."sv, " "sv});
            const bool mixed = !paren && s1 != s2 && (s1 == "." || s2 == ".");
            const std::size_t ms = country ? gs : (paren ? groups_[k].start - 1 : groups_[k].start);
            if (ok1 && ok2 && !mixed && left_ok(ms) && right_ok(groups_[k + 2].end) &&
                nanp_valid(digits(k, k + 2))) {
                return Match{e_.phone_, ms, groups_[k + 2].end, k + 2, boosted(e_.phone_, ms, 0.8F)};
            }
        }
        if ((len(i) == 10 || (len(i) == 11 && d_[gs] == '1')) && left_ok(gs) && right_ok(groups_[i].end) &&
            context(e_.phone_, gs)) {
            const std::string_view d = digits(i, i);
            if (nanp_valid(d.substr(d.size() - 10))) return Match{e_.phone_, gs, groups_[i].end, i, 0.8F};
        }
    }

    // SSN / ITIN: 3-2-4.
    if ((e_.ssn_ || e_.itin_) && i + 2 <= c && len(i) == 3 && len(i + 1) == 2 && len(i + 2) == 4 &&
        same_separators(i, i + 2, {"-"sv, " "sv}) && left_ok(gs) && right_ok(groups_[i + 2].end)) {
        const std::string_view d = digits(i, i + 2);
        const float base = sep(i) == "-" ? 0.85F : 0.7F;
        if (e_.ssn_ && us_ssn_valid(d)) return Match{e_.ssn_, gs, groups_[i + 2].end, i + 2, boosted(e_.ssn_, gs, base)};
        if (e_.itin_ && us_itin_valid(d)) {
            return Match{e_.itin_, gs, groups_[i + 2].end, i + 2, boosted(e_.itin_, gs, base)};
        }
    }

    // Canadian SIN: 3-3-3.
    if (e_.sin_ && i + 2 <= c && len(i) == 3 && len(i + 1) == 3 && len(i + 2) == 3 &&
        same_separators(i, i + 2, {" "sv, "-"sv}) && left_ok(gs) && right_ok(groups_[i + 2].end) &&
        e_.sin_->validate(digits(i, i + 2))) {
        return Match{e_.sin_, gs, groups_[i + 2].end, i + 2, boosted(e_.sin_, gs, 0.8F)};
    }

    // Aadhaar: 4-4-4, the whole of its run of groups (not a stretch of a
    // longer grouped number such as an account or an IBAN).
    if (e_.aadhaar_ && i + 2 <= c && len(i) == 4 && len(i + 1) == 4 && len(i + 2) == 4 &&
        same_separators(i, i + 2, {" "sv, "-"sv}) && left_ok(gs) && right_ok(groups_[i + 2].end)) {
        const bool continues = i + 2 < c && sep(i + 2) == sep(i);
        if (!continues && !inside_longer_run && aadhaar_valid(digits(i, i + 2))) {
            return Match{e_.aadhaar_, gs, groups_[i + 2].end, i + 2, boosted(e_.aadhaar_, gs, 0.85F)};
        }
    }

    bool skip = false;
    if (auto ip = ipv4_at(i, c, skip)) return ip;
    if (skip) return std::nullopt;

    // Bare digit runs name what they are only through nearby words.
    if (len(i) == 9 && left_ok(gs) && right_ok(groups_[i].end)) {
        const std::string_view d = digits(i, i);
        if (e_.ssn_ && us_ssn_valid(d) && context(e_.ssn_, gs)) return Match{e_.ssn_, gs, groups_[i].end, i, 0.9F};
        if (e_.itin_ && us_itin_valid(d) && context(e_.itin_, gs)) return Match{e_.itin_, gs, groups_[i].end, i, 0.9F};
        if (e_.sin_ && e_.sin_->validate(d) && context(e_.sin_, gs)) return Match{e_.sin_, gs, groups_[i].end, i, 0.85F};
    }
    if (e_.aadhaar_ && len(i) == 12 && left_ok(gs) && right_ok(groups_[i].end) && aadhaar_valid(digits(i, i)) &&
        context(e_.aadhaar_, gs)) {
        return Match{e_.aadhaar_, gs, groups_[i].end, i, 0.9F};
    }
    return std::nullopt;
}

std::optional<FastPathScan::Match> FastPathScan::ipv4_at(std::size_t i, std::size_t c, bool& skip) {
    if (!e_.ipv4_ || i + 3 > c) return std::nullopt;
    for (std::size_t k = i; k < i + 4; ++k) {
        if (len(k) > 3) return std::nullopt;
    }
    if (!same_separators(i, i + 3, {"."sv})) return std::nullopt;
    const std::size_t ms = groups_[i].start;
    const std::size_t me = groups_[i + 3].end;
    if (!left_ok(ms) || !right_ok(me)) return std::nullopt;
    const std::string_view text = d_.substr(ms, me - ms);
    if (!ipv4_valid(text)) return std::nullopt;
    // Version numbers: "version 1.2.3.4", "==1.2.3.4", "pkg@1.2.3.4".
    const std::size_t window_start = ms > 24 ? ms - 24 : 0;
    const std::string_view window = d_.substr(window_start, ms - window_start);
    static constexpr std::string_view version_words[] = {"version", "ver",      "release", "build",
                                                         "rev",     "revision", "firmware", "v"};
    if (contains_any_word(window, version_words) || mentions_version(window)) {
        skip = true;
        return std::nullopt;
    }
    // Version pins: pkg@1.2.3.4, ^1.2.3.4, ~1.2.3.4, ==1.2.3.4, >=1.2.3.4 (a lone '=' is host=8.8.8.8).
    const char before_ip = ms > 0 ? d_[ms - 1] : '\0';
    const char two_before = ms > 1 ? d_[ms - 2] : '\0';
    const bool pin_operator = before_ip == '=' && (two_before == '=' || two_before == '<' || two_before == '>' ||
                                                   two_before == '~' || two_before == '!');
    if (before_ip == '@' || before_ip == '^' || before_ip == '~' || before_ip == '>' || before_ip == '<' ||
        pin_operator) {
        skip = true;
        return std::nullopt;
    }
    // Section numbers: "[23.2.1.2]", "(26.5.1.3)", "clause 21.1.3.1".
    const bool enclosed = ms > 0 && me < n_ &&
                          ((d_[ms - 1] == '[' && d_[me] == ']') || (d_[ms - 1] == '(' && d_[me] == ')'));
    // Section-like: 11..40, then 1..40, 1..40, 1..20 ("20.11.5.2", "23.2.1.2");
    // a random address has that shape about once in 30,000, and 8.8.8.8 or
    // 10.1.2.3 do not.
    bool small_parts = true;  // every part 1..99
    bool section_like = true;
    for (std::size_t k = i; k < i + 4; ++k) {
        const bool nonzero_short = len(k) <= 2 && d_[groups_[k].start] != '0';
        small_parts = small_parts && nonzero_short;
        int value = 999;
        if (nonzero_short) {
            value = 0;
            for (std::size_t p = groups_[k].start; p < groups_[k].end; ++p) value = value * 10 + (d_[p] - '0');
        }
        const int low = k == i ? 11 : 1;
        section_like = section_like && value >= low && value <= (k == i + 3 ? 20 : 40);
    }
    if ((enclosed && small_parts) || section_like) {
        skip = true;
        return std::nullopt;
    }
    // Object identifiers (2.5.4.3, 2.5.29.17) share the shape too.
    static constexpr std::string_view section_words[] = {"section", "sections", "clause", "clauses", "chapter", "rfc",
                                                         "iso",     "oid",      "oids",   "object",  "identifier"};
    if (contains_any_word(window, section_words)) {
        skip = true;
        return std::nullopt;
    }
    if (ms >= 2 && static_cast<unsigned char>(d_[ms - 2]) == 0xC2 && static_cast<unsigned char>(d_[ms - 1]) == 0xA7) {
        skip = true;  // "§22.2.1.4" (UTF-8 section sign)
        return std::nullopt;
    }
    // Addresses that identify no one.
    if (text == "0.0.0.0" || text == "255.255.255.255" || text.starts_with("127.")) {
        skip = true;
        return std::nullopt;
    }
    const bool is_private = text.starts_with("10.") || text.starts_with("192.168.") || text.starts_with("169.254.") ||
                            (text.starts_with("172.") && [&] {
                                const std::string_view second = text.substr(4, text.find('.', 4) - 4);
                                return second.size() == 2 && second >= "16" && second <= "31";
                            }());
    return Match{e_.ipv4_, ms, me, i + 3, boosted(e_.ipv4_, ms, is_private ? 0.6F : 0.8F)};
}

// --- Capitals then digits: IBAN, UK NINO -------------------------------------------------

FastPathScan::Outcome FastPathScan::alpha_at(std::size_t t, bool spaced) {
    const std::size_t s = spaced ? t - 4 : t - 3;
    if (s + 44 > n_ && !complete_) return {Status::defer, t};
    if (s < min_start_ || (s > 0 && is_alnum(d_[s - 1]))) return {Status::done, t + 1};
    std::size_t end = 0;
    if (!spaced && e_.iban_ && try_iban(s, end) == Status::done && end != 0) {
        return {stopped_ ? Status::stop : Status::done, end};
    }
    if (e_.nino_ && try_nino(s, end) == Status::done && end != 0) return {stopped_ ? Status::stop : Status::done, end};
    return {Status::done, t + 1};
}

FastPathScan::Status FastPathScan::try_iban(std::size_t s, std::size_t& end) {
    end = 0;
    const auto expected = iban_length(d_.substr(s, 2));
    if (!expected) return Status::done;
    std::array<char, 34> compact{};
    std::size_t count = 0;
    std::size_t pos = s;
    while (count < *expected) {
        if (pos >= n_) return Status::done;
        const char c = d_[pos];
        if (is_upper(c) || is_digit(c)) {
            compact[count++] = c;
            ++pos;
        } else if (c == ' ' && count >= 4 && count % 4 == 0 && pos + 1 < n_ &&
                   (is_upper(d_[pos + 1]) || is_digit(d_[pos + 1]))) {
            ++pos;
        } else {
            return Status::done;
        }
    }
    if (pos < n_ && is_alnum(d_[pos])) return Status::done;
    if (!iban_valid(std::string_view(compact.data(), count))) return Status::done;
    if (emit(e_.iban_, s, pos, boosted(e_.iban_, s, 0.95F))) end = pos;
    return Status::done;
}

FastPathScan::Status FastPathScan::try_nino(std::size_t s, std::size_t& end) {
    end = 0;
    std::array<char, 9> compact{};
    compact[0] = d_[s];
    compact[1] = d_[s + 1];
    std::size_t pos = s + 2;
    if (pos < n_ && d_[pos] == ' ') ++pos;
    // Six digits, contiguous or as three space-separated pairs.
    std::size_t count = 2;
    const bool pairs = pos + 2 < n_ && d_[pos + 2] == ' ';
    for (int pair = 0; pair < 3; ++pair) {
        for (int k = 0; k < 2; ++k) {
            if (pos >= n_ || !is_digit(d_[pos])) return Status::done;
            compact[count++] = d_[pos++];
        }
        if (pairs && pair < 2) {
            if (pos >= n_ || d_[pos] != ' ') return Status::done;
            ++pos;
        }
    }
    if (pos < n_ && d_[pos] == ' ') ++pos;
    if (pos >= n_) return Status::done;
    compact[count++] = d_[pos++];
    if (pos < n_ && is_alnum(d_[pos])) return Status::done;
    if (!uk_nino_valid(std::string_view(compact.data(), count))) return Status::done;
    if (emit(e_.nino_, s, pos, boosted(e_.nino_, s, 0.85F))) end = pos;
    return Status::done;
}

// --- IPv6 ------------------------------------------------------------------------------

FastPathScan::Outcome FastPathScan::ipv6_at(std::size_t t) {
    const std::size_t floor = std::max(min_start_, t > 45 ? t - 45 : 0);
    std::size_t rs = t;
    while (rs > floor && is_v6_char(d_[rs - 1])) --rs;
    std::size_t re = t;
    const std::size_t ceiling = std::min(n_, t + 46);
    while (re < ceiling && is_v6_char(d_[re])) ++re;
    if (re == n_ && !complete_) return {Status::defer, t};
    const Outcome skip{Status::done, std::max(re, t + 1)};
    // Without "::" an address has exactly seven colons.
    const std::string_view region = d_.substr(rs, re - rs);
    if (region.find("::") == std::string_view::npos && std::count(region.begin(), region.end(), ':') < 7) return skip;
    if ((rs > 0 && (is_word(d_[rs - 1]) || is_v6_char(d_[rs - 1]))) ||
        (re < n_ && (is_word(d_[re]) || is_v6_char(d_[re])))) {
        return skip;
    }
    std::size_t s = rs;
    std::size_t e = re;
    while (e > s && d_[e - 1] == '.') --e;  // sentence punctuation
    if (e - s >= 2 && d_[e - 1] == ':' && d_[e - 2] != ':') --e;
    if (e - s >= 2 && d_[s] == ':' && d_[s + 1] != ':') ++s;
    const std::string_view text = d_.substr(s, e - s);
    if (!ipv6_valid(text)) return skip;
    std::size_t groups = 0;
    bool has_digit = false;
    bool has_hex_letter = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (is_hex(text[i]) && (i == 0 || text[i - 1] == ':')) ++groups;
        has_digit = has_digit || is_digit(text[i]);
        has_hex_letter = has_hex_letter || (is_hex(text[i]) && !is_digit(text[i]));
    }
    if (text.find('.') != std::string_view::npos) ++groups;  // a trailing dotted quad is two groups
    const bool compressed = text.find("::") != std::string_view::npos;
    // Every group written with four digits (2001:4860:0000:...:8888) is how
    // addresses are printed in full, not how numbers are listed.
    bool four_digit_groups = !compressed;
    for (std::size_t i = 0; four_digit_groups && i < text.size(); i += 5) {
        four_digit_groups = i + 4 <= text.size() && (i + 4 == text.size() || text[i + 4] == ':') &&
                            std::all_of(text.begin() + static_cast<std::ptrdiff_t>(i),
                                        text.begin() + static_cast<std::ptrdiff_t>(i + 4), is_hex);
    }
    // 1:2:3:4:5:6:7:8 is a list of numbers more often than an address;
    // "d::" in C++ is a scope, not the unspecified address.
    if (groups < 3 || !has_digit || !(compressed || has_hex_letter || four_digit_groups)) return skip;
    emit(e_.ipv6_, s, e, boosted(e_.ipv6_, s, 0.8F));
    return {stopped_ ? Status::stop : Status::done, std::max(re, t + 1)};
}

// --- Engine ------------------------------------------------------------------------------

FastPath::FastPath(std::span<const Detector* const> enabled) {
    for (const Detector* d : enabled) {
        if (d->engine != Engine::simd) continue;
        if (d->id == "pii.credit_card") card_ = d;
        else if (d->id == "pii.us_ssn") ssn_ = d;
        else if (d->id == "pii.us_itin") itin_ = d;
        else if (d->id == "pii.ca_sin") sin_ = d;
        else if (d->id == "pii.in_aadhaar") aadhaar_ = d;
        else if (d->id == "pii.phone") phone_ = d;
        else if (d->id == "pii.iban") iban_ = d;
        else if (d->id == "pii.uk_nino") nino_ = d;
        else if (d->id == "pii.ipv4") ipv4_ = d;
        else if (d->id == "pii.ipv6") ipv6_ = d;
        else if (d->id == "pii.email") email_ = d;
    }
}

bool FastPath::active() const noexcept {
    return card_ || ssn_ || itin_ || sin_ || aadhaar_ || phone_ || iban_ || nino_ || ipv4_ || ipv6_ || email_;
}

std::size_t FastPath::scan(std::string_view data, std::size_t from, bool complete, std::size_t& min_start,
                                FastPathSink& sink) const {
    if (!active() || from >= data.size()) return std::max(from, data.size());
    FastPathScan scan(*this, data, complete, min_start, sink);
    return scan.run(from);
}

#ifdef AIRLOCK_INSPECT_X86
namespace {
__attribute__((target("avx2"))) std::size_t count_byte_avx2(const char* data, std::size_t size, char byte) {
    std::size_t count = 0;
    std::size_t i = 0;
    const __m256i needle = _mm256_set1_epi8(byte);
    for (; i + 32 <= size; i += 32) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(data + i));
        count += static_cast<std::size_t>(
            __builtin_popcount(static_cast<unsigned>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, needle)))));
    }
    for (; i < size; ++i) count += data[i] == byte;
    return count;
}

// Line numbers count every newline of the input, sparse or not (2.5% of a
// sparse scan with AVX2): 64 bytes per compare where AVX-512BW is there.
AIRLOCK_AVX512 std::size_t count_byte_avx512(const char* data, std::size_t size, char byte) {
    std::size_t count = 0;
    std::size_t i = 0;
    const __m512i needle = _mm512_set1_epi8(byte);
    for (; i + 64 <= size; i += 64) {
        count += static_cast<std::size_t>(
            __builtin_popcountll(_mm512_cmpeq_epi8_mask(_mm512_loadu_si512(data + i), needle)));
    }
    if (i < size) {
        const __mmask64 rest = (std::uint64_t{1} << (size - i)) - 1;  // size - i < 64
        count += static_cast<std::size_t>(
            __builtin_popcountll(_mm512_mask_cmpeq_epi8_mask(rest, _mm512_maskz_loadu_epi8(rest, data + i), needle)));
    }
    return count;
}

std::size_t count_byte_sse2(const char* data, std::size_t size, char byte) {
    std::size_t count = 0;
    std::size_t i = 0;
    const __m128i needle = _mm_set1_epi8(byte);
    for (; i + 16 <= size; i += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + i));
        count += static_cast<std::size_t>(
            __builtin_popcount(static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, needle)))));
    }
    for (; i < size; ++i) count += data[i] == byte;
    return count;
}
}  // namespace
#endif

std::size_t count_byte(const char* data, std::size_t size, char byte) noexcept {
#ifdef AIRLOCK_INSPECT_X86
    static const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    static const bool avx2 = __builtin_cpu_supports("avx2");
    if (avx512) return count_byte_avx512(data, size, byte);
    return avx2 ? count_byte_avx2(data, size, byte) : count_byte_sse2(data, size, byte);
#else
    return static_cast<std::size_t>(std::count(data, data + size, byte));
#endif
}

void FastPath::force_simd_level(SimdLevel level) noexcept { forced_level.store(level, std::memory_order_relaxed); }

SimdLevel FastPath::simd_level() noexcept { return resolve_level(forced_level.load(std::memory_order_relaxed)); }

}  // namespace airlock::inspect
