// Progress: the rendered line (count, bar, rates, ETA) and that it stays silent when disabled.
#include "core/progress.h"

#include <gtest/gtest.h>

#include <thread>

using namespace r1kit;

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(Progress::format_duration(0), "0s");
  EXPECT_EQ(Progress::format_duration(59.4), "59s");
  EXPECT_EQ(Progress::format_duration(245), "4m05s");
  EXPECT_EQ(Progress::format_duration(3725), "1h02m");
  EXPECT_EQ(Progress::format_duration(-1), "?");
}

TEST(Progress, RendersCountBarRatesAndEta) {
  ProgressOptions o;
  o.label = "generate";
  o.unit = "rec";
  o.total = 10;
  o.enabled = 0;
  Progress p(o);
  EXPECT_EQ(p.render(), "generate  0/10 [>                       ] 0%");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  p.advance(5);
  p.add("tok", 500);
  p.set_note("acc 0.5");
  const std::string line = p.render();
  EXPECT_NE(line.find("generate  5/10 [============>           ] 50%"), std::string::npos) << line;
  EXPECT_NE(line.find(" rec/s"), std::string::npos) << line;
  EXPECT_NE(line.find(" tok/s"), std::string::npos) << line;
  EXPECT_NE(line.find("ETA "), std::string::npos) << line;
  EXPECT_NE(line.find("acc 0.5"), std::string::npos) << line;
  p.advance(5);
  EXPECT_EQ(p.render().find("ETA"), std::string::npos);
  EXPECT_EQ(p.done(), 10);
}

TEST(Progress, ResumedWorkCountsButNotInTheRate) {
  ProgressOptions o;
  o.total = 100;
  o.initial = 90;
  o.enabled = 0;
  Progress p(o);
  EXPECT_NE(p.render().find("90/100"), std::string::npos);
  EXPECT_EQ(p.render().find("/s"), std::string::npos);  // nothing done by this run yet: no rate, no ETA
}

TEST(Progress, DisabledWritesNothing) {
  testing::internal::CaptureStderr();
  {
    ProgressOptions o;
    o.total = 3;
    o.enabled = 0;
    Progress p(o);
    p.advance(3);
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

TEST(Progress, EnabledDrawsOneLineAndEndsIt) {
  testing::internal::CaptureStderr();
  {
    ProgressOptions o;
    o.label = "x";
    o.total = 2;
    o.enabled = 1;
    Progress p(o);
    p.advance(2);
  }
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_EQ(out.front(), '\r');
  EXPECT_EQ(out.back(), '\n');
  EXPECT_NE(out.find("x  2/2"), std::string::npos) << out;
}

TEST(Progress, EnvironmentOverridesTerminalDetection) {
  setenv("R1_PROGRESS", "0", 1);
  EXPECT_FALSE(Progress::auto_enabled());
  setenv("R1_PROGRESS", "1", 1);
  EXPECT_TRUE(Progress::auto_enabled());
  unsetenv("R1_PROGRESS");
}
