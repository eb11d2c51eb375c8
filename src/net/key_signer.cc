// Private-key signing for the keyholder process. Each SignRequest is turned
// into the wolfCrypt call wolfSSL's handshake code makes with a loaded key
// (internal.c EccSign/RsaSign): wc_ecc_sign_hash, wc_EncodeSignature +
// wc_RsaSSL_Sign, wc_RsaPSS_Sign with the default salt length (= hash length).
#include "net/key_signer.h"

// options.h first: it carries the build's feature macros, and the structs in
// the other headers change layout with them.
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace hearth::net {

struct KeySigner::Secret {
  WC_RNG rng;
  ecc_key ecc;
  RsaKey rsa;
  bool rng_ok;
  bool ecc_ok;
  bool rsa_ok;
};

namespace {

using Hash = SignRequest::Hash;
using Algorithm = SignRequest::Algorithm;

constexpr size_t kMaxKeyFile = 64 * 1024;

std::string wolf_error_text(int err) {
  char buf[WOLFSSL_MAX_ERROR_SZ] = {};
  wolfSSL_ERR_error_string(static_cast<unsigned long>(err), buf);
  return std::string(buf) + " (" + std::to_string(err) + ")";
}

// A buffer in libsodium guarded memory: mlocked where RLIMIT_MEMLOCK allows,
// MADV_DONTDUMP, and zeroed by sodium_free.
class SecureBuffer {
 public:
  explicit SecureBuffer(size_t size)
      : data_(static_cast<unsigned char*>(sodium_malloc(size))), size_(size) {}
  ~SecureBuffer() {
    if (data_ != nullptr) sodium_free(data_);
  }
  SecureBuffer(const SecureBuffer&) = delete;
  SecureBuffer& operator=(const SecureBuffer&) = delete;
  unsigned char* data() { return data_; }
  size_t size() const { return size_; }

 private:
  unsigned char* data_;
  size_t size_;
};

int hash_oid(Hash hash) {
  switch (hash) {
    case Hash::kSha1:
      return SHAh;
    case Hash::kSha224:
      return SHA224h;
    case Hash::kSha256:
      return SHA256h;
    case Hash::kSha384:
      return SHA384h;
    case Hash::kSha512:
      return SHA512h;
  }
  return 0;
}

// RFC 8446 §4.2.3: rsa_pss_rsae_sha{256,384,512}, MGF1 with the same hash.
bool pss_params(Hash hash, wc_HashType* type, int* mgf) {
  switch (hash) {
    case Hash::kSha256:
      *type = WC_HASH_TYPE_SHA256;
      *mgf = WC_MGF1SHA256;
      return true;
    case Hash::kSha384:
      *type = WC_HASH_TYPE_SHA384;
      *mgf = WC_MGF1SHA384;
      return true;
    case Hash::kSha512:
      *type = WC_HASH_TYPE_SHA512;
      *mgf = WC_MGF1SHA512;
      return true;
    default:
      return false;
  }
}

// The whole file into guarded memory.
Result<std::unique_ptr<SecureBuffer>> read_key_file(const std::string& path, size_t* size) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error("cannot open TLS key " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
      static_cast<size_t>(st.st_size) > kMaxKeyFile) {
    close(fd);
    return make_error("TLS key " + path + " is not a regular file of 1.." +
                      std::to_string(kMaxKeyFile) + " bytes");
  }
  auto buf = std::make_unique<SecureBuffer>(static_cast<size_t>(st.st_size));
  if (buf->data() == nullptr) {
    close(fd);
    return make_error("out of memory reading TLS key " + path);
  }
  size_t done = 0;
  while (done < buf->size()) {
    ssize_t n = read(fd, buf->data() + done, buf->size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      close(fd);
      return make_error("cannot read TLS key " + path + ": " + std::strerror(e));
    }
    done += static_cast<size_t>(n);
  }
  close(fd);
  *size = done;
  return buf;
}

// The public key of the first certificate in a PEM file, as a DER
// SubjectPublicKeyInfo encoded by wolfCrypt (wc_GetPubKeyDerFromCert gives
// SPKI for EC but the bare RSAPublicKey for RSA; decoding and re-encoding
// makes both comparable with KeySigner::public_key_der()).
Result<std::string> certificate_spki(const std::string& cert_path) {
  WOLFSSL_X509* x = wolfSSL_X509_load_certificate_file(cert_path.c_str(), WOLFSSL_FILETYPE_PEM);
  if (x == nullptr) {
    wolfSSL_ERR_clear_error();
    return make_error("cannot read certificate " + cert_path);
  }
  int der_size = 0;
  const unsigned char* der = wolfSSL_X509_get_der(x, &der_size);
  std::vector<byte> raw(4096);
  word32 raw_size = static_cast<word32>(raw.size());
  word32 key_oid = 0;
  int ret = der == nullptr || der_size <= 0 ? BAD_FUNC_ARG : 0;
  if (ret == 0) {
    DecodedCert dc;
    wc_InitDecodedCert(&dc, der, static_cast<word32>(der_size), nullptr);
    ret = wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, nullptr);
    if (ret == 0) {
      key_oid = dc.keyOID;
      ret = wc_GetPubKeyDerFromCert(&dc, raw.data(), &raw_size);
    }
    wc_FreeDecodedCert(&dc);
  }
  wolfSSL_X509_free(x);
  std::vector<byte> spki(4096);
  word32 idx = 0;
  if (ret == 0 && key_oid == ECDSAk) {
    ecc_key key;
    ret = wc_ecc_init(&key);
    if (ret == 0) {
      ret = wc_EccPublicKeyDecode(raw.data(), &idx, &key, raw_size);
      if (ret == 0) {
        ret = wc_EccPublicKeyToDer(&key, spki.data(), static_cast<word32>(spki.size()), 1);
      }
      wc_ecc_free(&key);
    }
  } else if (ret == 0 && key_oid == RSAk) {
    RsaKey key;
    ret = wc_InitRsaKey(&key, nullptr);
    if (ret == 0) {
      ret = wc_RsaPublicKeyDecode(raw.data(), &idx, &key, raw_size);
      if (ret == 0) {
        ret = wc_RsaKeyToPublicDer(&key, spki.data(), static_cast<word32>(spki.size()));
      }
      wc_FreeRsaKey(&key);
    }
  } else if (ret == 0) {
    return make_error("certificate " + cert_path + " has neither an EC nor an RSA key");
  }
  if (ret <= 0) {
    return make_error("cannot read the public key of certificate " + cert_path + ": " +
                      wolf_error_text(ret));
  }
  return std::string(reinterpret_cast<const char*>(spki.data()), static_cast<size_t>(ret));
}

}  // namespace

