// JIDs (RFC 7622): parsed, validated and normalised. Parts are PRECIS-
// prepared as far as we can do it correctly: UTF-8 validity, width/case
// mapping (lowercase) for local and domain parts, NFC for all parts, length
// limits (1..1023 bytes each). Input we cannot normalise is rejected.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace hearth::xmpp {

class Jid {
 public:
  Jid() = default;
  // Parse and normalise "local@domain/resource" (local and resource optional).
  static Result<Jid> parse(std::string_view text);
  // Build from already separated parts (each normalised and checked).
  static Result<Jid> from_parts(std::string_view local, std::string_view domain,
                                std::string_view resource);

  const std::string& local() const { return local_; }
  const std::string& domain() const { return domain_; }
  const std::string& resource() const { return resource_; }
  bool has_local() const { return !local_.empty(); }
  bool has_resource() const { return !resource_.empty(); }

  std::string bare() const;  // local@domain or domain
  std::string full() const;  // bare[/resource]
  Jid bare_jid() const;

  bool operator==(const Jid&) const = default;

 private:
  std::string local_, domain_, resource_;
};

// Single parts, for commands and SASL that carry only a username or resource.
Result<std::string> normalize_localpart(std::string_view in);
Result<std::string> normalize_domainpart(std::string_view in);
Result<std::string> normalize_resourcepart(std::string_view in);

}  // namespace hearth::xmpp
