// qmp-client/qmp_differential_test.cc: the same raw input (malformed, pre-negotiation, split
// across writes...) goes to real QEMU and to QmpSession; the replies must have the same shapes:
// same members, same ids, same error classes and the same desc for protocol-level errors.
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "qmp-client/qmp_session.h"
#include "qmp-client/testing/qemu_process.h"

namespace rehome {
namespace {

using Json = nlohmann::json;

// Implements just enough of QEMU's commands for the comparison.
class TrivialHandler final : public CommandHandler {
 public:
  bool HasCommand(std::string_view name) const override {
    return name == "query-version" || name == "query-status" || name == "query-name";
  }
  absl::StatusOr<Json> Execute(std::string_view name, const Json& args) override {
    for (auto it = args.begin(); it != args.end(); ++it) {
      return absl::InvalidArgumentError("Parameter '" + it.key() + "' is unexpected");
    }
    if (name == "query-version") {
      return Json{{"qemu", {{"micro", 0}, {"minor", 2}, {"major", 7}}}, {"package", "rehome"}};
    }
    if (name == "query-status") {
      return Json{{"status", "running"}, {"singlestep", false}, {"running", true}};
    }
    return Json::object();
  }
};

struct Case {
  const char* label;
  std::vector<std::string> chunks;  // written one after another
};

std::vector<Case> Cases() {
  return {
      // Before negotiation.
      {"command before negotiation", {R"({"execute":"query-status"})"}},
      {"command with id before negotiation", {R"({"execute":"query-status","id":5})"}},
      {"unknown command before negotiation", {R"({"execute":"no-such","id":"n"})"}},
      {"array", {"[1,2]"}},
      {"string", {R"("str")"}},
      {"number", {"42 "}},
      {"unexpected member", {R"({"foo":1})"}},
      {"execute not a string", {R"({"execute":1,"id":"a"})"}},
      {"arguments not an object", {R"({"execute":"qmp_capabilities","arguments":[]})"}},
      {"lacks execute", {R"({"id":3})"}},
      {"invalid keyword", {"{bad}"}},
      {"bogus capability", {R"({"execute":"qmp_capabilities","arguments":{"enable":["bogus"]}})"}},
      {"enable not a list", {R"({"execute":"qmp_capabilities","arguments":{"enable":"oob"}})"}},
      {"enable element type", {R"({"execute":"qmp_capabilities","arguments":{"enable":[1]}})"}},
      {"capabilities unexpected arg", {R"({"execute":"qmp_capabilities","arguments":{"x":1}})"}},
      {"exec-oob before negotiation", {R"({"exec-oob":"qmp_capabilities","id":1})"}},
      {"control character", {"\x01"}},
      {"duplicate key", {R"({"a":1,"a":2})"}},
      {"negotiate with structured id", {R"({"execute":"qmp_capabilities","id":[1,{"a":null}]})"}},
      // After negotiation.
      {"negotiate twice", {R"({"execute":"qmp_capabilities","id":2})"}},
      {"unknown command", {R"({"execute":"query-nope","id":"a"})"}},
      {"unexpected argument", {R"({"execute":"query-status","arguments":{"x":1},"id":{"k":"v"}})"}},
      {"query-version, null id", {R"({"execute":"query-version","id":null})"}},
      {"query-status", {R"({"execute":"query-status","id":1.5})"}},
      {"single quotes", {R"({'execute':'query-name','id':'sq'})"}},
      {"two in one write", {R"({"execute":"query-status","id":1}{"execute":"query-name","id":2})"}},
      {"split across writes", {R"({"execute":"query-)", R"(name","id":"split"})"}},
      {"split at every line", {"{\"execute\":\r\n", "\"query-name\"\r\n", ",\"id\":7}"}},
      {"exec-oob without oob", {R"({"exec-oob":"query-status","id":9})"}},
      {"both execute and exec-oob", {R"({"execute":"query-name","exec-oob":"query-name"})"}},
      {"control char in string", {"{\"a\":\"x\ny\"}"}},
      {"bad unicode escape", {R"({"a":"\u12"})"}},
      {"bad escape", {R"({"a":"\q"})"}},
      {"leading zero", {"01"}},
      {"lone minus", {"-\r\n"}},
      {"control member", {R"({"execute":"query-status","id":1,"control":{}})"}},
      {"arguments number", {R"({"execute":"query-status","arguments":5})"}},
      {"truncated keyword", {R"({"a":tru})"}},
      {"missing colon", {R"({"a" 1})"}},
      {"non-string key", {"{1:2}"}},
      {"list separator", {"[1 2]"}},
      {"dict separator", {R"({"a":1 "b":2})"}},
      {"trailing comma", {R"({"a":1,})"}},
      {"stray close", {"]"}},
      {"garbage between commands",
       {R"({"execute":"query-name","id":1} garbage {"execute":"query-name","id":2})"}},
      {"0xFF resets a partial value",
       {"{\"execute\":", "\xff", R"({"execute":"query-name","id":"ff"})"}},
      {"empty-ish", {"  \r\n\t "}},
      {"invalid UTF-8 in string", {"{\"a\":\"\xc3\"}"}},
      {"lone surrogate", {R"({"a":"\ud800"})"}},
      {"NUL escape", {R"({"execute":"query-name","id":"\u0000"})"}},
      {"deep but within limits", {std::string(60, '[') + std::string(60, ']')}},
  };
}

constexpr char kSync[] = "{\"execute\":\"query-name\",\"id\":\"__sync\"}\r\n";

bool IsSync(const Json& reply) {
  return reply.is_object() && reply.value("id", Json()) == "__sync";
}

std::set<std::string> Keys(const Json& object) {
  std::set<std::string> keys;
  if (object.is_object()) {
    for (auto it = object.begin(); it != object.end(); ++it) keys.insert(it.key());
  }
  return keys;
}

TEST(QmpDifferential, SessionRepliesHaveQemusShapes) {
  if (testing::FindQemu().empty()) GTEST_SKIP() << "qemu-system-x86_64 is not installed";
  auto qemu = testing::QemuProcess::Start();
  ASSERT_TRUE(qemu.ok()) << qemu.status();
  auto peer = testing::RawQmpPeer::Connect((*qemu)->socket());
  ASSERT_TRUE(peer.ok()) << peer.status();
  auto greeting =
      peer->ReadUntil([](const std::vector<Json>& v) { return !v.empty(); }, absl::Seconds(10));
  ASSERT_TRUE(greeting.ok()) << greeting.status();

  TrivialHandler handler;
  QmpSession session(&handler, QmpSessionOptions{});
  session.Start();
  ASSERT_EQ(Keys(Json::parse(session.TakeOutput().at(0))["QMP"]), Keys((*greeting)[0]["QMP"]));

  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.label);
    for (const std::string& chunk : c.chunks) {
      ASSERT_TRUE(peer->Send(chunk).ok());
      session.Feed(chunk);
    }
    ASSERT_TRUE(peer->Send(kSync).ok());
    session.Feed(kSync);

