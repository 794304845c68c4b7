// Inspector throughput on generated data, one core:
//   sparse  code, logs, prose and CSV with rare findings (what an agent mostly reads)
//   dense   a CSV where every row holds an email, phone, SSN, card, IP and date of birth
// plus the per-call cost of a small buffer (an exec's argv and environment).
// The side-by-side comparison with other scanners is bench/compare.sh; for it
//   inspect_bench --dump-corpus=DIR [--sparse-size=BYTES] [--dense-size=BYTES]
// writes the generated inputs (DIR/sparse.txt, DIR/dense.csv) and exits, and
//   inspect_bench --export-patterns
// prints the detector set as regular expressions for ripgrep (`rg -f`), and
//   inspect_bench --scan-file=PATH [--list-findings]
// streams one file through the library in 1 MiB chunks on one thread (as
// `airlock scan` does, memory bounded) and prints its throughput.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>

#include "inspect/detectors.hpp"
#include "inspect/fastpath.hpp"
#include "inspect/scanner.hpp"

namespace {

using airlock::inspect::Options;
using airlock::inspect::Scanner;
using airlock::inspect::Session;

std::string luhn_complete(std::string digits) {
    int sum = 0;
    bool double_it = true;
    for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
        int d = *it - '0';
        if (double_it) {
            d *= 2;
            if (d > 9) d -= 9;
        }
        sum += d;
        double_it = !double_it;
    }
    digits.push_back(static_cast<char>('0' + (10 - sum % 10) % 10));
    return digits;
}

std::string digits(std::mt19937_64& rng, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out.push_back(static_cast<char>('0' + rng() % 10));
    return out;
}

std::string word(std::mt19937_64& rng) {
    static const char* words[] = {"the",     "request", "handler", "returns", "value",  "config", "user",
                                  "session", "buffer",  "index",   "client",  "server", "error",  "result",
                                  "update",  "records", "process", "thread",  "cache",  "during", "before"};
    return words[rng() % (sizeof(words) / sizeof(words[0]))];
}

// ~`size` bytes of mixed text; about one finding per 16 KiB.
std::string sparse_text(std::size_t size) {
    std::mt19937_64 rng(42);
    std::string out;
    out.reserve(size + 256);
    while (out.size() < size) {
        switch (rng() % 4) {
            case 0:  // code
                out += "    for (std::size_t i = 0; i < " + word(rng) + "_count; ++i) { total += " + word(rng) +
                       "[i] * 0x" + std::to_string(rng() % 4096) + "; }  // " + word(rng) + " " + word(rng) + "\n";
                out += "    const auto " + word(rng) + " = std::make_unique<Buffer>(" + std::to_string(rng() % 100000) +
                       ", \"" + word(rng) + "\");\n";
                break;
            case 1:  // log
                out += "2024-03-" + std::to_string(10 + rng() % 18) + "T12:" + std::to_string(10 + rng() % 50) +
                       ":07.123Z INFO [worker-" + std::to_string(rng() % 16) + "] " + word(rng) + " " + word(rng) +
                       " took " + std::to_string(rng() % 900) + "ms status=200 bytes=" + std::to_string(rng() % 99999) +
                       "\n";
                break;
            case 2:  // prose
                for (int w = 0; w < 14; ++w) out += word(rng) + (w == 13 ? ".\n" : " ");
                break;
            default:  // csv of measurements
                out += std::to_string(rng() % 1000) + "," + word(rng) + "," + std::to_string(rng() % 100) + "." +
                       std::to_string(rng() % 100) + ",v" + std::to_string(rng() % 9) + "\n";
                break;
        }
        if (rng() % 200 == 0) {  // rare findings
            switch (rng() % 4) {
                case 0: out += "export GITHUB_TOKEN=ghp_" + std::string("aB3dE5fG7hJ9kL1mN3pQ5rS7tV9wX1yZ3bC5") + "\n"; break;
                case 1: out += "contact: jane.doe@corp-mail.com\n"; break;
                case 2: out += "client 203.55.17.9 connected\n"; break;
                default: out += "card " + luhn_complete("4" + digits(rng, 14)) + "\n"; break;
            }
        }
    }
    return out;
}

