// Tests for the credential primitives: yescrypt password hashes, SHA-256
// against FIPS 180-4 / sha256sum vectors, and API key generation.
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "broker/store/api_key_secret.h"
#include "broker/store/password.h"
#include "broker/store/sha256.h"
#include "gtest/gtest.h"

namespace tracim::broker {
namespace {

std::string Sha256Hex(absl::string_view data) {
  const Sha256Digest digest = Sha256(data);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

TEST(StorePassword, RightPasswordVerifiesAndWrongOneDoesNot) {
  auto hash = HashPassword("correct horse", 1);
  ASSERT_TRUE(hash.ok()) << hash.status();
  EXPECT_TRUE(absl::StartsWith(*hash, "$y$")) << *hash;
  EXPECT_TRUE(VerifyPassword("correct horse", *hash));
  EXPECT_FALSE(VerifyPassword("correct horse ", *hash));
  EXPECT_FALSE(VerifyPassword("Correct horse", *hash));
  EXPECT_FALSE(VerifyPassword("", *hash));
}

TEST(StorePassword, DefaultCostIsYescryptsDefault) {
  auto hash = HashPassword("pw");
  ASSERT_TRUE(hash.ok()) << hash.status();
  // "$y$j9T$": libxcrypt's encoding of its default yescrypt parameters.
  EXPECT_TRUE(absl::StartsWith(*hash, "$y$j9T$")) << *hash;
  EXPECT_TRUE(VerifyPassword("pw", *hash));
}

TEST(StorePassword, EachHashHasItsOwnSalt) {
  auto first = HashPassword("same", 1);
  auto second = HashPassword("same", 1);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(*first, *second);
  EXPECT_TRUE(VerifyPassword("same", *first));
  EXPECT_TRUE(VerifyPassword("same", *second));
}

TEST(StorePassword, RefusesEmptyTooLongAndNulPasswords) {
  EXPECT_EQ(HashPassword("", 1).status(), absl::InvalidArgumentError("password must not be empty"));
  EXPECT_EQ(HashPassword(std::string(512, 'a'), 1).status(),
            absl::InvalidArgumentError("password is longer than 511 bytes"));
  auto longest = HashPassword(std::string(511, 'a'), 1);
  ASSERT_TRUE(longest.ok()) << longest.status();
  EXPECT_TRUE(VerifyPassword(std::string(511, 'a'), *longest));
  EXPECT_FALSE(VerifyPassword(std::string(512, 'a'), *longest));
  EXPECT_EQ(HashPassword(std::string("ab\0cd", 5), 1).status(),
            absl::InvalidArgumentError("password must not contain NUL bytes"));
}

TEST(StorePassword, NulByteCannotTruncateAPasswordAtVerification) {
  auto hash = HashPassword("ab", 1);
  ASSERT_TRUE(hash.ok());
  EXPECT_FALSE(VerifyPassword(std::string("ab\0cd", 5), *hash));
}

TEST(StorePassword, NonYescryptHashNeverVerifies) {
  // crypt("secret", "ab"): traditional DES, which crypt(3) would accept.
  EXPECT_FALSE(VerifyPassword("secret", "abNANd1rDfiNc"));
  EXPECT_FALSE(VerifyPassword("secret", ""));
  EXPECT_FALSE(VerifyPassword("secret", "$y$garbage"));
}

TEST(StoreSha256, MatchesReferenceVectors) {
  // FIPS 180-4 examples.
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(StoreSha256, PaddingBoundariesMatchSha256sum) {
  // `head -c N /dev/zero | tr '\0' x | sha256sum`: one or two padding blocks.
  EXPECT_EQ(Sha256Hex(std::string(55, 'x')),
            "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072");
  EXPECT_EQ(Sha256Hex(std::string(56, 'x')),
            "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e");
  EXPECT_EQ(Sha256Hex(std::string(63, 'x')),
            "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2");
  EXPECT_EQ(Sha256Hex(std::string(64, 'x')),
            "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c");
  EXPECT_EQ(Sha256Hex(std::string(119, 'x')),
            "000b48d4edf0fa7bee3c6236ecd2785baa5db4eeb8bb54341b029e0d9fa5fb0c");
  EXPECT_EQ(Sha256Hex(std::string(120, 'x')),
            "13f05a0b594787f5ecd315edc96141bd3243203d1b7d4f0836f37308b276ba98");
}

TEST(StoreApiKeySecret, KeysAre64LowercaseHexDigitsAndDistinct) {
  std::set<std::string> keys;
  for (int i = 0; i < 100; ++i) {
    auto key = GenerateApiKey();
    ASSERT_TRUE(key.ok()) << key.status();
    ASSERT_EQ(key->size(), kApiKeyLength);
    for (const char c : *key) {
      ASSERT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << *key;
    }
    keys.insert(*key);
  }
  EXPECT_EQ(keys.size(), 100u);
}

TEST(StoreApiKeySecret, DigestIsTheRawSha256OfTheKey) {
  EXPECT_EQ(absl::BytesToHexString(ApiKeyDigest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace tracim::broker
