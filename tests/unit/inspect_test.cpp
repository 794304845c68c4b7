// Inspector: validators one by one, every detector's positives and hard
// negatives, streaming across chunk boundaries, masking, allowlists, limits
// and the serialized-database cache.
//
// Credential-shaped test values are assembled at run time (cat(), random
// bodies), so that no complete token sits in the source for a repository
// secret scanner to flag.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "inspect/detectors.hpp"
#include "inspect/fastpath.hpp"
#include "inspect/finding.hpp"
#include "inspect/scanner.hpp"
#include "inspect/text.hpp"
#include "inspect/validators.hpp"
#include "support/test_values.hpp"

namespace {

using namespace airlock::inspect;
using namespace airlock::test_values;

// --- Helpers -----------------------------------------------------------------------

constexpr std::string_view alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
constexpr std::string_view letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr std::string_view base32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr std::string_view hex_lower = "0123456789abcdef";
constexpr std::string_view hash_key = "daemon-key";

std::string random_string(std::size_t n, std::string_view alphabet, unsigned seed) {
    std::mt19937 rng(seed);
    std::string out;
    for (std::size_t i = 0; i < n; ++i) out.push_back(alphabet[rng() % alphabet.size()]);
    return out;
}

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string out;
    for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<char>(rng() & 0xFF));
    return out;
}

std::string pem_block(std::string_view label, std::string_view body_bytes, std::string_view newline = "\n",
                      std::string_view headers = "") {
    const std::string body = base64(body_bytes);
    std::string out = cat({"-----BEGIN ", label, "-----", newline});
    out += headers;
    for (std::size_t i = 0; i < body.size(); i += 64) out += body.substr(i, 64) + std::string(newline);
    out += cat({"-----END ", label, "-----"});
    return out;
}

std::string openssh_key() {
    return pem_block("OPENSSH PRIVATE KEY", std::string("openssh-key-v1\0", 15) + random_bytes(380, 7));
}

std::string pgp_key() {
    const std::string body = base64(random_bytes(600, 8));
    std::string out = "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\n";
    for (std::size_t i = 0; i < body.size(); i += 64) out += body.substr(i, 64) + "\n";
    out += "=x4Fz\n-----END PGP PRIVATE KEY BLOCK-----";
    return out;
}

std::string jwt_token(std::string_view header_json, std::string_view payload_json, bool signed_token = true) {
    return base64url(header_json) + "." + base64url(payload_json) + "." +
           (signed_token ? base64url(random_bytes(32, 9)) : "");
}

std::string hmac_hex(std::string_view key, std::string_view value) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(value.data()),
         value.size(), mac, &length);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < length; ++i) {
        out.push_back(hex[mac[i] >> 4]);
        out.push_back(hex[mac[i] & 0xF]);
    }
    return out;
}

Options default_options() {
    Options options;
    options.hash_key = std::string(hash_key);
    return options;
}

Scanner& shared_scanner() {
    static Scanner scanner = [] {
        auto created = Scanner::create(default_options());
        if (!created) {
            ADD_FAILURE() << created.error().to_string();
            std::abort();
        }
        return std::move(*created);
    }();
    return scanner;
}

ScanResult scan_with(const Scanner& scanner, std::string_view text, std::string_view path = {}) {
    auto session = scanner.new_session();
    EXPECT_TRUE(session.has_value());
    auto result = session->scan(text, path);
    EXPECT_TRUE(result.has_value()) << (result ? "" : result.error().to_string());
    return result ? std::move(*result) : ScanResult{};
}

ScanResult scan(std::string_view text) { return scan_with(shared_scanner(), text); }

ScanResult scan_stream(const Scanner& scanner, const std::vector<std::string_view>& chunks) {
    auto session = scanner.new_session();
    EXPECT_TRUE(session.has_value());
    auto stream = session->open_stream();
    EXPECT_TRUE(stream.has_value());
    for (std::string_view chunk : chunks) EXPECT_TRUE(stream->feed(chunk).has_value());
    auto result = stream->finish();
    EXPECT_TRUE(result.has_value());
    return result ? std::move(*result) : ScanResult{};
}

std::vector<Finding> of_type(const ScanResult& result, std::string_view type) {
    std::vector<Finding> out;
    for (const Finding& f : result.findings) {
        if (f.type == type) out.push_back(f);
    }
    return out;
}

std::string describe(const ScanResult& result, std::string_view text) {
    std::string out;
    for (const Finding& f : result.findings) {
        out += std::string(f.type) + "@" + std::to_string(f.offset) + "+" + std::to_string(f.length) + " '" +
               std::string(text.substr(f.offset, f.length)) + "'; ";
    }
    return out.empty() ? "(none)" : out;
}

// --- Validators ---------------------------------------------------------------------

TEST(InspectValidators, Luhn) {
    EXPECT_TRUE(luhn_valid("79927398713"));
    EXPECT_FALSE(luhn_valid("79927398710"));
    EXPECT_TRUE(luhn_valid("4539148803436467"));
    EXPECT_FALSE(luhn_valid(""));
    EXPECT_FALSE(luhn_valid("7"));
    EXPECT_FALSE(luhn_valid("7992739871a"));
}

TEST(InspectValidators, Verhoeff) {
    // Reference values computed independently of this implementation.
    EXPECT_TRUE(verhoeff_valid("2363"));
    EXPECT_FALSE(verhoeff_valid("2364"));
    EXPECT_TRUE(verhoeff_valid("234567890124"));
    EXPECT_TRUE(verhoeff_valid("498765432102"));
    EXPECT_FALSE(verhoeff_valid("234567890125"));
    EXPECT_FALSE(verhoeff_valid("23a3"));
}

TEST(InspectValidators, CardBrandAndLength) {
    EXPECT_EQ(card_brand("4539148803436467"), CardBrand::visa);
    EXPECT_EQ(card_brand("4222222222222"), CardBrand::visa);  // 13 digits
    EXPECT_EQ(card_brand("5425233430109903"), CardBrand::mastercard);
    EXPECT_EQ(card_brand("2223003122003222"), CardBrand::mastercard);  // 2-series
    EXPECT_EQ(card_brand("371449635398431"), CardBrand::amex);
    EXPECT_EQ(card_brand("6011000990139424"), CardBrand::discover);
    EXPECT_EQ(card_brand("3530111333300000"), CardBrand::jcb);
    EXPECT_EQ(card_brand("30569309025904"), CardBrand::diners);
    EXPECT_EQ(card_brand("6200000000000005"), CardBrand::unionpay);
    EXPECT_EQ(card_brand("1234567890123452"), std::nullopt);  // no issuer starts with 1
    EXPECT_EQ(card_brand("37144963539843"), std::nullopt);    // Amex is 15 digits
    EXPECT_EQ(card_brand("45391488034364671"), std::nullopt);  // Visa is 13, 16 or 19
    EXPECT_TRUE(card_number_valid("4539148803436467"));
    EXPECT_FALSE(card_number_valid("4539148803436468"));  // Luhn
    EXPECT_FALSE(card_number_valid(luhn_complete("123456789012345")));  // issuer
}

TEST(InspectValidators, Iban) {
    EXPECT_EQ(iban_length("DE"), 22u);
    EXPECT_EQ(iban_length("NO"), 15u);
    EXPECT_EQ(iban_length("XX"), std::nullopt);
    EXPECT_TRUE(iban_valid("DE44500105175407324931"));
    EXPECT_TRUE(iban_valid("GB29NWBK60161331926819"));
    EXPECT_TRUE(iban_valid("FR7630006000011234567890189"));
    EXPECT_TRUE(iban_valid("NO9386011117947"));
    EXPECT_FALSE(iban_valid("DE44500105175407324932"));   // mod 97
    EXPECT_FALSE(iban_valid("DE4450010517540732493"));    // length for DE
    EXPECT_FALSE(iban_valid("XX44500105175407324931"));   // country
    EXPECT_FALSE(iban_valid("DE00500105175407324931"));   // check digits 00
    EXPECT_TRUE(iban_checksum_valid("GB82WEST12345698765432"));
}

TEST(InspectValidators, UsSsn) {
    EXPECT_TRUE(us_ssn_valid("536228451"));
    EXPECT_FALSE(us_ssn_valid("000228451"));  // area 000
    EXPECT_FALSE(us_ssn_valid("666228451"));  // area 666
    EXPECT_FALSE(us_ssn_valid("936228451"));  // area 9xx
    EXPECT_FALSE(us_ssn_valid("536008451"));  // group 00
    EXPECT_FALSE(us_ssn_valid("536220000"));  // serial 0000
    EXPECT_FALSE(us_ssn_valid("53622845"));
}

TEST(InspectValidators, UsItin) {
    EXPECT_TRUE(us_itin_valid("912701234"));
    EXPECT_TRUE(us_itin_valid("912501234"));  // 50-65 since 2011
    EXPECT_TRUE(us_itin_valid("999991234"));
    EXPECT_FALSE(us_itin_valid("912691234"));  // 66-69 unassigned
    EXPECT_FALSE(us_itin_valid("912931234"));  // 93 unassigned
    EXPECT_FALSE(us_itin_valid("812701234"));  // not 9xx
    EXPECT_FALSE(us_itin_valid("912700000"));
}

TEST(InspectValidators, UkNino) {
    EXPECT_TRUE(uk_nino_valid("JG103759A"));
    EXPECT_TRUE(uk_nino_valid("CE123456B"));
    EXPECT_FALSE(uk_nino_valid("DA123456C"));  // D first
    EXPECT_FALSE(uk_nino_valid("AO123456C"));  // O second
    EXPECT_FALSE(uk_nino_valid("GB123456A"));  // banned prefix
    EXPECT_FALSE(uk_nino_valid("AB123456E"));  // suffix A-D
    EXPECT_FALSE(uk_nino_valid("AB12345C"));
}

TEST(InspectValidators, CanadianSin) {
    EXPECT_TRUE(ca_sin_valid("130692544"));
    EXPECT_TRUE(ca_sin_valid("987654324"));  // 9: temporary residents
    EXPECT_FALSE(ca_sin_valid("130692545"));  // Luhn
    EXPECT_FALSE(ca_sin_valid("046454286"));  // 0 is never issued (Canada's own example)
    EXPECT_FALSE(ca_sin_valid(luhn_complete("83069254")));  // 8: business numbers
}

