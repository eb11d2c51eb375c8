// The auth worker: accounts.mdb (opened before the filter), the server side
// of SCRAM and PLAIN, password changes. It talks only over its socketpairs;
// LMDB needs its file I/O, locks and durable commits.
#include "sandbox/policy_common.h"

namespace hearth::sandbox {

void add_auth_rules(Builder& b, const PolicyContext& pc) {
  add_common_rules(b, pc);
  add_lmdb_rules(b);  // accounts.mdb
  b.allow_if("mprotect", {arg_masked(2, PROT_EXEC, 0)},
             "sodium_malloc/sodium_free guard pages around credentials; never executable");
}

}  // namespace hearth::sandbox
