// wolfSSL server sessions over memory buffers, and the self-signed
// certificate a fresh install starts with.
//
// Remote signing (create_server_remote): the reactor completes handshakes
// without the private key; the keyholder process signs.
//  * What: wolfSSL's PK callbacks (HAVE_PK_CALLBACKS, on in Debian's 5.5.4):
//    wolfSSL_CTX_SetEccSignCb, wolfSSL_CTX_SetRsaSignCb and
//    wolfSSL_CTX_SetRsaPssSignCb are set on the context, and the
//    certificate's own PUBLIC key (wc_GetPubKeyDerFromCert: the
//    SubjectPublicKeyInfo for EC, the RSAPublicKey for RSA) is loaded with
//    wolfSSL_CTX_use_PrivateKey_buffer as a placeholder. wolfSSL accepts a public key there only
//    when a private-key PK callback is already set (wolfSSL_CTX_IsPrivatePkSet; upstream PRs
//    #4921/#4969, wolfssl-examples tls/server-tls-pkcallback.c), so the
//    callbacks are set first. wolfSSL uses the placeholder for the key type
//    and the signature size, and for RSA to check our signature (TLS 1.3
//    CertificateVerify); it never does a private-key operation with it.
//    The callbacks turn wolfSSL's input into a SignRequest (digest for
//    ECDSA and RSA-PSS, DigestInfo taken apart for PKCS#1 v1.5) and call
//    the Signer, a synchronous round trip to the keyholder (this wolfSSL has
//    no WOLFSSL_ASYNC_CRYPT, so a callback cannot return "pending").
//  * Why not wolfSSL_CTX_use_PrivateKey_Id + a crypto callback
//    (wc_CryptoCb_RegisterDevice, WOLF_CRYPTO_CB): the device table is
//    process-global, a devId on the context routes every hash, cipher and
//    ECDHE operation of every session through the callback first, and the
//    RSA callback is handed the already padded block, which would make the
//    keyholder a raw RSA private-key oracle. PK callbacks give it a digest
//    that it pads itself.
//  * Loading no key at all is also accepted by 5.5.4 for ECDSA but crashes
//    in the RSA path, so the placeholder is required.
// A wrong signature from the signer fails the handshake: wolfSSL checks
// every RSA signature (PKCS#1 and PSS) with the placeholder before sending
// it, so the session fails at once; ECDSA signatures it does not check, the
// client refuses them (in TLS 1.3 its alert fails our session, in TLS 1.2
// wolfSSL-style clients just drop the connection).
#include "net/tls.h"

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
#include <wolfssl/wolfcrypt/sha.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/sha512.h>

#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sodium.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>

namespace hearth::net {
namespace {

constexpr char kAlpnXmpp[] = "xmpp-client";
constexpr char kExporterLabel[] = "EXPORTER-Channel-Binding";  // RFC 9266 §2
constexpr size_t kExporterLength = 32;

// TLS 1.3 AEAD suites, then TLS 1.2 forward-secret AEAD suites. Nothing with
// CBC, static RSA, DHE or a non-AEAD MAC. ChaCha20-Poly1305 first (the
// server's order decides): Debian's wolfSSL has no AES-NI/ARMv8-crypto
// code, and there ChaCha20-Poly1305 seals a 300-byte record in 0.9 us
// against 1.95 us for table-based AES-GCM, which also leaks through cache
// timing where ChaCha20 does not; boards without AES instructions (the
// Raspberry Pi 4's Cortex-A72 has none) gain the most.
constexpr char kCipherList[] =
    "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384";

// Once per process, before any other wolfSSL call. Thread-safe by the
// static-local rule; the reactor is single-threaded anyway.
bool ensure_wolfssl_init() {
  static const bool ok = wolfSSL_Init() == WOLFSSL_SUCCESS;
  return ok;
}

std::string wolf_error_text(int err) {
  char buf[WOLFSSL_MAX_ERROR_SZ] = {};
  wolfSSL_ERR_error_string(static_cast<unsigned long>(err), buf);
  return std::string(buf) + " (" + std::to_string(err) + ")";
}

// The most specific reason for a failed file load: errno for unreadable
// files, else wolfSSL's queued error, else the return code.
std::string load_failure_reason(const std::string& path, int ret) {
  if (access(path.c_str(), R_OK) != 0) return std::strerror(errno);
  unsigned long queued = wolfSSL_ERR_get_error();
  wolfSSL_ERR_clear_error();
  if (queued != 0) return wolf_error_text(static_cast<int>(queued));
  return wolf_error_text(ret);
}

std::string hex_colon_upper(const unsigned char* p, size_t n) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string s;
  s.reserve(n * 3);
  for (size_t i = 0; i < n; ++i) {
    if (i != 0) s.push_back(':');
    s.push_back(kHex[p[i] >> 4]);
    s.push_back(kHex[p[i] & 0x0f]);
  }
  return s;
}

struct X509Deleter {
  void operator()(WOLFSSL_X509* x) const { wolfSSL_X509_free(x); }
};
using X509Ptr = std::unique_ptr<WOLFSSL_X509, X509Deleter>;

// The first certificate of a PEM file (the leaf of a chain file).
Result<X509Ptr> load_leaf(const std::string& path) {
  if (!ensure_wolfssl_init()) return make_error("wolfSSL_Init failed");
  X509Ptr x(wolfSSL_X509_load_certificate_file(path.c_str(), WOLFSSL_FILETYPE_PEM));
  if (!x) return make_error(load_failure_reason(path, WOLFSSL_FAILURE));
  return x;
}

std::string leaf_der(WOLFSSL_X509* x) {
  int sz = 0;
  const unsigned char* der = wolfSSL_X509_get_der(x, &sz);
  if (der == nullptr || sz <= 0) return {};
  return std::string(reinterpret_cast<const char*>(der), static_cast<size_t>(sz));
}

std::string sha256_fingerprint(const std::string& der) {
  unsigned char digest[WC_SHA256_DIGEST_SIZE];
  if (wc_Sha256Hash(reinterpret_cast<const byte*>(der.data()), static_cast<word32>(der.size()),
                    digest) != 0) {
    return {};
  }
  return hex_colon_upper(digest, sizeof digest);
}

// RFC 5929 §4.1 tls-server-end-point: the certificate hashed with the hash of
// its signature algorithm, SHA-256 when that is MD5 or SHA-1. Algorithms with
// no single hash (EdDSA, RSASSA-PSS whose hash sits in parameters) are left
// undefined by the RFC; we use SHA-256 for them as well, so a client that
// supports them at all most likely agrees.
std::string end_point_hash(const std::string& der, int sig_oid) {
  wc_HashType type = WC_HASH_TYPE_SHA256;
  switch (sig_oid) {
    case CTC_SHA224wRSA:
    case CTC_SHA224wECDSA:
      type = WC_HASH_TYPE_SHA224;
      break;
    case CTC_SHA384wRSA:
    case CTC_SHA384wECDSA:
      type = WC_HASH_TYPE_SHA384;
      break;
    case CTC_SHA512wRSA:
    case CTC_SHA512wECDSA:
      type = WC_HASH_TYPE_SHA512;
      break;
    default:
      break;
  }
  int len = wc_HashGetDigestSize(type);
  if (len <= 0) return {};
  std::string out(static_cast<size_t>(len), '\0');
  if (wc_Hash(type, reinterpret_cast<const byte*>(der.data()), static_cast<word32>(der.size()),
              reinterpret_cast<byte*>(out.data()), static_cast<word32>(out.size())) != 0) {
    return {};
  }
  return out;
}

bool file_exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

// Writes `data` to path+".tmp" (created 0600 or `mode`, never following a
// planted symlink), fsyncs it and leaves the rename to the caller.
Status write_temp(const std::string& tmp, const unsigned char* data, size_t size, mode_t mode) {
  if (unlink(tmp.c_str()) != 0 && errno != ENOENT) {
    return make_error("cannot remove stale " + tmp + ": " + std::strerror(errno));
  }
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return make_error("cannot create " + tmp + ": " + std::strerror(errno));
  // The umask may have narrowed the mode; make it exact.
  if (fchmod(fd, mode) != 0) {
    int e = errno;
    close(fd);
    unlink(tmp.c_str());
    return make_error("cannot chmod " + tmp + ": " + std::strerror(e));
  }
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      close(fd);
      unlink(tmp.c_str());
      return make_error("cannot write " + tmp + ": " + std::strerror(e));
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    int e = errno;
    close(fd);
    unlink(tmp.c_str());
    return make_error("cannot fsync " + tmp + ": " + std::strerror(e));
  }
  if (close(fd) != 0) {
    int e = errno;
    unlink(tmp.c_str());
    return make_error("cannot close " + tmp + ": " + std::strerror(e));
  }
  return {};
}

