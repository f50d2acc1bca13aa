#include "server/channel_limits.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace spate::server {

bool ChannelPatternMatches(absl::string_view pattern, absl::string_view name) {
  std::vector<absl::string_view> want = absl::StrSplit(pattern, '.');
  std::vector<absl::string_view> have = absl::StrSplit(name, '.');
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i] == ">") return i == want.size() - 1 && have.size() > i;
    if (i >= have.size()) return false;
    if (want[i] != "*" && want[i] != have[i]) return false;
  }
  return want.size() == have.size();
}

absl::Status ValidateChannelPattern(absl::string_view pattern) {
  if (pattern.empty()) {
    return absl::InvalidArgumentError("channel pattern must not be empty");
  }
  std::vector<absl::string_view> tokens = absl::StrSplit(pattern, '.');
  for (size_t i = 0; i < tokens.size(); ++i) {
    const absl::string_view token = tokens[i];
    if (token.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("channel pattern '", pattern, "' has an empty token"));
    }
    if (token == ">" && i != tokens.size() - 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "channel pattern '", pattern, "': '>' must be the last token"));
    }
    if (token != "*" && token != ">" &&
        token.find_first_of("*> ") != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "channel pattern '", pattern, "': wildcards must be whole tokens"));
    }
  }
  return absl::OkStatus();
}

ChannelLimits ResolveChannelLimits(absl::string_view name,
                                   const StoreConfig& store) {
  const LimitsConfig& base = store.limits();
  ChannelLimits limits;
  limits.set_max_msgs(base.max_msgs());
  limits.set_max_bytes(base.max_bytes());
  limits.set_max_age_ms(base.max_age_ms());
  limits.set_max_subs(base.max_subs());
  limits.set_max_inactivity_ms(base.max_inactivity_ms());
  for (const ChannelLimitsOverride& override : store.channel_overrides()) {
    if (!ChannelPatternMatches(override.pattern(), name)) continue;
    const LimitsConfig& o = override.limits();
    if (o.has_max_msgs()) limits.set_max_msgs(o.max_msgs());
    if (o.has_max_bytes()) limits.set_max_bytes(o.max_bytes());
    if (o.has_max_age_ms()) limits.set_max_age_ms(o.max_age_ms());
    if (o.has_max_subs()) limits.set_max_subs(o.max_subs());
    if (o.has_max_inactivity_ms()) {
      limits.set_max_inactivity_ms(o.max_inactivity_ms());
    }
    break;
  }
  return limits;
}

}  // namespace spate::server
