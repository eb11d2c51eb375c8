// TlsContext::create_server_remote: handshakes whose private-key operations
// go to a Signer (here an in-process KeySigner), for ECDSA P-256 and
// RSA-2048, TLS 1.3 and 1.2, driven by an in-memory wolfSSL client as in
// tls_test.cc.
#include <gtest/gtest.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "net/key_signer.h"
#include "net/tls.h"
#include "tls_test_client.h"

namespace hearth::net {
namespace {

using State = TlsSession::State;
using Algorithm = SignRequest::Algorithm;
using Hash = SignRequest::Hash;

using testing::Client;
using testing::read_file;
using testing::TempDir;
using testing::write_file;

// Moves bytes both ways until both sides are quiet.
void pump(Client& c, TlsSession& s, std::string* server_plain) {
  for (int round = 0; round < 20; ++round) {
    c.step();
    bool moved = !c.out.empty() || !s.outgoing().empty();
    if (!c.out.empty()) {
      s.feed(c.out);
      c.out.clear();
    }
    s.read(server_plain);
    if (!s.outgoing().empty()) {
      c.in += s.outgoing();
      s.outgoing().clear();
      moved = true;
    }
    if (!moved) return;
  }
}

// RSA-2048 key (PKCS#8 PEM, as OpenSSL 3 writes them) and a self-signed
// SHA256withRSA certificate, made with wolfCrypt.
bool make_rsa_pair(const std::string& cert_path, const std::string& key_path) {
  WC_RNG rng;
  if (wc_InitRng(&rng) != 0) return false;
  RsaKey key;
  bool ok =
      wc_InitRsaKey(&key, nullptr) == 0 && wc_MakeRsaKey(&key, 2048, WC_RSA_EXPONENT, &rng) == 0;
  Cert* cert = wc_CertNew(nullptr);
  std::vector<byte> der(4096);
  int der_size = 0;
  if (ok && cert != nullptr) {
    cert->sigType = CTC_SHA256wRSA;
    cert->keyType = RSA_KEY;
    std::strcpy(cert->subject.commonName, "rsa.example");
    der_size = wc_MakeCert(cert, der.data(), static_cast<word32>(der.size()), &key, nullptr, &rng);
    if (der_size > 0) {
      der_size = wc_SignCert(cert->bodySz, cert->sigType, der.data(),
                             static_cast<word32>(der.size()), &key, nullptr, &rng);
    }
  }
  ok = ok && der_size > 0;
  std::vector<byte> pem(8192);
  int pem_size = ok ? wc_DerToPem(der.data(), static_cast<word32>(der_size), pem.data(),
                                  static_cast<word32>(pem.size()), CERT_TYPE)
                    : 0;
  ok = ok && pem_size > 0;
  if (ok) write_file(cert_path, std::string(reinterpret_cast<char*>(pem.data()), pem_size));

  std::vector<byte> pkcs1(4096);
  int pkcs1_size = ok ? wc_RsaKeyToDer(&key, pkcs1.data(), static_cast<word32>(pkcs1.size())) : 0;
  std::vector<byte> pkcs8(4096);
  word32 pkcs8_size = static_cast<word32>(pkcs8.size());
  ok = ok && pkcs1_size > 0 &&
       wc_CreatePKCS8Key(pkcs8.data(), &pkcs8_size, pkcs1.data(), static_cast<word32>(pkcs1_size),
                         RSAk, nullptr, 0) > 0;
  pem_size = ok ? wc_DerToPem(pkcs8.data(), pkcs8_size, pem.data(), static_cast<word32>(pem.size()),
                              PKCS8_PRIVATEKEY_TYPE)
                : 0;
  ok = ok && pem_size > 0;
  if (ok) write_file(key_path, std::string(reinterpret_cast<char*>(pem.data()), pem_size));
  if (cert != nullptr) wc_CertFree(cert);
  wc_FreeRsaKey(&key);
  wc_FreeRng(&rng);
  return ok;
}

// The private number that must never be in the reactor: the EC scalar, or
// the first 64 bytes of the RSA private exponent; big-endian.
std::string private_number(const std::string& key_path) {
  std::string pem = read_file(key_path);
  std::vector<byte> der(pem.size());
  int der_size =
      wc_KeyPemToDer(reinterpret_cast<const byte*>(pem.data()), static_cast<word32>(pem.size()),
                     der.data(), static_cast<word32>(der.size()), nullptr);
  if (der_size <= 0) return {};
  word32 idx = 0;
  std::string out;
  ecc_key ecc;
  wc_ecc_init(&ecc);
  if (wc_EccPrivateKeyDecode(der.data(), &idx, &ecc, static_cast<word32>(der_size)) == 0) {
    byte k[MAX_ECC_BYTES];
    word32 k_size = sizeof k;
    if (wc_ecc_export_private_only(&ecc, k, &k_size) == 0) {
      out.assign(reinterpret_cast<char*>(k), k_size);
    }
  }
  wc_ecc_free(&ecc);
  if (!out.empty()) return out;
  RsaKey rsa;
  wc_InitRsaKey(&rsa, nullptr);
  idx = 0;
  if (wc_RsaPrivateKeyDecode(der.data(), &idx, &rsa, static_cast<word32>(der_size)) == 0) {
    byte e[8], n[512], d[512], p[256], q[256];
    word32 es = sizeof e, ns = sizeof n, ds = sizeof d, ps = sizeof p, qs = sizeof q;
    if (wc_RsaExportKey(&rsa, e, &es, n, &ns, d, &ds, p, &ps, q, &qs) == 0 && ds >= 64) {
      out.assign(reinterpret_cast<char*>(d), 64);
    }
  }
  wc_FreeRsaKey(&rsa);
  return out;
}

// A Signer around a KeySigner that counts what it was asked and can be
// told to misbehave.
class TestSigner {
 public:
  enum class Mode { kGood, kFlipBit, kGarbage, kError };
  explicit TestSigner(KeySigner* key) : key_(key) {}
  Signer signer() {
    return [this](const SignRequest& req) -> Result<std::string> {
      ++calls[req.algorithm];
      last_hash = req.hash_type;
      if (mode == Mode::kError) return make_error("keyholder unavailable");
      auto sig = key_->sign(req);
      if (!sig.ok()) return sig;
      if (mode == Mode::kFlipBit) sig.value()[sig->size() / 2] ^= 0x01;
      if (mode == Mode::kGarbage) sig.value().assign(sig->size(), 'A');
      return sig;
    };
  }
  Mode mode = Mode::kGood;
  std::map<Algorithm, int> calls;
  Hash last_hash = Hash::kSha1;