TEST(InspectValidators, Aadhaar) {
    EXPECT_TRUE(aadhaar_valid("234567890124"));
    EXPECT_TRUE(aadhaar_valid("876543210988"));
    EXPECT_FALSE(aadhaar_valid("234567890125"));
    EXPECT_FALSE(aadhaar_valid(verhoeff_complete("13456789012")));  // first digit 0/1
    EXPECT_FALSE(aadhaar_valid("23456789012"));
}

TEST(InspectValidators, Ipv4) {
    EXPECT_TRUE(ipv4_valid("192.168.1.1"));
    EXPECT_TRUE(ipv4_valid("0.0.0.0"));
    EXPECT_TRUE(ipv4_valid("255.255.255.255"));
    EXPECT_FALSE(ipv4_valid("256.1.1.1"));
    EXPECT_FALSE(ipv4_valid("01.2.3.4"));  // leading zero
    EXPECT_FALSE(ipv4_valid("1.2.3"));
    EXPECT_FALSE(ipv4_valid("1.2.3.4.5"));  // version-string lookalike
    EXPECT_FALSE(ipv4_valid("1.2.3.4 "));
    EXPECT_FALSE(ipv4_valid("2024.01.15.1"));  // date lookalike
}

TEST(InspectValidators, Ipv6) {
    EXPECT_TRUE(ipv6_valid("2001:db8::1"));
    EXPECT_TRUE(ipv6_valid("::1"));
    EXPECT_TRUE(ipv6_valid("::"));
    EXPECT_TRUE(ipv6_valid("fe80::1ff:fe23:4567:890a"));
    EXPECT_TRUE(ipv6_valid("2001:0db8:85a3:0000:0000:8a2e:0370:7334"));
    EXPECT_TRUE(ipv6_valid("::ffff:192.0.2.128"));
    EXPECT_FALSE(ipv6_valid("1:2:3:4:5:6:7"));        // seven groups, no ::
    EXPECT_FALSE(ipv6_valid("1:2:3:4:5:6:7:8:9"));    // nine
    EXPECT_FALSE(ipv6_valid("1::2::3"));              // two ::
    EXPECT_FALSE(ipv6_valid("12345::"));              // group too long
    EXPECT_FALSE(ipv6_valid(":1:2:3:4:5:6:7"));
    EXPECT_FALSE(ipv6_valid("2001:db8:::1"));
    EXPECT_FALSE(ipv6_valid("12:34:56"));             // a time
}

TEST(InspectValidators, Telephone) {
    EXPECT_TRUE(nanp_valid("4155552671"));
    EXPECT_FALSE(nanp_valid("1155552671"));  // NPA starts with 1
    EXPECT_FALSE(nanp_valid("4915552671"));  // NPA middle 9 reserved
    EXPECT_FALSE(nanp_valid("4115552671"));  // N11 NPA
    EXPECT_FALSE(nanp_valid("4150552671"));  // NXX starts with 0
    EXPECT_FALSE(nanp_valid("4159112671"));  // N11 NXX
    EXPECT_TRUE(e164_valid("14155552671"));
    EXPECT_TRUE(e164_valid("442071234567"));
    EXPECT_TRUE(e164_valid("4930901820"));
    EXPECT_FALSE(e164_valid("0123456789"));        // no country code 0
    EXPECT_FALSE(e164_valid("1234567"));           // too short
    EXPECT_FALSE(e164_valid("4412345678901234"));  // 16 digits
    EXPECT_FALSE(e164_valid("28123456789"));       // 28x unassigned
    EXPECT_FALSE(e164_valid("11155552671"));       // +1 with an invalid NANP number
}

TEST(InspectValidators, Dates) {
    EXPECT_TRUE(calendar_date_valid(2024, 2, 29));
    EXPECT_FALSE(calendar_date_valid(2023, 2, 29));
    EXPECT_FALSE(calendar_date_valid(1900, 2, 29));
    EXPECT_TRUE(calendar_date_valid(2000, 2, 29));
    EXPECT_FALSE(calendar_date_valid(2024, 4, 31));
    EXPECT_FALSE(calendar_date_valid(2024, 13, 1));
    EXPECT_TRUE(birth_date_valid("12/05/1980"));
    EXPECT_TRUE(birth_date_valid("1980-05-12"));
    EXPECT_TRUE(birth_date_valid("31/12/1999"));  // d/m/y
    EXPECT_TRUE(birth_date_valid("12/31/1999"));  // m/d/y
    EXPECT_TRUE(birth_date_valid("12 March 1980"));
    EXPECT_TRUE(birth_date_valid("March 12, 1980"));
    EXPECT_TRUE(birth_date_valid("March 12th, 1980"));
    EXPECT_TRUE(birth_date_valid("05.12.80"));
    EXPECT_FALSE(birth_date_valid("31/31/1999"));
    EXPECT_FALSE(birth_date_valid("12/05/1850"));
    EXPECT_FALSE(birth_date_valid("12/05-1980"));  // mixed separators
    EXPECT_FALSE(birth_date_valid("Smarch 12, 1980"));
}

TEST(InspectValidators, Entropy) {
    EXPECT_DOUBLE_EQ(shannon_entropy(""), 0.0);
    EXPECT_DOUBLE_EQ(shannon_entropy("aaaa"), 0.0);
    EXPECT_DOUBLE_EQ(shannon_entropy("ab"), 1.0);
    EXPECT_DOUBLE_EQ(shannon_entropy("abcd"), 2.0);
    EXPECT_GT(shannon_entropy(random_string(64, alnum, 1)), 5.0);
}

// contains_any_word() visits token starts only; the plain definition (every
// occurrence of every word, whole-word checks around it) must agree.
bool contains_any_word_reference(std::string_view window, std::span<const std::string_view> words) {
    if (window.size() > 128) window.remove_prefix(window.size() - 128);
    std::string lowered;
    for (char c : window) lowered.push_back(to_lower(c));
    for (std::string_view word : words) {
        for (std::size_t pos = lowered.find(word); pos != std::string::npos; pos = lowered.find(word, pos + 1)) {
            const bool left_ok = pos == 0 || !is_alnum(lowered[pos - 1]) || !is_alnum(word.front());
            const std::size_t after = pos + word.size();
            const bool right_ok = after == lowered.size() || !is_alnum(lowered[after]) || !is_alnum(word.back());
            if (left_ok && right_ok) return true;
        }
    }
    return false;
}

TEST(InspectText, ContextWordsMatchWholeWordsLikeTheirDefinition) {
    static constexpr std::string_view words[] = {"ssn", "social security", "ss#", "ss #", "ssnum", "tel", "ip",
                                                 "#tag", "-x"};
    EXPECT_TRUE(contains_any_word("SSN: ", words));
    EXPECT_TRUE(contains_any_word("my Social Security no", words));
    EXPECT_FALSE(contains_any_word("ssnx ", words));
    EXPECT_FALSE(contains_any_word("xssn ", words));
    EXPECT_TRUE(contains_any_word("ss#1", words));  // a word ending in '#' needs no boundary after it
    EXPECT_TRUE(contains_any_word("a#tag", words));  // nor one starting with '#' before it
    const std::string long_window = "ssn " + std::string(200, '.');
    EXPECT_FALSE(contains_any_word(long_window, words));  // only the last 128 bytes are looked at
    // Lists whose words all start with a letter take the SSE2 pass, the
    // others the scalar one; both against the definition.
    static constexpr std::string_view letter_words[] = {"ssn", "social security", "ss#", "ss #", "tel", "ip", "x1"};
    std::mt19937_64 rng(11);
    constexpr std::string_view alphabet = "sSnN#- .tTeElLiIpP1x_a\x93";
    for (int i = 0; i < 200000; ++i) {
        std::string window;
        const std::size_t size = rng() % 140;
        for (std::size_t k = 0; k < size; ++k) window.push_back(alphabet[rng() % alphabet.size()]);
        ASSERT_EQ(contains_any_word(window, words), contains_any_word_reference(window, words)) << window;
        ASSERT_EQ(contains_any_word(window, letter_words), contains_any_word_reference(window, letter_words)) << window;
    }
}

TEST(InspectValidators, Base64) {
    EXPECT_EQ(base64_decode("aGVsbG8=", Base64Alphabet::standard), "hello");
    EXPECT_EQ(base64_decode("aGVsbG8", Base64Alphabet::standard), "hello");
    EXPECT_EQ(base64_decode("-_8", Base64Alphabet::url), std::string("\xfb\xff", 2));
    EXPECT_EQ(base64_decode("-_8", Base64Alphabet::standard), std::nullopt);
    EXPECT_EQ(base64_decode("a", Base64Alphabet::standard), std::nullopt);
    EXPECT_EQ(base64_decode("aG!s", Base64Alphabet::standard), std::nullopt);
}

TEST(InspectValidators, Jwt) {
    EXPECT_TRUE(jwt_valid(jwt_token(R"({"alg":"HS256","typ":"JWT"})", R"({"sub":"42"})")));
    EXPECT_TRUE(jwt_valid(jwt_token(R"({ "alg" : "none" })", R"({"sub":"42"})", false)));
    EXPECT_FALSE(jwt_valid(jwt_token(R"({"typ":"JWT"})", R"({"sub":"42"})")));      // no alg
    EXPECT_FALSE(jwt_valid(jwt_token(R"({"alg":"HS256"})", R"(["not","object"])")));  // payload
    EXPECT_FALSE(jwt_valid(base64url(R"({"alg":"HS256"})") + ".abc"));       // two parts
    EXPECT_FALSE(jwt_valid("eyJhbGciOiJIUzI1NiJ9.!!!.sig"));
}

TEST(InspectValidators, PrivateKeyBlocks) {
    EXPECT_EQ(private_key_block_valid(pem_block("RSA PRIVATE KEY", random_bytes(600, 1))), KeyBlockKind::pem);
    EXPECT_EQ(private_key_block_valid(pem_block("PRIVATE KEY", random_bytes(120, 2), "\\n")), KeyBlockKind::pem);
    EXPECT_EQ(private_key_block_valid(pem_block("RSA PRIVATE KEY", random_bytes(600, 3), "\n",
                                                "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0011\n\n")),
              KeyBlockKind::pem);
    EXPECT_EQ(private_key_block_valid(openssh_key()), KeyBlockKind::openssh);
    EXPECT_EQ(private_key_block_valid(pgp_key()), KeyBlockKind::pgp);
    // OPENSSH label without the openssh-key-v1 magic.
    EXPECT_EQ(private_key_block_valid(pem_block("OPENSSH PRIVATE KEY", random_bytes(300, 4))), std::nullopt);
    // END label differs from BEGIN.
    std::string mismatched = pem_block("RSA PRIVATE KEY", random_bytes(300, 5));
    mismatched.replace(mismatched.rfind("RSA "), 4, "EC ");
    EXPECT_EQ(private_key_block_valid(mismatched), std::nullopt);
    EXPECT_EQ(private_key_block_valid("-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----"),
              std::nullopt);
    EXPECT_EQ(private_key_block_valid(pem_block("RSA PRIVATE KEY", random_bytes(20, 6))), std::nullopt);  // too short
    EXPECT_EQ(private_key_block_valid(pem_block("PUBLIC KEY", random_bytes(300, 7))), std::nullopt);
}

