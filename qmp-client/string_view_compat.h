// qmp-client/string_view_compat.h: Debian 12's Abseil is built with its own absl::string_view
// (ABSL_OPTION_USE_STD_STRING_VIEW == 0), which does not convert from std::string_view. This
// header bridges the two. Pure functions; thread-safe.
#ifndef REHOME_QMP_CLIENT_STRING_VIEW_COMPAT_H_
#define REHOME_QMP_CLIENT_STRING_VIEW_COMPAT_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace rehome {

inline absl::string_view ToAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}
inline std::string_view FromAbsl(absl::string_view s) {
  return std::string_view(s.data(), s.size());
}

}  // namespace rehome

#endif  // REHOME_QMP_CLIENT_STRING_VIEW_COMPAT_H_
