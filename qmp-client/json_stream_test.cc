// qmp-client/json_stream_test.cc: JsonStreamFramer framing, QEMU error texts, resync, limits.
#include "qmp-client/json_stream.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace rehome {
namespace {

using Json = nlohmann::json;
using Results = std::vector<absl::StatusOr<Json>>;

// Renders results as strings ("value" or "ERR: message") for easy comparison.
std::vector<std::string> Render(const Results& results) {
  std::vector<std::string> out;
  for (const auto& r : results) {
    out.push_back(r.ok() ? r->dump() : "ERR: " + std::string(r.status().message()));
  }
  return out;
}

std::vector<std::string> FeedAll(std::string_view input, JsonStreamOptions options = {}) {
  JsonStreamFramer framer(options);
  return Render(framer.Feed(input));
}

TEST(JsonStream, FramesSeveralValuesInOneChunkWithCrlfBetween) {
  EXPECT_EQ(FeedAll("{\"a\":1}\r\n{\"b\":[1,2]}  {\"c\":{}}\r\n"),
            (std::vector<std::string>{R"({"a":1})", R"({"b":[1,2]})", R"({"c":{}})"}));
}

TEST(JsonStream, ValueSplitAtEveryByteBoundaryGivesSameResult) {
  const std::string input =
      "{\"execute\":\"x\",\"arguments\":{\"s\":\"}{][\\\"\\\\\",\"n\":-1.5e3}}\r\n"
      "['a\\'b', \"\\u00e9\", true, null]{'q':'say \"hi\"'}\n7 ";
  const std::vector<std::string> whole = FeedAll(input);
  ASSERT_EQ(whole.size(), 4u);
  for (std::size_t split = 0; split <= input.size(); ++split) {
    JsonStreamFramer framer;
    Results results = framer.Feed(input.substr(0, split));
    framer.Feed(input.substr(split), &results);
    EXPECT_EQ(Render(results), whole) << "split at " << split;
  }
  JsonStreamFramer bytewise;
  Results results;
  for (char c : input) bytewise.Feed(std::string_view(&c, 1), &results);
  EXPECT_EQ(Render(results), whole);
}

TEST(JsonStream, StringsMayContainBracesQuotesAndEscapes) {
  const std::vector<std::string> out =
      FeedAll(R"({"a":"}{][\"\\","b":["\u00e9\ud83d\ude00","\/\b\f\n\r\t"]})");
  ASSERT_EQ(out.size(), 1u);
  Json value = Json::parse(out[0]);
  EXPECT_EQ(value["a"], "}{][\"\\");
  EXPECT_EQ(value["b"][0], "\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(value["b"][1], "/\b\f\n\r\t");
}

TEST(JsonStream, AcceptsQemuSingleQuotedStringsAndApostropheEscape) {
  const std::vector<std::string> out = FeedAll(R"({'execute':'say "hi"','x':"it\'s"})");
  ASSERT_EQ(out.size(), 1u);
  Json value = Json::parse(out[0]);
  EXPECT_EQ(value["execute"], "say \"hi\"");
  EXPECT_EQ(value["x"], "it's");
}

TEST(JsonStream, TopLevelScalarsCompleteWhenTheirTokenEnds) {
  JsonStreamFramer framer;
  EXPECT_TRUE(framer.Feed("42").empty());  // a number may go on
  EXPECT_EQ(Render(framer.Feed(" \"s\" true")),
            (std::vector<std::string>{"42", "\"s\""}));  // "true" may go on too
  EXPECT_EQ(Render(framer.Feed("\n18446744073709551615 ")),
            (std::vector<std::string>{"true", "18446744073709551615"}));
}

TEST(JsonStream, ReportsQemuParseErrorTexts) {
  EXPECT_EQ(FeedAll("{\"a\":1,}"),
            (std::vector<std::string>{"ERR: JSON parse error, expecting value"}));
  EXPECT_EQ(FeedAll("{\"a\" 1}"),
            (std::vector<std::string>{"ERR: JSON parse error, missing : in object pair"}));
  EXPECT_EQ(FeedAll("{1:2}"),
            (std::vector<std::string>{"ERR: JSON parse error, key is not a string in object"}));
  EXPECT_EQ(FeedAll("[1 2]"),
            (std::vector<std::string>{"ERR: JSON parse error, expected separator in list"}));
  EXPECT_EQ(FeedAll("{\"a\":1 \"b\":2}"),
            (std::vector<std::string>{"ERR: JSON parse error, expected separator in dict"}));
  EXPECT_EQ(FeedAll("{\"a\":1,\"a\":2}"),
            (std::vector<std::string>{"ERR: JSON parse error, duplicate key"}));
  EXPECT_EQ(FeedAll("{\"a\":tru}"),
            (std::vector<std::string>{"ERR: JSON parse error, invalid keyword 'tru'"}));
  EXPECT_EQ(FeedAll("{\"a\":\"\\q\"}"),
            (std::vector<std::string>{"ERR: JSON parse error, invalid escape sequence in string"}));
  EXPECT_EQ(FeedAll("{\"a\":\"\\u12\"}"),
            (std::vector<std::string>{
                "ERR: JSON parse error, \\u12\" is not a valid Unicode character"}));
  EXPECT_EQ(FeedAll("01"), (std::vector<std::string>{"ERR: JSON parse error, stray '01'"}));
}

TEST(JsonStream, GarbageIsReportedThenParsingResynchronises) {
  EXPECT_EQ(
      FeedAll("abc\x01{\"execute\":\"q\"}"),
      (std::vector<std::string>{"ERR: JSON parse error, invalid keyword 'abc'",
                                "ERR: JSON parse error, stray '\x01'", R"({"execute":"q"})"}));
  // A lexical error inside a value drops it; recovery skips to the next structural character.
  EXPECT_EQ(FeedAll("{\"a\":\"x\ny\"} {\"ok\":1}"),
            (std::vector<std::string>{"ERR: JSON parse error, stray '\"x\n'",
                                      "ERR: JSON parse error, expecting value", R"({"ok":1})"}));
  // 0xFF forces the parser back to a known state in the middle of a value.
  EXPECT_EQ(FeedAll("{\"a\":[1,\xff{\"b\":1}"),
            (std::vector<std::string>{"ERR: JSON parse error, stray '\xff'", R"({"b":1})"}));
  // A stray closing bracket is a value of its own.
  EXPECT_EQ(FeedAll("]{}"),
            (std::vector<std::string>{"ERR: JSON parse error, expecting value", "{}"}));
}

TEST(JsonStream, NestingDepthLimitReportsOnceAndSkipsTheRestOfTheValue) {
  JsonStreamOptions options;
  options.max_depth = 4;
  EXPECT_EQ(FeedAll("[[[[1]]]]", options), (std::vector<std::string>{"[[[[1]]]]"}));
  EXPECT_EQ(FeedAll("[[{\"a\":[[1,\"]]]]\"]]}]] {\"ok\":true}", options),
            (std::vector<std::string>{"ERR: JSON nesting depth limit exceeded", R"({"ok":true})"}));
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  JsonStreamFramer framer(options);
  Results results = framer.Feed(deep + "{}");
  EXPECT_EQ(Render(results),
            (std::vector<std::string>{"ERR: JSON nesting depth limit exceeded", "{}"}));
}

TEST(JsonStream, SizeLimitBoundsBufferingAndResynchronises) {
  JsonStreamOptions options;
  options.max_value_bytes = 64;
  JsonStreamFramer framer(options);
  Results results = framer.Feed("{\"s\":\"");
  for (int i = 0; i < 1000; ++i) {
    framer.Feed(std::string(100, 'x'), &results);
    EXPECT_LE(framer.buffered_bytes(), options.max_value_bytes);
  }
  framer.Feed("\"}\r\n{\"small\":1}", &results);
  EXPECT_EQ(Render(results),
            (std::vector<std::string>{"ERR: JSON token size limit exceeded", R"({"small":1})"}));
  // Exactly at the limit is fine.
  const std::string fits = "\"" + std::string(62, 'y') + "\"";
  EXPECT_EQ(FeedAll(fits, options), (std::vector<std::string>{fits}));
}

TEST(JsonStream, TokenCountLimitReportsOnceAndResynchronises) {
  JsonStreamOptions options;
  options.max_tokens = 5;
  EXPECT_EQ(FeedAll("[1,2]", options), (std::vector<std::string>{"[1,2]"}));
  EXPECT_EQ(FeedAll("[1,2,3,[4]] {}", options),
            (std::vector<std::string>{"ERR: JSON token count limit exceeded", "{}"}));
}

TEST(JsonStream, DefaultsAreQemuLimits) {
  const JsonStreamOptions options;
  EXPECT_EQ(options.max_value_bytes, std::size_t{64} << 20);
  EXPECT_EQ(options.max_tokens, std::size_t{2} << 20);
  EXPECT_EQ(options.max_depth, 1024);
  std::string deep = std::string(1024, '[') + std::string(1024, ']');
  EXPECT_EQ(FeedAll(deep), (std::vector<std::string>{deep}));
  deep = "[" + deep + "]";
  EXPECT_EQ(FeedAll(deep), (std::vector<std::string>{"ERR: JSON nesting depth limit exceeded"}));
}

TEST(JsonStream, ResetDropsPartialValue) {
  JsonStreamFramer framer;
  EXPECT_TRUE(framer.Feed("{\"a\":[1,").empty());
  EXPECT_GT(framer.buffered_bytes(), 0u);
  framer.Reset();
  EXPECT_EQ(framer.buffered_bytes(), 0u);
  EXPECT_EQ(Render(framer.Feed("{}")), (std::vector<std::string>{"{}"}));
}

}  // namespace
}  // namespace rehome
