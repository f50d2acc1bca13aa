#include "tests/sim/app_state.h"

#include <string>

#include "gtest/gtest.h"

namespace spate::sim {
namespace {

raft::Entry MakeEntry(raft::Index index, raft::Term term, std::string data) {
  raft::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::move(data));
  return e;
}

TEST(AppStateTest, DigestDependsOnEveryEntryAndItsPosition) {
  AppState a;
  a.Apply(MakeEntry(1, 1, "x"));
  a.Apply(MakeEntry(2, 1, "y"));
  AppState b;
  b.Apply(MakeEntry(1, 1, "y"));
  b.Apply(MakeEntry(2, 1, "x"));
  AppState c;
  c.Apply(MakeEntry(1, 1, "x"));
  c.Apply(MakeEntry(2, 2, "y"));  // same data, another term
  AppState d;
  d.Apply(MakeEntry(1, 1, "x"));
  d.Apply(MakeEntry(2, 1, "y"));
  EXPECT_NE(a.digest, b.digest);
  EXPECT_NE(a.digest, c.digest);
  EXPECT_EQ(a.digest, d.digest);
  EXPECT_EQ(a.applied, 2u);
  EXPECT_EQ(a.commands, 2u);
}

TEST(AppStateTest, NoOpsAndConfChangesAreNotCommands) {
  AppState s;
  s.Apply(MakeEntry(1, 1, ""));
  raft::Entry cc = MakeEntry(2, 1, "change");
  cc.set_type(raft::ENTRY_CONF_CHANGE);
  s.Apply(cc);
  EXPECT_EQ(s.applied, 2u);
  EXPECT_EQ(s.commands, 0u);
  EXPECT_NE(s.digest, 0u);
}

TEST(AppStateTest, EncodeDecodeRoundTrip) {
  AppState s;
  s.Apply(MakeEntry(1, 3, "x"));
  const std::optional<AppState> back = AppState::Decode(s.Encode());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->applied, s.applied);
  EXPECT_EQ(back->digest, s.digest);
  EXPECT_EQ(back->commands, s.commands);
  EXPECT_FALSE(AppState::Decode("").has_value());
  EXPECT_FALSE(AppState::Decode("1:2").has_value());
  EXPECT_FALSE(AppState::Decode("1:x:3").has_value());
}

}  // namespace
}  // namespace spate::sim
