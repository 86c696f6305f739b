// qmp-client/qmp_codec_test.cc: QMP message builders and parsers.
#include "qmp-client/qmp_codec.h"

#include <string>
#include <variant>

#include "gtest/gtest.h"

namespace rehome {
namespace {

using Json = nlohmann::json;

bool EndsWithCrlf(const std::string& s) {
  return s.size() >= 2 && s.substr(s.size() - 2) == "\r\n" &&
         s.find('\n') == s.size() - 1;  // exactly one line
}

TEST(QmpCodec, GreetingHasQemuShapeAndRoundTrips) {
  QmpGreeting greeting{{7, 2, 22, "rehome"}, {"oob"}};
  const std::string wire = EncodeQmpGreeting(greeting);
  EXPECT_TRUE(EndsWithCrlf(wire));
  Json json = Json::parse(wire);
  EXPECT_EQ(json, Json::parse(R"({"QMP":{"version":{"qemu":{"micro":22,"minor":2,"major":7},
                                  "package":"rehome"},"capabilities":["oob"]}})"));
  auto parsed = ParseQmpServerMessage(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const auto& back = std::get<QmpGreeting>(*parsed);
  EXPECT_EQ(back.version.major, 7);
  EXPECT_EQ(back.version.minor, 2);
  EXPECT_EQ(back.version.micro, 22);
  EXPECT_EQ(back.version.package, "rehome");
  EXPECT_EQ(back.capabilities, std::vector<std::string>{"oob"});
}

TEST(QmpCodec, CommandEncodesExecuteOrExecOobArgumentsAndAnyId) {
  QmpCommand command{"query-status", false, std::nullopt, Json::array({1, "x"})};
  Json json = Json::parse(EncodeQmpCommand(command));
  EXPECT_EQ(json, Json::parse(R"({"execute":"query-status","id":[1,"x"]})"));
  command.oob = true;
  command.arguments = Json{{"a", 1}};
  command.id.reset();
  json = Json::parse(EncodeQmpCommand(command));
  EXPECT_EQ(json, Json::parse(R"({"exec-oob":"query-status","arguments":{"a":1}})"));
}

TEST(QmpCodec, SuccessAndErrorRepliesEchoIdOfAnyType) {
  for (const Json& id :
       {Json(5), Json("s"), Json{{"k", {1, 2}}}, Json::array({1, nullptr}), Json(nullptr)}) {
    const std::string ok = EncodeQmpSuccess(Json{{"running", true}}, id);
    EXPECT_TRUE(EndsWithCrlf(ok));
    auto parsed = ParseQmpServerMessage(Json::parse(ok));
    ASSERT_TRUE(parsed.ok());
    const auto& response = std::get<QmpResponse>(*parsed);
    ASSERT_TRUE(response.id.has_value());
    EXPECT_EQ(*response.id, id);
    EXPECT_TRUE(response.ok());
    EXPECT_EQ(*response.value, Json({{"running", true}}));

    const std::string err = EncodeQmpError({"DeviceNotFound", "no such device"}, id);
    EXPECT_TRUE(EndsWithCrlf(err));
    parsed = ParseQmpServerMessage(Json::parse(err));
    ASSERT_TRUE(parsed.ok());
    const auto& failure = std::get<QmpResponse>(*parsed);
    EXPECT_EQ(*failure.id, id);
    ASSERT_FALSE(failure.ok());
    EXPECT_EQ(failure.error->error_class, "DeviceNotFound");
    EXPECT_EQ(failure.error->desc, "no such device");
  }
  // No id in, no id out.
  EXPECT_EQ(Json::parse(EncodeQmpSuccess(Json::object(), std::nullopt)),
            Json::parse(R"({"return":{}})"));
}

TEST(QmpCodec, EventCarriesNameDataAndTimestamp) {
  QmpEvent event{"STOP", std::nullopt, {1700000000, 123456}};
  const std::string wire = EncodeQmpEvent(event);
  EXPECT_TRUE(EndsWithCrlf(wire));
  EXPECT_EQ(Json::parse(wire), Json::parse(R"({"event":"STOP","timestamp":{"seconds":1700000000,
                            "microseconds":123456}})"));
  event.data = Json{{"reason", "x"}};
  auto parsed = ParseQmpServerMessage(Json::parse(EncodeQmpEvent(event)));
  ASSERT_TRUE(parsed.ok());
  const auto& back = std::get<QmpEvent>(*parsed);
  EXPECT_EQ(back.name, "STOP");
  EXPECT_EQ(*back.data, Json({{"reason", "x"}}));
  EXPECT_EQ(back.timestamp.seconds, 1700000000);
  EXPECT_EQ(back.timestamp.microseconds, 123456);
}

