// vmm/domain/xml_util.cc: libxml2 parsing with safe options and null-safe accessors.
#include "vmm/domain/xml_util.h"

#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#include <climits>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"

namespace rehome::xml {
namespace {

struct ParserCtxtDeleter {
  void operator()(xmlParserCtxt* ctxt) const { xmlFreeParserCtxt(ctxt); }
};

struct XmlCharDeleter {
  void operator()(xmlChar* p) const { xmlFree(p); }
};

struct XPathContextDeleter {
  void operator()(xmlXPathContext* p) const { xmlXPathFreeContext(p); }
};

struct XPathObjectDeleter {
  void operator()(xmlXPathObject* p) const { xmlXPathFreeObject(p); }
};

const char* Str(const xmlChar* s) { return reinterpret_cast<const char*>(s); }

void DiscardGenericError(void* /*context*/, const char* /*format*/, ...) {}

}  // namespace

QuietXmlErrors::QuietXmlErrors()
    : previous_(xmlGenericError), previous_context_(xmlGenericErrorContext) {
  xmlSetGenericErrorFunc(nullptr, DiscardGenericError);
}

QuietXmlErrors::~QuietXmlErrors() { xmlSetGenericErrorFunc(previous_context_, previous_); }

absl::StatusOr<DocPtr> ParseDocument(std::string_view text) {
  static std::once_flag init_once;
  std::call_once(init_once, [] { xmlInitParser(); });
  if (text.empty()) return absl::InvalidArgumentError("malformed XML: the document is empty");
  if (text.size() > INT_MAX) return absl::InvalidArgumentError("malformed XML: too large");
  std::unique_ptr<xmlParserCtxt, ParserCtxtDeleter> ctxt(xmlNewParserCtxt());
  if (ctxt == nullptr) return absl::ResourceExhaustedError("libxml2: cannot allocate a parser");
  // libxml2 prints some errors (e.g. "huge text node") to stderr despite XML_PARSE_NOERROR; the
  // context keeps the first one for the message below.
  const QuietXmlErrors quiet;
  // No XML_PARSE_NOENT (entities stay unexpanded), no DTD loading, no network.
  const int options = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
  DocPtr doc(xmlCtxtReadMemory(ctxt.get(), text.data(), static_cast<int>(text.size()), "domain.xml",
                               nullptr, options));
  if (doc == nullptr || !ctxt->wellFormed) {
    const xmlError* error = xmlCtxtGetLastError(ctxt.get());
    if (error == nullptr || error->message == nullptr) {
      return absl::InvalidArgumentError("malformed XML: cannot parse the document");
    }
    std::string message(absl::StripTrailingAsciiWhitespace(error->message));
    absl::StrReplaceAll({{"\n", "; "}}, &message);
    return absl::InvalidArgumentError(
        absl::StrCat("malformed XML: line ", error->line, ": ", message));
  }
  if (doc->intSubset != nullptr || doc->extSubset != nullptr) {
    return absl::InvalidArgumentError(
        "malformed XML: a DOCTYPE is not allowed in a domain definition");
  }
  return doc;
}

std::string DumpDocument(xmlDoc* doc) {
  xmlChar* buffer = nullptr;
  int size = 0;
  xmlDocDumpMemoryEnc(doc, &buffer, &size, "UTF-8");
  std::unique_ptr<xmlChar, XmlCharDeleter> owner(buffer);
  if (buffer == nullptr || size <= 0) return std::string();
  return std::string(Str(buffer), static_cast<size_t>(size));
}

std::string OneLine(std::string_view text, size_t max_bytes) {
  std::string out;
  for (char c : text) {
    if (out.size() >= max_bytes) {
      out += "...";
      break;
    }
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (byte < 0x20 || byte == 0x7f) {
      out += absl::StrCat("\\x", absl::Hex(byte, absl::kZeroPad2));
    } else {
      out += c;
    }
  }
  return out;
}

std::string QualifiedName(const xmlNode* node) {
  std::string name = Str(node->name);
  if (node->ns != nullptr && node->ns->prefix != nullptr) {
    return absl::StrCat(Str(node->ns->prefix), ":", name);
  }
  return name;
}

std::optional<std::string> Attribute(const xmlNode* node, const char* name) {
  std::unique_ptr<xmlChar, XmlCharDeleter> value(
      xmlGetNoNsProp(node, reinterpret_cast<const xmlChar*>(name)));
  if (value == nullptr) return std::nullopt;
  return std::string(Str(value.get()));
}

std::string Text(const xmlNode* node) {
  std::string text;
  for (const xmlNode* child = node->children; child != nullptr; child = child->next) {
    if ((child->type == XML_TEXT_NODE || child->type == XML_CDATA_SECTION_NODE) &&
        child->content != nullptr) {
      text += Str(child->content);
    }
  }
  return text;
}

std::string TrimmedText(const xmlNode* node) {
  return std::string(absl::StripAsciiWhitespace(Text(node)));
}

std::vector<xmlNode*> Select(xmlNode* context, const char* expr) {
  std::vector<xmlNode*> result;
  std::unique_ptr<xmlXPathContext, XPathContextDeleter> xpath(xmlXPathNewContext(context->doc));
  if (xpath == nullptr) return result;
  std::unique_ptr<xmlXPathObject, XPathObjectDeleter> object(
      xmlXPathNodeEval(context, reinterpret_cast<const xmlChar*>(expr), xpath.get()));
  if (object == nullptr || object->type != XPATH_NODESET || object->nodesetval == nullptr) {
    return result;
  }
  for (int i = 0; i < object->nodesetval->nodeNr; ++i) {
    xmlNode* node = object->nodesetval->nodeTab[i];
    if (node != nullptr && node->type == XML_ELEMENT_NODE) result.push_back(node);
  }
  return result;
}

absl::StatusOr<xmlNode*> SelectOne(xmlNode* context, const char* expr) {
  std::vector<xmlNode*> nodes = Select(context, expr);
  if (nodes.empty()) return nullptr;
  if (nodes.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("<", QualifiedName(context), ">: more than one <", expr, ">"));
  }
  return nodes.front();
}

bool InNamespace(const xmlNode* node, std::string_view uri) {
  return node->type == XML_ELEMENT_NODE && node->ns != nullptr && node->ns->href != nullptr &&
         std::string_view(Str(node->ns->href)) == uri;
}

}  // namespace rehome::xml