std::string dense_csv(std::size_t size) {
    std::mt19937_64 rng(7);
    std::string out = "id,name,email,phone,ssn,card,ip,dob\n";
    for (std::uint64_t id = 1; out.size() < size; ++id) {
        out += std::to_string(id) + ",User " + word(rng) + "," + word(rng) + "." + std::to_string(id) +
               "@example-mail.com,(" + std::to_string(200 + rng() % 700) + ") " + std::to_string(200 + rng() % 700) +
               "-" + digits(rng, 4) + "," + std::to_string(100 + rng() % 500) + "-" + std::to_string(10 + rng() % 80) +
               "-" + digits(rng, 4) + "," + luhn_complete("4" + digits(rng, 14)) + "," +
               std::to_string(11 + rng() % 200) + "." + std::to_string(rng() % 256) + "." +
               std::to_string(rng() % 256) + "." + std::to_string(1 + rng() % 254) + ",DOB " +
               std::to_string(1 + rng() % 12) + "/" + std::to_string(1 + rng() % 28) + "/19" +
               std::to_string(50 + rng() % 50) + "\n";
    }
    return out;
}

Session make_session(std::vector<std::string> types = {}) {
    Options options;
    options.types = std::move(types);
    options.max_findings = std::size_t{1} << 24;
    options.hash_key = "benchmark-key";
    auto scanner = Scanner::create(options);
    if (!scanner) std::abort();
    auto session = scanner->new_session();
    if (!session) std::abort();
    return std::move(*session);
}