Result<std::unique_ptr<KeySigner>> KeySigner::load(const std::string& key_path) {
  if (sodium_init() < 0) return make_error("libsodium initialisation failed");
  if (wolfSSL_Init() != WOLFSSL_SUCCESS) return make_error("wolfSSL_Init failed");

  size_t pem_size = 0;
  auto pem = read_key_file(key_path, &pem_size);
  if (!pem) return pem.error();
  SecureBuffer der(pem_size);
  if (der.data() == nullptr) return make_error("out of memory reading TLS key " + key_path);
  int der_size = wc_KeyPemToDer((*pem)->data(), static_cast<word32>(pem_size), der.data(),
                                static_cast<word32>(der.size()), nullptr);
  if (der_size <= 0) {
    return make_error("TLS key " + key_path +
                      " is not an unencrypted PEM private key: " + wolf_error_text(der_size));
  }

  std::unique_ptr<KeySigner> self(new KeySigner());
  self->secret_ = static_cast<Secret*>(sodium_malloc(sizeof(Secret)));
  if (self->secret_ == nullptr) return make_error("out of memory loading TLS key " + key_path);
  Secret* s = self->secret_;
  std::memset(s, 0, sizeof *s);
  if (wc_InitRng(&s->rng) != 0) return make_error("cannot initialise the random generator");
  s->rng_ok = true;

  // Both decoders take the bare key (SEC1, PKCS#1) or its PKCS#8 wrapping.
  word32 idx = 0;
  int ret = wc_ecc_init(&s->ecc);
  if (ret == 0) {
    s->ecc_ok = true;
    ret = wc_EccPrivateKeyDecode(der.data(), &idx, &s->ecc, static_cast<word32>(der_size));
  }
  if (ret == 0) {
    self->type_ = Type::kEcdsa;
  } else {
    if (s->ecc_ok) wc_ecc_free(&s->ecc);
    s->ecc_ok = false;
    idx = 0;
    ret = wc_InitRsaKey(&s->rsa, nullptr);
    if (ret == 0) {
      s->rsa_ok = true;
      ret = wc_RsaPrivateKeyDecode(der.data(), &idx, &s->rsa, static_cast<word32>(der_size));
    }
    if (ret != 0) {
      return make_error("TLS key " + key_path +
                        " is neither an EC nor an RSA private key: " + wolf_error_text(ret));
    }
    // Blinding (WC_RSA_BLINDING) needs the key's RNG.
    ret = wc_RsaSetRNG(&s->rsa, &s->rng);
    if (ret != 0) return make_error("cannot set up the RSA key: " + wolf_error_text(ret));
    self->type_ = Type::kRsa;
  }

  std::vector<byte> pub(4096);
  ret = self->type_ == Type::kEcdsa
            ? wc_EccPublicKeyToDer(&s->ecc, pub.data(), static_cast<word32>(pub.size()), 1)
            : wc_RsaKeyToPublicDer(&s->rsa, pub.data(), static_cast<word32>(pub.size()));
  if (ret <= 0) {
    return make_error("cannot encode the public key of " + key_path + ": " + wolf_error_text(ret));
  }
  self->public_der_.assign(reinterpret_cast<const char*>(pub.data()), static_cast<size_t>(ret));
  return self;
}