 private:
  KeySigner* key_;
};

class TlsRemoteTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ec_cert_ = dir_->path() + "/ec.crt";
    ec_key_ = dir_->path() + "/ec.key";
    rsa_cert_ = dir_->path() + "/rsa.crt";
    rsa_key_ = dir_->path() + "/rsa.key";
    Status st = ensure_self_signed("example.org", ec_cert_, ec_key_);
    ASSERT_TRUE(st.ok()) << st.error().message;
    ASSERT_TRUE(make_rsa_pair(rsa_cert_, rsa_key_));
    auto ec = KeySigner::load(ec_key_);
    ASSERT_TRUE(ec.ok()) << ec.error().message;
    ec_signer_ = std::move(ec.value()).release();
    auto rsa = KeySigner::load(rsa_key_);
    ASSERT_TRUE(rsa.ok()) << rsa.error().message;
    rsa_signer_ = std::move(rsa.value()).release();
  }
  static void TearDownTestSuite() {
    delete ec_signer_;
    delete rsa_signer_;
    ec_signer_ = rsa_signer_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }

  // A remote context for `cert` whose signer is `ts`.
  static std::unique_ptr<TlsContext> remote(const std::string& cert, TestSigner& ts) {
    auto ctx = TlsContext::create_server_remote(cert, ts.signer());
    EXPECT_TRUE(ctx.ok()) << ctx.error().message;
    if (!ctx.ok()) return nullptr;
    return std::move(ctx.value());
  }

  static TempDir* dir_;
  static std::string ec_cert_, ec_key_, rsa_cert_, rsa_key_;
  static KeySigner* ec_signer_;
  static KeySigner* rsa_signer_;
};

TempDir* TlsRemoteTest::dir_ = nullptr;
std::string TlsRemoteTest::ec_cert_;
std::string TlsRemoteTest::ec_key_;
std::string TlsRemoteTest::rsa_cert_;
std::string TlsRemoteTest::rsa_key_;
KeySigner* TlsRemoteTest::ec_signer_ = nullptr;
KeySigner* TlsRemoteTest::rsa_signer_ = nullptr;

struct HandshakeCase {
  const char* name;
  bool rsa;
  bool tls13;
  const char* client_ciphers;  // nullptr: client default
  const char* client_sigalgs;  // nullptr: client default
  Algorithm expected;
  const char* expected_cipher;
};

