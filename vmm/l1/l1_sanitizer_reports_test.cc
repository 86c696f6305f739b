// vmm/l1/l1_sanitizer_reports_test.cc: reading log_path out of a sanitizer options string.
#include "vmm/l1/l1_sanitizer_reports.h"

#include <gtest/gtest.h>

namespace rehome {
namespace {

TEST(SanitizerLogPath, FindsItAmongOtherOptions) {
  EXPECT_EQ(SanitizerLogPath("second_deadlock_stack=1:log_path=/r/report:halt_on_error=0"),
            "/r/report");
  EXPECT_EQ(SanitizerLogPath("log_path=/r/report second_deadlock_stack=1"), "/r/report");
}

TEST(SanitizerLogPath, TheLastOneWinsAndAbsentIsEmpty) {
  EXPECT_EQ(SanitizerLogPath("log_path=/a:log_path=/b"), "/b");
  EXPECT_EQ(SanitizerLogPath("detect_leaks=1"), "");
  EXPECT_EQ(SanitizerLogPath(""), "");
  EXPECT_EQ(SanitizerLogPath("xlog_path=/a"), "");
}

}  // namespace
}  // namespace rehome
