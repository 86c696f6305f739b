// qmp-client/json_stream.cc: QEMU-compatible JSON lexer/framer and token parser. See header.
#include "qmp-client/json_stream.h"

#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "qmp-client/string_view_compat.h"

namespace rehome {
namespace {

using Out = std::vector<absl::StatusOr<nlohmann::json>>;

bool IsDigit(uint8_t c) { return c >= '0' && c <= '9'; }
// Value of hex digit `c`, or -1.
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
bool IsHex(char c) { return HexValue(c) >= 0; }
bool IsStructural(uint8_t c) {
  return c == '[' || c == ']' || c == '{' || c == '}' || c == ':' || c == ',';
}
// Bytes allowed inside strings by QEMU's lexer.
bool IsStringByte(uint8_t c) { return c >= 0x20 && c <= 0xFD; }

absl::Status ParseError(std::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("JSON parse error, ", ToAbsl(message)));
}

// Validates a token sequence the way QEMU's recursive-descent parser does, reporting the first
// error with QEMU's wording. Values themselves are built by nlohmann afterwards.
class TokenChecker final {
 public:
  explicit TokenChecker(const std::vector<JsonToken>& tokens) : tokens_(tokens) {}
  TokenChecker(const TokenChecker&) = delete;
  TokenChecker& operator=(const TokenChecker&) = delete;

  // Returns the first error message, or "" when the tokens form one valid value.
  std::string Check() {
    Value(nullptr);
    return error_;
  }

 private:
  bool Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
  }
  const JsonToken* Peek() const { return pos_ < tokens_.size() ? &tokens_[pos_] : nullptr; }
  const JsonToken* Pop() { return pos_ < tokens_.size() ? &tokens_[pos_++] : nullptr; }

  // Parses one value; when `key` is non-null and the value is a string, stores it decoded.
  bool Value(std::string* key) {
    const JsonToken* token = Peek();
    if (token == nullptr) return Fail("premature EOI");
    switch (token->type) {
      case JsonTokenType::kLCurly:
        return Object();
      case JsonTokenType::kLSquare:
        return Array();
      case JsonTokenType::kInteger:
      case JsonTokenType::kFloat:
        ++pos_;
        return true;
      case JsonTokenType::kString:
        ++pos_;
        return String(token->text, key);
      case JsonTokenType::kKeyword:
        ++pos_;
        if (token->text == "true" || token->text == "false" || token->text == "null") return true;
        return Fail(absl::StrCat("invalid keyword '", token->text, "'"));
      default:
        return Fail("expecting value");
    }
  }

  bool String(const std::string& text, std::string* key) {
    // text is a normalised double-quoted string; check escapes like QEMU's parse_string().
    for (std::size_t i = 1; i + 1 < text.size(); ++i) {
      if (text[i] != '\\') continue;
      const char e = text[++i];
      if (e == 'u') {
        const std::size_t start = i - 1;
        uint32_t cp = 0;
        std::size_t j = i + 1;
        for (; j < i + 5 && j + 1 < text.size() && IsHex(text[j]); ++j) {
          cp = cp * 16 + static_cast<uint32_t>(HexValue(text[j]));
        }
        bool ok = j == i + 5;
        if (ok && cp >= 0xD800 && cp <= 0xDBFF) {
          // A high surrogate must be followed by an escaped low surrogate.
          ok = j + 6 < text.size() && text[j] == '\\' && text[j + 1] == 'u';
          uint32_t low = 0;
          for (std::size_t k = j + 2; ok && k < j + 6; ++k) {
            ok = IsHex(text[k]);
            if (ok) low = low * 16 + static_cast<uint32_t>(HexValue(text[k]));
          }
          ok = ok && low >= 0xDC00 && low <= 0xDFFF;
          if (ok) j += 6;
        } else if (ok && cp >= 0xDC00 && cp <= 0xDFFF) {
          ok = false;
        }
        if (!ok) {
          const std::size_t len = std::min<std::size_t>(6, text.size() - start);
          return Fail(absl::StrCat(text.substr(start, len), " is not a valid Unicode character"));
        }
        i = j - 1;
      } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
        return Fail("invalid escape sequence in string");
      }
    }
    if (key != nullptr) {
      nlohmann::json decoded = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (!decoded.is_string()) return Fail("invalid UTF-8 sequence in string");
      *key = decoded.get<std::string>();
    }
    return true;
  }

  bool Pair(std::set<std::string>* keys) {
    if (Peek() == nullptr) return Fail("premature EOI");
    const bool key_is_string = Peek()->type == JsonTokenType::kString;
    std::string key;
    if (!Value(&key)) return false;
    if (!key_is_string) return Fail("key is not a string in object");
    const JsonToken* token = Pop();
    if (token == nullptr) return Fail("premature EOI");
    if (token->type != JsonTokenType::kColon) return Fail("missing : in object pair");
    if (!Value(nullptr)) return false;
    if (!keys->insert(std::move(key)).second) return Fail("duplicate key");
    return true;
  }

  bool Object() {
    ++pos_;  // '{'
    std::set<std::string> keys;
    const JsonToken* peek = Peek();
    if (peek == nullptr) return Fail("premature EOI");
    if (peek->type == JsonTokenType::kRCurly) {
      ++pos_;
      return true;
    }
    if (!Pair(&keys)) return false;
    for (;;) {
      const JsonToken* token = Pop();
      if (token == nullptr) return Fail("premature EOI");
      if (token->type == JsonTokenType::kRCurly) return true;
      if (token->type != JsonTokenType::kComma) return Fail("expected separator in dict");
      if (!Pair(&keys)) return false;
    }
  }

  bool Array() {
    ++pos_;  // '['
    const JsonToken* peek = Peek();
    if (peek == nullptr) return Fail("premature EOI");
    if (peek->type == JsonTokenType::kRSquare) {
      ++pos_;
      return true;
    }
    if (!Value(nullptr)) return Fail("expecting value");
    for (;;) {
      const JsonToken* token = Pop();
      if (token == nullptr) return Fail("premature EOI");
      if (token->type == JsonTokenType::kRSquare) return true;
      if (token->type != JsonTokenType::kComma) return Fail("expected separator in list");
      if (!Value(nullptr)) return Fail("expecting value");
    }
  }

  const std::vector<JsonToken>& tokens_;
  std::size_t pos_ = 0;
  std::string error_;
};

}  // namespace

