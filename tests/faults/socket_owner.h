// Which process dialed a loopback TCP connection. The fault proxy
// (link_proxy.h) sits in front of one node and must know which node each
// incoming connection comes from, to cut the link from node A to node B but
// not from C to B. Every node dials the same proxy address (the cluster's
// node table holds one address per node), so the source port is all the
// proxy sees; this maps it to a process the Linux way (as `ss -p` does):
// /proc/net/tcp{,6} gives the socket inode of the connection's client end,
// and /proc/<pid>/fd of the candidate processes tells whose it is.
// Threading: stateless, any thread.
#ifndef SPATE_TESTS_FAULTS_SOCKET_OWNER_H_
#define SPATE_TESTS_FAULTS_SOCKET_OWNER_H_

#include <sys/types.h>

#include <cstdint>
#include <vector>

namespace spate::faults {

// The socket inode of the TCP connection whose local port is `client_port`
// and whose remote port is `server_port` (both on this host), or 0.
uint64_t LoopbackSocketInode(int client_port, int server_port);

// The process among `candidates` holding socket `inode` open, or -1.
pid_t SocketOwner(uint64_t inode, const std::vector<pid_t>& candidates);

}  // namespace spate::faults

#endif  // SPATE_TESTS_FAULTS_SOCKET_OWNER_H_
