// `spate backup DIR`: asks one node (the first --server) to write a
// consistent copy of its store into DIR on that node's host (Admin.Backup,
// a RocksDB checkpoint) and prints what was written. docs/operations.md
// explains restoring from it.
// Threading: runs on the CLI's thread.
#ifndef SPATE_TOOLS_SPATE_BACKUP_H_
#define SPATE_TOOLS_SPATE_BACKUP_H_

#include "tools/spate/command.h"

namespace spate::cli {

Command BackupCommand();

}  // namespace spate::cli

#endif  // SPATE_TOOLS_SPATE_BACKUP_H_