TEST(InspectValidators, KnownTestValues) {
    EXPECT_TRUE(is_known_test_value("pii.credit_card", "4111111111111111"));
    EXPECT_FALSE(is_known_test_value("pii.credit_card", "4539148803436467"));
    EXPECT_TRUE(is_known_test_value("pii.us_ssn", "078051120"));
    EXPECT_TRUE(is_known_test_value("pii.email", "Someone@Mail.Example.com"));
    EXPECT_FALSE(is_known_test_value("pii.email", "someone@example-co.uk"));
    EXPECT_TRUE(is_known_test_value("pii.ipv4", "203.0.113.9"));
    EXPECT_TRUE(is_known_test_value("pii.phone", "4155550123"));
    EXPECT_TRUE(is_known_test_value("secret.aws_access_key", "AKIAIOSFODNN7EXAMPLE"));
    EXPECT_FALSE(is_known_test_value("secret.github_token", "4111111111111111"));
}

// --- Detectors: positives and hard negatives -------------------------------------

struct Positive {
    std::string text;
    std::string value;  // the exact bytes the finding must cover
    bool test_value = false;
};

struct DetectorCase {
    std::string id;
    std::vector<Positive> positives;
    std::vector<std::string> negatives;
};

std::string gcp_json(bool with_key) {
    std::string json = R"({"type": "service_account", "project_id": "proj-1", "private_key_id": ")" +
                       random_string(40, hex_lower, 11) + "\", ";
    if (with_key) json += "\"private_key\": \"" + pem_block("PRIVATE KEY", random_bytes(300, 12), "\\n") + "\\n\", ";
    json += R"("client_email": "svc@proj-1.iam.gserviceaccount.com", "client_id": "1234"})";
    return json;
}

std::string gcp_private_key_value(const std::string& json) {
    const std::size_t start = json.find("-----BEGIN");
    const std::size_t end = json.find('"', start);
    return json.substr(start, end - start);
}