void fsync_parent_dir(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  fsync(fd);  // best effort: the files themselves are already durable
  close(fd);
}

// DER Time: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280
// §4.1.2.5). `out` receives tag, length and value, as Cert.beforeDate wants.
int encode_time(const struct tm& t, byte* out, size_t cap) {
  int year = t.tm_year + 1900;
  char buf[32];
  int n;
  if (year < 2050) {
    n = snprintf(buf, sizeof buf, "%02d%02d%02d%02d%02d%02dZ", year % 100, t.tm_mon + 1, t.tm_mday,
                 t.tm_hour, t.tm_min, t.tm_sec);
  } else {
    n = snprintf(buf, sizeof buf, "%04d%02d%02d%02d%02d%02dZ", year, t.tm_mon + 1, t.tm_mday,
                 t.tm_hour, t.tm_min, t.tm_sec);
  }
  if (n <= 0 || static_cast<size_t>(n) + 2 > cap) return -1;
  out[0] = year < 2050 ? 0x17 : 0x18;  // UTCTime : GeneralizedTime
  out[1] = static_cast<byte>(n);
  memcpy(out + 2, buf, static_cast<size_t>(n));
  return n + 2;
}

bool is_leap(int year) {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

// DER length octets for short and two-byte long form (enough for a SAN).
void append_der_length(std::string* out, size_t len) {
  if (len < 0x80) {
    out->push_back(static_cast<char>(len));
  } else if (len <= 0xff) {
    out->push_back(static_cast<char>(0x81));
    out->push_back(static_cast<char>(len));
  } else {
    out->push_back(static_cast<char>(0x82));
    out->push_back(static_cast<char>((len >> 8) & 0xff));
    out->push_back(static_cast<char>(len & 0xff));
  }
}

// GeneralNames ::= SEQUENCE OF GeneralName, each dNSName [2] IA5String.
std::string san_der(const std::string& domain) {
  std::string names;
  for (const std::string& name : {domain, "*." + domain}) {
    names.push_back(static_cast<char>(0x82));
    append_der_length(&names, name.size());
    names += name;
  }
  std::string seq;
  seq.push_back(0x30);
  append_der_length(&seq, names.size());
  return seq + names;
}

// wolfSSL 5.5.4 has no public accessor for "extended master secret was
// negotiated" (ssl->options.haveEMS is internal, and the session object is
// empty with the session cache off). The server echoes the RFC 7627
// extension in its ServerHello exactly when it uses EMS, and the ServerHello
// is the first handshake message of our own first flight, so we read it
// there: bytes wolfSSL wrote, not peer input.
bool server_hello_has_ems(std::string_view flight) {
  auto u8 = [](std::string_view s, size_t i) { return static_cast<unsigned char>(s[i]); };
  // Reassemble the first handshake message from the leading handshake records.
  std::string msg;
  size_t pos = 0;
  while (pos + 5 <= flight.size()) {
    if (u8(flight, pos) != 22) break;  // not a handshake record
    size_t len = (size_t{u8(flight, pos + 3)} << 8) | u8(flight, pos + 4);
    if (pos + 5 + len > flight.size()) break;
    msg.append(flight.substr(pos + 5, len));
    pos += 5 + len;
    if (msg.size() >= 4 &&
        msg.size() >= 4 + ((size_t{u8(msg, 1)} << 16) | (size_t{u8(msg, 2)} << 8) | u8(msg, 3))) {
      break;
    }
  }
  if (msg.size() < 4 || u8(msg, 0) != 2) return false;  // not a ServerHello
  size_t end = 4 + ((size_t{u8(msg, 1)} << 16) | (size_t{u8(msg, 2)} << 8) | u8(msg, 3));
  if (end > msg.size()) return false;
  size_t p = 4 + 2 + 32;  // version, random
  if (p + 1 > end) return false;
  p += 1 + u8(msg, p);  // session_id
  p += 2 + 1;           // cipher_suite, compression_method
  if (p + 2 > end) return false;
  size_t ext_end = p + 2 + ((size_t{u8(msg, p)} << 8) | u8(msg, p + 1));
  if (ext_end > end) return false;
  p += 2;
  while (p + 4 <= ext_end) {
    unsigned type = (unsigned{u8(msg, p)} << 8) | u8(msg, p + 1);
    size_t len = (size_t{u8(msg, p + 2)} << 8) | u8(msg, p + 3);
    if (type == 23) return true;  // extended_master_secret
    p += 4 + len;
  }
  return false;
}

struct RngGuard {
  WC_RNG rng;
  bool ok = false;
  RngGuard() { ok = wc_InitRng(&rng) == 0; }
  ~RngGuard() {
    if (ok) wc_FreeRng(&rng);
  }
};

struct EccGuard {
  ecc_key key;
  bool ok = false;
  EccGuard() { ok = wc_ecc_init(&key) == 0; }
  ~EccGuard() {
    if (ok) wc_ecc_free(&key);  // wc_ecc_free zeroes the private scalar
  }
};

struct CertGuard {
  Cert* cert = wc_CertNew(nullptr);  // ~25 KiB: never on the stack
  ~CertGuard() {
    if (cert != nullptr) wc_CertFree(cert);
  }
};

}  // namespace