    auto from_qemu =
        peer->ReadUntil([](const std::vector<Json>& v) { return !v.empty() && IsSync(v.back()); },
                        absl::Seconds(10));
    ASSERT_TRUE(from_qemu.ok()) << from_qemu.status();
    std::vector<Json> theirs;
    for (Json& reply : *from_qemu) {
      if (!reply.contains("event")) theirs.push_back(std::move(reply));
    }
    std::vector<Json> ours;
    for (const std::string& line : session.TakeOutput()) ours.push_back(Json::parse(line));

    ASSERT_EQ(ours.size(), theirs.size()) << "ours: " << Json(ours) << "\nqemu: " << Json(theirs);
    for (std::size_t i = 0; i < ours.size(); ++i) {
      const Json& a = ours[i];
      const Json& b = theirs[i];
      SCOPED_TRACE("reply " + std::to_string(i) + " ours " + a.dump() + " qemu " + b.dump());
      EXPECT_EQ(Keys(a), Keys(b));
      if (b.contains("id")) {
        EXPECT_EQ(a.value("id", Json()), b["id"]);
      }
      if (b.contains("error")) {
        EXPECT_EQ(a["error"].value("class", ""), b["error"]["class"]);
        EXPECT_EQ(a["error"].value("desc", ""), b["error"]["desc"]);
      }
      if (b.contains("return")) {
        EXPECT_EQ(Keys(a["return"]), Keys(b["return"]));
      }
    }
  }
}

}  // namespace
}  // namespace rehome
