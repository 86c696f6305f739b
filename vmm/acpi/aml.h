// vmm/acpi/aml.h: the little of ACPI Machine Language (ACPI 6.4, chapter 20) that rehome's DSDT
// needs: names, integers, strings, packages, buffers, Scope, Device, Name and the resource
// descriptors of a _CRS (Memory32Fixed, extended Interrupt, IO). Each function returns the
// encoded bytes of one term; callers concatenate them. Pure, thread-safe.
#ifndef REHOME_VMM_ACPI_AML_H_
#define REHOME_VMM_ACPI_AML_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rehome::aml {

using Bytes = std::vector<uint8_t>;

// A name path: "\\_SB_" (rooted), "VR00" or "_HID"; every segment is 1-4 characters and is
// padded with '_' to 4. More than one segment ("\\_SB_.VR00") uses the dual/multi prefix.
Bytes NameString(std::string_view path);
// PkgLength (20.2.4) of a body of `body_size` bytes, the encoding's own bytes included.
Bytes PkgLength(size_t body_size);

Bytes Integer(uint64_t value);        // ZeroOp, OneOp or the smallest Byte/Word/DWord/QWord
Bytes String(std::string_view text);  // StringPrefix ... NUL (no NUL inside)
// A compressed EISA id ("PNP0501": three letters and four hex digits) as an Integer.
Bytes EisaId(std::string_view id);
Bytes Package(const std::vector<Bytes>& elements);
Bytes Buffer(const Bytes& data);
Bytes Name(std::string_view name, const Bytes& value);
Bytes Scope(std::string_view name, const std::vector<Bytes>& terms);
Bytes Device(std::string_view name, const std::vector<Bytes>& terms);

// Resource descriptors (6.4) and the template that ends them with an End Tag.
Bytes Memory32Fixed(uint32_t base, uint32_t length, bool writable);
enum class Trigger { kLevel, kEdge };
Bytes ExtendedInterrupt(uint32_t gsi, Trigger trigger, bool active_low, bool shared);
Bytes IoPort(uint16_t base, uint8_t length);
Bytes ResourceTemplate(const std::vector<Bytes>& descriptors);

}  // namespace rehome::aml

#endif  // REHOME_VMM_ACPI_AML_H_