const HandshakeCase kCases[] = {
    {"ecdsa-tls13", false, true, nullptr, nullptr, Algorithm::kEcdsa,
     "TLS13-CHACHA20-POLY1305-SHA256"},
    {"ecdsa-tls13-aes", false, true, "TLS13-AES128-GCM-SHA256", nullptr, Algorithm::kEcdsa,
     "TLS13-AES128-GCM-SHA256"},
    {"ecdsa-tls12-aes", false, false, "ECDHE-ECDSA-AES128-GCM-SHA256", nullptr, Algorithm::kEcdsa,
     "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"ecdsa-tls12-chacha", false, false, "ECDHE-ECDSA-CHACHA20-POLY1305", nullptr,
     Algorithm::kEcdsa, "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"rsa-tls13-pss", true, true, nullptr, nullptr, Algorithm::kRsaPss,
     "TLS13-CHACHA20-POLY1305-SHA256"},
    {"rsa-tls12-pkcs1", true, false, "ECDHE-RSA-AES128-GCM-SHA256", "RSA+SHA256",
     Algorithm::kRsaPkcs1, "ECDHE-RSA-AES128-GCM-SHA256"},
    {"rsa-tls12-pss", true, false, "ECDHE-RSA-AES256-GCM-SHA384", nullptr, Algorithm::kRsaPss,
     "ECDHE-RSA-AES256-GCM-SHA384"},
};

// Runs one handshake of `k` against `ctx`; returns the client for checks.
std::unique_ptr<Client> handshake(const TlsContext& ctx, const HandshakeCase& k,
                                  std::unique_ptr<TlsSession>* server) {
  auto c =
      std::make_unique<Client>(k.tls13 ? wolfTLSv1_3_client_method() : wolfTLSv1_2_client_method());
  if (k.client_ciphers != nullptr) {
    EXPECT_EQ(wolfSSL_CTX_set_cipher_list(c->ctx(), k.client_ciphers), WOLFSSL_SUCCESS);
  }
  if (k.client_sigalgs != nullptr) {
    EXPECT_EQ(wolfSSL_set1_sigalgs_list(c->ssl(), k.client_sigalgs), WOLFSSL_SUCCESS);
  }
  *server = std::make_unique<TlsSession>(ctx, /*direct=*/false);
  std::string plain;
  pump(*c, **server, &plain);
  return c;
}

TEST_F(TlsRemoteTest, HandshakesSignThroughTheSigner) {
  TestSigner ec(ec_signer_);
  TestSigner rsa(rsa_signer_);
  auto ec_ctx = remote(ec_cert_, ec);
  auto rsa_ctx = remote(rsa_cert_, rsa);
  ASSERT_NE(ec_ctx, nullptr);
  ASSERT_NE(rsa_ctx, nullptr);
  EXPECT_TRUE(ec_ctx->remote_key());
  for (const HandshakeCase& k : kCases) {
    TestSigner& ts = k.rsa ? rsa : ec;
    ts.calls.clear();
    std::unique_ptr<TlsSession> s;
    auto c = handshake(k.rsa ? *rsa_ctx : *ec_ctx, k, &s);
    ASSERT_TRUE(c->connected) << k.name << " client error " << c->last_error;
    ASSERT_EQ(s->state(), State::kOpen) << k.name << " " << s->error();
    EXPECT_EQ(s->version(), k.tls13 ? "TLSv1.3" : "TLSv1.2") << k.name;
    EXPECT_EQ(s->cipher(), k.expected_cipher) << k.name;
    // Exactly one signature per full handshake, of the expected scheme.
    EXPECT_EQ(ts.calls[k.expected], 1) << k.name;
    EXPECT_EQ(ts.calls.size(), 1u) << k.name;

    const char msg[] = "<iq type='get'/>";
    ASSERT_EQ(wolfSSL_write(c->ssl(), msg, sizeof msg - 1), static_cast<int>(sizeof msg - 1));
    std::string plain;
    pump(*c, *s, &plain);
    EXPECT_EQ(plain, msg) << k.name;
    ASSERT_EQ(s->write("<iq type='result'/>"), State::kOpen);
    c->in += s->outgoing();
    s->outgoing().clear();
    std::string got;
    c->read_all(&got);
    EXPECT_EQ(got, "<iq type='result'/>") << k.name;
  }
}

TEST_F(TlsRemoteTest, Tls12HashFollowsTheClient) {
  TestSigner ec(ec_signer_);
  auto ctx = remote(ec_cert_, ec);
  ASSERT_NE(ctx, nullptr);
  HandshakeCase k{"ecdsa-sha384", false, false, nullptr, "ECDSA+SHA384", Algorithm::kEcdsa, ""};
  std::unique_ptr<TlsSession> s;
  auto c = handshake(*ctx, k, &s);
  ASSERT_TRUE(c->connected) << c->last_error;
  EXPECT_EQ(ec.last_hash, Hash::kSha384);
}