absl::StatusOr<nlohmann::json> ParseJsonTokens(const std::vector<JsonToken>& tokens) {
  TokenChecker checker(tokens);
  if (std::string error = checker.Check(); !error.empty()) return ParseError(error);
  std::string text;
  for (const JsonToken& token : tokens) {
    text += token.text;
    text += ' ';  // keeps adjacent scalars apart; the checker guarantees separators anyway
  }
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    // Only encodings the checker does not model (invalid UTF-8) get here.
    return ParseError("invalid UTF-8 sequence in string");
  }
}

JsonStreamFramer::JsonStreamFramer(JsonStreamOptions options) : options_(options) {}

std::vector<absl::StatusOr<nlohmann::json>> JsonStreamFramer::Feed(std::string_view bytes) {
  Out out;
  Feed(bytes, &out);
  return out;
}

void JsonStreamFramer::Feed(std::string_view bytes, Out* out) {
  for (char c : bytes) FeedByte(static_cast<uint8_t>(c), out);
}

void JsonStreamFramer::Reset() {
  state_ = State::kStart;
  token_.clear();
  normalised_.clear();
  ResetValue();
}

void JsonStreamFramer::ResetValue() {
  tokens_.clear();
  value_bytes_ = 0;
  braces_ = 0;
  brackets_ = 0;
  discarding_ = false;
}

void JsonStreamFramer::Append(char c, Out* out) {
  if (discarding_) return;  // the value is already reported; do not buffer its tail
  token_.push_back(c);
  if (value_bytes_ + token_.size() > options_.max_value_bytes) {
    LimitError("JSON token size limit exceeded", out);
  }
}

void JsonStreamFramer::Normalise(std::string_view text) {
  if (!discarding_) normalised_.append(text);
}

void JsonStreamFramer::LimitError(std::string_view message, Out* out) {
  out->push_back(absl::InvalidArgumentError(ToAbsl(message)));
  tokens_.clear();
  value_bytes_ = 0;
  token_.clear();
  normalised_.clear();
  discarding_ = true;  // keep counting brackets; drop everything until they balance
}

void JsonStreamFramer::LexError(Out* out) {
  out->push_back(ParseError(absl::StrCat("stray '", token_, "'")));
  token_.clear();
  normalised_.clear();
  ResetValue();
  state_ = State::kRecovery;
}

void JsonStreamFramer::EmitToken(JsonTokenType type, Out* out) {
  state_ = State::kStart;
  std::string text = type == JsonTokenType::kString ? std::move(normalised_) : std::move(token_);
  token_.clear();
  normalised_.clear();
  switch (type) {
    case JsonTokenType::kLCurly:
      ++braces_;
      break;
    case JsonTokenType::kRCurly:
      --braces_;
      break;
    case JsonTokenType::kLSquare:
      ++brackets_;
      break;
    case JsonTokenType::kRSquare:
      --brackets_;
      break;
    default:
      break;
  }
  const bool open = (braces_ > 0 || brackets_ > 0) && braces_ >= 0 && brackets_ >= 0;
  if (discarding_) {
    if (!open) ResetValue();
    return;
  }
  if (braces_ + brackets_ > options_.max_depth) {
    LimitError("JSON nesting depth limit exceeded", out);
    return;
  }
  if (tokens_.size() >= options_.max_tokens) {
    LimitError("JSON token count limit exceeded", out);
    return;
  }
  value_bytes_ += text.size();
  tokens_.push_back(JsonToken{type, std::move(text)});
  if (open) return;
  out->push_back(ParseJsonTokens(tokens_));
  ResetValue();
}