Status ensure_self_signed(const std::string& domain, const std::string& cert_path,
                          const std::string& key_path) {
  bool have_cert = file_exists(cert_path);
  bool have_key = file_exists(key_path);
  if (have_cert && have_key) return {};
  if (have_cert != have_key) {
    const std::string& present = have_cert ? cert_path : key_path;
    const std::string& missing = have_cert ? key_path : cert_path;
    return make_error("TLS " + std::string(have_cert ? "certificate " : "key ") + present +
                      " exists but " + (have_cert ? "key " : "certificate ") + missing +
                      " does not; restore it or remove " + present +
                      " to generate a new self-signed pair");
  }
  if (domain.empty() || domain.size() > 253) {
    return make_error("cannot create a self-signed certificate for domain '" + domain + "'");
  }
  if (!ensure_wolfssl_init()) return make_error("wolfSSL_Init failed");

  RngGuard rng;
  if (!rng.ok) return make_error("cannot initialise the random generator");
  EccGuard key;
  if (!key.ok) return make_error("cannot initialise an ECC key");
  int ret = wc_ecc_make_key_ex(&rng.rng, 32, &key.key, ECC_SECP256R1);
  if (ret != 0) return make_error("cannot generate a P-256 key: " + wolf_error_text(ret));

  CertGuard cg;
  if (cg.cert == nullptr) return make_error("out of memory creating a certificate");
  Cert* cert = cg.cert;
  cert->version = 2;  // X.509 v3
  cert->sigType = CTC_SHA256wECDSA;
  cert->keyType = ECC_KEY;
  cert->selfSigned = 1;
  cert->isCA = 0;
  cert->basicConstSet = 1;  // emit basicConstraints CA:FALSE explicitly
  // X.520 caps commonName at 64 characters; the SAN carries the name anyway.
  if (domain.size() < CTC_NAME_SIZE) {
    memcpy(cert->subject.commonName, domain.c_str(), domain.size() + 1);
  }
  static const char kOrg[] = "Hearth self-signed";
  memcpy(cert->subject.org, kOrg, sizeof kOrg);

  // A positive 128-bit serial: top bit clear, top byte non-zero (minimal DER).
  if (wc_RNG_GenerateBlock(&rng.rng, cert->serial, 16) != 0) {
    return make_error("cannot generate a certificate serial");
  }
  cert->serial[0] = static_cast<byte>((cert->serial[0] & 0x7f) | 0x40);
  cert->serialSz = 16;

  // now - 1 h .. now + 10 years, computed on broken-down UTC time so a
  // 32-bit time_t never has to hold the end date.
  time_t now = time(nullptr);
  struct tm before_tm;
  struct tm now_tm;
  time_t before = now - 3600;
  if (gmtime_r(&before, &before_tm) == nullptr || gmtime_r(&now, &now_tm) == nullptr) {
    return make_error("cannot read the clock");
  }
  struct tm after_tm = now_tm;
  after_tm.tm_year += 10;
  if (after_tm.tm_mon == 1 && after_tm.tm_mday == 29 && !is_leap(after_tm.tm_year + 1900)) {
    after_tm.tm_mday = 28;
  }
  cert->beforeDateSz = encode_time(before_tm, cert->beforeDate, sizeof cert->beforeDate);
  cert->afterDateSz = encode_time(after_tm, cert->afterDate, sizeof cert->afterDate);
  if (cert->beforeDateSz <= 0 || cert->afterDateSz <= 0) {
    return make_error("cannot encode the certificate validity");
  }

  std::string san = san_der(domain);
  if (san.size() > sizeof cert->altNames) return make_error("domain too long for a certificate");
  memcpy(cert->altNames, san.data(), san.size());
  cert->altNamesSz = static_cast<int>(san.size());

  if ((ret = wc_SetSubjectKeyIdFromPublicKey(cert, nullptr, &key.key)) != 0 ||
      (ret = wc_SetKeyUsage(cert, "digitalSignature")) != 0 ||
      (ret = wc_SetExtKeyUsage(cert, "serverAuth,clientAuth")) != 0) {
    return make_error("cannot set certificate extensions: " + wolf_error_text(ret));
  }

  std::vector<byte> der(4096);
  ret = wc_MakeCert(cert, der.data(), static_cast<word32>(der.size()), nullptr, &key.key, &rng.rng);
  if (ret <= 0) return make_error("cannot build the certificate: " + wolf_error_text(ret));
  ret = wc_SignCert(cert->bodySz, cert->sigType, der.data(), static_cast<word32>(der.size()),
                    nullptr, &key.key, &rng.rng);
  if (ret <= 0) return make_error("cannot sign the certificate: " + wolf_error_text(ret));
  int der_size = ret;

  std::vector<byte> cert_pem(8192);
  ret = wc_DerToPem(der.data(), static_cast<word32>(der_size), cert_pem.data(),
                    static_cast<word32>(cert_pem.size()), CERT_TYPE);
  if (ret <= 0) return make_error("cannot encode the certificate: " + wolf_error_text(ret));
  size_t cert_pem_size = static_cast<size_t>(ret);

  // The private key: SEC1 DER, then PEM; both buffers are wiped below.
  byte key_der[256];
  byte key_pem[512];
  ret = wc_EccKeyToDer(&key.key, key_der, sizeof key_der);
  int key_pem_size = -1;
  if (ret > 0) {
    key_pem_size = wc_DerToPem(key_der, static_cast<word32>(ret), key_pem, sizeof key_pem,
                               ECC_PRIVATEKEY_TYPE);
  }
  sodium_memzero(key_der, sizeof key_der);
  if (key_pem_size <= 0) {
    sodium_memzero(key_pem, sizeof key_pem);
    return make_error("cannot encode the private key: " +
                      wolf_error_text(ret <= 0 ? ret : key_pem_size));
  }

  std::string key_tmp = key_path + ".tmp";
  std::string cert_tmp = cert_path + ".tmp";
  Status st = write_temp(key_tmp, key_pem, static_cast<size_t>(key_pem_size), 0600);
  sodium_memzero(key_pem, sizeof key_pem);
  if (!st) return st;
  st = write_temp(cert_tmp, cert_pem.data(), cert_pem_size, 0644);
  if (!st) {
    unlink(key_tmp.c_str());
    return st;
  }
  // Key first: a crash between the renames leaves "key without certificate",
  // which the next start reports instead of silently replacing.
  if (rename(key_tmp.c_str(), key_path.c_str()) != 0) {
    int e = errno;
    unlink(key_tmp.c_str());
    unlink(cert_tmp.c_str());
    return make_error("cannot rename " + key_tmp + " to " + key_path + ": " + std::strerror(e));
  }
  if (rename(cert_tmp.c_str(), cert_path.c_str()) != 0) {
    int e = errno;
    unlink(cert_tmp.c_str());
    return make_error("cannot rename " + cert_tmp + " to " + cert_path + ": " + std::strerror(e));
  }
  fsync_parent_dir(key_path);
  fsync_parent_dir(cert_path);
  return {};
}