// A TLS 1.2 client that accepts only SHA-1 signatures is refused before
// anything is signed, as with a local key (wolfSSL finds no suite).
TEST_F(TlsRemoteTest, Tls12Sha1OnlyClientRefusedWithoutSigning) {
  TestSigner ec(ec_signer_);
  TestSigner rsa(rsa_signer_);
  auto ec_ctx = remote(ec_cert_, ec);
  auto rsa_ctx = remote(rsa_cert_, rsa);
  ASSERT_NE(ec_ctx, nullptr);
  ASSERT_NE(rsa_ctx, nullptr);
  const HandshakeCase cases[] = {
      {"ecdsa-sha1", false, false, nullptr, "ECDSA+SHA1", Algorithm::kEcdsa, ""},
      {"rsa-sha1", true, false, nullptr, "RSA+SHA1", Algorithm::kRsaPkcs1, ""},
  };
  for (const HandshakeCase& k : cases) {
    TestSigner& ts = k.rsa ? rsa : ec;
    ts.calls.clear();
    std::unique_ptr<TlsSession> s;
    auto c = handshake(k.rsa ? *rsa_ctx : *ec_ctx, k, &s);
    EXPECT_FALSE(c->connected) << k.name;
    EXPECT_EQ(s->state(), State::kError) << k.name;
    EXPECT_TRUE(ts.calls.empty()) << k.name;
  }
}

// A reload may drop the context while a session of it is still
// handshaking: that session fails, it does not call a freed signer.
TEST_F(TlsRemoteTest, SessionOutlivingItsContextFailsCleanly) {
  TestSigner ec(ec_signer_);
  auto ctx = remote(ec_cert_, ec);
  ASSERT_NE(ctx, nullptr);
  auto s = std::make_unique<TlsSession>(*ctx, false);
  ctx.reset();
  ec.calls.clear();
  Client c(wolfTLSv1_3_client_method());
  std::string plain;
  pump(c, *s, &plain);
  EXPECT_FALSE(c.connected);
  EXPECT_EQ(s->state(), State::kError);
  EXPECT_NE(s->error().find("no signer"), std::string::npos) << s->error();
  EXPECT_TRUE(ec.calls.empty());
}

// The self-test at creation exercises every scheme the key can be asked
// for: PSS (TLS 1.3) and, for RSA, PKCS#1 v1.5 (TLS 1.2).
TEST_F(TlsRemoteTest, CreationRunsTheSelfTestThroughTheSigner) {
  TestSigner ec(ec_signer_);
  ASSERT_NE(remote(ec_cert_, ec), nullptr);
  EXPECT_EQ(ec.calls[Algorithm::kEcdsa], 1);
  TestSigner rsa(rsa_signer_);
  ASSERT_NE(remote(rsa_cert_, rsa), nullptr);
  EXPECT_EQ(rsa.calls[Algorithm::kRsaPss], 1);
  EXPECT_EQ(rsa.calls[Algorithm::kRsaPkcs1], 1);
}

TEST_F(TlsRemoteTest, BadSignaturesFailTheHandshake) {
  TestSigner ec(ec_signer_);
  TestSigner rsa(rsa_signer_);
  auto ec_ctx = remote(ec_cert_, ec);
  auto rsa_ctx = remote(rsa_cert_, rsa);
  ASSERT_NE(ec_ctx, nullptr);
  ASSERT_NE(rsa_ctx, nullptr);
  for (TestSigner::Mode mode : {TestSigner::Mode::kFlipBit, TestSigner::Mode::kGarbage}) {
    for (const HandshakeCase& k : kCases) {
      TestSigner& ts = k.rsa ? rsa : ec;
      ts.mode = mode;
      ts.calls.clear();
      std::unique_ptr<TlsSession> s;
      auto c = handshake(k.rsa ? *rsa_ctx : *ec_ctx, k, &s);
      EXPECT_EQ(ts.calls[k.expected], 1) << k.name;
      EXPECT_FALSE(c->connected) << k.name;
      EXPECT_NE(s->state(), State::kOpen) << k.name;
      if (k.rsa) {
        // wolfSSL checks its RSA signatures with the placeholder public key
        // before sending them: the server fails first.
        EXPECT_EQ(s->state(), State::kError) << k.name;
      } else {
        // No server-side check for ECDSA: the client refuses the signature;
        // in TLS 1.3 its alert then fails the server session, in TLS 1.2
        // wolfSSL's client sends none and the session waits for the peer
        // to close.
        EXPECT_NE(c->last_error, 0) << k.name;
        if (k.tls13) {
          EXPECT_EQ(s->state(), State::kError) << k.name;
        }
      }
      ts.mode = TestSigner::Mode::kGood;
    }
  }
  // The contexts still work afterwards.
  std::unique_ptr<TlsSession> s;
  auto c = handshake(*rsa_ctx, kCases[4], &s);
  EXPECT_TRUE(c->connected);
}

