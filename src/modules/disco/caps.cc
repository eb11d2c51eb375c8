#include "modules/disco/caps.h"

// clang-format off
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha.h>
// clang-format on

#include <algorithm>
#include <cstdlib>
#include <tuple>
#include <utility>

#include "core/base64.h"

namespace hearth::modules::disco {
namespace {

constexpr std::string_view kNsDiscoInfo = "http://jabber.org/protocol/disco#info";
constexpr std::string_view kNsData = "jabber:x:data";

std::string xml_lang(const xml::Element& e) {
  for (const xml::Attr& a : e.attrs) {
    if (a.ns == xml::kNsXml && a.name == "lang") return std::string(a.value);
  }
  return {};
}

}  // namespace

std::string caps_string(std::vector<CapsIdentity> identities, std::vector<std::string> features,
                        std::vector<CapsForm> forms) {
  std::string s;
  // §5.1 step 2: by category, then type, then xml:lang (i;octet); the name
  // breaks ties only to make the order total.
  std::sort(identities.begin(), identities.end(), [](const CapsIdentity& a, const CapsIdentity& b) {
    return std::tie(a.category, a.type, a.lang, a.name) <
           std::tie(b.category, b.type, b.lang, b.name);
  });
  for (const CapsIdentity& i : identities) {
    s.append(i.category).append("/").append(i.type).append("/").append(i.lang).append("/");
    s.append(i.name).append("<");
  }
  std::sort(features.begin(), features.end());
  for (const std::string& f : features)
    s.append(f).append("<");
  std::sort(forms.begin(), forms.end(),
            [](const CapsForm& a, const CapsForm& b) { return a.form_type < b.form_type; });
  for (CapsForm& form : forms) {
    s.append(form.form_type).append("<");
    std::sort(form.fields.begin(), form.fields.end(),
              [](const CapsField& a, const CapsField& b) { return a.var < b.var; });
    for (CapsField& field : form.fields) {
      s.append(field.var).append("<");
      std::sort(field.values.begin(), field.values.end());
      for (const std::string& v : field.values)
        s.append(v).append("<");
    }
  }
  return s;
}

std::string caps_string(const xml::Element& query) {
  std::vector<CapsIdentity> identities;
  std::vector<std::string> features;
  std::vector<CapsForm> forms;
  for (const xml::Node& n : query.children) {
    const xml::Element* e = n.element;
    if (e == nullptr) continue;
    if (e->ns == kNsDiscoInfo && e->name == "identity") {
      identities.push_back({std::string(e->attr("category")), std::string(e->attr("type")),
                            xml_lang(*e), std::string(e->attr("name"))});
    } else if (e->ns == kNsDiscoInfo && e->name == "feature") {
      features.emplace_back(e->attr("var"));
    } else if (e->ns == kNsData && e->name == "x" && e->attr("type") == "result") {
      CapsForm form;
      bool typed = false;
      for (const xml::Node& fn : e->children) {
        const xml::Element* f = fn.element;
        if (f == nullptr || f->ns != kNsData || f->name != "field") continue;
        CapsField field{std::string(f->attr("var")), {}};
        for (const xml::Node& vn : f->children) {
          if (vn.element != nullptr && vn.element->ns == kNsData && vn.element->name == "value") {
            field.values.push_back(vn.element->text());
          }
        }
        if (field.var == "FORM_TYPE") {
          // §5.4: a form whose FORM_TYPE is not hidden is not hashed.
          if (f->attr("type") != "hidden" || field.values.size() != 1) break;
          form.form_type = field.values.front();
          typed = true;
        } else {
          form.fields.push_back(std::move(field));
        }
      }
      if (typed) forms.push_back(std::move(form));
    }
  }
  return caps_string(std::move(identities), std::move(features), std::move(forms));
}

std::string caps_hash(std::string_view s) {
  unsigned char digest[WC_SHA_DIGEST_SIZE];
  if (wc_ShaHash(reinterpret_cast<const unsigned char*>(s.data()), static_cast<word32>(s.size()),
                 digest) != 0) {
    abort();  // SHA-1 over memory cannot fail; a failure is a broken build
  }
  return base64_encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

}  // namespace hearth::modules::disco