Result<std::string> certificate_fingerprint(const std::string& cert_path) {
  auto leaf = load_leaf(cert_path);
  if (!leaf)
    return make_error("cannot read certificate " + cert_path + ": " + leaf.error().message);
  std::string der = leaf_der(leaf->get());
  std::string fp = der.empty() ? std::string() : sha256_fingerprint(der);
  if (fp.empty()) return make_error("cannot hash certificate " + cert_path);
  return fp;
}

// ---------------------------------------------------------------------------

// Per-context state of remote signing, reached from the PK callbacks via
// the WOLFSSL_CTX's ex_data.
struct RemoteKey {
  Signer signer;
};

namespace {

using SignHash = SignRequest::Hash;

// ex_data slots: the context's RemoteKey, the session's TlsSession (to keep
// the signer's error message for TlsSession::error()).
int ctx_ex_index() {
  static const int index = wolfSSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int ssl_ex_index() {
  static const int index = wolfSSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

constexpr SignHash kAllHashes[] = {SignHash::kSha1, SignHash::kSha224, SignHash::kSha256,
                                   SignHash::kSha384, SignHash::kSha512};

// wolfSSL's Hash_Sum value (asn.h), as its DigestInfo encoder and the PSS
// callback use it.
int hash_oid(SignHash hash) {
  switch (hash) {
    case SignHash::kSha1:
      return SHAh;
    case SignHash::kSha224:
      return SHA224h;
    case SignHash::kSha256:
      return SHA256h;
    case SignHash::kSha384:
      return SHA384h;
    case SignHash::kSha512:
      return SHA512h;
  }
  return 0;
}

// Keeps why the signer failed in the asking TlsSession (its sign_error_).
void note_sign_error(WOLFSSL* ssl, const std::string& why) {
  auto* slot = static_cast<std::string*>(wolfSSL_get_ex_data(ssl, ssl_ex_index()));
  if (slot != nullptr) *slot = why;
}

// Calls the context's Signer and copies its answer into wolfSSL's buffer.
// Any failure is WC_HW_E ("error with hardware crypto use"): the handshake
// fails with a fatal error.
int remote_sign(WOLFSSL* ssl, const SignRequest& req, unsigned char* out, word32* out_size) {
  WOLFSSL_CTX* ctx = wolfSSL_get_SSL_CTX(ssl);
  auto* remote = ctx == nullptr
                     ? nullptr
                     : static_cast<RemoteKey*>(wolfSSL_CTX_get_ex_data(ctx, ctx_ex_index()));
  if (remote == nullptr || !remote->signer) {
    note_sign_error(ssl, "no signer");
    return WC_HW_E;
  }
  Result<std::string> sig = remote->signer(req);
  if (!sig.ok()) {
    note_sign_error(ssl, sig.error().message);
    return WC_HW_E;
  }
  if (sig->empty() || sig->size() > *out_size) {
    note_sign_error(ssl, "signature of " + std::to_string(sig->size()) + " bytes does not fit " +
                             std::to_string(*out_size));
    return WC_HW_E;
  }
  memcpy(out, sig->data(), sig->size());
  *out_size = static_cast<word32>(sig->size());
  return 0;
}

// CallbackEccSign: `in` is the handshake hash (TLS 1.2 ServerKeyExchange
// params or TLS 1.3 CertificateVerify content, hashed by wolfSSL).
int ecc_sign_cb(WOLFSSL* ssl, const unsigned char* in, unsigned int in_size, unsigned char* out,
                word32* out_size, const unsigned char*, unsigned int, void*) {
  SignRequest req;
  req.algorithm = SignRequest::Algorithm::kEcdsa;
  bool known = false;
  for (SignHash h : kAllHashes) {
    if (digest_size(h) == in_size) {
      req.hash_type = h;
      known = true;
    }
  }
  if (!known) {
    note_sign_error(ssl, "ECDSA input of unexpected size " + std::to_string(in_size));
    return WC_HW_E;
  }
  req.digest.assign(reinterpret_cast<const char*>(in), in_size);
  return remote_sign(ssl, req, out, out_size);
}

// CallbackRsaSign: `in` is the DER DigestInfo wolfSSL built with
// wc_EncodeSignature (PKCS#1 v1.5, TLS 1.2). We pass on only the hash and
// the digest; an input that is not exactly such an encoding is refused.
int rsa_sign_cb(WOLFSSL* ssl, const unsigned char* in, unsigned int in_size, unsigned char* out,
                word32* out_size, const unsigned char*, unsigned int, void*) {
  static const unsigned char kZeros[WC_MAX_DIGEST_SIZE] = {};
  for (SignHash h : kAllHashes) {
    size_t dlen = digest_size(h);
    unsigned char expected[MAX_DER_DIGEST_SZ];
    word32 elen = wc_EncodeSignature(expected, kZeros, static_cast<word32>(dlen), hash_oid(h));
    if (elen == 0 || elen != in_size || memcmp(expected, in, elen - dlen) != 0) continue;
    SignRequest req;
    req.algorithm = SignRequest::Algorithm::kRsaPkcs1;
    req.hash_type = h;
    req.digest.assign(reinterpret_cast<const char*>(in) + (elen - dlen), dlen);
    return remote_sign(ssl, req, out, out_size);
  }
  note_sign_error(ssl, "RSA input is not a DigestInfo");
  return WC_HW_E;
}

// CallbackRsaPssSign: `in` is the digest, `hash` wolfSSL's Hash_Sum and
// `mgf` its WC_MGF1* value; TLS uses MGF1 with the signature's hash.
int rsa_pss_sign_cb(WOLFSSL* ssl, const unsigned char* in, unsigned int in_size, unsigned char* out,
                    unsigned int* out_size, int hash, int mgf, const unsigned char*, unsigned int,
                    void*) {
  SignRequest req;
  req.algorithm = SignRequest::Algorithm::kRsaPss;
  if (hash == SHA256h && mgf == WC_MGF1SHA256) {
    req.hash_type = SignHash::kSha256;
  } else if (hash == SHA384h && mgf == WC_MGF1SHA384) {
    req.hash_type = SignHash::kSha384;
  } else if (hash == SHA512h && mgf == WC_MGF1SHA512) {
    req.hash_type = SignHash::kSha512;
  } else {
    note_sign_error(ssl,
                    "unsupported RSA-PSS hash " + std::to_string(hash) + "/" + std::to_string(mgf));
    return WC_HW_E;
  }
  if (in_size != digest_size(req.hash_type)) {
    note_sign_error(ssl, "RSA-PSS input of unexpected size " + std::to_string(in_size));
    return WC_HW_E;
  }
  req.digest.assign(reinterpret_cast<const char*>(in), in_size);
  word32 size = *out_size;
  int ret = remote_sign(ssl, req, out, &size);
  *out_size = size;
  return ret;
}

}  // namespace

size_t digest_size(SignRequest::Hash hash) {
  switch (hash) {
    case SignHash::kSha1:
      return WC_SHA_DIGEST_SIZE;
    case SignHash::kSha224:
      return WC_SHA224_DIGEST_SIZE;
    case SignHash::kSha256:
      return WC_SHA256_DIGEST_SIZE;
    case SignHash::kSha384:
      return WC_SHA384_DIGEST_SIZE;
    case SignHash::kSha512:
      return WC_SHA512_DIGEST_SIZE;
  }
  return 0;
}

namespace {

// Client half of the start-up self-test: memory I/O on a pair of strings.
struct LoopbackIo {
  std::string* in;
  size_t pos = 0;
  std::string* out;
};

int loopback_recv(WOLFSSL*, char* buf, int sz, void* ctx) {
  auto* io = static_cast<LoopbackIo*>(ctx);
  size_t avail = io->in->size() - io->pos;
  if (avail == 0) return WOLFSSL_CBIO_ERR_WANT_READ;
  size_t n = sz < 0 ? 0 : static_cast<size_t>(sz);
  if (n > avail) n = avail;
  memcpy(buf, io->in->data() + io->pos, n);
  io->pos += n;
  return static_cast<int>(n);
}

int loopback_send(WOLFSSL*, char* buf, int sz, void* ctx) {
  if (sz <= 0) return 0;
  static_cast<LoopbackIo*>(ctx)->out->append(buf, static_cast<size_t>(sz));
  return sz;
}

}  // namespace

// A handshake between a throwaway client and a TlsSession of `ctx`: the
// client checks the CertificateVerify (TLS 1.3) or ServerKeyExchange (TLS
// 1.2) signature against the certificate even without chain verification, so
// a key that does not belong to the certificate fails here. `tls12` runs TLS
// 1.2 restricted to PKCS#1 v1.5 signatures, the one RSA scheme TLS 1.3 does
// not use.
bool TlsContext::self_test(const TlsContext& ctx, bool tls12, std::string* why) {
  WOLFSSL_CTX* cctx =
      wolfSSL_CTX_new(tls12 ? wolfTLSv1_2_client_method() : wolfTLSv1_3_client_method());
  if (cctx == nullptr) {
    *why = "out of memory";
    return false;
  }
  wolfSSL_CTX_set_verify(cctx, WOLFSSL_VERIFY_NONE, nullptr);
  WOLFSSL* c = wolfSSL_new(cctx);
  if (c == nullptr) {
    wolfSSL_CTX_free(cctx);
    *why = "out of memory";
    return false;
  }
  if (tls12 && wolfSSL_set1_sigalgs_list(c, "RSA+SHA256") != WOLFSSL_SUCCESS) {
    wolfSSL_free(c);
    wolfSSL_CTX_free(cctx);
    *why = "cannot restrict the test client's signature algorithms";
    return false;
  }
  TlsSession server(ctx, false);
  std::string to_client;
  std::string to_server;
  LoopbackIo io{&to_client, 0, &to_server};
  wolfSSL_SSLSetIORecv(c, loopback_recv);
  wolfSSL_SSLSetIOSend(c, loopback_send);
  wolfSSL_SetIOReadCtx(c, &io);
  wolfSSL_SetIOWriteCtx(c, &io);
  bool ok = false;
  int client_err = 0;
  std::string plain;
  for (int round = 0; round < 8; ++round) {
    int r = wolfSSL_connect(c);
    if (r == WOLFSSL_SUCCESS) {
      ok = true;
      break;
    }
    client_err = wolfSSL_get_error(c, r);
    if (client_err != WOLFSSL_ERROR_WANT_READ && client_err != WOLFSSL_ERROR_WANT_WRITE) break;
    server.feed(to_server);
    to_server.clear();
    server.read(&plain);
    to_client += server.outgoing();
    server.outgoing().clear();
  }
  if (!ok) {
    *why = server.state() == TlsSession::State::kError
               ? "test handshake: " + server.error()
               : "test handshake: client " + wolf_error_text(client_err);
  }
  wolfSSL_free(c);
  wolfSSL_CTX_free(cctx);
  wolfSSL_ERR_clear_error();
  release_ecc_tables();
  return ok;
}

TlsContext::~TlsContext() {
  if (ctx_ == nullptr) return;
  // Sessions hold a reference on the WOLFSSL_CTX and may outlive us (a
  // reload swaps contexts under open connections); one still handshaking
  // must find no signer rather than a freed one.
  if (remote_ != nullptr) wolfSSL_CTX_set_ex_data(ctx_, ctx_ex_index(), nullptr);
  wolfSSL_CTX_free(ctx_);
}

Result<std::unique_ptr<TlsContext>> TlsContext::create_common() {
  if (!ensure_wolfssl_init()) return make_error("wolfSSL_Init failed");
  std::unique_ptr<TlsContext> self(new TlsContext());
  self->ctx_ = wolfSSL_CTX_new(wolfSSLv23_server_method());
  WOLFSSL_CTX* ctx = self->ctx_;
  if (ctx == nullptr) return make_error("cannot create a TLS context (out of memory)");

  if (wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS) {
    return make_error("cannot set the minimum TLS version");
  }
  if (wolfSSL_CTX_set_cipher_list(ctx, kCipherList) != WOLFSSL_SUCCESS) {
    return make_error("cannot set the TLS cipher list");
  }
  // wolfSSL picks by server order unless wolfSSL_CTX_UseClientSuites is
  // called; the option states the intent.
  wolfSSL_CTX_set_options(ctx, WOLFSSL_OP_CIPHER_SERVER_PREFERENCE);

  // Groups x25519, P-256, P-384. set_groups orders the TLS 1.3 key shares.
  // For TLS 1.2 the wolfSSL 5.5 server ignores its own supported_curves list
  // and takes the client's first curve it knows (P-521, brainpool...); only
  // the disabled-curves mask of set1_curves_list restricts that choice.
  int groups[] = {WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_SECP384R1};
  if (wolfSSL_CTX_set_groups(ctx, groups, 3) != WOLFSSL_SUCCESS ||
      wolfSSL_CTX_set1_curves_list(ctx, "X25519:P-256:P-384") != WOLFSSL_SUCCESS) {
    return make_error("cannot set the TLS groups");
  }

  // No resumption for now. Tickets would need a rotated ticket key (the
  // built-in one lives for the process lifetime, so a long-running server
  // would weaken forward secrecy); the session-ID cache is process-global in
  // wolfSSL and shared by every context. A full handshake on an XMPP stream
  // that lasts hours costs nothing noticeable.
  wolfSSL_CTX_NoTicketTLSv12(ctx);
  wolfSSL_CTX_no_ticket_TLSv13(ctx);
  wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);

  // Renegotiation: never. Debian's libwolfssl 5.5.4 does not define
  // HAVE_SECURE_RENEGOTIATION in options.h, yet its client half can
  // renegotiate once wolfSSL_UseSecureRenegotiation is called; the server
  // half only answers the RFC 5746 renegotiation_info extension (so clients
  // know they talk to a patched server) and renegotiates only if the server
  // application enables it, which we never do. A ClientHello after the
  // handshake fails the session with a fatal unexpected_message alert
  // (tls_test.cc RenegotiationRefused).

  wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, nullptr);
  return self;
}