const std::vector<DetectorCase>& detector_cases() {
    static const std::vector<DetectorCase> cases = [] {
        std::vector<DetectorCase> c;
        const std::string visa = luhn_complete("453914880343646");
        const std::string master = luhn_complete("542523343010990");
        const std::string amex = luhn_complete("34343434343434");
        const std::string sin = "130692544";
        const std::string aadhaar = "234567890124";
        const std::string iban_de = "DE44500105175407324931";

        c.push_back({"pii.credit_card",
                     {{"card " + grouped(visa, {4, 4, 4, 4}, " ") + " exp 12/27", grouped(visa, {4, 4, 4, 4}, " ")},
                      {"pan=" + grouped(master, {4, 4, 4, 4}, "-") + ";", grouped(master, {4, 4, 4, 4}, "-")},
                      {"amex " + grouped(amex, {4, 6, 5}, " "), grouped(amex, {4, 6, 5}, " ")},
                      {"cc:" + visa + ".", visa},
                      {"test card 4111 1111 1111 1111", "4111 1111 1111 1111", true}},
                     {"card " + grouped(luhn_break(visa), {4, 4, 4, 4}, " "),
                      "1234 5678 9012 3456",
                      "card " + grouped(visa.substr(0, 12), {4, 4, 4}, " ") + " only twelve",
                      "id 123e4567-e89b-12d3-a456-426614174000",
                      "ts=1700000000000 ms",
                      "commit 3f786850e387550fdab836ed7e6dc881de23001b",
                      "ref " + grouped(visa, {4, 4, 4, 4}, "-") + "-1234",
                      "FR76 9989 " + grouped(visa, {4, 4, 4, 4}, " ") + " 506",
                      "v" + visa}});
        c.push_back({"pii.us_ssn",
                     {{"SSN 536-22-8451 on file", "536-22-8451"},
                      {"ssn: 536228451", "536228451"},
                      {"applicant 536 22 8451", "536 22 8451"},
                      {"sample 078-05-1120", "078-05-1120", true}},
                     {"000-12-3456", "666-12-3456", "536-00-8451", "536-22-0000", "id 536228451", "1536-22-8451",
                      "536-22-84512", "536-22-8451-7"}});
        c.push_back({"pii.us_itin",
                     {{"ITIN 912-70-1234", "912-70-1234"},
                      {"itin: 900701234", "900701234"},
                      {"filer 999 88 7654.", "999 88 7654"}},
                     {"912-69-1234", "912-93-1234", "ref 912701234", "912-70-0000"}});
        c.push_back({"pii.ca_sin",
                     {{"SIN " + grouped(sin, {3, 3, 3}, " "), grouped(sin, {3, 3, 3}, " ")},
                      {"employee " + grouped("527438915", {3, 3, 3}, "-") + ",", grouped("527438915", {3, 3, 3}, "-")},
                      {"SIN: 987654324", "987654324"},
                      {"Canada's example 046 454 286", "046 454 286", true}},
                     {grouped("130692545", {3, 3, 3}, " "), grouped(luhn_complete("83069254"), {3, 3, 3}, " "),
                      "number " + sin, grouped(sin, {3, 3, 3}, "-") + "-123"}});
        c.push_back({"pii.in_aadhaar",
                     {{"Aadhaar " + grouped(aadhaar, {4, 4, 4}, " "), grouped(aadhaar, {4, 4, 4}, " ")},
                      {"uid " + grouped("498765432102", {4, 4, 4}, "-"), grouped("498765432102", {4, 4, 4}, "-")},
                      {"Aadhaar: 876543210988", "876543210988"}},
                     {grouped("234567890125", {4, 4, 4}, " "), grouped(verhoeff_complete("13456789012"), {4, 4, 4}, " "),
                      "number 234567890124", grouped(aadhaar + "1234", {4, 4, 4, 4}, " ") + " x",
                      "iban=BE67 " + grouped(aadhaar, {4, 4, 4}, " ")}});
        c.push_back({"pii.phone",
                     {{"call (415) 892-2671 today", "(415) 892-2671"},
                      {"tel +1 415 892 2671", "+1 415 892 2671"},
                      {"London +44 20 7123 4567.", "+44 20 7123 4567"},
                      {"Paris: +33 1 23 45 67 89", "+33 1 23 45 67 89"},
                      {"tel=+33 (0)1 16 34 87 14", "+33 (0)1 16 34 87 14"},
                      {"mobile +33 (0)6 12 34 56 78.", "+33 (0)6 12 34 56 78"},
                      {"toll free 1-800-275-2273", "1-800-275-2273"},
                      {"phone: 4158922671", "4158922671"},
                      {"fax 415.892.2671", "415.892.2671"},
                      {"fiction (415) 555-0123", "(415) 555-0123", true}},
                     {"on 2023-12-25", "at 12/25/2023 14:30", "415-892-26710", "123-456-7890", "ref 4158922671",
                      "v4.158.922.671", "(415) 892-267"}});
        c.push_back({"pii.iban",
                     {{"IBAN " + grouped(iban_de, {4, 4, 4, 4, 4, 2}, " "), grouped(iban_de, {4, 4, 4, 4, 4, 2}, " ")},
                      {"to GB29NWBK60161331926819.", "GB29NWBK60161331926819"},
                      {"FR76 3000 6000 0112 3456 7890 189 ok", "FR76 3000 6000 0112 3456 7890 189"},
                      {"NO9386011117947", "NO9386011117947"},
                      {"sample GB82 WEST 1234 5698 7654 32", "GB82 WEST 1234 5698 7654 32", true}},
                     {"DE44 5001 0517 5407 3249 32", "DE4450010517540732493", "XX44500105175407324931",
                      iban_de + "X", "Z" + iban_de, "SHA256 digest"}});
        c.push_back({"pii.uk_nino",
                     {{"NI JG103759A", "JG103759A"},
                      {"nino CE 12 34 56 B.", "CE 12 34 56 B"},
                      {"NINO: PX123456D", "PX123456D"},
                      {"e.g. AB123456C", "AB123456C", true}},
                     {"DA123456C", "GB123456A", "AB123456E", "AB1234567C", "XAB123456C", "AO123456C"}});
        c.push_back({"pii.ipv4",
                     {{"host=8.8.8.8,", "8.8.8.8"},
                      {"peer [192.168.1.20]", "192.168.1.20"},
                      {"listen 172.16.254.1:8080", "172.16.254.1"},
                      {"dst 100.64.12.7 ok", "100.64.12.7"},
                      {"from 203.0.113.5 port", "203.0.113.5", true}},
                     {"1.2.3.4.5", "version 1.2.3.4", "v1.2.3.4", "256.1.1.1", "01.02.03.04",
                      "[assembly: AssemblyVersion(\"2.7.29.89\")]", "FileVersion 6.7.90.126", "OID 2.5.29.17",
                      "Object Identifier: 2.5.4.3",
                      "// 22.2.1.1 Template class", "127.0.0.1", "pkg==1.2.3.4", "1.2.3.4-beta", "see [23.2.1.2]"}});
        c.push_back({"pii.ipv6",
                     {{"addr fe80::1ff:fe23:4567:890a up", "fe80::1ff:fe23:4567:890a"},
                      {"dns [2606:4700:4700::1111]:53", "2606:4700:4700::1111"},
                      {"mapped ::ffff:198.51.100.7", "::ffff:198.51.100.7"},
                      {"full 2a00:1450:4001:0829:0000:0000:0000:200e.", "2a00:1450:4001:0829:0000:0000:0000:200e"},
                      {"doc 2001:db8::1 ", "2001:db8::1", true},
                      {"listen [2001:4860:4860:0000:0000:0000:0000:8888]:53", "2001:4860:4860:0000:0000:0000:0000:8888"}},
                     {"std::string s;", "at 12:34:56", "mac 00:1a:2b:3c:4d:5e", "a::b::c", "1:2:3:4:5:6:7:8",
                      "Foo::Bar::baz()", "deadbeef0::1"}});
        c.push_back({"pii.email",
                     {{"mail alice@corp.io now", "alice@corp.io"},
                      {"<Bob.Smith+tag@mail.example-co.uk>", "Bob.Smith+tag@mail.example-co.uk"},
                      {"x=j_doe99@sub.domain.travel;", "j_doe99@sub.domain.travel"},
                      {"sample jane@example.com", "jane@example.com", true}},
                     {"user@localhost", "icon@2x.png", "git@github.com:org/repo.git", "@decorator.method",
                      "postgres://app@db.corp.io:5432/x", "amqp://guest:${PW}@mq.corp.io/",
                      "pg_dump@main.service", "a..b@x.com", "name@host"}});
        c.push_back({"pii.date_of_birth",
                     {{"DOB: 12/05/1980", "12/05/1980"},
                      {"Date of birth: March 12, 1980", "March 12, 1980"},
                      {"born on 1975-07-04", "1975-07-04"},
                      {"birthdate=31.12.1999", "31.12.1999"},
                      {"Date_of_Birth: 12th March 1980", "12th March 1980"},
                      {"DOB: 03-Sep-1977", "03-Sep-1977"},
                      {"born 05/Apr/1996.", "05/Apr/1996"}},
                     {"Adobe 12/05/1980", "created: 12/05/1980", "DOB: 13/13/1980", "dob: 12/05/1850",
                      "stubborn 12/05/1980", "birthplace: 12/05/1980"}});
        c.push_back({"pii.passport",
                     {{"Passport No: 123456789", "123456789"},
                      {"passport number C01X00T47", "C01X00T47"},
                      {"PASSPORT: A1234567", "A1234567"},
                      {"Reisepass-Nr: C01X00T47", "C01X00T47"},
                      {"passport_number=CP057T7YY", "CP057T7YY"},
                      {"Passport No: CZCXHMFZZ", "CZCXHMFZZ"}},
                     {"passport: required", "passport 12345", "passporting 123456789", "passport: AAAAAAAAA",
                      "Passport: PENDING", "passport number: VERIFIED",
                      "passport: 111111111"}});

        const std::string akia = cat({"AK", "IA", random_string(16, base32, 21)});
        const std::string asia = cat({"AS", "IA", random_string(16, base32, 22)});
        c.push_back({"secret.aws_access_key",
                     {{"key " + akia, akia},
                      {"\"AccessKeyId\": \"" + asia + "\"", asia},
                      {"id=" + akia + "\n", akia},
                      {"docs AKIAIOSFODNN7EXAMPLE", cat({"AKIA", "IOSFODNN7EXAMPLE"}), true}},
                     {cat({"AK", "IA", random_string(16, "abcdefghijklmnop", 23)}), cat({"AK", "IA", "1234567"}),
                      cat({"X", akia}), akia + "Q", cat({"AK", "IA", random_string(16, "0189", 24)})}});
        const std::string aws_secret = random_string(40, base64_chars, 25);
        c.push_back({"secret.aws_secret_key",
                     {{"aws_secret_access_key = " + aws_secret, aws_secret},
                      {"AWS_SECRET_ACCESS_KEY=" + aws_secret + "\n", aws_secret},
                      {"\"SecretAccessKey\": \"" + aws_secret + "\"", aws_secret},
                      {"./run --aws-secret-access-key=" + aws_secret, aws_secret},
                      {"$config['aws_secret_access_key'] = '" + aws_secret + "';", aws_secret},
                      {"aws_secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                       "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", true}},
                     {"value " + aws_secret, "aws_secret_access_key = " + aws_secret.substr(1),
                      "aws_secret_access_key = " + std::string(40, 'a'), "aws_secret_access_key = " + aws_secret + "b"}});
        const std::string ghp = cat({"gh", "p_", random_string(36, alnum, 26)});
        const std::string gho = cat({"gh", "o_", random_string(36, alnum, 27)});
        const std::string pat = cat({"github", "_pat_", random_string(22, alnum, 28), "_", random_string(59, alnum, 29)});
        c.push_back({"secret.github_token",
                     {{"GITHUB_TOKEN=" + ghp, ghp}, {"token " + gho + ".", gho}, {"auth: " + pat, pat}},
                     {cat({"gh", "p_", random_string(35, alnum, 30)}), cat({"gh", "p_", random_string(37, alnum, 31)}),
                      cat({"gh", "p_", std::string(36, 'x')}), cat({"x", ghp})}});
        const std::string glpat = cat({"gl", "pat-", random_string(20, alnum, 32)});
        const std::string gldt = cat({"gl", "dt-", random_string(20, alnum, 33)});
        c.push_back({"secret.gitlab_token",
                     {{"CI_TOKEN=" + glpat, glpat}, {"deploy " + gldt + ".", gldt}, {"'" + glpat + "'", glpat}},
                     {cat({"gl", "pat-", random_string(19, alnum, 34)}), cat({"x", glpat}),
                      cat({"gl", "pat-", std::string(20, 'a')})}});
        const std::string xoxb = cat({"xo", "xb-", "123456789012-1234567890123-", random_string(24, alnum, 35)});
        const std::string xoxp = cat({"xo", "xp-", "1234567890-1234567890-1234567890123-", random_string(32, hex_lower, 36)});
        const std::string xapp = cat({"xa", "pp-1-A0123456789-1234567890123-", random_string(64, hex_lower, 37)});
        c.push_back({"secret.slack_token",
                     {{"SLACK_BOT_TOKEN=" + xoxb, xoxb}, {"user " + xoxp, xoxp}, {"app " + xapp + ";", xapp}},
                     {cat({"xo", "xb-123"}), cat({"xo", "xz-123456789012-", random_string(24, alnum, 38)}),
                      cat({"xo", "xb-123456-short"}), cat({"xo", "xb-123456789012-1234567890123-", std::string(24, 'a')})}});
        const std::string hook =
            cat({"https://hooks.slack.com/", "services/T0ABCDEFG/B0ABCDEFG/", random_string(24, alnum, 39)});
        const std::string workflow = cat({"https://hooks.slack.com/", "workflows/T0ABCDEFG/A0ABCDEFG/123456789012/",
                                          random_string(24, alnum, 40)});
        c.push_back({"secret.slack_webhook",
                     {{"url: " + hook, hook}, {"\"" + workflow + "\"", workflow}, {"post " + hook + "/ now", hook}},
                     {"https://hooks.slack.com/services/T0ABCDEFG/B0ABCDEFG/", "https://hooks.slack.com/",
                      cat({"https://hooks.slack.com/", "services/T0ABCDEFG/B0ABCDEFG/", "short"}),
                      "https://hooks.slack.com/services/T0ABCDEFG"}});
        const std::string sk_live = cat({"sk", "_live_", random_string(24, alnum, 41)});
        const std::string rk_live = cat({"rk", "_live_", random_string(30, alnum, 42)});
        c.push_back({"secret.stripe_key",
                     {{"STRIPE_KEY=" + sk_live, sk_live},
                      {"restricted " + rk_live, rk_live},
                      {"key: " + sk_live + "\n", sk_live},
                      {"docs " + cat({"sk", "_test_", "4eC39HqLyjWDarjtT1zdp7dc"}), cat({"sk", "_test_", "4eC39HqLyjWDarjtT1zdp7dc"}),
                       true}},
                     {cat({"sk", "_live_", random_string(19, alnum, 43)}), cat({"pk", "_live_", random_string(24, alnum, 44)}),
                      cat({"sk", "_live_", std::string(24, '0')}), cat({"x", sk_live})}});
        const std::string aiza = cat({"AI", "za", random_string(35, base64url_chars, 45)});
        c.push_back({"secret.google_api_key",
                     {{"key=" + aiza + "&", aiza}, {"\"apiKey\": \"" + aiza + "\"", aiza}, {"maps " + aiza, aiza}},
                     {cat({"AI", "za", random_string(34, alnum, 46)}) + " ", cat({"AI", "za", random_string(36, alnum, 47)}),
                      cat({"x", aiza})}});
        const std::string gcp = gcp_json(true);
        c.push_back({"secret.gcp_service_account",
                     {{gcp, gcp_private_key_value(gcp)},
                      {"creds = " + gcp + "\n", gcp_private_key_value(gcp)},
                      {"{\n  \"type\" : \"service_account\",\n  \"private_key\" : \"" +
                           pem_block("PRIVATE KEY", random_bytes(200, 48), "\\n") + "\"\n}",
                       pem_block("PRIVATE KEY", random_bytes(200, 48), "\\n")}},
                     {gcp_json(false), R"({"type": "authorized_user", "private_key": "x"})",
                      R"({"type": "service_account", "private_key": "not a key"})"}});
        const std::string openai_legacy = cat({"sk-", random_string(20, alnum, 49), "T3Blbk", "FJ", random_string(20, alnum, 50)});
        const std::string openai_proj = cat({"sk-", "proj-", random_string(74, base64url_chars, 51), "T3Blbk", "FJ",
                                             random_string(74, base64url_chars, 52)});
        const std::string openai_svc = cat({"sk-", "svcacct-", random_string(60, base64url_chars, 53)});
        c.push_back({"secret.openai_key",
                     {{"OPENAI_API_KEY=" + openai_legacy, openai_legacy},
                      {"\"" + openai_proj + "\"", openai_proj},
                      {"key " + openai_svc + " ", openai_svc}},
                     {cat({"sk-", random_string(48, alnum, 54)}), cat({"a", openai_legacy}),
                      cat({"sk-", "proj-", random_string(20, alnum, 55)})}});
        const std::string ant = cat({"sk-", "ant-api03-", random_string(93, base64url_chars, 56), "AA"});
        const std::string ant_admin = cat({"sk-", "ant-admin01-", random_string(93, base64url_chars, 57), "AA"});
        c.push_back({"secret.anthropic_key",
                     {{"ANTHROPIC_API_KEY=" + ant, ant}, {"x-api-key: " + ant_admin, ant_admin}, {"'" + ant + "'", ant}},
                     {cat({"sk-", "ant-api03-", random_string(20, alnum, 58)}), cat({"sk-", "ant-xyz"}),
                      cat({"sk-", "ant-api03-", std::string(95, 'A')})}});
        const std::string npm = cat({"np", "m_", random_string(36, alnum, 59)});
        c.push_back({"secret.npm_token",
                     {{"//registry.npmjs.org/:_authToken=" + npm, npm}, {"NPM_TOKEN=" + npm + "\n", npm}, {"(" + npm + ")", npm}},
                     {cat({"np", "m_", random_string(35, alnum, 60)}) + " ", cat({"np", "m_", std::string(36, 'a')}),
                      "npm_install_dependencies_from_the_lockfile"}});
        const std::string pypi = cat({"py", "pi-AgEIcHlwaS5vcmc", random_string(150, base64url_chars, 61)});
        const std::string test_pypi = cat({"py", "pi-AgENdGVzdC5weXBpLm9yZw", random_string(120, base64url_chars, 62)});
        c.push_back({"secret.pypi_token",
                     {{"password = " + pypi, pypi}, {"TWINE_PASSWORD=" + test_pypi, test_pypi}, {"'" + pypi + "'", pypi}},
                     {cat({"py", "pi-AgEIcHlwaS5vcmc", random_string(10, alnum, 63)}), "pypi-AgE", "pypi-project-name"}});
        const std::string twilio = cat({"S", "K", random_string(32, hex_lower, 64)});
        c.push_back({"secret.twilio_key",
                     {{"TWILIO_API_KEY=" + twilio, twilio}, {"sid " + twilio + ".", twilio}, {"\"" + twilio + "\"", twilio}},
                     {cat({"S", "K", random_string(31, hex_lower, 65)}) + " ",
                      cat({"S", "K", random_string(32, "0123456789ABCDEF", 66)}), cat({"A", twilio})}});
        const std::string sendgrid =
            cat({"S", "G.", random_string(22, base64url_chars, 67), ".", random_string(43, base64url_chars, 68)});
        c.push_back({"secret.sendgrid_key",
                     {{"SENDGRID_API_KEY=" + sendgrid, sendgrid}, {"'" + sendgrid + "'", sendgrid}, {"key " + sendgrid + "\n", sendgrid}},
                     {cat({"S", "G.", random_string(21, alnum, 69), ".", random_string(43, alnum, 70)}),
                      cat({"S", "G.", random_string(22, alnum, 71), ".", random_string(42, alnum, 72)}) + " ",
                      "SG.example"}});
        const std::string rsa = pem_block("RSA PRIVATE KEY", random_bytes(900, 73));
        const std::string ec = pem_block("EC PRIVATE KEY", random_bytes(120, 74));
        const std::string ssh = openssh_key();
        const std::string pgp = pgp_key();
        const std::string truncated_rsa = "-----BEGIN RSA PRIVATE KEY-----\n" + base64(random_bytes(300, 77));
        std::string truncated_rsa_lines = pem_block("RSA PRIVATE KEY", random_bytes(600, 78));
        truncated_rsa_lines.resize(truncated_rsa_lines.find('\n', 200));
        std::string mismatched = pem_block("RSA PRIVATE KEY", random_bytes(300, 75));
        mismatched.replace(mismatched.rfind("RSA "), 4, "DSA ");
        c.push_back({"secret.private_key",
                     {{"key:\n" + rsa + "\n", rsa}, {ec, ec}, {"id_ed25519:\n" + ssh, ssh}, {pgp + "\n", pgp},
                      // Cut off before its END line: most of a key is still a secret.
                      {truncated_rsa, truncated_rsa},
                      {truncated_rsa_lines + "\n\nsent from my phone", truncated_rsa_lines}},
                     {pem_block("PUBLIC KEY", random_bytes(300, 76)),
                      "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----", mismatched,
                      "if (line == \"-----BEGIN RSA PRIVATE KEY-----\") {\n    in_key = true;\n}",
                      "-----BEGIN RSA PRIVATE KEY-----\n" + base64(random_bytes(30, 77)) + "\n",
                      "-----BEGIN RSA PRIVATE KEY-----\n<paste the key here>\n"}});
        const std::string jwt = jwt_token(R"({"alg":"HS256","typ":"JWT"})", R"({"sub":"1234567890","name":"Jane"})");
        const std::string unsigned_jwt = jwt_token(R"({"alg":"none"})", R"({"sub":"42"})", false);
        const std::string jwt_io = cat({"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", ".",
                                        "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ", ".",
                                        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"});
        c.push_back({"secret.jwt",
                     {{"Authorization: Bearer " + jwt, jwt}, {"t=" + unsigned_jwt + " ", unsigned_jwt}, {"jwt.io " + jwt_io, jwt_io, true}},
                     {jwt_token(R"({"typ":"JWT","kid":"1"})", R"({"sub":"42"})"),
                      "eyJ" + random_string(60, alnum, 78), cat({"x", jwt}),
                      base64url(R"({"alg":"HS256","typ":"JWT"})") + ".eyJzdWIiOiI0MiJ9"}});
        c.push_back({"secret.db_url_password",
                     {{"DATABASE_URL=postgres://app:S3cr3tPa55@db.internal:5432/x", "S3cr3tPa55"},
                      {"mongodb+srv://u:pw_9d8f7@cluster0.mongodb.net/db", "pw_9d8f7"},
                      {"redis://:hunter2x@cache:6379/0", "hunter2x"},
                      {"see https://user:pass@sub.example.com:8080/p", "pass", true}},
                     {"postgres://app@db.internal/x", "https://user:${DB_PASS}@host/x", "https://a:b@example.org/",
                      "https://example.com/a:b@c", "ftp://anonymous@ftp.gnu.org", "ssh://git@github.com:22/x"}});
        c.push_back({"secret.generic_password",
                     {{"password = \"Tr0ub4dor&3xyz\"", "Tr0ub4dor&3xyz"},
                      {"api_key: 8f14e45fceea167a5a36dedd4bea2543", "8f14e45fceea167a5a36dedd4bea2543"},
                      {"SECRET_KEY=9a8b7c6d5e4f3a2b1c0dZZ\n", "9a8b7c6d5e4f3a2b1c0dZZ"},
                      {"\"client_secret\": \"Zx9-Qw8_Er7.Ty6\"", "Zx9-Qw8_Er7.Ty6"},
                      {"db_password = 'orbit harbor tundra meadow'", "orbit harbor tundra meadow"},
                      {"$config['password'] = 'Zq9rd6lIq!AOO';", "Zq9rd6lIq!AOO"},
                      {"<dbPassword>Es?LKM+fk7z9</dbPassword>", "Es?LKM+fk7z9"},
                      {"<add key=\"mysqlRootPassword\" value=\"vnoq22dyd3D%#76Q\" />", "vnoq22dyd3D%#76Q"},
                      {"- name: DB_PASSWORD\n  value: \"S~1L#RC1nDKlVC\"", "S~1L#RC1nDKlVC"},
                      {"mysql --user=admin --password Qx8!pLm2Zr shop", "Qx8!pLm2Zr"}},
                     {"password = get_password()", "if (token == other_token)", "AsmToken::TokenKind kind",
                      "password = 'Enter your password here'", "passphrase: \"used to unlock the vault\"",
                      "api_key = 'orbit harbor tundra meadow'", "password = orbit harbor tundra meadow",
                      "- name: DB_PASSWORD\n  valueFrom:\n    secretKeyRef: {name: db}", "<password></password>",
                      "use --password to set it", "--password-file /run/secrets/db_password_2024",
                      "password: ${DB_PASSWORD}", "token: string", "password = 'Password used to generate key'",
                      "max_tokens = 4096", "secret_name = config.secret.name", "password: Non-zero"}});
        const std::string hf = cat({"h", "f_", random_string(34, letters, 79)});
        c.push_back({"secret.huggingface_token",
                     {{"HF_TOKEN=" + hf, hf}, {"'" + hf + "'", hf}, {"token " + hf + "\n", hf}},
                     {cat({"h", "f_", random_string(33, letters, 80)}) + " ", cat({"h", "f_", std::string(34, 'a')}),
                      cat({"x", hf})}});
        const std::string dop = cat({"do", "p_v1_", random_string(64, hex_lower, 81)});
        c.push_back({"secret.digitalocean_token",
                     {{"DO_TOKEN=" + dop, dop}, {"'" + dop + "'", dop}, {"token " + dop + "\n", dop}},
                     {cat({"do", "p_v1_", random_string(63, hex_lower, 82)}) + " ", cat({"x", dop}),
                      cat({"do", "p_v1_", random_string(64, "0123456789ABCDEF", 83)})}});
        const std::string account_key = base64(random_bytes(64, 84));
        c.push_back({"secret.azure_storage_key",
                     {{"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + account_key + ";EndpointSuffix=core.windows.net",
                       account_key},
                      {"accountkey=" + account_key, account_key},
                      {"\"AccountKey=" + account_key + "\"", account_key}},
                     {"AccountKey=" + account_key.substr(1), "AccountKey=" + account_key.substr(0, 86) + "AA",
                      "AccountKey=" + account_key + "x"}});
        return c;
    }();
    return cases;
}

class InspectDetector : public testing::TestWithParam<std::size_t> {};

TEST_P(InspectDetector, FindsPositivesAndIgnoresHardNegatives) {
    const DetectorCase& c = detector_cases()[GetParam()];
    ASSERT_NE(find_detector(c.id), nullptr) << c.id;
    EXPECT_GE(c.positives.size(), 3u) << c.id;
    EXPECT_GE(c.negatives.size(), 3u) << c.id;
    for (const Positive& p : c.positives) {
        const std::size_t offset = p.text.find(p.value);
        ASSERT_NE(offset, std::string::npos) << p.value;
        const ScanResult result = scan(p.text);
        const auto found = of_type(result, c.id);
        const auto exact = std::find_if(found.begin(), found.end(), [&](const Finding& f) {
            return f.offset == offset && f.length == p.value.size();
        });
        ASSERT_NE(exact, found.end()) << c.id << " in '" << p.text << "': " << describe(result, p.text);
        EXPECT_EQ(exact->test_value, p.test_value) << p.text;
        EXPECT_GT(exact->confidence, 0.0F);
        EXPECT_LE(exact->confidence, 1.0F);
        EXPECT_EQ(exact->severity, find_detector(c.id)->severity);
        EXPECT_EQ(exact->line, 1u + static_cast<std::uint64_t>(std::count(p.text.begin(), p.text.begin() + offset, '\n')));
    }
    for (const std::string& negative : c.negatives) {
        const ScanResult result = scan(negative);
        EXPECT_TRUE(of_type(result, c.id).empty()) << c.id << " in '" << negative << "': " << describe(result, negative);
    }
}

INSTANTIATE_TEST_SUITE_P(Catalogue, InspectDetector, testing::Range<std::size_t>(0, detector_cases().size()),
                         [](const testing::TestParamInfo<std::size_t>& param_info) {
                             std::string name = detector_cases()[param_info.param].id;
                             std::replace(name.begin(), name.end(), '.', '_');
                             return name;
                         });

TEST(InspectCatalogue, HasTheIssuesIdsAndACaseForEveryDetector) {
    for (std::string_view id :
         {"pii.email", "pii.phone", "pii.us_ssn", "pii.credit_card", "pii.iban", "pii.ipv4", "pii.ipv6", "pii.us_itin",
          "pii.uk_nino", "pii.ca_sin", "pii.in_aadhaar", "pii.date_of_birth", "pii.passport", "secret.aws_access_key",
          "secret.aws_secret_key", "secret.github_token", "secret.gitlab_token", "secret.slack_token",
          "secret.slack_webhook", "secret.stripe_key", "secret.google_api_key", "secret.gcp_service_account",
          "secret.openai_key", "secret.anthropic_key", "secret.npm_token", "secret.pypi_token", "secret.twilio_key",
          "secret.sendgrid_key", "secret.private_key", "secret.jwt", "secret.db_url_password",
          "secret.generic_password"}) {
        EXPECT_NE(find_detector(id), nullptr) << id;
    }
    std::set<std::string_view> ids;
    for (const Detector& d : all_detectors()) {
        EXPECT_TRUE(ids.insert(d.id).second) << "duplicate id " << d.id;
        EXPECT_TRUE(std::any_of(detector_cases().begin(), detector_cases().end(),
                                [&](const DetectorCase& c) { return c.id == d.id; }))
            << "no test case for " << d.id;
        EXPECT_EQ(d.category, d.id.starts_with("pii.") ? Category::pii : Category::secret) << d.id;
        if (d.engine == Engine::vectorscan) {
            EXPECT_FALSE(d.heads.empty()) << d.id;
            EXPECT_NE(d.locate, nullptr) << d.id;
        }
    }
}

// The literal a detector declares as its prefilter is in every text it finds.
TEST(InspectCatalogue, LiteralPrefilterIsInEveryPositive) {
    auto lowered = [](std::string_view text) {
        std::string out(text);
        for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        return out;
    };
    for (const DetectorCase& c : detector_cases()) {
        const std::string literal = lowered(find_detector(c.id)->literal);
        for (const Positive& p : c.positives) {
            EXPECT_NE(lowered(p.text).find(literal), std::string::npos) << c.id << ": " << p.text;
        }
    }
}

TEST(InspectDetectors, OverlapsKeepTheMoreSpecificFinding) {
    const std::string ghp = cat({"gh", "p_", random_string(36, alnum, 90)});
    const ScanResult token = scan("token = " + ghp);
    ASSERT_EQ(token.findings.size(), 1u) << describe(token, "token = " + ghp);
    EXPECT_EQ(token.findings[0].type, "secret.github_token");

    // The digits inside an IBAN are not also reported as an Aadhaar or card.
    const std::string iban = "IBAN DE44 5001 0517 5407 3249 31";
    const ScanResult result = scan(iban);
    ASSERT_EQ(result.findings.size(), 1u) << describe(result, iban);
    EXPECT_EQ(result.findings[0].type, "pii.iban");

    // A URL password beats the "email" its password@host would otherwise form.
    const std::string url = "postgres://app:S3cr3tPa55@db.example-corp.com/x";
    const ScanResult db = scan(url);
    ASSERT_EQ(db.findings.size(), 1u) << describe(db, url);
    EXPECT_EQ(db.findings[0].type, "secret.db_url_password");
}

// Each account's key is its own: a key further down the file belongs to
// the next object, not to the "type" before it.
TEST(InspectDetectors, ServiceAccountKeysAreTakenFromTheirOwnObject) {
    auto account = [](unsigned seed) {
        return cat({R"({"type": "service_account", "private_key_id": "k", "private_key": ")",
                    pem_block("PRIVATE KEY", random_bytes(300, seed), "\\n"), R"(", "client_id": "1"})"});
    };
    const std::string first = account(90), second = account(91);
    const std::string text = "[" + first + ",\n" + second + "]";
    const auto found = of_type(scan(text), "secret.gcp_service_account");
    ASSERT_EQ(found.size(), 2U) << describe(scan(text), text);
    EXPECT_EQ(found[0].offset, text.find("-----BEGIN"));
    EXPECT_EQ(found[1].offset, text.find("-----BEGIN", text.find(second)));
}

TEST(InspectDetectors, FindingsAreOrderedWithLines) {
    const std::string text = "line one\nSSN 536-22-8451\n\nmail bob@corp.io and 8.8.8.8\n";
    const ScanResult result = scan(text);
    ASSERT_EQ(result.findings.size(), 3u) << describe(result, text);
    EXPECT_EQ(result.findings[0].line, 2u);
    EXPECT_EQ(result.findings[1].line, 4u);
    EXPECT_EQ(result.findings[2].line, 4u);
    EXPECT_LT(result.findings[1].offset, result.findings[2].offset);
}

// Fields of a CSV row touch each other through commas only.
TEST(InspectDetectors, CsvFields) {
    const std::string row =
        "7,Jane Roe,jane.roe@corp.io,(415) 892-2671,536-22-8451,4539148803436467,8.8.4.4,DOB 7/19/1965,"
        "GB29NWBK60161331926819,2001:4860:4860::8888\n";
    const ScanResult one = scan(row);
    std::set<std::string_view> types;
    for (const Finding& f : one.findings) types.insert(f.type);
    EXPECT_EQ(types, (std::set<std::string_view>{"pii.email", "pii.phone", "pii.us_ssn", "pii.credit_card", "pii.ipv4",
                                                  "pii.date_of_birth", "pii.iban", "pii.ipv6"}))
        << describe(one, row);
    const ScanResult two = scan(row + row);
    ASSERT_EQ(two.findings.size(), 2 * one.findings.size()) << describe(two, row + row);
    for (std::size_t i = 0; i < one.findings.size(); ++i) {
        const Finding& again = two.findings[one.findings.size() + i];
        EXPECT_EQ(again.offset, one.findings[i].offset + row.size());
        EXPECT_EQ(again.length, one.findings[i].length);
        EXPECT_EQ(again.line, 2u);
    }
}

// Every SIMD level finds the same things (the scalar classifier is the reference).
TEST(InspectDetectors, SimdLevelsAgree) {
    std::string text;
    for (const DetectorCase& c : detector_cases()) {
        for (const Positive& p : c.positives) text += p.text + "\n";
        for (const std::string& n : c.negatives) text += n + "\n";
    }
    text += random_string(100000, "0123456789 .-:+()ABCDEFabcdef@\n", 91);
    std::vector<std::string> outcomes;
    for (SimdLevel level : {SimdLevel::scalar, SimdLevel::sse2, SimdLevel::avx2, SimdLevel::avx512}) {
        FastPath::force_simd_level(level);
        outcomes.push_back(describe(scan(text), text));
    }
    FastPath::force_simd_level(SimdLevel::best);
    EXPECT_EQ(outcomes[0], outcomes[1]);
    EXPECT_EQ(outcomes[0], outcomes[2]);
    EXPECT_EQ(outcomes[0], outcomes[3]);
}

// --- Streaming ------------------------------------------------------------------------

// A value split at every possible offset across two chunks is found exactly
// once, with the same span as in one buffer.
TEST(InspectStream, ValueSplitAtEveryOffsetIsFoundOnce) {
    const Scanner& scanner = shared_scanner();
    for (const DetectorCase& c : detector_cases()) {
        for (const Positive& p : c.positives) {
            const std::string text = "begin " + p.text + " end";
            const std::size_t offset = text.find(p.value);
            for (std::size_t split = 0; split <= text.size(); ++split) {
                const ScanResult result = scan_stream(
                    scanner, {std::string_view(text).substr(0, split), std::string_view(text).substr(split)});
                const auto found = of_type(result, c.id);
                ASSERT_EQ(found.size(), 1u) << c.id << " split at " << split << ": " << describe(result, text);
                EXPECT_EQ(found[0].offset, offset) << c.id << " split at " << split;
                EXPECT_EQ(found[0].length, p.value.size()) << c.id << " split at " << split;
            }
        }
    }
}

TEST(InspectStream, ByteByByteEqualsOneBuffer) {
    std::string text;
    for (const DetectorCase& c : detector_cases()) {
        for (const Positive& p : c.positives) text += p.text + "\n";
    }
    const ScanResult whole = scan(text);
    std::vector<std::string_view> bytes;
    for (std::size_t i = 0; i < text.size(); ++i) bytes.push_back(std::string_view(text).substr(i, 1));
    const ScanResult streamed = scan_stream(shared_scanner(), bytes);
    EXPECT_EQ(describe(whole, text), describe(streamed, text));
    ASSERT_EQ(whole.findings.size(), streamed.findings.size());
    for (std::size_t i = 0; i < whole.findings.size(); ++i) {
        EXPECT_EQ(whole.findings[i].line, streamed.findings[i].line);
        EXPECT_EQ(whole.findings[i].preview, streamed.findings[i].preview);
        EXPECT_EQ(whole.findings[i].keyed_hash.hex(), streamed.findings[i].keyed_hash.hex());
    }
    EXPECT_EQ(streamed.bytes_scanned, text.size());
}

// Findings taken from a stream after every feed (take_findings), then the
// rest from finish(), are exactly those of one block scan, in order; and
// what the stream still holds after a take stays small however many
// findings the input has.
TEST(InspectStream, TakingFindingsAsTheyGoEqualsOneBuffer) {
    std::string text;
    for (int round = 0; round < 40; ++round) {
        for (const DetectorCase& c : detector_cases()) {
            for (const Positive& p : c.positives) text += p.text + "\n";
        }
    }
    const ScanResult whole = scan(text);
    for (std::size_t chunk : {std::size_t{1} << 20, std::size_t{4096}, std::size_t{61}}) {
        auto session = shared_scanner().new_session();
        ASSERT_TRUE(session);
        auto stream = session->open_stream();
        ASSERT_TRUE(stream);
        ScanResult taken;
        std::size_t takes_with_findings = 0;
        for (std::size_t pos = 0; pos < text.size(); pos += chunk) {
            ASSERT_TRUE(stream->feed(std::string_view(text).substr(pos, chunk)));
            const std::size_t before = taken.findings.size();
            stream->take_findings(taken.findings);
            takes_with_findings += taken.findings.size() > before ? 1 : 0;
        }
        auto rest = stream->finish();
        ASSERT_TRUE(rest);
        const std::size_t held_to_the_end = rest->findings.size();
        for (Finding& f : rest->findings) taken.findings.push_back(std::move(f));
        EXPECT_EQ(describe(whole, text), describe(taken, text)) << chunk;
        ASSERT_EQ(whole.findings.size(), taken.findings.size()) << chunk;
        for (std::size_t i = 0; i < whole.findings.size(); ++i) {
            EXPECT_EQ(whole.findings[i].line, taken.findings[i].line);
            EXPECT_EQ(whole.findings[i].preview, taken.findings[i].preview);
            EXPECT_EQ(whole.findings[i].keyed_hash, taken.findings[i].keyed_hash);
        }
        if (chunk < text.size()) {
            EXPECT_GT(takes_with_findings, 1u) << chunk;
            EXPECT_LT(held_to_the_end, whole.findings.size() / 4) << chunk;
        }
    }
}

// Large inputs: offsets and lines stay exact far from the start, in chunks
// larger and smaller than the internal piece size.
TEST(InspectStream, LargeInputWithSparseFindings) {
    std::string text;
    std::vector<std::uint64_t> expected_offsets;
    const std::string filler = "the quick brown fox jumps over the lazy dog 0123 42\n";
    for (int block = 0; block < 40; ++block) {
        for (int i = 0; i < 2000; ++i) text += filler;
        expected_offsets.push_back(text.size() + 4);
        text += "SSN 536-22-8451\n";
    }
    const ScanResult whole = scan(text);
    ASSERT_EQ(whole.findings.size(), expected_offsets.size());
    for (std::size_t chunk : {std::size_t{4093}, std::size_t{3} << 20}) {
        std::vector<std::string_view> chunks;
        for (std::size_t pos = 0; pos < text.size(); pos += chunk) chunks.push_back(std::string_view(text).substr(pos, chunk));
        const ScanResult streamed = scan_stream(shared_scanner(), chunks);
        ASSERT_EQ(streamed.findings.size(), expected_offsets.size()) << chunk;
        for (std::size_t i = 0; i < expected_offsets.size(); ++i) {
            EXPECT_EQ(streamed.findings[i].offset, expected_offsets[i]);
            EXPECT_EQ(streamed.findings[i].line, whole.findings[i].line);
        }
    }
}

// The tail a stream keeps does not grow with the input, whatever detectors
// run and however large the chunks are.
TEST(InspectStream, BufferStaysBounded) {
    std::string block;
    for (const DetectorCase& c : detector_cases()) {
        for (const Positive& p : c.positives) block += p.text + "\n";
    }
    for (std::vector<std::string> types : {std::vector<std::string>{}, {"secret.*"}, {"pii.*"}, {"secret.private_key"}}) {
        Options options;
        options.types = types;
        options.max_findings = std::size_t{1} << 20;
        auto scanner = Scanner::create(options);
        ASSERT_TRUE(scanner);
        auto session = scanner->new_session();
        ASSERT_TRUE(session);
        auto stream = session->open_stream();
        ASSERT_TRUE(stream);
        std::size_t largest = 0;
        for (int i = 0; i < 400; ++i) {
            ASSERT_TRUE(stream->feed(block));
            largest = std::max(largest, stream->buffered_bytes());
        }
        const std::string big(std::size_t{5} << 20, 'x');
        ASSERT_TRUE(stream->feed(big));
        largest = std::max(largest, stream->buffered_bytes());
        EXPECT_LE(largest, std::size_t{128} << 10) << (types.empty() ? "all" : types.front());
        auto result = stream->finish();
        ASSERT_TRUE(result);
        EXPECT_GT(result->findings.size(), 0u);
    }
}

TEST(InspectStream, EmptyInputs) {
    EXPECT_TRUE(scan("").findings.empty());
    const ScanResult nothing = scan_stream(shared_scanner(), {});
    EXPECT_TRUE(nothing.findings.empty());
    EXPECT_EQ(nothing.bytes_scanned, 0u);
    EXPECT_TRUE(scan_stream(shared_scanner(), {"", "", ""}).findings.empty());
}

TEST(InspectStream, FinishTwiceAndFeedAfterFinishFail) {
    auto session = shared_scanner().new_session();
    ASSERT_TRUE(session);
    auto stream = session->open_stream();
    ASSERT_TRUE(stream);
    ASSERT_TRUE(stream->feed("hello"));
    ASSERT_TRUE(stream->finish());
    EXPECT_FALSE(stream->finish());
    EXPECT_FALSE(stream->feed("more"));
}

// Inputs built to make locators re-read the same bytes (a head every few
// bytes, each with a long search) still scan in linear time. Time is compared
// between two sizes in the same run rather than against a wall-clock bound, so
// a slow or loaded machine (or a -O0 sanitizer build) cannot fail it while
// quadratic work (64x the time for 8x the bytes) still does.
TEST(InspectScan, AdversarialInputsStayLinear) {
    auto repeat = [](std::string_view unit, std::size_t bytes) {
        std::string out;
        while (out.size() < bytes) out += unit;
        return out;
    };
    auto fastest_scan_seconds = [](const std::string& input) {
        double best = 1e9;
        for (int run = 0; run < 3; ++run) {
            const auto start = std::chrono::steady_clock::now();
            const ScanResult result = scan(input);
            best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
            EXPECT_EQ(result.bytes_scanned, input.size());
        }
        return best;
    };
    constexpr std::size_t small = std::size_t{32} << 10;
    constexpr std::size_t factor = 8;
    const std::vector<std::string_view> units = {
        "-----BEGIN RSA PRIVATE KEY-----\n",
        R"({"type": "service_account", )",
        "password=password=",
        "a@",
        "1111 ",
        "1.1.",
        "::",
        "AB12",
        "eyJhbGciOiJIUzI1NiJ9.eyJ",
        "postgres://",
        "DOB: ",
    };
    for (std::string_view unit : units) {
        const double small_seconds = fastest_scan_seconds(repeat(unit, small));
        const double large_seconds = fastest_scan_seconds(repeat(unit, small * factor));
        // Floor the small time at 1 ms so timer noise on a tiny scan cannot
        // inflate the ratio; linear is ~8, quadratic ~64 (the bound, 32,
        // leaves room for a loaded machine slowing one of the two runs).
        EXPECT_LT(large_seconds / std::max(small_seconds, 1e-3), 4.0 * factor)
            << unit << ": " << small_seconds << " s for " << small << " bytes, " << large_seconds << " s for "
            << small * factor;
    }
}

// --- Masking -----------------------------------------------------------------------------

std::size_t longest_common_substring(std::string_view a, std::string_view b) {
    std::size_t best = 0;
    std::vector<std::size_t> previous(b.size() + 1, 0);
    std::vector<std::size_t> current(b.size() + 1, 0);
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            current[j] = a[i - 1] == b[j - 1] ? previous[j - 1] + 1 : 0;
            best = std::max(best, current[j]);
        }
        std::swap(previous, current);
    }
    return best;
}

TEST(InspectMasking, PreviewsNeverHoldTheRawValue) {
    for (const DetectorCase& c : detector_cases()) {
        const Detector& detector = *find_detector(c.id);
        for (const Positive& p : c.positives) {
            const ScanResult result = scan(p.text);
            for (const Finding& f : of_type(result, c.id)) {
                const std::string raw = p.text.substr(f.offset, f.length);
                EXPECT_EQ(f.preview.view().find(raw), std::string::npos) << c.id << ": " << f.preview.view();
                if (detector.category == Category::secret && detector.mask != MaskStyle::key_block) {
                    EXPECT_LE(longest_common_substring(f.preview.str(), raw), 4u) << c.id << ": " << f.preview.view();
                }
                if (detector.mask == MaskStyle::key_block) {
                    EXPECT_EQ(f.preview.view().find("MII"), std::string::npos);
                    EXPECT_LE(f.preview.size(), 40u);
                }
            }
        }
    }
    EXPECT_EQ(masked_preview("pii.us_ssn", "536-22-8451"), "***-**-8451");
    EXPECT_EQ(masked_preview("pii.credit_card", "4539 1488 0343 6467"), "4539********6467");
    EXPECT_EQ(masked_preview("pii.phone", "(415) 892-2671"), "(***) ***-2671");
    EXPECT_EQ(masked_preview("secret.github_token", cat({"gh", "p_", random_string(36, alnum, 92)})), "ghp_****");
    EXPECT_EQ(masked_preview("secret.generic_password", "Tr0ub4dor&3xyz"), "****");
    EXPECT_EQ(masked_preview("pii.email", "alice@corp.io"), "a***@***.io");
    EXPECT_EQ(masked_preview("pii.ipv4", "192.168.1.20"), "192.*.*.*");
    EXPECT_EQ(masked_preview("pii.iban", "DE44 5001 0517 5407 3249 31"), "DE****************4931");
    EXPECT_EQ(masked_preview("no.such.type", "secret"), "****");
}

TEST(InspectMasking, KeyedHashIsHmacOfTheNormalizedValue) {
    const ScanResult result = scan("ssn 536-22-8451");
    ASSERT_EQ(result.findings.size(), 1u);
    EXPECT_EQ(result.findings[0].keyed_hash.hex(), hmac_hex(hash_key, "536228451"));
    // Reference value computed independently (Python hmac).
    EXPECT_EQ(result.findings[0].keyed_hash.hex(), "33831742ea903d4ce862865b6ee7e4dc9a29e05fe52842fda6f0a61e5f5a26cf");
    // The same number written differently is the same value.
    EXPECT_EQ(scan("SSN: 536 22 8451").findings.at(0).keyed_hash, result.findings[0].keyed_hash);
    // A key longer than SHA-256's block is hashed first (RFC 2104).
    Options long_key;
    long_key.hash_key = std::string(100, 'k');
    auto scanner = Scanner::create(long_key);
    ASSERT_TRUE(scanner);
    EXPECT_EQ(scan_with(*scanner, "ssn 536-22-8451").findings.at(0).keyed_hash.hex(),
              hmac_hex(long_key.hash_key, "536228451"));
    // No key, no hash.
    auto unkeyed = Scanner::create(Options{});
    ASSERT_TRUE(unkeyed);
    EXPECT_TRUE(scan_with(*unkeyed, "ssn 536-22-8451").findings.at(0).keyed_hash.empty());
}

// Keyed hashes of short values are computed two at a time with the SHA
// extensions (a lone one at the end alone, long ones through OpenSSL): every
// one must still be the HMAC of its value, whatever its length or position.
TEST(InspectMasking, KeyedHashesOfManyValuesOfEveryLength) {
    std::string text;
    for (std::size_t length = 1; length <= 64; ++length) {
        text += "to " + random_string(length, "abcdefghijklmnopqrstuvwxyz0123456789", static_cast<unsigned>(length)) + "@mailhost.io\n";
    }
    for (std::size_t count : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{64}}) {
        std::string part;
        for (std::size_t k = 0, lines = 0; k < text.size() && lines < count; ++k) {
            part.push_back(text[k]);
            lines += text[k] == '\n';
        }
        const ScanResult result = scan(part);
        ASSERT_EQ(result.findings.size(), count);
        for (const Finding& f : result.findings) {
            EXPECT_EQ(f.keyed_hash.hex(), hmac_hex(hash_key, part.substr(f.offset, f.length))) << f.length;
        }
    }
}

