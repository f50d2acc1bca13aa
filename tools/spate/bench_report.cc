#include "tools/spate/bench_report.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace spate::cli {
namespace {

constexpr double kNanosPerMicro = 1e3;

// Latency quantiles reported everywhere.
struct Quantile {
  const char* name;
  double q;
};
constexpr Quantile kQuantiles[] = {
    {"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p999", 0.999}};

std::string Millis(int64_t nanos) {
  return absl::StrFormat("%.3f", static_cast<double>(nanos) / 1e6);
}

std::string LatencyLine(const char* what, const LatencyHistogram& latency) {
  if (latency.count() == 0) return absl::StrCat("  ", what, ": no samples\n");
  std::string line = absl::StrCat("  ", what, " ms:");
  for (const Quantile& quantile : kQuantiles) {
    absl::StrAppend(&line, " ", quantile.name, " ",
                    Millis(latency.PercentileNanos(quantile.q)));
  }
  absl::StrAppend(&line, " max ", Millis(latency.max_nanos()),
                  " (n=", latency.count(), ")\n");
  return line;
}

std::string RoleText(const char* role, const RoleResult& result,
                     int64_t size_bytes, const char* latency_name) {
  std::string text = absl::StrFormat(
      "%s: %d client(s), %d msgs in %.3f s: %.0f msgs/s, %.2f MB/s", role,
      result.clients, result.msgs, result.seconds, result.msgs_per_s(),
      result.mb_per_s(size_bytes));
  if (result.client_msgs_per_s.size() > 1) {
    const auto [low, high] = std::minmax_element(
        result.client_msgs_per_s.begin(), result.client_msgs_per_s.end());
    absl::StrAppend(&text,
                    absl::StrFormat(" (per client %.0f..%.0f)", *low, *high));
  }
  if (result.errors > 0) {
    absl::StrAppend(&text, ", ", result.errors,
                    role[0] == 'p' ? " failed" : " redelivered");
  }
  absl::StrAppend(&text, "\n", LatencyLine(latency_name, result.latency));
  return text;
}

nlohmann::json LatencyJson(const LatencyHistogram& latency) {
  nlohmann::json json;
  json["count"] = latency.count();
  json["min_us"] = latency.min_nanos() / kNanosPerMicro;
  json["mean_us"] = latency.mean_nanos() / kNanosPerMicro;
  for (const Quantile& quantile : kQuantiles) {
    json[absl::StrCat(quantile.name, "_us")] =
        latency.PercentileNanos(quantile.q) / kNanosPerMicro;
  }
  json["max_us"] = latency.max_nanos() / kNanosPerMicro;
  return json;
}

nlohmann::json RoleJson(const RoleResult& result, int64_t size_bytes) {
  nlohmann::json json;
  json["clients"] = result.clients;
  json["msgs"] = result.msgs;
  json["errors"] = result.errors;
  json["seconds"] = result.seconds;
  json["msgs_per_s"] = result.msgs_per_s();
  json["mb_per_s"] = result.mb_per_s(size_bytes);
  json["client_msgs_per_s"] = result.client_msgs_per_s;
  json["latency"] = LatencyJson(result.latency);
  return json;
}

nlohmann::json ConfigJson(const BenchConfig& config) {
  nlohmann::json json;
  json["description"] = config.Describe();
  json["channel"] = config.channel;
  json["channels"] = config.channels;
  json["publishers"] = config.publishers;
  json["subscribers"] = config.subscribers;
  json["sub_kind"] = SubKindName(config.sub_kind);
  json["size_bytes"] = config.size_bytes;
  json["count"] = config.count;
  json["duration_s"] = absl::ToDoubleSeconds(config.duration);
  json["sync"] = config.sync;
  json["window"] = config.window;
  json["rate_msgs_per_s"] = config.rate_msgs_per_s;
  json["manual_ack"] = config.manual_ack;
  json["max_in_flight"] = config.max_in_flight;
  json["start_first"] = config.start_first;
  return json;
}

}  // namespace

double BenchResult::server_cpu_seconds() const {
  double total = 0;
  for (const ServerCpu& server : servers) {
    if (server.cpu_seconds > 0) total += server.cpu_seconds;
  }
  return total;
}

double BenchResult::msgs_per_server_cpu_second() const {
  const double cpu = server_cpu_seconds();
  const int64_t msgs = pub ? pub->msgs : (sub ? sub->msgs : 0);
  return cpu > 0 ? msgs / cpu : 0;
}

std::string FormatText(const BenchResult& result) {
  const BenchConfig& config = result.config;
  std::string text = absl::StrCat(
      "spate bench", config.label.empty() ? "" : " [" + config.label + "]",
      ": ", config.Describe(), "\n");
  if (result.pub) {
    text += RoleText("pub", *result.pub, config.size_bytes, "publish->ack");
  }
  if (result.sub) {
    text += RoleText("sub", *result.sub, config.size_bytes, "end-to-end");
  }
  if (!result.servers.empty()) {
    absl::StrAppend(&text, "server cpu s:");
    for (const ServerCpu& server : result.servers) {
      absl::StrAppend(&text, " pid ", server.pid, " ",
                      server.cpu_seconds < 0
                          ? std::string("gone")
                          : absl::StrFormat("%.2f", server.cpu_seconds));
    }
    absl::StrAppend(
        &text,
        absl::StrFormat("; total %.2f: %.0f msgs per server CPU-second\n",
                        result.server_cpu_seconds(),
                        result.msgs_per_server_cpu_second()));
  }
  absl::StrAppend(
      &text, absl::StrFormat("bench cpu %.2f s, elapsed %.2f s, load 1m "
                             "%.2f -> %.2f\n",
                             result.bench_cpu_seconds, result.elapsed_seconds,
                             result.load_1m_start, result.load_1m_end));
  return text;
}

std::string FormatJson(const BenchResult& result) {
  nlohmann::json json;
  json["label"] = result.config.label;
  json["config"] = ConfigJson(result.config);
  if (result.pub) json["pub"] = RoleJson(*result.pub, result.config.size_bytes);
  if (result.sub) json["sub"] = RoleJson(*result.sub, result.config.size_bytes);
  nlohmann::json servers = nlohmann::json::array();
  for (const ServerCpu& server : result.servers) {
    servers.push_back({{"pid", server.pid}, {"cpu_s", server.cpu_seconds}});
  }
  json["servers"] = servers;
  json["server_cpu_s"] = result.server_cpu_seconds();
  json["msgs_per_server_cpu_s"] = result.msgs_per_server_cpu_second();
  json["bench_cpu_s"] = result.bench_cpu_seconds;
  json["elapsed_s"] = result.elapsed_seconds;
  json["loadavg_1m_start"] = result.load_1m_start;
  json["loadavg_1m_end"] = result.load_1m_end;
  return json.dump();
}

}  // namespace spate::cli
