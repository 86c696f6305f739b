// vmm/domain/xml_util.h: small libxml2 helpers for the domain reader (internal to vmm/domain):
// owning pointers for libxml2 objects and null-safe attribute/text accessors.
// Thread-compatible: each object is used by one thread; libxml2 is initialised once.
#ifndef REHOME_VMM_DOMAIN_XML_UTIL_H_
#define REHOME_VMM_DOMAIN_XML_UTIL_H_

#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xpath.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace rehome::xml {

struct DocDeleter {
  void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
};
using DocPtr = std::unique_ptr<xmlDoc, DocDeleter>;

// While it lives, libxml2's generic error output on the calling thread (raw, multi-line text on
// stderr) is discarded; errors still reach the parser context (xmlCtxtGetLastError) and libvirt's
// own error reporting. libxml2 keeps the handler per thread.
class QuietXmlErrors final {
 public:
  QuietXmlErrors();
  ~QuietXmlErrors();
  QuietXmlErrors(const QuietXmlErrors&) = delete;
  QuietXmlErrors& operator=(const QuietXmlErrors&) = delete;

 private:
  xmlGenericErrorFunc previous_;
  void* previous_context_;
};

// Parses `text` without network access, entity substitution or DTD loading; a document that
// declares a DOCTYPE is refused. Errors are InvalidArgument "malformed XML: line N: <reason>".
absl::StatusOr<DocPtr> ParseDocument(std::string_view text);

// Serialises `doc` (UTF-8).
std::string DumpDocument(xmlDoc* doc);

// `text` made fit for a one-line message: control characters escaped ("\n", "\t", "\x01"),
// and, past `max_bytes`, cut with "..." (a document's values may be long).
std::string OneLine(std::string_view text, size_t max_bytes = 160);

// Element name as written (with its prefix if any), for error messages: "rehome:hang".
std::string QualifiedName(const xmlNode* node);

// Value of the attribute `name` in no namespace, or nullopt.
std::optional<std::string> Attribute(const xmlNode* node, const char* name);

// Concatenated text content of `node` (entity references are not expanded).
std::string Text(const xmlNode* node);

// Text with leading/trailing XML whitespace removed.
std::string TrimmedText(const xmlNode* node);

// Element nodes matched by the XPath expression `expr` evaluated at `context` (a fixed,
// trusted expression; unprefixed names match elements in no namespace).
std::vector<xmlNode*> Select(xmlNode* context, const char* expr);

// The single node matched by `expr`: nullptr when none, InvalidArgument
// "<context>: more than one <expr>" when several.
absl::StatusOr<xmlNode*> SelectOne(xmlNode* context, const char* expr);

// True when `node` is an element in namespace `uri` (compared by URI, never by prefix).
bool InNamespace(const xmlNode* node, std::string_view uri);

}  // namespace rehome::xml

#endif  // REHOME_VMM_DOMAIN_XML_UTIL_H_