TEST(InspectMasking, RedactPreservesFormatsAndTagsTheRest) {
    const std::string ghp = cat({"gh", "p_", random_string(36, alnum, 93)});
    const std::string text = "SSN 536-22-8451, card 4539-1488-0343-6467, tel (415) 892-2671, token " + ghp +
                             ", mail bob@corp.io.";
    const ScanResult result = scan(text);
    ASSERT_EQ(result.findings.size(), 5u) << describe(result, text);
    const std::string redacted = redact(text, result.findings);
    EXPECT_EQ(redacted,
              "SSN ***-**-8451, card ****-****-****-6467, tel (***) ***-2671, token [REDACTED:secret.github_token], "
              "mail [REDACTED:pii.email].");
    // Findings that do not fit the content are skipped, not half-applied.
    Finding stray;
    stray.type = "pii.email";
    stray.offset = text.size() - 2;
    stray.length = 10;
    EXPECT_EQ(redact(text, std::span<const Finding>(&stray, 1)), text);
}

// --- Options: selection, allowlists, limits ------------------------------------------------

TEST(InspectOptions, TypesSelectDetectors) {
    Options options;
    options.types = {"secret.*"};
    auto scanner = Scanner::create(options);
    ASSERT_TRUE(scanner);
    for (std::string_view id : scanner->detector_ids()) EXPECT_TRUE(id.starts_with("secret.")) << id;
    const std::string ghp = cat({"gh", "p_", random_string(36, alnum, 94)});
    const ScanResult result = scan_with(*scanner, "ssn 536-22-8451 mail a@corp.io " + ghp);
    ASSERT_EQ(result.findings.size(), 1u);
    EXPECT_EQ(result.findings[0].type, "secret.github_token");

    options.types = {"pii.us_ssn"};
    scanner = Scanner::create(options);
    ASSERT_TRUE(scanner);
    EXPECT_EQ(scanner->detector_ids(), std::vector<std::string_view>{"pii.us_ssn"});

    options.types = {"pii.no_such_thing"};
    EXPECT_FALSE(Scanner::create(options));
    options.types = {"nothing.*"};
    EXPECT_FALSE(Scanner::create(options));
}