KeySigner::~KeySigner() {
  if (secret_ == nullptr) return;
  // wc_ecc_free / wc_FreeRsaKey zero the private numbers; sodium_free then
  // wipes the whole block.
  if (secret_->ecc_ok) wc_ecc_free(&secret_->ecc);
  if (secret_->rsa_ok) wc_FreeRsaKey(&secret_->rsa);
  if (secret_->rng_ok) wc_FreeRng(&secret_->rng);
  sodium_free(secret_);
}

Status KeySigner::check_certificate(const std::string& cert_path) const {
  auto spki = certificate_spki(cert_path);
  if (!spki) return spki.error();
  if (spki.value() != public_der_) {
    return make_error("certificate " + cert_path + " is not for this key");
  }
  return {};
}

Result<std::string> KeySigner::sign(const SignRequest& req) {
  size_t dlen = digest_size(req.hash_type);
  if (dlen == 0 || req.digest.size() != dlen) {
    return make_error("digest of " + std::to_string(req.digest.size()) +
                      " bytes does not match its hash");
  }
  const auto* digest = reinterpret_cast<const byte*>(req.digest.data());
  Secret* s = secret_;

  if (req.algorithm == Algorithm::kEcdsa) {
    if (type_ != Type::kEcdsa) return make_error("ECDSA requested of an RSA key");
    int cap = wc_ecc_sig_size(&s->ecc);
    if (cap <= 0) return make_error("cannot size the ECDSA signature");
    std::string sig(static_cast<size_t>(cap), '\0');
    word32 sig_size = static_cast<word32>(sig.size());
    int ret = wc_ecc_sign_hash(digest, static_cast<word32>(dlen),
                               reinterpret_cast<byte*>(sig.data()), &sig_size, &s->rng, &s->ecc);
    if (ret != 0) return make_error("ECDSA signing failed: " + wolf_error_text(ret));
    sig.resize(sig_size);
    return sig;
  }

  if (req.algorithm != Algorithm::kRsaPkcs1 && req.algorithm != Algorithm::kRsaPss) {
    return make_error("unknown signature algorithm");
  }
  if (type_ != Type::kRsa) return make_error("RSA requested of an EC key");
  int modulus = wc_RsaEncryptSize(&s->rsa);
  if (modulus <= 0) return make_error("cannot size the RSA signature");
  std::string sig(static_cast<size_t>(modulus), '\0');
  auto* out = reinterpret_cast<byte*>(sig.data());
  std::vector<byte> check(static_cast<size_t>(modulus));
  int ret = 0;
  int verified = 0;
  if (req.algorithm == Algorithm::kRsaPkcs1) {
    byte info[MAX_DER_DIGEST_SZ];
    word32 info_size =
        wc_EncodeSignature(info, digest, static_cast<word32>(dlen), hash_oid(req.hash_type));
    if (info_size == 0) return make_error("cannot encode the DigestInfo");
    ret = wc_RsaSSL_Sign(info, info_size, out, static_cast<word32>(sig.size()), &s->rsa, &s->rng);
    if (ret <= 0) return make_error("RSA signing failed: " + wolf_error_text(ret));
    sig.resize(static_cast<size_t>(ret));
    verified = wc_RsaSSL_Verify(out, static_cast<word32>(sig.size()), check.data(),
                                static_cast<word32>(check.size()), &s->rsa);
    if (verified != static_cast<int>(info_size) ||
        std::memcmp(check.data(), info, info_size) != 0) {
      return make_error("RSA signature failed its own check");
    }
    return sig;
  }
  wc_HashType type = WC_HASH_TYPE_NONE;
  int mgf = 0;
  if (!pss_params(req.hash_type, &type, &mgf)) return make_error("RSA-PSS with an unusable hash");
  ret = wc_RsaPSS_Sign(digest, static_cast<word32>(dlen), out, static_cast<word32>(sig.size()),
                       type, mgf, &s->rsa, &s->rng);
  if (ret <= 0) return make_error("RSA-PSS signing failed: " + wolf_error_text(ret));
  sig.resize(static_cast<size_t>(ret));
  verified = wc_RsaPSS_VerifyCheck(out, static_cast<word32>(sig.size()), check.data(),
                                   static_cast<word32>(check.size()), digest,
                                   static_cast<word32>(dlen), type, mgf, &s->rsa);
  if (verified <= 0) return make_error("RSA-PSS signature failed its own check");
  return sig;
}

}  // namespace hearth::net