void run_block(benchmark::State& state, const std::string& data, std::vector<std::string> types = {}) {
    Session session = make_session(std::move(types));
    std::size_t findings = 0;
    for (auto _ : state) {
        auto result = session.scan(data);
        if (!result) {
            state.SkipWithError(result.error().to_string().c_str());
            return;
        }
        findings = result->findings.size();
        benchmark::DoNotOptimize(result);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
    state.counters["findings"] = static_cast<double>(findings);
}

std::size_t sparse_size = std::size_t{32} << 20;
std::size_t dense_size = std::size_t{8} << 20;

const std::string& sparse() {
    static const std::string data = sparse_text(sparse_size);
    return data;
}
const std::string& dense() {
    static const std::string data = dense_csv(dense_size);
    return data;
}

// The detector set as regular expressions ripgrep accepts, one per line, for
// a like-for-like comparison: the vectorscan heads as they are compiled
// (the locators' checks after them have no regex form), and for the SIMD
// detectors, which have no expression, the shapes the fast path looks for.
// A SIMD detector missing from the table fails the export, so the list
// cannot silently fall behind the catalogue.
int export_patterns() {
    struct Shape {
        std::string_view id;
        std::string_view regex;
    };
    static constexpr Shape shapes[] = {
        {"pii.credit_card", R"(\b(?:\d{4}[ -]?){3}\d{1,4}\b|\b\d{4}[ -]?\d{6}[ -]?\d{4,5}\b)"},
        {"pii.us_ssn", R"(\b\d{3}[- ]\d{2}[- ]\d{4}\b|(?i)\bssn\D{0,20}\d{9}\b)"},
        {"pii.us_itin", R"(\b9\d{2}[- ]?[5-9]\d[- ]?\d{4}\b)"},
        {"pii.ca_sin", R"(\b\d{3}[- ]\d{3}[- ]\d{3}\b)"},
        {"pii.in_aadhaar", R"(\b\d{4}[ -]\d{4}[ -]\d{4}\b)"},
        {"pii.phone", R"(\(\d{3}\)[ -]?\d{3}[-. ]\d{4}\b|\b\d{3}[-. ]\d{3}[-. ]\d{4}\b|\+\d[\d ]{7,17}\d)"},
        {"pii.iban", R"(\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b)"},
        {"pii.uk_nino", R"(\b[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b)"},
        {"pii.ipv4", R"(\b(?:\d{1,3}\.){3}\d{1,3}\b)"},
        {"pii.ipv6", R"((?i)\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b|(?i)\b(?:[0-9a-f]{1,4}:){1,6}:(?:[0-9a-f]{1,4})?\b)"},
        {"pii.email", R"(\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]+\.[A-Za-z]{2,24}\b)"},
    };
    for (const airlock::inspect::Detector& d : airlock::inspect::all_detectors()) {
        if (d.engine == airlock::inspect::Engine::vectorscan) {
            for (std::string_view head : d.heads) std::printf("%.*s\n", static_cast<int>(head.size()), head.data());
            continue;
        }
        const Shape* shape = nullptr;
        for (const Shape& s : shapes) {
            if (s.id == d.id) shape = &s;
        }
        if (shape == nullptr) {
            std::fprintf(stderr, "no regular expression for SIMD detector %.*s\n", static_cast<int>(d.id.size()),
                         d.id.data());
            return 1;
        }
        std::printf("%.*s\n", static_cast<int>(shape->regex.size()), shape->regex.data());
    }
    return 0;
}

// One file through a stream, 1 MiB at a time; prints bytes, seconds, MB/s
// and findings (each finding too with --list-findings, for comparing builds).
// The findings are taken from the stream after every chunk (as the daemon
// or a CLI printing as it goes would), each one with its masked preview and
// keyed hash read (folded into a checksum that is printed, so none of it is
// skipped), and then dropped: memory stays bounded on any input, and the
// time covers finding, validating, previewing and hashing every value.
int scan_file(const std::string& path, bool list) {
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) {
        std::perror(path.c_str());
        return 2;
    }
    Session session = make_session();
    std::string buffer(std::size_t{1} << 20, '\0');
    std::vector<airlock::inspect::Finding> batch;
    std::size_t findings = 0;
    std::uint64_t checksum = 0;
    auto consume = [&](std::vector<airlock::inspect::Finding>& found) {
        for (const auto& f : found) {
            ++findings;
            // Every byte of the preview and the hash is read; a cheap fold
            // (the consumer's cost is not what is measured).
            const std::string_view preview = f.preview.view();
            std::uint64_t fold = preview.size();
            for (char c : preview) fold = (fold << 1 | fold >> 63) ^ static_cast<unsigned char>(c);
            std::uint64_t words[4];
            std::memcpy(words, f.keyed_hash.bytes().data(), sizeof words);
            checksum += fold ^ words[0] ^ words[1] ^ words[2] ^ words[3] ^ (f.offset + f.line);
            if (list) {
                std::printf("%.*s %llu %u %llu %s %.2f %d %s\n", static_cast<int>(f.type.size()), f.type.data(),
                            static_cast<unsigned long long>(f.offset), f.length,
                            static_cast<unsigned long long>(f.line), f.preview.str().c_str(),
                            static_cast<double>(f.confidence), f.test_value ? 1 : 0, f.keyed_hash.hex().c_str());
            }
        }
        found.clear();
    };
    const auto started = std::chrono::steady_clock::now();
    auto stream = session.open_stream();
    if (!stream) return 2;
    for (;;) {
        const std::size_t n = std::fread(buffer.data(), 1, buffer.size(), file);
        if (n == 0) break;
        if (!stream->feed(std::string_view(buffer.data(), n))) return 2;
        stream->take_findings(batch);
        consume(batch);
    }
    std::fclose(file);
    auto result = stream->finish();
    if (!result) return 2;
    consume(result->findings);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::printf("bytes=%llu seconds=%.4f MB/s=%.1f findings=%zu checksum=%016llx"
                " (each with preview and keyed hash, delivered per chunk, not kept)\n",
                static_cast<unsigned long long>(result->bytes_scanned), seconds,
                static_cast<double>(result->bytes_scanned) / seconds / 1e6, findings,
                static_cast<unsigned long long>(checksum));
    return 0;
}

void BM_BlockSparse(benchmark::State& state) { run_block(state, sparse()); }
void BM_BlockSparseSecretsOnly(benchmark::State& state) { run_block(state, sparse(), {"secret.*"}); }
void BM_BlockSparseNumericOnly(benchmark::State& state) {
    run_block(state, sparse(), {"pii.credit_card", "pii.us_ssn", "pii.us_itin", "pii.ca_sin", "pii.in_aadhaar",
                                "pii.phone", "pii.iban", "pii.uk_nino", "pii.ipv4", "pii.ipv6"});
}
void BM_BlockDenseCsv(benchmark::State& state) { run_block(state, dense()); }