TEST(InspectOptions, Allowlists) {
    Options options = default_options();
    options.allow_value_hashes = {hmac_hex(hash_key, "536228451")};
    options.allow_value_regexes = {R"(.*@corp\.io)", "8\\.8\\.8\\.8"};
    options.allow_path_globs = {"/srv/fixtures/**", "/home/*/test_*.csv"};
    auto scanner = Scanner::create(options);
    ASSERT_TRUE(scanner) << scanner.error().to_string();
    const std::string text = "536-22-8451 537-22-8451 bob@corp.io bob@corp.iox 8.8.8.8 8.8.4.4";
    const ScanResult result = scan_with(*scanner, text);
    EXPECT_EQ(describe(result, text),
              "pii.us_ssn@12+11 '537-22-8451'; pii.email@36+12 'bob@corp.iox'; pii.ipv4@57+7 '8.8.4.4'; ");
    const ScanResult skipped = scan_with(*scanner, text, "/srv/fixtures/a/b/customers.csv");
    EXPECT_TRUE(skipped.skipped);
    EXPECT_TRUE(skipped.findings.empty());
    EXPECT_TRUE(scan_with(*scanner, text, "/home/ann/test_data.csv").skipped);
    EXPECT_FALSE(scan_with(*scanner, text, "/home/ann/sub/test_data.csv").skipped);  // '*' stays in one component
    EXPECT_FALSE(scan_with(*scanner, text, "/srv/other/customers.csv").skipped);

    options.allow_value_regexes = {"(unclosed"};
    EXPECT_FALSE(Scanner::create(options));
}

