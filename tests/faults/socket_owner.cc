#include "tests/faults/socket_owner.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace spate::faults {
namespace {

// The port of a /proc/net/tcp address "0100007F:1F90" (hex), or -1.
int PortOf(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return -1;
  uint32_t port = 0;
  if (!absl::SimpleHexAtoi(address.substr(colon + 1), &port)) return -1;
  return static_cast<int>(port);
}

uint64_t FindInode(const std::string& table, int client_port, int server_port) {
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> fields =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() < 10) continue;
    if (PortOf(fields[1]) != client_port || PortOf(fields[2]) != server_port) {
      continue;
    }
    uint64_t inode = 0;
    if (absl::SimpleAtoi(fields[9], &inode) && inode != 0) return inode;
  }
  return 0;
}

}  // namespace

uint64_t LoopbackSocketInode(int client_port, int server_port) {
  // gRPC dials IPv4 addresses from dual-stack IPv6 sockets too.
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    if (uint64_t inode = FindInode(table, client_port, server_port)) {
      return inode;
    }
  }
  return 0;
}

pid_t SocketOwner(uint64_t inode, const std::vector<pid_t>& candidates) {
  if (inode == 0) return -1;
  const std::string wanted = absl::StrCat("socket:[", inode, "]");
  for (pid_t pid : candidates) {
    if (pid <= 0) continue;
    const std::string fd_dir = absl::StrCat("/proc/", pid, "/fd");
    DIR* dir = opendir(fd_dir.c_str());
    if (dir == nullptr) continue;
    bool found = false;
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      char target[64];
      const std::string link = fd_dir + "/" + entry->d_name;
      const ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
      if (n <= 0) continue;
      if (wanted == absl::string_view(target, static_cast<size_t>(n))) {
        found = true;
        break;
      }
    }
    closedir(dir);
    if (found) return pid;
  }
  return -1;
}

}  // namespace spate::faults
