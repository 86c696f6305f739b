// qmp-client/qmp_session_test.cc: server-side QmpSession negotiation, dispatch, errors, events.
#include "qmp-client/qmp_session.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace rehome {
namespace {

using Json = nlohmann::json;

class FakeHandler final : public CommandHandler {
 public:
  bool HasCommand(std::string_view name) const override {
    return name == "query-status" || name == "fail" || name == "ping-oob";
  }
  bool AllowsOob(std::string_view name) const override { return name == "ping-oob"; }
  absl::StatusOr<Json> Execute(std::string_view name, const Json& args) override {
    calls.emplace_back(name);
    last_args = args;
    if (name == "fail") return QmpErrorStatus(kQmpDeviceNotFound, "Device 'x' not found");
    if (name == "ping-oob") return Json("pong");
    return Json{{"status", "running"}, {"singlestep", false}, {"running", true}};
  }
  std::vector<std::string> calls;
  Json last_args;
};

class QmpSessionTest : public ::testing::Test {
 protected:
  QmpSessionTest() : session_(&handler_, Options()) {}
  static QmpSessionOptions Options() {
    QmpSessionOptions options;
    options.version = {7, 2, 0, "rehome"};
    options.clock = [] { return QmpTimestamp{100, 5}; };
    return options;
  }
  // Feeds `input` and returns the replies, checking each is one CRLF-terminated line.
  std::vector<Json> Send(std::string_view input) {
    session_.Feed(input);
    std::vector<Json> replies;
    for (const std::string& line : session_.TakeOutput()) {
      EXPECT_GE(line.size(), 2u);
      EXPECT_EQ(line.substr(line.size() - 2), "\r\n");
      EXPECT_EQ(line.find('\n'), line.size() - 1);
      replies.push_back(Json::parse(line));
    }
    return replies;
  }
  void Negotiate() {
    session_.Start();
    session_.TakeOutput();
    ASSERT_EQ(Send(R"({"execute":"qmp_capabilities"})"),
              std::vector<Json>{Json::parse(R"({"return":{}})")});
  }

  FakeHandler handler_;
  QmpSession session_;
};

TEST_F(QmpSessionTest, StartQueuesGreeting) {
  session_.Start();
  std::vector<std::string> out = session_.TakeOutput();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(Json::parse(out[0]), Json::parse(R"({"QMP":{"version":{"qemu":{"micro":0,"minor":2,
                                 "major":7},"package":"rehome"},"capabilities":["oob"]}})"));
}

TEST_F(QmpSessionTest, CommandsBeforeNegotiationAreRejectedWithQemuWording) {
  session_.Start();
  session_.TakeOutput();
  EXPECT_EQ(Send(R"({"execute":"query-status","id":5})"),
            std::vector<Json>{Json::parse(R"({"id":5,"error":{"class":"CommandNotFound",
                "desc":"Expecting capabilities negotiation with 'qmp_capabilities'"}})")});
  EXPECT_EQ(Send(R"({"execute":"nonexistent"})"),
            std::vector<Json>{Json::parse(R"({"error":{"class":"CommandNotFound",
                "desc":"Expecting capabilities negotiation with 'qmp_capabilities'"}})")});
  EXPECT_TRUE(handler_.calls.empty());
  EXPECT_FALSE(session_.negotiated());
  // Protocol errors keep their GenericError before negotiation.
  EXPECT_EQ(Send("[1]")[0]["error"]["desc"], "QMP input must be a JSON object");
}

TEST_F(QmpSessionTest, NegotiationOnlyOnceThenCommandsDispatch) {
  Negotiate();
  EXPECT_TRUE(session_.negotiated());
  EXPECT_FALSE(session_.oob_enabled());
  EXPECT_EQ(Send(R"({"execute":"qmp_capabilities","id":1})"),
            std::vector<Json>{Json::parse(R"({"id":1,"error":{"class":"CommandNotFound",
                "desc":"Capabilities negotiation is already complete, command ignored"}})")});
  std::vector<Json> replies = Send(R"({"execute":"query-status","arguments":{"x":1}})");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0]["return"]["status"], "running");
  EXPECT_EQ(handler_.last_args, Json({{"x", 1}}));
  Send(R"({"execute":"query-status"})");
  EXPECT_EQ(handler_.last_args, Json::object());  // absent arguments become {}
  EXPECT_EQ(Send(R"({"execute":"query-nope","id":"a"})"),
            std::vector<Json>{Json::parse(R"({"id":"a","error":{"class":"CommandNotFound",
                "desc":"The command query-nope has not been found"}})")});
  EXPECT_EQ(Send(R"({"execute":"fail"})"),
            std::vector<Json>{Json::parse(R"({"error":{"class":"DeviceNotFound",
                "desc":"Device 'x' not found"}})")});
}

TEST_F(QmpSessionTest, IdOfAnyJsonTypeIsEchoedVerbatim) {
  Negotiate();
  for (const char* id : {"7", "\"seven\"", "{\"a\":[1,null]}", "[1,{\"b\":2}]", "null", "1.5"}) {
    std::vector<Json> replies = Send(std::string(R"({"execute":"query-status","id":)") + id + "}");
    ASSERT_EQ(replies.size(), 1u);
    ASSERT_TRUE(replies[0].contains("id")) << id;
    EXPECT_EQ(replies[0]["id"], Json::parse(id));
    replies = Send(std::string(R"({"execute":"fail","id":)") + id + "}");
    EXPECT_EQ(replies[0]["id"], Json::parse(id));
  }
}

