// Ad-hoc commands (XEP-0050) on the server's JID: a small framework other
// modules add commands to through AdhocService. Each command is one data
// form (XEP-0004): `execute` shows the form (or, for a command without one,
// runs at once), `complete` (or `execute` with the submitted form) runs it
// and answers with a result form and a note; `cancel` ends the session.
// Sessions are per requester (full JID) and expire after kSessionTimeoutMs.
//
// Discovery (XEP-0050 §2.2): the server advertises
// http://jabber.org/protocol/commands, and disco#items on that node lists
// the commands the requester may run.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "xml/element.h"
#include "xmpp/jid.h"

namespace hearth::modules {

inline constexpr std::string_view kNsCommands = "http://jabber.org/protocol/commands";
inline constexpr std::string_view kNsDataForms = "jabber:x:data";

// ---- XEP-0004 data forms ----

// The values of a submitted form by field var (a field may repeat values:
// list-multi, jid-multi, text-multi).
struct FormValues {
  std::map<std::string, std::vector<std::string>, std::less<>> fields;
  // The first value of `var`, or `fallback` when absent.
  std::string_view get(std::string_view var, std::string_view fallback = {}) const;
  bool has(std::string_view var) const { return fields.find(var) != fields.end(); }
};

// Reads <x xmlns='jabber:x:data' type='submit'/> (also 'form' or 'result':
// some clients echo the type). Fails on another element or type 'cancel'.
bool parse_form(const xml::Element& x, FormValues* out);

// XEP-0004 §3.3 boolean values: "1"/"true" and "0"/"false".
bool form_bool(std::string_view value, bool* out);

// Builds a form: <x type=TYPE><title/><instructions/>, then fields.
xml::Element* make_form(xml::Arena& arena, std::string_view type, std::string_view title = {},
                        std::string_view instructions = {});
// A <field/> of `form`. `value` is added when not empty. Returns the field
// (to add <option/>s or <required/>).
xml::Element* add_field(xml::Element& form, std::string_view var, std::string_view type,
                        std::string_view label = {}, std::string_view value = {},
                        bool required = false);

// ---- commands ----

// What running a command produced.
struct AdhocOutcome {
  // A stanza error instead of a result (e.g. "bad-request", "forbidden").
  std::string error_condition;
  std::string error_type = "modify";
  std::string text;                     // error text, or the <note type='info'/> of a result
  xml::Element* result_form = nullptr;  // <x type='result'/>, may be null
};

struct AdhocCommand {
  std::string node;  // e.g. urn:xmpp:invite#create-account
  std::string name;  // human-readable
  // Only for admins (Context::is_admin): listed for them only; others get
  // <forbidden/>.
  bool admin_only = false;
  // The form to fill (<x type='form'/>), or null: the command runs at once
  // on `execute` with no values.
  std::function<xml::Element*(xml::Arena& arena, const xmpp::Jid& requester)> form;
  std::function<AdhocOutcome(const xmpp::Jid& requester, const FormValues& values,
                             xml::Arena& arena)>
      run;
};

// Provided by the adhoc module.
class AdhocService {
 public:
  static constexpr std::string_view kServiceName = "adhoc";
  virtual ~AdhocService() = default;
  // In a module's create() (or later). A second command with the same node
  // replaces the first.
  virtual void add_command(AdhocCommand command) = 0;
};

}  // namespace hearth::modules
