// The keyholder: it read the certificates and private keys before entering
// the sandbox; afterwards it only answers signing requests on its socketpair.
// No socket, no file (except wolfSSL's DRBG reseed from /dev/urandom), no
// LMDB, no network.
#include "sandbox/policy_common.h"

namespace hearth::sandbox {

void add_keyholder_rules(Builder& b, const PolicyContext& pc) {
  add_common_rules(b, pc);
  b.allow_if("mprotect", {arg_masked(2, PROT_EXEC, 0)},
             "sodium_malloc/sodium_free guard pages around key memory; never executable");
}

}  // namespace hearth::sandbox
