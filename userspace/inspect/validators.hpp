// Validators: pure functions that decide whether a candidate the detectors
// located is really what it looks like (a checksum, an issuer range, a
// syntax). They never allocate more than their input and never throw, so
// they can run on every candidate in the open() path.
//
// Inputs are the normalized value (digits only for numbers, compact
// upper-case for IBAN/NINO) unless a function says otherwise.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace airlock::inspect {

// --- Checksums -------------------------------------------------------------

// Luhn mod-10 over ASCII digits (false for an empty string or a non-digit).
[[nodiscard]] bool luhn_valid(std::string_view digits) noexcept;
// Verhoeff dihedral-group checksum over ASCII digits.
[[nodiscard]] bool verhoeff_valid(std::string_view digits) noexcept;
// ISO 7064 mod 97-10 as used by IBAN: the compact IBAN, rearranged and
// letter-expanded, is 1 mod 97.
[[nodiscard]] bool iban_checksum_valid(std::string_view compact) noexcept;

// --- Payment cards -----------------------------------------------------------

enum class CardBrand : std::uint8_t { visa, mastercard, amex, discover, diners, jcb, unionpay, maestro, mir };
[[nodiscard]] std::string_view to_string(CardBrand brand) noexcept;
// The issuer whose prefix range and allowed lengths fit `digits` (13-19).
[[nodiscard]] std::optional<CardBrand> card_brand(std::string_view digits) noexcept;
// Issuer prefix + length + Luhn.
[[nodiscard]] bool card_number_valid(std::string_view digits) noexcept;

// --- Bank accounts -------------------------------------------------------------

// Registered IBAN length for a two-letter country code, nullopt when unknown.
[[nodiscard]] std::optional<std::size_t> iban_length(std::string_view country) noexcept;
// Country known, length matches the country, check digits 02..98, mod-97.
[[nodiscard]] bool iban_valid(std::string_view compact) noexcept;

// --- National identifiers ------------------------------------------------------

// 9 digits: area 001-899 except 666, group 01-99, serial 0001-9999.
[[nodiscard]] bool us_ssn_valid(std::string_view digits) noexcept;
// 9 digits: area 9xx, group 50-65, 70-88, 90-92 or 94-99, serial not 0000.
[[nodiscard]] bool us_itin_valid(std::string_view digits) noexcept;
// "AB123456C": two prefix letters (first not D F I Q U V, second not D F I O Q U V,
// not BG GB KN NK NT TN ZZ), six digits, suffix A-D.
[[nodiscard]] bool uk_nino_valid(std::string_view compact) noexcept;
// 9 digits, Luhn, first digit 1-7 or 9 (0 and 8 are not issued to people).
[[nodiscard]] bool ca_sin_valid(std::string_view digits) noexcept;
// 12 digits, first digit 2-9, Verhoeff.
[[nodiscard]] bool aadhaar_valid(std::string_view digits) noexcept;

// --- Network addresses -------------------------------------------------------

// Strict dotted quad: four decimal octets 0-255, no leading zeros, nothing else.
[[nodiscard]] bool ipv4_valid(std::string_view text) noexcept;
// RFC 4291 text form (with "::" compression and an optional trailing dotted
// quad); no zone id, no brackets, no prefix length.
[[nodiscard]] bool ipv6_valid(std::string_view text) noexcept;

// --- Telephone numbers ---------------------------------------------------------

// 10 digits NPA-NXX-XXXX: NPA [2-9][0-8]x and not N11, NXX [2-9]xx and not N11.
[[nodiscard]] bool nanp_valid(std::string_view ten_digits) noexcept;
// The digits after '+': an assigned country calling code, 8-15 digits in all,
// and NANP rules for +1.
[[nodiscard]] bool e164_valid(std::string_view digits) noexcept;

// --- Dates ----------------------------------------------------------------------

[[nodiscard]] bool calendar_date_valid(int year, int month, int day) noexcept;
// A date of birth as people write it: d/m/y, m/d/y, y-m-d (separators / . -),
// "12 March 1980", "March 12, 1980"; year 1900-2099 (two-digit years allowed
// in the numeric forms). Valid when some reading is a real calendar date.
[[nodiscard]] bool birth_date_valid(std::string_view text) noexcept;

// --- Secrets ----------------------------------------------------------------------

// Shannon entropy in bits per byte (0 for an empty string).
[[nodiscard]] double shannon_entropy(std::string_view text) noexcept;

enum class Base64Alphabet : std::uint8_t { standard, url };
// Decodes base64 (padding optional); nullopt on a character outside the
// alphabet or an impossible length.
[[nodiscard]] std::optional<std::string> base64_decode(std::string_view text, Base64Alphabet alphabet);

// header.payload.signature where the base64url header decodes to a JSON
// object with an "alg" member and the payload to a JSON object.
[[nodiscard]] bool jwt_valid(std::string_view token);

enum class KeyBlockKind : std::uint8_t { pem, openssh, pgp };
// A whole "-----BEGIN ... PRIVATE KEY-----" ... "-----END ...-----" block:
// matching labels, optional RFC 1421 / OpenPGP armor headers, base64 body of
// at least 64 characters (line breaks may be real or JSON-escaped "\n"),
// "openssh-key-v1" magic for OPENSSH keys.
[[nodiscard]] std::optional<KeyBlockKind> private_key_block_valid(std::string_view block);
// The same block cut short before its END line (a paste or a log line limit
// stopped it): the BEGIN line, then at least 64 characters of base64 lines
// and no further armor line. Most of a private key is still a secret.
[[nodiscard]] std::optional<KeyBlockKind> truncated_private_key_block_valid(std::string_view block);

// --- Well-known test values ------------------------------------------------------

// True for documented sample values (4111 1111 1111 1111, 078-05-1120,
// AKIAIOSFODNN7EXAMPLE, the jwt.io token, example.com addresses, the
// documentation IP ranges, 555-01xx phone numbers, ...). `normalized` is the
// detector's normalized form of the value (digits only for numbers).
[[nodiscard]] bool is_known_test_value(std::string_view detector_id, std::string_view normalized) noexcept;

}  // namespace airlock::inspect