TEST_F(TlsRemoteTest, SignerErrorFailsTheHandshakeCleanly) {
  TestSigner ec(ec_signer_);
  TestSigner rsa(rsa_signer_);
  auto ec_ctx = remote(ec_cert_, ec);
  auto rsa_ctx = remote(rsa_cert_, rsa);
  ASSERT_NE(ec_ctx, nullptr);
  ASSERT_NE(rsa_ctx, nullptr);
  for (const HandshakeCase& k : kCases) {
    TestSigner& ts = k.rsa ? rsa : ec;
    ts.mode = TestSigner::Mode::kError;
    std::unique_ptr<TlsSession> s;
    auto c = handshake(k.rsa ? *rsa_ctx : *ec_ctx, k, &s);
    EXPECT_FALSE(c->connected) << k.name;
    EXPECT_EQ(s->state(), State::kError) << k.name;
    EXPECT_NE(s->error().find("keyholder unavailable"), std::string::npos) << s->error();
    EXPECT_TRUE(s->exporter_binding().empty());
    ts.mode = TestSigner::Mode::kGood;
  }
}

TEST_F(TlsRemoteTest, CreationFailsWhenTheSignerCannotSignForTheCertificate) {
  TempDir d;
  std::string other_cert = d.path() + "/other.crt";
  std::string other_key = d.path() + "/other.key";
  ASSERT_TRUE(ensure_self_signed("other.example", other_cert, other_key).ok());
  auto other = KeySigner::load(other_key);
  ASSERT_TRUE(other.ok()) << other.error().message;

  // Another P-256 key for our certificate: the self-test's client refuses.
  TestSigner wrong(other->get());
  auto r = TlsContext::create_server_remote(ec_cert_, wrong.signer());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("does not sign for TLS certificate " + ec_cert_),
            std::string::npos)
      << r.error().message;

  // An EC key behind an RSA certificate: the signer refuses the request.
  TestSigner mixed(ec_signer_);
  r = TlsContext::create_server_remote(rsa_cert_, mixed.signer());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("RSA requested of an EC key"), std::string::npos)
      << r.error().message;

  // A signer that is down at start-up.
  TestSigner down(ec_signer_);
  down.mode = TestSigner::Mode::kError;
  r = TlsContext::create_server_remote(ec_cert_, down.signer());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("keyholder unavailable"), std::string::npos)
      << r.error().message;

  EXPECT_FALSE(TlsContext::create_server_remote(ec_cert_, Signer()).ok());
  r = TlsContext::create_server_remote(d.path() + "/missing.crt", down.signer());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("cannot load TLS certificate ", 0), 0u) << r.error().message;
}

// create_server_remote gets a certificate path and nothing else: with the
// certificate alone in a directory (no key file anywhere near) it works.
TEST_F(TlsRemoteTest, NeedsOnlyTheCertificate) {
  TempDir d;
  std::string cert = d.path() + "/only.crt";
  write_file(cert, read_file(ec_cert_));
  TestSigner ec(ec_signer_);
  auto ctx = remote(cert, ec);
  ASSERT_NE(ctx, nullptr);
  std::unique_ptr<TlsSession> s;
  auto c = handshake(*ctx, kCases[0], &s);
  EXPECT_TRUE(c->connected);
}

std::string client_exporter(WOLFSSL* ssl) {
  static const unsigned char kEmpty[1] = {0};
  std::string out(32, '\0');
  static const char kLabel[] = "EXPORTER-Channel-Binding";
  if (wolfSSL_export_keying_material(ssl, reinterpret_cast<unsigned char*>(out.data()), 32, kLabel,
                                     sizeof kLabel - 1, kEmpty, 0, 1) != WOLFSSL_SUCCESS) {
    return {};
  }
  return out;
}

TEST_F(TlsRemoteTest, ExporterBindingAndServerEndPoint) {
  TestSigner ec(ec_signer_);
  TestSigner rsa(rsa_signer_);
  auto ec_ctx = remote(ec_cert_, ec);
  auto rsa_ctx = remote(rsa_cert_, rsa);
  ASSERT_NE(ec_ctx, nullptr);
  ASSERT_NE(rsa_ctx, nullptr);
  for (const HandshakeCase& k : kCases) {
    std::unique_ptr<TlsSession> s;
    auto c = handshake(k.rsa ? *rsa_ctx : *ec_ctx, k, &s);
    ASSERT_EQ(s->state(), State::kOpen) << k.name;
    std::string server = s->exporter_binding();
    EXPECT_EQ(server.size(), 32u) << k.name;
    EXPECT_EQ(server, client_exporter(c->ssl())) << k.name;
  }
  for (auto [ctx, cert] :
       {std::pair{ec_ctx.get(), ec_cert_}, std::pair{rsa_ctx.get(), rsa_cert_}}) {
    WOLFSSL_X509* x = wolfSSL_X509_load_certificate_file(cert.c_str(), WOLFSSL_FILETYPE_PEM);
    ASSERT_NE(x, nullptr);
    int sz = 0;
    const unsigned char* der = wolfSSL_X509_get_der(x, &sz);
    unsigned char digest[WC_SHA256_DIGEST_SIZE];
    ASSERT_EQ(wc_Sha256Hash(der, static_cast<word32>(sz), digest), 0);
    wolfSSL_X509_free(x);
    EXPECT_EQ(ctx->server_end_point(),
              std::string(reinterpret_cast<const char*>(digest), sizeof digest));
    auto fp = certificate_fingerprint(cert);
    ASSERT_TRUE(fp.ok());
    EXPECT_EQ(ctx->fingerprint_sha256(), fp.value());
  }
}