// Loads the chain into the context (the first certificate is ours).
Status TlsContext::load_certificate(const std::string& cert_path) {
  int ret = wolfSSL_CTX_use_certificate_chain_file(ctx_, cert_path.c_str());
  if (ret != WOLFSSL_SUCCESS) {
    return make_error("cannot load TLS certificate " + cert_path + ": " +
                      load_failure_reason(cert_path, ret) + "; check [tls] certificate");
  }
  return {};
}

// Fingerprint and RFC 5929 end-point hash of the leaf certificate.
Status TlsContext::hash_certificate(const std::string& cert_path) {
  auto leaf = load_leaf(cert_path);
  if (!leaf) {
    return make_error("cannot load TLS certificate " + cert_path + ": " + leaf.error().message +
                      "; check [tls] certificate");
  }
  std::string der = leaf_der(leaf->get());
  fingerprint_ = der.empty() ? std::string() : sha256_fingerprint(der);
  end_point_ = der.empty() ? std::string()
                           : end_point_hash(der, wolfSSL_X509_get_signature_type(leaf->get()));
  if (fingerprint_.empty() || end_point_.empty()) {
    return make_error("cannot hash TLS certificate " + cert_path + "; check [tls] certificate");
  }
  return {};
}

Result<std::unique_ptr<TlsContext>> TlsContext::create_server(const std::string& cert_path,
                                                              const std::string& key_path) {
  auto created = create_common();
  if (!created) return created.error();
  std::unique_ptr<TlsContext> self = std::move(created).value();
  WOLFSSL_CTX* ctx = self->ctx_;

  Status st = self->load_certificate(cert_path);
  if (!st) return st.error();
  int ret = wolfSSL_CTX_use_PrivateKey_file(ctx, key_path.c_str(), WOLFSSL_FILETYPE_PEM);
  if (ret != WOLFSSL_SUCCESS) {
    return make_error("cannot load TLS key " + key_path + ": " +
                      load_failure_reason(key_path, ret) + "; check [tls] key");
  }
  // wolfSSL_CTX_check_private_key in 5.5.4 only compares key types: an
  // ECDSA key of the same curve but the wrong scalar passes. A handshake with
  // ourselves proves the key signs for the certificate, whatever its type.
  std::string why;
  if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS || !self_test(*self, false, &why)) {
    wolfSSL_ERR_clear_error();
    return make_error("TLS key " + key_path + " does not match certificate " + cert_path +
                      (why.empty() ? std::string() : " (" + why + ")") +
                      "; check [tls] certificate and [tls] key");
  }
  st = self->hash_certificate(cert_path);
  if (!st) return st.error();
  return self;
}

