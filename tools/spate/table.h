// Table: the plain-text tables the `spate` status commands print — a
// header row and data rows, each column left-aligned and padded to its
// widest cell, columns two spaces apart, no trailing spaces (so tests and
// scripts can split rows on runs of spaces).
// Threading: a value type; not shared between threads.
#ifndef SPATE_TOOLS_SPATE_TABLE_H_
#define SPATE_TOOLS_SPATE_TABLE_H_

#include <iosfwd>
#include <string>
#include <vector>

namespace spate::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header);

  // `cells` has one cell per header column (a bug otherwise: crashes).
  void AddRow(std::vector<std::string> cells);

  size_t rows() const { return rows_.size() - 1; }

  // The header, then the rows in the order added.
  void Print(std::ostream& out) const;

 private:
  // rows_[0] is the header.
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace spate::cli

#endif  // SPATE_TOOLS_SPATE_TABLE_H_