// ---------------------------------------------------------------------------
// No private key in the server's memory: every block wolfSSL allocates while
// the context is created and a handshake runs is recorded, and the live ones
// are searched for the private number. The same search over a create_server
// context (key loaded locally) must find it, so the check can fail.

std::unordered_map<void*, size_t>* g_live = nullptr;
void* tracking_malloc(size_t n) {
  void* p = malloc(n);
  if (p != nullptr && g_live != nullptr) (*g_live)[p] = malloc_usable_size(p);
  return p;
}
void tracking_free(void* p) {
  if (p != nullptr && g_live != nullptr) g_live->erase(p);
  free(p);
}
void* tracking_realloc(void* p, size_t n) {
  if (p != nullptr && g_live != nullptr) g_live->erase(p);
  void* q = realloc(p, n);
  if (q != nullptr && g_live != nullptr) (*g_live)[q] = malloc_usable_size(q);
  return q;
}

bool contains(const std::unordered_map<void*, size_t>& live, const std::string& needle) {
  std::string reversed(needle.rbegin(), needle.rend());  // little-endian limbs
  for (const auto& [p, n] : live) {
    std::string_view block(static_cast<const char*>(p), n);
    if (block.find(needle) != std::string_view::npos) return true;
    if (block.find(reversed) != std::string_view::npos) return true;
  }
  return false;
}

// Live wolfSSL blocks of a context plus one established session.
bool key_in_server_memory(const std::string& needle, bool local, const std::string& cert,
                          const std::string& key, KeySigner* signer, const HandshakeCase& k) {
  std::unordered_map<void*, size_t> live;
  wolfSSL_Malloc_cb old_m = nullptr;
  wolfSSL_Free_cb old_f = nullptr;
  wolfSSL_Realloc_cb old_r = nullptr;
  EXPECT_EQ(wolfSSL_GetAllocators(&old_m, &old_f, &old_r), 0);
  g_live = &live;
  EXPECT_EQ(wolfSSL_SetAllocators(tracking_malloc, tracking_free, tracking_realloc), 0);
  TestSigner ts(signer);
  std::unique_ptr<TlsContext> ctx;
  if (local) {
    auto r = TlsContext::create_server(cert, key);
    if (r.ok()) ctx = std::move(r.value());
  } else {
    auto r = TlsContext::create_server_remote(cert, ts.signer());
    if (r.ok()) ctx = std::move(r.value());
  }
  bool found = false;
  bool ok = false;
  if (ctx != nullptr) {
    std::unique_ptr<TlsSession> s;
    auto c = handshake(*ctx, k, &s);
    ok = c->connected;
    c.reset();  // the client's blocks are not the server's
    found = contains(live, needle);
  }
  wolfSSL_SetAllocators(old_m, old_f, old_r);
  g_live = nullptr;
  EXPECT_TRUE(ok) << (local ? "local " : "remote ") << k.name;
  return found;
}

TEST_F(TlsRemoteTest, PrivateKeyNeverInServerMemory) {
  std::string ec_secret = private_number(ec_key_);
  std::string rsa_secret = private_number(rsa_key_);
  ASSERT_EQ(ec_secret.size(), 32u);
  ASSERT_EQ(rsa_secret.size(), 64u);
  EXPECT_TRUE(key_in_server_memory(ec_secret, true, ec_cert_, ec_key_, ec_signer_, kCases[0]));
  EXPECT_TRUE(key_in_server_memory(rsa_secret, true, rsa_cert_, rsa_key_, rsa_signer_, kCases[4]));
  for (const HandshakeCase& k : kCases) {
    EXPECT_FALSE(key_in_server_memory(k.rsa ? rsa_secret : ec_secret, false,
                                      k.rsa ? rsa_cert_ : ec_cert_, "",
                                      k.rsa ? rsa_signer_ : ec_signer_, k))
        << k.name;
  }
}

// ---------------------------------------------------------------------------
// KeySigner on its own: its signatures verify with the certificate's key.

class TlsRemoteKeySignerTest : public TlsRemoteTest {};

