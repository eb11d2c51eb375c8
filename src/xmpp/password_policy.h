// Password policy for new passwords (`hearth user add|passwd`, XEP-0077
// password change): a minimum length, no username or domain inside, not one
// of the most common passwords. NIST SP 800-63B §5.1.1.2 asks for these
// checks instead of composition rules.
#pragma once

#include <cstddef>
#include <string_view>

#include "core/result.h"

namespace hearth::xmpp {

// `[auth] min_password_length` (Config::min_password_length) and its bounds.
inline constexpr size_t kDefaultMinLength = 10;
inline constexpr size_t kMinLengthLowest = 1;
inline constexpr size_t kMinLengthHighest = 1024;

// Checks a new password for the account `username` (a normalised localpart)
// on `domain`. The password is judged as it will be stored: prepared as an
// RFC 8265 OpaqueString, then counted in Unicode code points. On refusal the
// error message is the reason, written for the user ("the password is too
// short: use at least 10 characters"); it never contains the password.
Status check_password(std::string_view password, std::string_view username, std::string_view domain,
                      size_t min_length);

// True if `password` is on the compiled-in list of common passwords, compared
// case-insensitively (Unicode lower-casing; the list itself is ASCII).
bool is_common_password(std::string_view password);

// The list, for tests: entries ordered by (length, bytes), lower-case.
size_t common_password_count();
std::string_view common_password(size_t index);

}  // namespace hearth::xmpp