TEST(InspectOptions, TestValuesCanBeDropped) {
    Options options;
    options.report_test_values = false;
    auto scanner = Scanner::create(options);
    ASSERT_TRUE(scanner);
    const ScanResult result = scan_with(*scanner, "4111 1111 1111 1111 and 4539 1488 0343 6467");
    ASSERT_EQ(result.findings.size(), 1u);
    EXPECT_EQ(result.findings[0].offset, 24u);
}

TEST(InspectOptions, FindingsAreCappedWithATruncationFlag) {
    Options options;
    options.max_findings = 5;
    auto scanner = Scanner::create(options);
    ASSERT_TRUE(scanner);
    std::string text;
    for (int i = 0; i < 100; ++i) text += "user" + std::to_string(i) + "@corp.io\n";
    const ScanResult block = scan_with(*scanner, text);
    EXPECT_EQ(block.findings.size(), 5u);
    EXPECT_TRUE(block.truncated);
    const ScanResult streamed = scan_stream(*scanner, {text.substr(0, 500), text.substr(500)});
    EXPECT_EQ(streamed.findings.size(), 5u);
    EXPECT_TRUE(streamed.truncated);
    EXPECT_EQ(streamed.bytes_scanned, text.size());
    EXPECT_FALSE(scan_with(*scanner, "one@corp.io").truncated);
    options.max_findings = 0;
    EXPECT_FALSE(Scanner::create(options));
}