std::string spki_of(const std::string& cert_path) {
  WOLFSSL_X509* x = wolfSSL_X509_load_certificate_file(cert_path.c_str(), WOLFSSL_FILETYPE_PEM);
  if (x == nullptr) return {};
  int sz = 0;
  const unsigned char* der = wolfSSL_X509_get_der(x, &sz);
  std::string spki(4096, '\0');
  word32 spki_size = static_cast<word32>(spki.size());
  DecodedCert dc;
  wc_InitDecodedCert(&dc, der, static_cast<word32>(sz), nullptr);
  int ret = wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, nullptr);
  if (ret == 0)
    ret = wc_GetPubKeyDerFromCert(&dc, reinterpret_cast<byte*>(spki.data()), &spki_size);
  wc_FreeDecodedCert(&dc);
  wolfSSL_X509_free(x);
  if (ret != 0) return {};
  spki.resize(spki_size);
  return spki;
}

SignRequest request(Algorithm a, Hash h, char fill) {
  SignRequest r;
  r.algorithm = a;
  r.hash_type = h;
  r.digest.assign(digest_size(h), fill);
  return r;
}

TEST_F(TlsRemoteKeySignerTest, TypesAndCertificateCheck) {
  EXPECT_EQ(ec_signer_->type(), KeySigner::Type::kEcdsa);
  EXPECT_EQ(rsa_signer_->type(), KeySigner::Type::kRsa);
  EXPECT_TRUE(ec_signer_->check_certificate(ec_cert_).ok());
  EXPECT_TRUE(rsa_signer_->check_certificate(rsa_cert_).ok());
  EXPECT_FALSE(ec_signer_->check_certificate(rsa_cert_).ok());
  EXPECT_FALSE(rsa_signer_->check_certificate(ec_cert_).ok());
  EXPECT_EQ(ec_signer_->public_key_der(), spki_of(ec_cert_));
  EXPECT_FALSE(ec_signer_->check_certificate(dir_->path() + "/missing.crt").ok());
}

TEST_F(TlsRemoteKeySignerTest, EcdsaSignatureVerifies) {
  std::string spki = spki_of(ec_cert_);
  ecc_key pub;
  ASSERT_EQ(wc_ecc_init(&pub), 0);
  word32 idx = 0;
  ASSERT_EQ(wc_EccPublicKeyDecode(reinterpret_cast<const byte*>(spki.data()), &idx, &pub,
                                  static_cast<word32>(spki.size())),
            0);
  for (Hash h : {Hash::kSha1, Hash::kSha256, Hash::kSha384, Hash::kSha512}) {
    SignRequest req = request(Algorithm::kEcdsa, h, 'e');
    auto sig = ec_signer_->sign(req);
    ASSERT_TRUE(sig.ok()) << sig.error().message;
    int verified = 0;
    ASSERT_EQ(wc_ecc_verify_hash(reinterpret_cast<const byte*>(sig->data()),
                                 static_cast<word32>(sig->size()),
                                 reinterpret_cast<const byte*>(req.digest.data()),
                                 static_cast<word32>(req.digest.size()), &verified, &pub),
              0);
    EXPECT_EQ(verified, 1);
    req.digest[0] ^= 1;
    ASSERT_EQ(wc_ecc_verify_hash(reinterpret_cast<const byte*>(sig->data()),
                                 static_cast<word32>(sig->size()),
                                 reinterpret_cast<const byte*>(req.digest.data()),
                                 static_cast<word32>(req.digest.size()), &verified, &pub),
              0);
    EXPECT_EQ(verified, 0);
  }
  wc_ecc_free(&pub);
}

TEST_F(TlsRemoteKeySignerTest, RsaSignaturesVerify) {
  std::string spki = spki_of(rsa_cert_);
  RsaKey pub;
  ASSERT_EQ(wc_InitRsaKey(&pub, nullptr), 0);
  word32 idx = 0;
  ASSERT_EQ(wc_RsaPublicKeyDecode(reinterpret_cast<const byte*>(spki.data()), &idx, &pub,
                                  static_cast<word32>(spki.size())),
            0);
  // PKCS#1 v1.5: the signature opens to DigestInfo(SHA-256, digest).
  SignRequest req = request(Algorithm::kRsaPkcs1, Hash::kSha256, 'r');
  auto sig = rsa_signer_->sign(req);
  ASSERT_TRUE(sig.ok()) << sig.error().message;
  EXPECT_EQ(sig->size(), 256u);
  byte info[MAX_DER_DIGEST_SZ];
  word32 info_size = wc_EncodeSignature(info, reinterpret_cast<const byte*>(req.digest.data()),
                                        static_cast<word32>(req.digest.size()), SHA256h);
  std::vector<byte> opened(256);
  int n =
      wc_RsaSSL_Verify(reinterpret_cast<const byte*>(sig->data()), static_cast<word32>(sig->size()),
                       opened.data(), static_cast<word32>(opened.size()), &pub);
  ASSERT_EQ(n, static_cast<int>(info_size));
  EXPECT_EQ(std::memcmp(opened.data(), info, info_size), 0);

  // PSS with each TLS hash, salt = hash length (checked by VerifyCheck).
  for (auto [h, type, mgf] : {std::tuple{Hash::kSha256, WC_HASH_TYPE_SHA256, WC_MGF1SHA256},
                              std::tuple{Hash::kSha384, WC_HASH_TYPE_SHA384, WC_MGF1SHA384},
                              std::tuple{Hash::kSha512, WC_HASH_TYPE_SHA512, WC_MGF1SHA512}}) {
    req = request(Algorithm::kRsaPss, h, 'p');
    sig = rsa_signer_->sign(req);
    ASSERT_TRUE(sig.ok()) << sig.error().message;
    std::string copy = sig.value();
    int ok = wc_RsaPSS_VerifyCheck(
        reinterpret_cast<byte*>(copy.data()), static_cast<word32>(copy.size()), opened.data(),
        static_cast<word32>(opened.size()), reinterpret_cast<const byte*>(req.digest.data()),
        static_cast<word32>(req.digest.size()), type, mgf, &pub);
    EXPECT_GT(ok, 0) << static_cast<int>(h);
  }
  wc_FreeRsaKey(&pub);
}

