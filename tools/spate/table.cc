#include "tools/spate/table.h"

#include <algorithm>
#include <ostream>

#include "base/check.h"

namespace spate::cli {

Table::Table(std::vector<std::string> header) {
  CHECK(!header.empty());
  rows_.push_back(std::move(header));
}

void Table::AddRow(std::vector<std::string> cells) {
  CHECK_EQ(cells.size(), rows_[0].size());
  rows_.push_back(std::move(cells));
}

void Table::Print(std::ostream& out) const {
  std::vector<size_t> widths(rows_[0].size(), 0);
  for (const std::vector<std::string>& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  for (const std::vector<std::string>& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << "\n";
  }
}

}  // namespace spate::cli