// --- Databases: serialization and cache -------------------------------------------------------

TEST(InspectDatabase, SerializationRoundTrip) {
    const std::string text = "mail a@corp.io ssn 536-22-8451 " + cat({"gh", "p_", random_string(36, alnum, 95)}) +
                             "\n" + pem_block("RSA PRIVATE KEY", random_bytes(300, 96));
    auto bytes = shared_scanner().serialize();
    ASSERT_TRUE(bytes) << bytes.error().to_string();
    auto loaded = Scanner::deserialize(*bytes, default_options());
    ASSERT_TRUE(loaded) << loaded.error().to_string();
    EXPECT_TRUE(loaded->loaded_from_cache());
    EXPECT_EQ(describe(scan_with(*loaded, text), text), describe(scan(text), text));
    EXPECT_EQ(describe(scan_stream(*loaded, {text}), text), describe(scan(text), text));

    // Another detector selection is another database.
    Options other = default_options();
    other.types = {"secret.*"};
    EXPECT_FALSE(Scanner::deserialize(*bytes, other));
    // Damaged bytes are refused, never loaded.
    EXPECT_FALSE(Scanner::deserialize(bytes->substr(0, bytes->size() / 2), default_options()));
    std::string flipped = *bytes;
    flipped[20] = flipped[20] == 'a' ? 'b' : 'a';
    EXPECT_FALSE(Scanner::deserialize(flipped, default_options()));
    EXPECT_FALSE(Scanner::deserialize("garbage", default_options()));
}

TEST(InspectDatabase, CacheDirectory) {
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("airlock-inspect-cache-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    Options options = default_options();
    options.cache_dir = dir.string();
    auto key = Scanner::cache_key(options);
    ASSERT_TRUE(key);
    EXPECT_EQ(key->size(), 64u);

    auto first = Scanner::create(options);
    ASSERT_TRUE(first) << first.error().to_string();
    EXPECT_FALSE(first->loaded_from_cache());
    const std::filesystem::path file = dir / ("inspect-" + *key + ".hsdb");
    ASSERT_TRUE(std::filesystem::exists(file));
    EXPECT_EQ(std::filesystem::status(file).permissions() & std::filesystem::perms::group_write,
              std::filesystem::perms::none);

    auto second = Scanner::create(options);
    ASSERT_TRUE(second);
    EXPECT_TRUE(second->loaded_from_cache());
    const std::string text = "ssn 536-22-8451 mail a@corp.io";
    EXPECT_EQ(describe(scan_with(*second, text), text), describe(scan(text), text));

    // A cache file others can write is not trusted: compiled instead.
    ::chmod(file.c_str(), 0666);
    auto third = Scanner::create(options);
    ASSERT_TRUE(third);
    EXPECT_FALSE(third->loaded_from_cache());
    // A damaged cache file is replaced by a fresh compile.
    std::filesystem::remove(file);
    ASSERT_TRUE(Scanner::create(options));
    { std::ofstream(file, std::ios::binary | std::ios::trunc) << "ALINSPv1" << *key << "junk"; }
    ::chmod(file.c_str(), 0600);
    auto fourth = Scanner::create(options);
    ASSERT_TRUE(fourth);
    EXPECT_FALSE(fourth->loaded_from_cache());
    std::filesystem::remove_all(dir);
}

// --- Threads ----------------------------------------------------------------------------------

TEST(InspectThreads, OneScannerManySessions) {
    std::string text;
    for (const DetectorCase& c : detector_cases()) text += c.positives.front().text + "\n";
    const std::string expected = describe(scan(text), text);
    std::vector<std::string> outcomes(4);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < outcomes.size(); ++t) {
        threads.emplace_back([&, t] {
            auto session = shared_scanner().new_session();
            if (!session) return;
            for (int i = 0; i < 20; ++i) {
                auto result = session->scan(text);
                if (result) outcomes[t] = describe(*result, text);
            }
        });
    }
    for (auto& thread : threads) thread.join();
    for (const std::string& outcome : outcomes) EXPECT_EQ(outcome, expected);
}

}  // namespace