void JsonStreamFramer::FeedByte(uint8_t c, Out* out) {
  const char ch = static_cast<char>(c);
  // Each iteration either consumes `c` (return) or changes state and looks at it again.
  for (;;) {
    switch (state_) {
      case State::kRecovery:
        if ((c < 0x20 && c != '\t') || c >= 0xFE || IsStructural(c)) {
          state_ = State::kStart;
          continue;
        }
        return;
      case State::kStart:
        switch (ch) {
          case ' ':
          case '\t':
          case '\r':
          case '\n':
            return;
          case '{':
          case '}':
          case '[':
          case ']':
          case ':':
          case ',': {
            Append(ch, out);
            static constexpr std::string_view kChars = "{}[]:,";
            static constexpr JsonTokenType kTypes[] = {
                JsonTokenType::kLCurly,  JsonTokenType::kRCurly, JsonTokenType::kLSquare,
                JsonTokenType::kRSquare, JsonTokenType::kColon,  JsonTokenType::kComma};
            EmitToken(kTypes[kChars.find(ch)], out);
            return;
          }
          case '"':
          case '\'':
            state_ = ch == '"' ? State::kDqString : State::kSqString;
            Append(ch, out);
            Normalise("\"");
            return;
          case '0':
            state_ = State::kZero;
            Append(ch, out);
            return;
          case '-':
            state_ = State::kSign;
            Append(ch, out);
            return;
          default:
            if (c >= '1' && c <= '9') {
              state_ = State::kDigits;
            } else if (c >= 'a' && c <= 'z') {
              state_ = State::kKeyword;
            } else {
              token_.push_back(ch);
              LexError(out);
              return;
            }
            Append(ch, out);
            return;
        }
      case State::kDqString:
      case State::kSqString: {
        const bool dq = state_ == State::kDqString;
        if (!IsStringByte(c)) {
          token_.push_back(ch);
          LexError(out);
          return;
        }
        Append(ch, out);
        if (ch == '\\') {
          state_ = dq ? State::kDqEscape : State::kSqEscape;
        } else if (ch == (dq ? '"' : '\'')) {
          Normalise("\"");
          EmitToken(JsonTokenType::kString, out);
        } else if (ch == '"') {  // unescaped double quote inside a single-quoted string
          Normalise("\\\"");
        } else {
          Normalise(std::string_view(&ch, 1));
        }
        return;
      }
      case State::kDqEscape:
      case State::kSqEscape:
        if (!IsStringByte(c)) {
          token_.push_back(ch);
          LexError(out);
          return;
        }
        Append(ch, out);
        if (ch == '\'') {
          Normalise("'");  // QEMU's extra escape; RFC 8259 has no \'
        } else {
          Normalise("\\");
          Normalise(std::string_view(&ch, 1));
        }
        state_ = state_ == State::kDqEscape ? State::kDqString : State::kSqString;
        return;
      case State::kZero:
        if (IsDigit(c)) {
          token_.push_back(ch);
          LexError(out);
          return;
        }
        if (ch == '.') {
          state_ = State::kMantissa;
          Append(ch, out);
          return;
        }
        EmitToken(JsonTokenType::kInteger, out);
        continue;
      case State::kSign:
        if (IsDigit(c)) {
          state_ = ch == '0' ? State::kZero : State::kDigits;
          Append(ch, out);
          return;
        }
        token_.push_back(ch);
        LexError(out);
        return;
      case State::kDigits:
        if (IsDigit(c) || ch == 'e' || ch == 'E' || ch == '.') {
          if (!IsDigit(c)) state_ = ch == '.' ? State::kMantissa : State::kExpE;
          Append(ch, out);
          return;
        }
        EmitToken(JsonTokenType::kInteger, out);
        continue;
      case State::kMantissa:
      case State::kExpSign:
        if (IsDigit(c)) {
          state_ = state_ == State::kMantissa ? State::kMantissaDigits : State::kExpDigits;
          Append(ch, out);
          return;
        }
        token_.push_back(ch);
        LexError(out);
        return;
      case State::kMantissaDigits:
        if (IsDigit(c) || ch == 'e' || ch == 'E') {
          if (!IsDigit(c)) state_ = State::kExpE;
          Append(ch, out);
          return;
        }
        EmitToken(JsonTokenType::kFloat, out);
        continue;
      case State::kExpE:
        if (IsDigit(c) || ch == '+' || ch == '-') {
          state_ = IsDigit(c) ? State::kExpDigits : State::kExpSign;
          Append(ch, out);
          return;
        }
        token_.push_back(ch);
        LexError(out);
        return;
      case State::kExpDigits:
        if (IsDigit(c)) {
          Append(ch, out);
          return;
        }
        EmitToken(JsonTokenType::kFloat, out);
        continue;
      case State::kKeyword:
        if (c >= 'a' && c <= 'z') {
          Append(ch, out);
          return;
        }
        EmitToken(JsonTokenType::kKeyword, out);
        continue;
    }
  }
}

}  // namespace rehome
