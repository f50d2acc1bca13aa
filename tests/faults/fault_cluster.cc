#include "tests/faults/fault_cluster.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proto/admin.grpc.pb.h"
#include "tests/faults/socket_owner.h"

namespace spate::faults {
namespace {

using testing::ServerProcess;

std::string Loopback(int port) { return absl::StrCat("127.0.0.1:", port); }

// RocksDB data files worth damaging: WAL, SST and MANIFEST files.
std::vector<std::filesystem::path> DataFiles(const std::string& dir) {
  std::vector<std::filesystem::path> files;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    if (!entry.is_regular_file() || entry.file_size() == 0) continue;
    const std::string name = entry.path().filename().string();
    if (absl::EndsWith(name, ".log") || absl::EndsWith(name, ".sst") ||
        absl::StartsWith(name, "MANIFEST-")) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());  // replayable choice
  return files;
}

// glibc_malloc_preload.cc, built next to this file, in the runfiles.
std::string MallocPreloadPath() {
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* workspace = getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/",
                      workspace ? workspace : "spate",
                      "/tests/faults/libglibc_malloc_preload.so");
}

}  // namespace

std::string FindFaketimeLibrary() {
  for (const char* path :
       {"/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/faketime/libfaketimeMT.so.1"}) {
    if (access(path, R_OK) == 0) return path;
  }
  return "";
}

FaultCluster::FaultCluster(FaultClusterOptions options)
    : options_(std::move(options)), root_(ServerProcess::NewTempDir("faults")) {
  pids_.assign(options_.nodes, -1);
  for (int id = 1; id <= options_.nodes; ++id) {
    auto node = std::make_unique<Node>();
    node->data_dir = absl::StrCat(root_, "/node", id);
    node->client_address = Loopback(ServerProcess::FreePort());
    node->cluster_address = Loopback(ServerProcess::FreePort());
    node->clock_file = absl::StrCat(root_, "/node", id, ".clock");
    std::ofstream(node->clock_file) << "+0\n";
    auto identify = [this](int client_port, int proxy_port) {
      return Identify(client_port, proxy_port);
    };
    node->cluster_proxy =
        std::make_unique<LinkProxy>(node->cluster_address, identify);
    node->client_proxy =
        std::make_unique<LinkProxy>(node->client_address, identify);
    nodes_.push_back(std::move(node));
  }
}

FaultCluster::~FaultCluster() {
  for (auto& node : nodes_) {
    if (node->process) node->process->Kill();
  }
  for (auto& node : nodes_) {
    node->cluster_proxy->Stop();
    node->client_proxy->Stop();
  }
}

int FaultCluster::Identify(int client_port, int proxy_port) {
  std::vector<pid_t> pids;
  {
    absl::MutexLock lock(&pids_mu_);
    pids = pids_;
  }
  const pid_t owner =
      SocketOwner(LoopbackSocketInode(client_port, proxy_port), pids);
  if (owner <= 0) return 0;
  for (size_t i = 0; i < pids.size(); ++i) {
    if (pids[i] == owner) return static_cast<int>(i) + 1;
  }
  return 0;
}

std::string FaultCluster::ConfigFor(int id) const {
  const Node& self = *nodes_[id - 1];
  std::string config = absl::StrCat(
      "node { id: ", id, " cluster_name: \"faults\" cluster_address: \"",
      self.cluster_address, "\" advertise_cluster_address: \"",
      self.cluster_proxy->address(), "\" advertise_client_address: \"",
      self.client_proxy->address(), "\"");
  for (int peer = 1; peer <= size(); ++peer) {
    if (peer == id) continue;
    const Node& other = *nodes_[peer - 1];
    absl::StrAppend(&config, " peers { id: ", peer, " cluster_address: \"",
                    other.cluster_proxy->address(), "\" client_address: \"",
                    other.client_proxy->address(), "\" }");
  }
  absl::StrAppend(&config, " }\n", options_.extra_config, "\n");
  return config;
}