void BM_StreamSparse(benchmark::State& state) {
    Session session = make_session();
    const std::string& data = sparse();
    const auto chunk = static_cast<std::size_t>(state.range(0));
    for (auto _ : state) {
        auto stream = session.open_stream();
        if (!stream) {
            state.SkipWithError(stream.error().to_string().c_str());
            return;
        }
        for (std::size_t pos = 0; pos < data.size(); pos += chunk) {
            if (!stream->feed(std::string_view(data).substr(pos, chunk))) {
                state.SkipWithError("feed failed");
                return;
            }
        }
        auto result = stream->finish();
        benchmark::DoNotOptimize(result);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
}

// An exec's argv and environment in one buffer: the fixed cost per call.
void BM_SmallBuffer(benchmark::State& state) {
    Session session = make_session();
    std::string env = "PATH=/usr/local/bin:/usr/bin:/bin HOME=/home/agent LANG=C.UTF-8 TERM=xterm-256color ";
    env += "python3 -m pip install --index-url https://pypi.org/simple requests==2.31.0 ";
    env += "SHELL=/bin/bash PWD=/home/agent/project EDITOR=vim";
    for (auto _ : state) {
        auto result = session.scan(env);
        benchmark::DoNotOptimize(result);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * env.size()));
}

void BM_CompileDatabases(benchmark::State& state) {
    for (auto _ : state) {
        auto scanner = Scanner::create(Options{});
        benchmark::DoNotOptimize(scanner);
    }
}

}  // namespace

BENCHMARK(BM_BlockSparse)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BlockSparseSecretsOnly)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BlockSparseNumericOnly)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BlockDenseCsv)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StreamSparse)->Arg(64 << 10)->Arg(1 << 20)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SmallBuffer);
BENCHMARK(BM_CompileDatabases)->Unit(benchmark::kMillisecond)->Iterations(3);

int main(int argc, char** argv) {
    constexpr std::string_view dump_flag = "--dump-corpus=";
    constexpr std::string_view scan_flag = "--scan-file=";
    constexpr std::string_view sparse_flag = "--sparse-size=";
    constexpr std::string_view dense_flag = "--dense-size=";
    std::string dump_dir;
    std::string scan_path;
    bool list = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg.starts_with(dump_flag)) dump_dir = arg.substr(dump_flag.size());
        if (arg.starts_with(scan_flag)) scan_path = arg.substr(scan_flag.size());
        if (arg.starts_with(sparse_flag)) sparse_size = std::strtoull(argv[i] + sparse_flag.size(), nullptr, 10);
        if (arg.starts_with(dense_flag)) dense_size = std::strtoull(argv[i] + dense_flag.size(), nullptr, 10);
        if (arg == "--list-findings") list = true;
        if (arg == "--export-patterns") return export_patterns();
        // Instruction set of the numeric fast path (default: the best the CPU has).
        if (arg == "--simd=scalar") airlock::inspect::FastPath::force_simd_level(airlock::inspect::SimdLevel::scalar);
        if (arg == "--simd=sse2") airlock::inspect::FastPath::force_simd_level(airlock::inspect::SimdLevel::sse2);
        if (arg == "--simd=avx2") airlock::inspect::FastPath::force_simd_level(airlock::inspect::SimdLevel::avx2);
    }
    if (!scan_path.empty()) return scan_file(scan_path, list);
    if (!dump_dir.empty()) {
        std::ofstream(dump_dir + "/sparse.txt", std::ios::binary) << sparse();
        std::ofstream(dump_dir + "/dense.csv", std::ios::binary) << dense();
        return 0;
    }
    std::vector<char*> args;  // without our own flags, which Google Benchmark would reject
    for (int i = 0; i < argc; ++i) {
        if (!std::string_view(argv[i]).starts_with("--simd=")) args.push_back(argv[i]);
    }
    argc = static_cast<int>(args.size());
    argv = args.data();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
