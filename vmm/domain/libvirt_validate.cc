// vmm/domain/libvirt_validate.cc: libvirt test-driver validation (see header).
#include "vmm/domain/libvirt_validate.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <sys/mman.h>
#include <unistd.h>

#include <memory>
#include <mutex>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"

namespace rehome {
namespace {

// An empty test-driver node description: no predefined domains (test:///default ships one
// named "test" and is shared by every connection in the process).
constexpr std::string_view kEmptyNode = "<node/>\n";

struct ConnectDeleter {
  void operator()(virConnect* conn) const { virConnectClose(conn); }
};
struct DomainDeleter {
  void operator()(virDomain* domain) const { virDomainFree(domain); }
};

void IgnoreLibvirtError(void* /*user_data*/, virErrorPtr /*error*/) {}

void InitLibvirtOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    virInitialize();
    virSetErrorFunc(nullptr, IgnoreLibvirtError);
  });
}

// The calling thread's last libvirt error as one line, then cleared.
std::string TakeLibvirtError() {
  const char* message = virGetLastErrorMessage();
  std::string text = message != nullptr ? message : "unknown libvirt error";
  virResetLastError();
  absl::StrReplaceAll({{"\n", "; "}}, &text);
  absl::StripTrailingAsciiWhitespace(&text);
  while (!text.empty() && (text.back() == ';' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace

absl::Status ValidateDomainWithLibvirt(std::string_view xml) {
  InitLibvirtOnce();
  UniqueFd node(memfd_create("rehome-libvirt-node", MFD_CLOEXEC));
  if (!node.valid()) return LastErrnoStatus("memfd_create for the libvirt test driver");
  if (write(node.get(), kEmptyNode.data(), kEmptyNode.size()) !=
      static_cast<ssize_t>(kEmptyNode.size())) {
    return LastErrnoStatus("writing the libvirt test driver node file");
  }
  const std::string uri = absl::StrCat("test:///proc/self/fd/", node.get());
  std::unique_ptr<virConnect, ConnectDeleter> conn(virConnectOpen(uri.c_str()));
  if (conn == nullptr) {
    return absl::InternalError(
        absl::StrCat("cannot open the libvirt test driver: ", TakeLibvirtError()));
  }
  const std::string text(xml);
  std::unique_ptr<virDomain, DomainDeleter> domain(
      virDomainDefineXMLFlags(conn.get(), text.c_str(), VIR_DOMAIN_DEFINE_VALIDATE));
  if (domain == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("libvirt rejected the domain: ", TakeLibvirtError()));
  }
  virDomainUndefine(domain.get());
  return absl::OkStatus();
}

}  // namespace rehome