TEST_F(TlsRemoteKeySignerTest, RefusesRequestsItCannotServe) {
  SignRequest req = request(Algorithm::kEcdsa, Hash::kSha256, 'x');
  req.digest.pop_back();
  EXPECT_FALSE(ec_signer_->sign(req).ok());  // digest shorter than its hash
  EXPECT_FALSE(ec_signer_->sign(request(Algorithm::kRsaPss, Hash::kSha256, 'x')).ok());
  EXPECT_FALSE(ec_signer_->sign(request(Algorithm::kRsaPkcs1, Hash::kSha256, 'x')).ok());
  EXPECT_FALSE(rsa_signer_->sign(request(Algorithm::kEcdsa, Hash::kSha256, 'x')).ok());
  EXPECT_FALSE(rsa_signer_->sign(request(Algorithm::kRsaPss, Hash::kSha1, 'x')).ok());
  req = request(Algorithm::kRsaPss, Hash::kSha256, 'x');
  req.hash_type = static_cast<Hash>(99);
  EXPECT_FALSE(rsa_signer_->sign(req).ok());
  req = request(Algorithm::kEcdsa, Hash::kSha256, 'x');
  req.algorithm = static_cast<Algorithm>(42);
  EXPECT_FALSE(ec_signer_->sign(req).ok());
  EXPECT_FALSE(rsa_signer_->sign(req).ok());
}

TEST_F(TlsRemoteKeySignerTest, LoadErrors) {
  TempDir d;
  auto r = KeySigner::load(d.path() + "/missing.key");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("missing.key"), std::string::npos) << r.error().message;
  std::string garbage = d.path() + "/garbage.key";
  write_file(garbage, "not a key\n");
  EXPECT_FALSE(KeySigner::load(garbage).ok());
  // A certificate is not a private key.
  EXPECT_FALSE(KeySigner::load(ec_cert_).ok());
  std::string empty = d.path() + "/empty.key";
  write_file(empty, "");
  EXPECT_FALSE(KeySigner::load(empty).ok());
}

// ---------------------------------------------------------------------------
// Handshake cost, local key vs in-process signer (printed, no threshold; the
// IPC round trip to the keyholder comes on top of the remote figure).

double handshake_ms(const TlsContext& ctx, const HandshakeCase& k, int rounds) {
  std::vector<double> times;
  for (int i = 0; i < rounds; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    std::unique_ptr<TlsSession> s;
    auto c = handshake(ctx, k, &s);
    auto t1 = std::chrono::steady_clock::now();
    if (!c->connected) return -1;
    times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

TEST_F(TlsRemoteTest, HandshakeCost) {
  constexpr int kRounds = 100;
  for (const HandshakeCase& k : {kCases[0], kCases[1], kCases[3], kCases[4]}) {
    auto local =
        TlsContext::create_server(k.rsa ? rsa_cert_ : ec_cert_, k.rsa ? rsa_key_ : ec_key_);
    ASSERT_TRUE(local.ok()) << local.error().message;
    TestSigner ts(k.rsa ? rsa_signer_ : ec_signer_);
    auto rem = remote(k.rsa ? rsa_cert_ : ec_cert_, ts);
    ASSERT_NE(rem, nullptr);
    handshake_ms(*local.value(), k, 3);  // warm caches
    double l = handshake_ms(*local.value(), k, kRounds);
    double r = handshake_ms(*rem, k, kRounds);
    ASSERT_GT(l, 0);
    ASSERT_GT(r, 0);
    std::printf("[ measure  ] %-16s handshake median: local key %.3f ms, signer %.3f ms\n", k.name,
                l, r);
  }
}

}  // namespace
}  // namespace hearth::net