Result<std::unique_ptr<TlsContext>> TlsContext::create_server_remote(const std::string& cert_path,
                                                                     Signer signer) {
  if (!signer) return make_error("no TLS signer");
  auto created = create_common();
  if (!created) return created.error();
  std::unique_ptr<TlsContext> self = std::move(created).value();
  WOLFSSL_CTX* ctx = self->ctx_;

  self->remote_ = std::make_unique<RemoteKey>();
  self->remote_->signer = std::move(signer);
  if (ctx_ex_index() < 0 || ssl_ex_index() < 0 ||
      wolfSSL_CTX_set_ex_data(ctx, ctx_ex_index(), self->remote_.get()) != WOLFSSL_SUCCESS) {
    return make_error("cannot attach the TLS signer");
  }
  // Before the placeholder below: wolfSSL accepts a public key as the
  // "private key" only once a private-key PK callback is set.
  wolfSSL_CTX_SetEccSignCb(ctx, ecc_sign_cb);
  wolfSSL_CTX_SetRsaSignCb(ctx, rsa_sign_cb);
  wolfSSL_CTX_SetRsaPssSignCb(ctx, rsa_pss_sign_cb);

  Status st = self->load_certificate(cert_path);
  if (!st) return st.error();

  // The placeholder: the leaf certificate's public key, DER.
  auto leaf = load_leaf(cert_path);
  if (!leaf) {
    return make_error("cannot load TLS certificate " + cert_path + ": " + leaf.error().message +
                      "; check [tls] certificate");
  }
  std::string der = leaf_der(leaf->get());
  std::string public_der(4096, '\0');
  word32 public_der_size = static_cast<word32>(public_der.size());
  int ret = 0;
  word32 key_oid = 0;
  {
    DecodedCert dc;
    wc_InitDecodedCert(&dc, reinterpret_cast<const byte*>(der.data()),
                       static_cast<word32>(der.size()), nullptr);
    ret = wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, nullptr);
    if (ret == 0) {
      key_oid = dc.keyOID;
      ret = wc_GetPubKeyDerFromCert(&dc, reinterpret_cast<byte*>(public_der.data()),
                                    &public_der_size);
    }
    wc_FreeDecodedCert(&dc);
  }
  if (ret != 0) {
    return make_error("cannot read the public key of TLS certificate " + cert_path + ": " +
                      wolf_error_text(ret) + "; check [tls] certificate");
  }
  if (key_oid != ECDSAk && key_oid != RSAk) {
    return make_error("TLS certificate " + cert_path +
                      " has neither an ECDSA nor an RSA key; the keyholder signs only those" +
                      "; check [tls] certificate");
  }
  public_der.resize(public_der_size);
  ret = wolfSSL_CTX_use_PrivateKey_buffer(
      ctx, reinterpret_cast<const unsigned char*>(public_der.data()),
      static_cast<long>(public_der.size()), WOLFSSL_FILETYPE_ASN1);
  if (ret != WOLFSSL_SUCCESS) {
    wolfSSL_ERR_clear_error();
    return make_error("cannot set up remote signing for TLS certificate " + cert_path + ": " +
                      wolf_error_text(ret));
  }

  // Proves that the signer's key belongs to the certificate, for each
  // signature scheme a handshake can ask of it.
  std::string why;
  bool ok = self_test(*self, false, &why);
  if (ok && key_oid == RSAk) ok = self_test(*self, true, &why);
  if (!ok) {
    wolfSSL_ERR_clear_error();
    return make_error("the keyholder's key does not sign for TLS certificate " + cert_path +
                      (why.empty() ? std::string() : " (" + why + ")") +
                      "; check [tls] certificate and [tls] key");
  }
  st = self->hash_certificate(cert_path);
  if (!st) return st.error();
  return self;
}

