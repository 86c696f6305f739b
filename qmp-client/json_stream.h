// qmp-client/json_stream.h: incremental JSON stream framer for QMP.
//
// Contract: bytes are fed in arbitrary chunks; every complete top-level JSON value comes out as a
// parsed nlohmann::json, every malformed one as an InvalidArgument status whose message is the
// text QEMU 7.2 puts in its GenericError ("JSON parse error, ...", "JSON nesting depth limit
// exceeded", "JSON token size limit exceeded"). The lexer follows QEMU's: RFC 8259 tokens plus
// QEMU's extensions ('single-quoted' strings and the \' escape); values may be split across reads
// and lines, several may share one chunk, whitespace (incl. CRLF) between them is ignored. A top
// level value is complete when its braces and brackets balance (a scalar is complete at once).
//
// Resynchronisation: a lexical error is reported at once, the partial value is dropped and input
// is skipped up to the next structural character ([]{}:,), control character other than TAB, or
// the bytes 0xFE/0xFF (clients send 0xFF to force a known state). A limit error (value larger
// than max_value_bytes, more than max_tokens tokens, nesting deeper than max_depth; QEMU's limits
// by default) is reported once and the rest of that value is discarded without buffering until
// its brackets balance (QEMU 7.2 instead restarts its bracket count and reports the tail as
// further errors). Memory use is bounded by max_value_bytes plus a per-token constant.
//
// Thread-safety: none; one owner feeds it.
#ifndef REHOME_QMP_CLIENT_JSON_STREAM_H_
#define REHOME_QMP_CLIENT_JSON_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace rehome {

// One lexical token of a JSON value, as QEMU's lexer splits them.
enum class JsonTokenType : uint8_t {
  kLCurly,
  kRCurly,
  kLSquare,
  kRSquare,
  kColon,
  kComma,
  kInteger,
  kFloat,
  kKeyword,
  kString,
};
struct JsonToken {
  JsonTokenType type;
  std::string text;  // strings are normalised to RFC 8259 double-quoted form
};

// QEMU's limits (qobject/json-streamer.c: MAX_TOKEN_SIZE, MAX_TOKEN_COUNT, MAX_NESTING).
inline constexpr std::size_t kQmpMaxValueBytes = std::size_t{64} << 20;
inline constexpr std::size_t kQmpMaxTokens = std::size_t{2} << 20;
inline constexpr int kQmpMaxDepth = 1024;

struct JsonStreamOptions {
  // Largest accepted top-level value, counting token bytes (whitespace excluded).
  std::size_t max_value_bytes = kQmpMaxValueBytes;
  // Deepest accepted nesting of objects and arrays together.
  int max_depth = kQmpMaxDepth;
  // Most tokens in one top-level value.
  std::size_t max_tokens = kQmpMaxTokens;
};

class JsonStreamFramer final {
 public:
  explicit JsonStreamFramer(JsonStreamOptions options = {});
  JsonStreamFramer(const JsonStreamFramer&) = delete;
  JsonStreamFramer& operator=(const JsonStreamFramer&) = delete;
  JsonStreamFramer(JsonStreamFramer&&) = default;
  JsonStreamFramer& operator=(JsonStreamFramer&&) = default;

  // Consumes `bytes`; appends one entry per completed value or detected error to `out`, in input
  // order.
  void Feed(std::string_view bytes, std::vector<absl::StatusOr<nlohmann::json>>* out);
  std::vector<absl::StatusOr<nlohmann::json>> Feed(std::string_view bytes);

  // Forgets any partial value and lexer state.
  void Reset();

  // Bytes held for the value under construction.
  std::size_t buffered_bytes() const { return value_bytes_ + token_.size(); }

 private:
  enum class State : uint8_t {
    kStart,
    kRecovery,
    kDqString,
    kDqEscape,
    kSqString,
    kSqEscape,
    kZero,
    kSign,
    kDigits,
    kMantissa,
    kMantissaDigits,
    kExpE,
    kExpSign,
    kExpDigits,
    kKeyword,
  };

 private:
  // Processes one byte; may emit tokens (and thereby values/errors).
  void FeedByte(uint8_t c, std::vector<absl::StatusOr<nlohmann::json>>* out);
  // Appends `c` to the token under construction, enforcing the size limit.
  void Append(char c, std::vector<absl::StatusOr<nlohmann::json>>* out);
  // Appends to the RFC 8259 form of the string token being lexed (not while discarding).
  void Normalise(std::string_view text);
  void EmitToken(JsonTokenType type, std::vector<absl::StatusOr<nlohmann::json>>* out);
  void LexError(std::vector<absl::StatusOr<nlohmann::json>>* out);
  void LimitError(std::string_view message, std::vector<absl::StatusOr<nlohmann::json>>* out);
  void ResetValue();

  JsonStreamOptions options_;
  State state_ = State::kStart;
  std::string token_;              // raw text of the token being lexed (QEMU-visible form)
  std::string normalised_;         // same token in RFC 8259 form (strings only)
  std::vector<JsonToken> tokens_;  // tokens of the current top-level value
  std::size_t value_bytes_ = 0;    // sum of tokens_[i].text.size()
  int braces_ = 0;
  int brackets_ = 0;
  bool discarding_ = false;  // after a limit error: drop tokens until brackets balance
};

// Parses a token sequence as QEMU's JSON parser would; exposed for tests. Errors are
// InvalidArgument "JSON parse error, <QEMU wording>".
absl::StatusOr<nlohmann::json> ParseJsonTokens(const std::vector<JsonToken>& tokens);

}  // namespace rehome

#endif  // REHOME_QMP_CLIENT_JSON_STREAM_H_