absl::Status FaultCluster::Start(bool lose_unsynced) {
  for (auto& node : nodes_) {
    if (absl::Status s = node->cluster_proxy->Start(); !s.ok()) return s;
    if (absl::Status s = node->client_proxy->Start(); !s.ok()) return s;
  }
  for (int id = 1; id <= size(); ++id) {
    if (absl::Status s = StartNode(id, lose_unsynced); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status FaultCluster::StartNode(int id, bool lose_unsynced) {
  Node& node = *nodes_[id - 1];
  if (node.process && node.process->running()) {
    return absl::FailedPreconditionError("node already running");
  }
  std::vector<std::string> args;
  if (lose_unsynced) args.push_back("--test_lose_unsynced_writes");
  node.process = std::make_unique<ServerProcess>(node.data_dir, ConfigFor(id),
                                                 std::move(args));
  node.process->set_client_address(node.client_address);
  if (!options_.faketime_library.empty()) {
    node.process->set_environment({
        // The shim first: libfaketime cannot start under jemalloc.
        absl::StrCat("LD_PRELOAD=", MallocPreloadPath(), ":",
                     options_.faketime_library),
        "FAKETIME_TIMESTAMP_FILE=" + node.clock_file,
        "FAKETIME_CACHE_DURATION=1",
        // Only the wall clock jumps, as under an NTP step; monotonic
        // clocks never go backwards.
        "FAKETIME_DONT_FAKE_MONOTONIC=1",
    });
  }
  node.lossy = lose_unsynced;
  node.paused = false;
  absl::Status started = node.process->Start(absl::Seconds(30));
  absl::MutexLock lock(&pids_mu_);
  pids_[id - 1] = node.process->running() ? node.process->pid() : -1;
  return started;
}

void FaultCluster::Kill(int id) {
  Node& node = *nodes_[id - 1];
  if (node.process) node.process->Kill();
  node.paused = false;
  absl::MutexLock lock(&pids_mu_);
  pids_[id - 1] = -1;
}

absl::Status FaultCluster::StopNode(int id) {
  Node& node = *nodes_[id - 1];
  absl::Status status = node.process ? node.process->Stop() : absl::OkStatus();
  node.paused = false;
  absl::MutexLock lock(&pids_mu_);
  pids_[id - 1] = -1;
  return status;
}

void FaultCluster::Pause(int id) {
  Node& node = *nodes_[id - 1];
  if (!running(id)) return;
  node.process->Pause();
  node.paused = true;
}

void FaultCluster::Resume(int id) {
  Node& node = *nodes_[id - 1];
  if (!running(id)) return;
  node.process->Resume();
  node.paused = false;
}

void FaultCluster::StopAll() {
  for (int id = 1; id <= size(); ++id) {
    if (running(id)) StopNode(id).IgnoreError();  // best-effort teardown
  }
}

bool FaultCluster::running(int id) const {
  const Node& node = *nodes_[id - 1];
  return node.process && node.process->running();
}

bool FaultCluster::paused(int id) const { return nodes_[id - 1]->paused; }

bool FaultCluster::lossy(int id) const { return nodes_[id - 1]->lossy; }

void FaultCluster::SetLink(int from, int to, LinkRule rule) {
  Node& node = *nodes_[to - 1];
  node.cluster_proxy->SetRule(from, rule);
  node.client_proxy->SetRule(from, rule);
}

void FaultCluster::HealLinks() {
  for (auto& node : nodes_) {
    node->cluster_proxy->ClearRules();
    node->client_proxy->ClearRules();
  }
}

absl::Status FaultCluster::SetClockOffset(int id, absl::Duration offset) {
  if (options_.faketime_library.empty()) {
    return absl::FailedPreconditionError("libfaketime is not available");
  }
  const std::string& file = nodes_[id - 1]->clock_file;
  const std::string tmp = file + ".tmp";
  const int64_t seconds = absl::ToInt64Seconds(offset);
  std::ofstream(tmp) << (seconds >= 0 ? "+" : "") << seconds << "\n";
  std::error_code error;
  std::filesystem::rename(tmp, file, error);
  if (error) return absl::InternalError(error.message());
  return absl::OkStatus();
}

absl::StatusOr<std::string> FaultCluster::Corrupt(int id, int bits,
                                                  base::Prng* prng) {
  if (running(id)) return absl::FailedPreconditionError("node is running");
  std::vector<std::filesystem::path> files = DataFiles(data_dir(id));
  if (files.empty()) return absl::NotFoundError("no data files");
  const std::filesystem::path file = files[prng->Uniform(files.size())];
  std::error_code error;
  const uint64_t size = std::filesystem::file_size(file, error);
  if (error || size == 0)
    return absl::InternalError("cannot size " + file.string());
  if (bits == 0) {
    const uint64_t keep = prng->Uniform(size);
    std::filesystem::resize_file(file, keep, error);
    if (error) return absl::InternalError(error.message());
    return absl::StrCat("truncated ", file.filename().string(), " from ", size,
                        " to ", keep, " bytes");
  }
  std::fstream stream(file, std::ios::in | std::ios::out | std::ios::binary);
  std::string offsets;
  for (int i = 0; i < bits; ++i) {
    const uint64_t offset = prng->Uniform(size);
    const int bit = static_cast<int>(prng->Uniform(8));
    stream.seekg(static_cast<std::streamoff>(offset));
    char byte = 0;
    stream.read(&byte, 1);
    byte = static_cast<char>(byte ^ (1 << bit));
    stream.seekp(static_cast<std::streamoff>(offset));
    stream.write(&byte, 1);
    absl::StrAppend(&offsets, i ? "," : "", offset, ":", bit);
  }
  stream.close();
  return absl::StrCat("flipped ", bits, " bits of ", file.filename().string(),
                      " (", size, " bytes) at ", offsets);
}

absl::Status FaultCluster::Wipe(int id) {
  if (running(id)) return absl::FailedPreconditionError("node is running");
  std::error_code error;
  std::filesystem::remove_all(data_dir(id), error);
  if (error) return absl::InternalError(error.message());
  return absl::OkStatus();
}

absl::StatusOr<ClusterStatusResponse> FaultCluster::Status(int id) {
  auto stub = Admin::NewStub(grpc::CreateChannel(
      client_address(id), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(3)));
  ClusterStatusResponse response;
  grpc::Status status =
      stub->ClusterStatus(&context, ClusterStatusRequest(), &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  return response;
}

std::optional<GroupStatus> FaultCluster::Group(int id,
                                               const std::string& channel) {
  absl::StatusOr<ClusterStatusResponse> status = Status(id);
  if (!status.ok()) return std::nullopt;
  for (const GroupStatus& group : status->groups()) {
    if (group.channel() == channel) return group;
  }
  return std::nullopt;
}

std::string FaultCluster::Logs() {
  std::string logs;
  for (int id = 1; id <= size(); ++id) {
    std::ifstream in(data_dir(id) + ".log");
    std::stringstream text;
    text << in.rdbuf();
    absl::StrAppend(&logs, "---- node ", id, " ----\n", text.str());
  }
  return logs;
}

std::string FaultCluster::ProxyStats() {
  std::string out;
  for (int id = 1; id <= size(); ++id) {
    for (LinkProxy* proxy : {nodes_[id - 1]->cluster_proxy.get(),
                             nodes_[id - 1]->client_proxy.get()}) {
      LinkProxyStats s = proxy->stats();
      absl::StrAppend(
          &out, "node", id,
          proxy == nodes_[id - 1]->cluster_proxy.get() ? ".cluster" : ".client",
          ": conns=", s.connections, " unidentified=", s.unidentified,
          " refused=", s.refused, " bytes=", s.bytes, "\n");
    }
  }
  return out;
}

}  // namespace spate::faults