namespace {

// Gives the whole pages of the heap block [p, p + n) that hold only zero
// bytes back to the kernel. The block stays allocated and reads the same:
// private anonymous memory reads as zeros after MADV_DONTNEED, and the
// reactor is single-threaded, so nothing writes between the check and the
// madvise. A page written later is simply faulted in again.
void release_zero_pages(void* p, size_t n) {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (page == 0 || page > n) return;
  auto addr = reinterpret_cast<uintptr_t>(p);
  uintptr_t begin = (addr + page - 1) / page * page;
  uintptr_t end = (addr + n) / page * page;
  uintptr_t run = 0;  // start of the current run of zero pages, 0: none
  for (uintptr_t a = begin; a <= end; a += page) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(a);
    bool zero = a < end && bytes[0] == 0 && std::memcmp(bytes, bytes + 1, page - 1) == 0;
    if (zero && run == 0) run = a;
    if (!zero && run != 0) {
      (void)madvise(reinterpret_cast<void*>(run), a - run, MADV_DONTNEED);
      run = 0;
    }
  }
}

}  // namespace

void release_ecc_tables() {
#ifdef FP_ECC
  wc_ecc_fp_free();
#endif
#ifdef __GLIBC__
  // The freed tables sit below live blocks; glibc gives back only the top
  // of the heap on free, malloc_trim also the whole free pages inside it.
  malloc_trim(0);
#endif
}

// ---------------------------------------------------------------------------

TlsSession::TlsSession(const TlsContext& ctx, bool direct) {
  ssl_ = ctx.raw() == nullptr ? nullptr : wolfSSL_new(ctx.raw());
  if (ssl_ == nullptr) {
    state_ = State::kError;
    error_ = "cannot create a TLS session (out of memory)";
    return;
  }
  wolfSSL_SSLSetIORecv(ssl_, &TlsSession::recv_cb);
  wolfSSL_SSLSetIOSend(ssl_, &TlsSession::send_cb);
  wolfSSL_SetIOReadCtx(ssl_, this);
  wolfSSL_SetIOWriteCtx(ssl_, this);
  if (ctx.remote_key()) wolfSSL_set_ex_data(ssl_, ssl_ex_index(), &sign_error_);

  // XEP-0368 §3.4 / RFC 7301 §3.2: on the direct-TLS port a client that
  // offers ALPN without "xmpp-client" gets no_application_protocol. A client
  // that sends no ALPN at all is accepted (many do not), and on STARTTLS
  // "xmpp-client" is selected when offered and nothing is refused.
  char proto[sizeof kAlpnXmpp];
  memcpy(proto, kAlpnXmpp, sizeof kAlpnXmpp);
  if (wolfSSL_UseALPN(ssl_, proto, sizeof kAlpnXmpp - 1,
                      direct ? WOLFSSL_ALPN_FAILED_ON_MISMATCH
                             : WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) != WOLFSSL_SUCCESS) {
    state_ = State::kError;
    error_ = "cannot set up ALPN";
  }
}

TlsSession::~TlsSession() {
  if (ssl_ != nullptr) wolfSSL_free(ssl_);
  sodium_memzero(exporter_.data(), exporter_.size());
}

int TlsSession::recv_cb(WOLFSSL*, char* buf, int sz, void* ctx) {
  auto* self = static_cast<TlsSession*>(ctx);
  size_t avail = self->in_.size() - self->in_pos_;
  if (avail == 0) return WOLFSSL_CBIO_ERR_WANT_READ;
  size_t n = sz < 0 ? 0 : static_cast<size_t>(sz);
  if (n > avail) n = avail;
  memcpy(buf, self->in_.data() + self->in_pos_, n);
  self->in_pos_ += n;
  return static_cast<int>(n);
}