TEST(QmpCodec, OutputIsAsciiLikeQemus) {
  const std::string wire = EncodeQmpSuccess(Json("\xc3\xa9\xff"), std::nullopt);
  for (char c : wire) EXPECT_LT(static_cast<unsigned char>(c), 0x80);
  EXPECT_NE(wire.find("\\u00e9"), std::string::npos);
  EXPECT_NE(wire.find("\\ufffd"), std::string::npos);  // invalid UTF-8 replaced
}

TEST(QmpCodec, RejectsMalformedServerMessages) {
  EXPECT_FALSE(ParseQmpServerMessage(Json::array()).ok());
  EXPECT_FALSE(ParseQmpServerMessage(Json{{"foo", 1}}).ok());
  EXPECT_FALSE(ParseQmpServerMessage(Json{{"error", "x"}}).ok());
  EXPECT_FALSE(ParseQmpServerMessage(Json{{"event", "X"}}).ok());  // no timestamp
  EXPECT_FALSE(ParseQmpServerMessage(Json::parse(R"({"QMP":{"capabilities":[]}})")).ok());
}

TEST(QmpCodec, ParseCommandUsesQemuWording) {
  auto message = [](const char* text, bool oob) {
    auto parsed = ParseQmpCommand(Json::parse(text), oob);
    return parsed.ok() ? std::string("ok") : std::string(parsed.status().message());
  };
  EXPECT_EQ(message("[1]", false), "QMP input must be a JSON object");
  EXPECT_EQ(message(R"({"id":1})", false), "QMP input lacks member 'execute'");
  EXPECT_EQ(message(R"({"execute":1})", false), "QMP input member 'execute' must be a string");
  EXPECT_EQ(message(R"({"execute":"x","arguments":[]})", false),
            "QMP input member 'arguments' must be an object");
  EXPECT_EQ(message(R"({"execute":"x","foo":1})", false), "QMP input member 'foo' is unexpected");
  EXPECT_EQ(message(R"({"exec-oob":"x"})", false), "QMP input member 'exec-oob' is unexpected");
  EXPECT_EQ(message(R"({"exec-oob":"x"})", true), "ok");
  EXPECT_EQ(message(R"({"exec-oob":"x","execute":"y"})", true),
            "QMP input member 'execute' clashes with 'exec-oob'");
  auto command =
      ParseQmpCommand(Json::parse(R"({"execute":"x","arguments":{"a":1},"id":"i"})"), false);
  ASSERT_TRUE(command.ok());
  EXPECT_EQ(command->name, "x");
  EXPECT_FALSE(command->oob);
  EXPECT_EQ(*command->arguments, Json({{"a", 1}}));
  EXPECT_EQ(*command->id, "i");
}

TEST(QmpCodec, ErrorClassSurvivesStatusRoundTrip) {
  absl::Status status = QmpErrorStatus(kQmpDeviceNotActive, "not active");
  EXPECT_TRUE(absl::IsFailedPrecondition(status));
  QmpError error = QmpErrorFromStatus(status);
  EXPECT_EQ(error.error_class, "DeviceNotActive");
  EXPECT_EQ(error.desc, "not active");
  EXPECT_TRUE(absl::IsNotFound(QmpErrorStatus(kQmpCommandNotFound, "x")));
  error = QmpErrorFromStatus(absl::InternalError("boom"));
  EXPECT_EQ(error.error_class, "GenericError");
  EXPECT_EQ(error.desc, "boom");
}

}  // namespace
}  // namespace rehome