TEST_F(QmpSessionTest, MalformedInputGetsQemuGenericErrors) {
  Negotiate();
  auto desc = [&](std::string_view input) {
    std::vector<Json> replies = Send(input);
    EXPECT_EQ(replies.size(), 1u) << input;
    if (replies.empty()) return std::string();
    EXPECT_EQ(replies[0]["error"]["class"], "GenericError") << input;
    return replies[0]["error"]["desc"].get<std::string>();
  };
  EXPECT_EQ(desc("42\n"), "QMP input must be a JSON object");
  EXPECT_EQ(desc(R"({"id":3})"), "QMP input lacks member 'execute'");
  EXPECT_EQ(desc(R"({"execute":1})"), "QMP input member 'execute' must be a string");
  EXPECT_EQ(desc(R"({"execute":"query-status","foo":1})"), "QMP input member 'foo' is unexpected");
  EXPECT_EQ(desc(R"({"exec-oob":"query-status"})"), "QMP input member 'exec-oob' is unexpected");
  EXPECT_EQ(desc(R"({"execute":"query-status","arguments":5})"),
            "QMP input member 'arguments' must be an object");
  EXPECT_EQ(desc("{\"a\":tru}"), "JSON parse error, invalid keyword 'tru'");
  EXPECT_EQ(desc("\x01"), "JSON parse error, stray '\x01'");
  // Request-shape errors echo the id; JSON errors cannot.
  EXPECT_EQ(Send(R"({"id":3})")[0]["id"], 3);
  EXPECT_FALSE(Send("{\"id\":3,}")[0].contains("id"));
}

TEST_F(QmpSessionTest, CapabilityNegotiationArgumentsAreChecked) {
  session_.Start();
  session_.TakeOutput();
  auto desc = [&](std::string_view input) {
    std::vector<Json> replies = Send(input);
    return replies.empty() ? std::string() : replies[0]["error"]["desc"].get<std::string>();
  };
  EXPECT_EQ(desc(R"({"execute":"qmp_capabilities","arguments":{"enable":"oob"}})"),
            "Invalid parameter type for 'enable', expected: array");
  EXPECT_EQ(desc(R"({"execute":"qmp_capabilities","arguments":{"enable":[1]}})"),
            "Invalid parameter type for 'enable[0]', expected: string");
  EXPECT_EQ(desc(R"({"execute":"qmp_capabilities","arguments":{"enable":["bogus"]}})"),
            "Parameter 'null' does not accept value 'bogus'");
  EXPECT_EQ(desc(R"({"execute":"qmp_capabilities","arguments":{"x":1}})"),
            "Parameter 'x' is unexpected");
  EXPECT_FALSE(session_.negotiated());
  std::vector<Json> replies =
      Send(R"({"execute":"qmp_capabilities","arguments":{"enable":["oob"]},"id":"x"})");
  EXPECT_EQ(replies, std::vector<Json>{Json::parse(R"({"return":{},"id":"x"})")});
  EXPECT_TRUE(session_.oob_enabled());
}

TEST_F(QmpSessionTest, ExecOobNeedsTheCapabilityAndAnOobCommand) {
  session_.Start();
  session_.TakeOutput();
  Send(R"({"execute":"qmp_capabilities","arguments":{"enable":["oob"]}})");
  EXPECT_EQ(Send(R"({"exec-oob":"ping-oob","id":1})"),
            std::vector<Json>{Json::parse(R"({"return":"pong","id":1})")});
  EXPECT_EQ(Send(R"({"exec-oob":"query-status","id":2})"),
            std::vector<Json>{Json::parse(R"({"id":2,"error":{"class":"GenericError",
                "desc":"The command query-status does not support OOB"}})")});
}

TEST(QmpSessionCapabilities, UnofferedCapabilityIsRefused) {
  FakeHandler handler;
  QmpSessionOptions options;
  options.capabilities.clear();
  QmpSession session(&handler, options);
  session.Start();
  session.TakeOutput();
  session.Feed(R"({"execute":"qmp_capabilities","arguments":{"enable":["oob"]}})");
  std::vector<std::string> out = session.TakeOutput();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(Json::parse(out[0])["error"]["desc"], "Capability 'oob' not available");
}

TEST_F(QmpSessionTest, EventsAreQueuedOnlyAfterNegotiation) {
  session_.Start();
  session_.TakeOutput();
  EXPECT_FALSE(session_.EmitEvent("STOP"));
  EXPECT_TRUE(session_.TakeOutput().empty());
  Negotiate();
  EXPECT_TRUE(session_.EmitEvent("RESUME", Json{{"why", "test"}}));
  std::vector<std::string> out = session_.TakeOutput();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].substr(out[0].size() - 2), "\r\n");
  EXPECT_EQ(Json::parse(out[0]), Json::parse(R"({"event":"RESUME","data":{"why":"test"},
                                  "timestamp":{"seconds":100,"microseconds":5}})"));
}

TEST_F(QmpSessionTest, RepliesComeInRequestOrderAcrossChunks) {
  Negotiate();
  const std::string input =
      "{\"execute\":\"query-status\",\"id\":1}{\"execute\":\"fail\",\"id\":2}\r\n"
      "{'execute':'query-status','id':3}";
  std::vector<Json> replies;
  for (char c : input) {
    for (Json& reply : Send(std::string_view(&c, 1))) replies.push_back(std::move(reply));
  }
  ASSERT_EQ(replies.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(replies[i]["id"], i + 1);
}

}  // namespace
}  // namespace rehome
