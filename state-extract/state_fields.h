// state-extract/state_fields.h: internal to state_codec.cc (not a public API). One field list
// per CpuState/VmState struct (Fields()), and the little-endian Writer, bounds-checked Reader and
// Sizer that walk those lists, so that encoding, decoding and size checks cannot disagree.
// Stateless templates and small value classes: thread-compatible.
#ifndef REHOME_STATE_EXTRACT_STATE_FIELDS_H_
#define REHOME_STATE_EXTRACT_STATE_FIELDS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "state-extract/cpu_state.h"

namespace rehome::state_fields {

// ---- Field lists. `S` is T or const T, so one list serves reading and writing. ----

template <typename S, typename T>
concept Is = std::is_same_v<std::remove_const_t<S>, T>;

template <typename V, Is<Regs> S>
void Fields(V& v, S& r) {
  v(r.rax), v(r.rbx), v(r.rcx), v(r.rdx), v(r.rsi), v(r.rdi), v(r.rsp), v(r.rbp);
  v(r.r8), v(r.r9), v(r.r10), v(r.r11), v(r.r12), v(r.r13), v(r.r14), v(r.r15);
  v(r.rip), v(r.rflags);
}
template <typename V, Is<Segment> S>
void Fields(V& v, S& s) {
  v(s.base), v(s.limit), v(s.selector), v(s.type), v(s.present), v(s.dpl), v(s.db), v(s.s);
  v(s.l), v(s.g), v(s.avl), v(s.unusable), v(s.padding);
}
template <typename V, Is<DTable> S>
void Fields(V& v, S& d) {
  v(d.base), v(d.limit), v(d.padding);
}
template <typename V, Is<Sregs> S>
void Fields(V& v, S& s) {
  v(s.cs), v(s.ds), v(s.es), v(s.fs), v(s.gs), v(s.ss), v(s.tr), v(s.ldt), v(s.gdt), v(s.idt);
  v(s.cr0), v(s.cr2), v(s.cr3), v(s.cr4), v(s.cr8), v(s.efer), v(s.apic_base);
  v(s.interrupt_bitmap);
}
template <typename V, Is<Fpu> S>
void Fields(V& v, S& f) {
  v(f.fpr), v(f.fcw), v(f.fsw), v(f.ftwx), v(f.pad1), v(f.last_opcode), v(f.last_ip);
  v(f.last_dp), v(f.xmm), v(f.mxcsr), v(f.pad2);
}
template <typename V, Is<Xcr> S>
void Fields(V& v, S& x) {
  v(x.xcr), v(x.reserved), v(x.value);
}
template <typename V, Is<Xcrs> S>
void Fields(V& v, S& x) {
  v(x.nr_xcrs), v(x.flags), v(x.xcrs), v(x.padding);
}
template <typename V, Is<MsrEntry> S>
void Fields(V& v, S& m) {
  v(m.index), v(m.data);
}
template <typename V, Is<LapicState> S>
void Fields(V& v, S& l) {
  v(l.regs);
}
template <typename V, Is<ExceptionEvent> S>
void Fields(V& v, S& e) {
  v(e.injected), v(e.nr), v(e.has_error_code), v(e.pending), v(e.error_code);
}
template <typename V, Is<InterruptEvent> S>
void Fields(V& v, S& e) {
  v(e.injected), v(e.nr), v(e.soft), v(e.shadow);
}
template <typename V, Is<NmiEvent> S>
void Fields(V& v, S& e) {
  v(e.injected), v(e.pending), v(e.masked), v(e.pad);
}
template <typename V, Is<SmiEvent> S>
void Fields(V& v, S& e) {
  v(e.smm), v(e.pending), v(e.smm_inside_nmi), v(e.latched_init);
}
template <typename V, Is<VcpuEvents> S>
void Fields(V& v, S& e) {
  v(e.exception), v(e.interrupt), v(e.nmi), v(e.sipi_vector), v(e.flags), v(e.smi);
  v(e.triple_fault_pending), v(e.reserved), v(e.exception_has_payload), v(e.exception_payload);
}
template <typename V, Is<DebugRegs> S>
void Fields(V& v, S& d) {
  v(d.db), v(d.dr6), v(d.dr7), v(d.flags), v(d.reserved);
}
template <typename V, Is<Irqchip> S>
void Fields(V& v, S& c) {
  v(c.chip_id), v(c.pad), v(c.chip);
}
template <typename V, Is<PitChannel> S>
void Fields(V& v, S& c) {
  v(c.count), v(c.latched_count), v(c.count_latched), v(c.status_latched), v(c.status);
  v(c.read_state), v(c.write_state), v(c.write_latch), v(c.rw_mode), v(c.mode), v(c.bcd);
  v(c.gate), v(c.count_load_time);
}
template <typename V, Is<PitState2> S>
void Fields(V& v, S& p) {
  v(p.channels), v(p.flags), v(p.reserved);
}
template <typename V, Is<ClockData> S>
void Fields(V& v, S& c) {
  v(c.clock), v(c.flags), v(c.pad0), v(c.realtime), v(c.host_tsc), v(c.pad);
}

template <typename T>
struct IsArray : std::false_type {};
template <typename T, size_t N>
struct IsArray<std::array<T, N>> : std::true_type {};
template <typename T>
concept Record = std::is_class_v<T> && !IsArray<T>::value;

// ---- Visitors ----

// Appends little-endian bytes to a string.
class Writer final {
 public:
  explicit Writer(std::string* out) : out_(out) {}
  void operator()(uint8_t x) { Put(x, 1); }
  void operator()(uint16_t x) { Put(x, 2); }
  void operator()(uint32_t x) { Put(x, 4); }
  void operator()(uint64_t x) { Put(x, 8); }
  void operator()(int64_t x) { Put(static_cast<uint64_t>(x), 8); }
  template <typename T, size_t N>
  void operator()(const std::array<T, N>& a) {
    for (const T& e : a) (*this)(e);
  }
  template <Record T>
  void operator()(const T& x) {
    Fields(*this, x);
  }

