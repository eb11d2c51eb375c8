// XEP-0115 entity capabilities: the verification string of a disco#info
// result (§5.1, with §5.4 for XEP-0128 data forms) and its SHA-1 hash.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "xml/element.h"

namespace hearth::modules::disco {

struct CapsIdentity {
  std::string category, type, lang, name;
};
struct CapsField {
  std::string var;
  std::vector<std::string> values;
};
struct CapsForm {
  std::string form_type;
  std::vector<CapsField> fields;  // without FORM_TYPE
};

// S of §5.1: identities sorted by category/type/xml:lang, then the sorted
// features, then the forms sorted by FORM_TYPE with their fields sorted by
// var and each field's values sorted (§5.4), every item followed by '<'.
std::string caps_string(std::vector<CapsIdentity> identities, std::vector<std::string> features,
                        std::vector<CapsForm> forms);

// The same S read from a <query xmlns='http://jabber.org/protocol/disco#info'/>
// element: only result forms (jabber:x:data) with a hidden FORM_TYPE count
// (§5.4 step 3.3).
std::string caps_string(const xml::Element& query);

// base64(SHA-1(s)), the 'ver' attribute for hash='sha-1'.
std::string caps_hash(std::string_view s);

}  // namespace hearth::modules::disco