int TlsSession::send_cb(WOLFSSL*, char* buf, int sz, void* ctx) {
  auto* self = static_cast<TlsSession*>(ctx);
  if (sz <= 0) return 0;
  self->out_.append(buf, static_cast<size_t>(sz));
  return sz;
}

void TlsSession::feed(std::string_view ciphertext) {
  if (state_ == State::kError || state_ == State::kClosed) return;
  in_.append(ciphertext);
}

void TlsSession::compact_input() {
  if (in_pos_ == 0) return;
  if (in_pos_ >= in_.size()) {
    // Idle sessions should hold no receive buffer at all.
    std::string().swap(in_);
  } else {
    in_.erase(0, in_pos_);
  }
  in_pos_ = 0;
}

TlsSession::State TlsSession::fail(const char* what, int err) {
  state_ = State::kError;
  error_ = std::string(what) + ": " + wolf_error_text(err);
  if (!sign_error_.empty()) error_ += " (signer: " + sign_error_ + ")";
  wolfSSL_ERR_clear_error();
  // Drop what the peer sent; keep out_, which may hold our alert.
  std::string().swap(in_);
  in_pos_ = 0;
  return state_;
}

TlsSession::State TlsSession::read(std::string* out) {
  if (state_ == State::kError || state_ == State::kClosed) return state_;
  if (state_ == State::kHandshaking) {
    size_t mark = out_.size();
    int ret = wolfSSL_accept(ssl_);
    if (!server_hello_seen_ && out_.size() > mark) {
      server_hello_seen_ = true;
      ems_ = server_hello_has_ems(std::string_view(out_).substr(mark));
    }
    if (ret != WOLFSSL_SUCCESS) {
      int err = wolfSSL_get_error(ssl_, ret);
      if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) {
        compact_input();
        return state_;
      }
      return fail("TLS handshake failed", err);
    }
    state_ = State::kOpen;
    // What the session still needs of the handshake's secrets is the
    // tls-exporter value; with it kept, wolfSSL's handshake arrays (5.5 KB,
    // kept under TLS 1.3 for session tickets, which are off) go. Traffic
    // secrets, and so KeyUpdate, live outside them.
    derive_exporter();
    wolfSSL_FreeArrays(ssl_);
#ifdef __GLIBC__
    // Debian's wolfSSL (SESSION_CERTS) gives every connection a 37.5 KB
    // WOLFSSL_SESSION, most of it room for the peer's certificate chain,
    // which a client without a certificate leaves zero; much of the 10.9 KB
    // WOLFSSL is zero too. Their zero pages go back: about 36 KB of the
    // 90 KiB an idle session held (issue 7).
    release_zero_pages(ssl_, malloc_usable_size(ssl_));
    if (WOLFSSL_SESSION* session = wolfSSL_get_session(ssl_); session != nullptr)
      release_zero_pages(session, malloc_usable_size(session));
#endif
  }
  char buf[8192];
  for (;;) {
    int n = wolfSSL_read(ssl_, buf, sizeof buf);
    if (n > 0) {
      out->append(buf, static_cast<size_t>(n));
      continue;
    }
    int err = wolfSSL_get_error(ssl_, n);
    if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) break;
    if (err == WOLFSSL_ERROR_ZERO_RETURN) {
      // close_notify from the peer.
      state_ = State::kClosed;
      std::string().swap(in_);
      in_pos_ = 0;
      return state_;
    }
    return fail("TLS read failed", err);
  }
  compact_input();
  return state_;
}

TlsSession::State TlsSession::write(std::string_view plaintext) {
  if (state_ == State::kError || state_ == State::kClosed) return state_;
  if (state_ == State::kHandshaking) {
    state_ = State::kError;
    error_ = "TLS write before the handshake completed";
    return state_;
  }
  while (!plaintext.empty()) {
    int chunk = plaintext.size() > static_cast<size_t>(INT_MAX)
                    ? INT_MAX
                    : static_cast<int>(plaintext.size());
    int n = wolfSSL_write(ssl_, plaintext.data(), chunk);
    if (n <= 0) return fail("TLS write failed", wolfSSL_get_error(ssl_, n));
    plaintext.remove_prefix(static_cast<size_t>(n));
  }
  return state_;
}

void TlsSession::shutdown() {
  if (ssl_ == nullptr || shutdown_sent_) return;
  shutdown_sent_ = true;
  // Before the handshake there is nothing to close; after a fatal error
  // wolfSSL has already sent its alert.
  if (state_ != State::kOpen && state_ != State::kClosed) return;
  // One call queues our close_notify; we do not wait for the peer's.
  wolfSSL_shutdown(ssl_);
}

std::string TlsSession::version() const {
  if (ssl_ == nullptr || state_ != State::kOpen) return {};
  const char* v = wolfSSL_get_version(ssl_);
  return v == nullptr ? std::string() : std::string(v);
}

std::string TlsSession::cipher() const {
  if (ssl_ == nullptr || state_ != State::kOpen) return {};
  const char* c = wolfSSL_get_cipher_name(ssl_);
  return c == nullptr ? std::string() : std::string(c);
}

std::string TlsSession::exporter_binding() const {
  if (ssl_ == nullptr || state_ != State::kOpen || !has_exporter_) return {};
  return std::string(reinterpret_cast<const char*>(exporter_.data()), exporter_.size());
}

void TlsSession::derive_exporter() {
  int v = wolfSSL_version(ssl_);
  if (v != TLS1_3_VERSION) {
    if (v != TLS1_2_VERSION || !ems_) return;
  }
  // RFC 9266 §2: a zero-length context. TLS 1.3 makes no difference between
  // no context and an empty one (RFC 8446 §7.5); under TLS 1.2 (RFC 5705)
  // they differ and we follow the RFC's wording literally, as OpenSSL-based
  // peers passing "" do (use_context = 1, length 0).
  static const unsigned char kEmpty[1] = {0};
  static_assert(kExporterLength == sizeof exporter_);
  has_exporter_ =
      wolfSSL_export_keying_material(ssl_, exporter_.data(), exporter_.size(), kExporterLabel,
                                     sizeof kExporterLabel - 1, kEmpty, 0, 1) == WOLFSSL_SUCCESS;
}

}  // namespace hearth::net