 private:
  void Put(uint64_t x, int n) {
    for (int i = 0; i < n; ++i) out_->push_back(static_cast<char>(x >> (8 * i)));
  }
  std::string* out_;
};

// Reads little-endian bytes; past the end it yields zeros and clears ok().
class Reader final {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  void operator()(uint8_t& x) { x = static_cast<uint8_t>(Get(1)); }
  void operator()(uint16_t& x) { x = static_cast<uint16_t>(Get(2)); }
  void operator()(uint32_t& x) { x = static_cast<uint32_t>(Get(4)); }
  void operator()(uint64_t& x) { x = Get(8); }
  void operator()(int64_t& x) { x = static_cast<int64_t>(Get(8)); }
  template <typename T, size_t N>
  void operator()(std::array<T, N>& a) {
    for (T& e : a) (*this)(e);
  }
  template <Record T>
  void operator()(T& x) {
    Fields(*this, x);
  }
  // The next n bytes (fewer, and ok() false, if the input ends first).
  std::string_view Take(size_t n) {
    if (remaining() < n) ok_ = false;
    std::string_view out = in_.substr(pos_, n);
    pos_ += out.size();
    return out;
  }
  bool ok() const { return ok_; }
  size_t remaining() const { return in_.size() - pos_; }

 private:
  uint64_t Get(size_t n) {
    if (remaining() < n) {
      ok_ = false;
      pos_ = in_.size();
      return 0;
    }
    uint64_t x = 0;
    for (size_t i = 0; i < n; ++i) {
      x |= static_cast<uint64_t>(static_cast<uint8_t>(in_[pos_ + i])) << (8 * i);
    }
    pos_ += n;
    return x;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Counts the encoded size of a fixed-size value.
class Sizer final {
 public:
  void operator()(uint8_t) { size_ += 1; }
  void operator()(uint16_t) { size_ += 2; }
  void operator()(uint32_t) { size_ += 4; }
  void operator()(uint64_t) { size_ += 8; }
  void operator()(int64_t) { size_ += 8; }
  template <typename T, size_t N>
  void operator()(const std::array<T, N>& a) {
    for (const T& e : a) (*this)(e);
  }
  template <Record T>
  void operator()(const T& x) {
    Fields(*this, x);
  }
  size_t size() const { return size_; }

 private:
  size_t size_ = 0;
};

template <typename T>
size_t EncodedSize() {
  Sizer s;
  s(T{});
  return s.size();
}

}  // namespace rehome::state_fields

#endif  // REHOME_STATE_EXTRACT_STATE_FIELDS_H_
