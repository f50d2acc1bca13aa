// Table's layout: columns padded to the widest cell, no trailing spaces.
#include "tools/spate/table.h"

#include <sstream>

#include "gtest/gtest.h"

namespace spate::cli {
namespace {

TEST(TableTest, PadsEachColumnToItsWidestCell) {
  Table table({"NODE", "ADDRESS", "STATE"});
  table.AddRow({"1", "127.0.0.1:4222", "up"});
  table.AddRow({"12", "h:1", "down"});
  std::ostringstream out;
  table.Print(out);
  EXPECT_EQ(out.str(),
            "NODE  ADDRESS         STATE\n"
            "1     127.0.0.1:4222  up\n"
            "12    h:1             down\n");
  EXPECT_EQ(table.rows(), 2u);
}

TEST(TableTest, EmptyLastCellLeavesNoTrailingSpaces) {
  Table table({"A", "B"});
  table.AddRow({"x", ""});
  std::ostringstream out;
  table.Print(out);
  EXPECT_EQ(out.str(), "A  B\nx\n");
}

TEST(TableTest, RowOfTheWrongWidthIsABug) {
  Table table({"A", "B"});
  EXPECT_DEATH(table.AddRow({"x"}), "");
}

}  // namespace
}  // namespace spate::cli
