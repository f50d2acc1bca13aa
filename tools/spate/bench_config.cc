#include "tools/spate/bench_config.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace spate::cli {

const char* SubKindName(SubKind kind) {
  switch (kind) {
    case SubKind::kPlain:
      return "plain";
    case SubKind::kDurable:
      return "durable";
    case SubKind::kQueue:
      return "queue";
  }
  return "?";
}

absl::Status BenchConfig::Validate() const {
  auto bad = [](absl::string_view why) {
    return absl::InvalidArgumentError(why);
  };
  if (servers.empty()) return bad("no server address");
  if (channel.empty()) return bad("the channel name is empty");
  if (channels < 1) return bad("channels must be at least 1");
  if (publishers < 0 || subscribers < 0) {
    return bad("publishers and subscribers must not be negative");
  }
  if (publishers + subscribers == 0) return bad("no publisher or subscriber");
  if (size_bytes < kStampBytes) {
    return bad(absl::StrCat("size must be at least ", kStampBytes,
                            " bytes (the send timestamp)"));
  }
  if (count < 0) return bad("count must not be negative");
  if (duration < absl::ZeroDuration()) return bad("negative duration");
  if (publishers > 0 && (count > 0) == (duration > absl::ZeroDuration())) {
    return bad("give either a message count or a duration");
  }
  if (publishers == 0 &&
      (!start_first || count == 0 || duration > absl::ZeroDuration())) {
    return bad(
        "without publishers, subscribers read `count` stored messages from "
        "the first one (start first, count > 0, no duration)");
  }
  if (publishers > 0 && count > 0 && count < publishers) {
    return bad("count must be at least the number of publishers");
  }
  if (window < 1) return bad("window must be at least 1");
  if (max_in_flight < 1) return bad("max_in_flight must be at least 1");
  if (rate_msgs_per_s < 0) return bad("rate must not be negative");
  if (stall_timeout <= absl::ZeroDuration()) {
    return bad("stall timeout must be positive");
  }
  return absl::OkStatus();
}

std::string BenchConfig::Describe() const {
  std::string text;
  if (publishers > 0) {
    absl::StrAppend(&text, publishers, " pub x ");
    if (count > 0) {
      absl::StrAppend(&text, count, " msgs");
    } else {
      absl::StrAppend(&text, absl::FormatDuration(duration));
    }
    absl::StrAppend(
        &text, ", ",
        sync ? std::string("sync") : absl::StrCat("async window ", window));
    if (rate_msgs_per_s > 0) {
      absl::StrAppend(
          &text, absl::StrFormat(", %.0f msgs/s open loop", rate_msgs_per_s));
    }
  }
  if (subscribers > 0) {
    absl::StrAppend(
        &text, text.empty() ? "" : ", ", subscribers, " ",
        SubKindName(sub_kind), " sub",
        publishers == 0 ? absl::StrCat(" reading ", count, " stored msgs") : "",
        start_first ? " from first" : "",
        manual_ack ? ", manual ack" : ", auto ack", ", max in flight ",
        max_in_flight);
  }
  absl::StrAppend(&text, ", ", size_bytes, " B, ", channels,
                  channels == 1 ? " channel" : " channels");
  return text;
}

std::string BenchConfig::ChannelName(int index) const {
  return channels == 1 ? channel : absl::StrCat(channel, ".", index);
}

}  // namespace spate::cli
