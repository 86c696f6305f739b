// tests/fuzz/make_seeds.cc: writes the hand-made part of the fuzz targets' seed corpora
// (tests/fuzz/corpus/NAME/seed-*): well-formed inputs built with the real encoders (a driver
// initialising virtio-mmio and posting blk and console requests, commit records of real device
// models, a verified replica's effects, encoded CPU and VM states, the test guest's ELF, QMP
// sessions, domain XML), laid out the way each target's FuzzedDataProvider reads them. The rest of
// each corpus is what long fuzzing runs found, minimised with -merge=1 (docs/fuzzing.md). Usage:
// make_seeds OUT_DIR GUEST_ELF EXAMPLES_DIR. Built in the fuzz build (not a fuzz target).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "kvm-l0/effects_area.h"
#include "kvm-l0/exit_channel.h"
#include "state-extract/state_codec.h"
#include "vmm/device_model.h"
#include "vmm/l1/commit_record.h"
#include "vmm/virtio/blk_device.h"
#include "vmm/virtio/mmio_transport.h"

namespace {

using rehome::virtio::MmioTransport;

// Builds an input that a FuzzedDataProvider reads back as the values given: bytes and strings
// from the front, integers from the back (most significant byte first, as FDP consumes them).
class Seed final {
 public:
  Seed& Bytes(const std::string& bytes) {
    front_ += bytes;
    return *this;
  }
  // What ConsumeRandomLengthString() returns as `s` (then stops).
  Seed& String(const std::string& s) {
    for (char c : s) {
      front_ += c;
      if (c == '\\') front_ += '\\';
    }
    front_ += "\\n";  // a backslash before anything else ends the string
    return *this;
  }
  // ConsumeIntegralInRange(min, max) == value.
  Seed& Int(uint64_t min, uint64_t max, uint64_t value) {
    const uint64_t range = max - min, v = value - min;
    int bytes = 0;
    while (bytes < 8 && (range >> (8 * bytes)) > 0) ++bytes;
    for (int i = bytes - 1; i >= 0; --i) back_.push_back(static_cast<char>(v >> (8 * i)));
    return *this;
  }
  Seed& Bool(bool b) { return Int(0, 255, b ? 1 : 0); }
  Seed& U8(uint8_t v) { return Int(0, 255, v); }
  Seed& U16(uint16_t v) { return Int(0, 0xffff, v); }
  Seed& U32(uint32_t v) { return Int(0, 0xffffffff, v); }
  Seed& U64(uint64_t v) { return Int(0, ~uint64_t{0}, v); }

  std::string Finish() const {
    std::string back(back_.rbegin(), back_.rend());
    return front_ + back;
  }

 private:
  std::string front_;
  std::string back_;  // in consumption order
};

std::string out_dir;

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::string dir = out_dir + "/" + target;
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/seed-" + name, std::ios::binary) << bytes;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

template <typename T>
std::string Le(T v) {
  std::string s(sizeof(T), '\0');
  std::memcpy(s.data(), &v, sizeof(T));
  return s;
}

// ---- virtio: descriptor tables and rings written into RAM by the fuzz harnesses' RAM ops ----
struct Desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags, next;
};
std::string DescTable(const std::vector<Desc>& descs) {
  std::string s;
  for (const Desc& d : descs) s += Le(d.addr) + Le(d.len) + Le(d.flags) + Le(d.next);
  return s;
}
std::string AvailRing(uint16_t idx, const std::vector<uint16_t>& heads) {
  std::string s = Le<uint16_t>(0) + Le(idx);
  for (uint16_t h : heads) s += Le(h);
  return s;
}

void VirtqueueSeeds() {
  // Queue of 8 at 0x1000 (descriptors), 0x2000 (avail), 0x3000 (used); one three-descriptor
  // chain: 16 readable bytes, 512 readable, 1 writable.
  std::string ram(0x8000, '\0');
  const std::string table = DescTable({{0x4000, 16, 1, 1}, {0x5000, 512, 1, 2}, {0x6000, 1, 2, 0}});
  ram.replace(0x1000, table.size(), table);
  const std::string avail = AvailRing(1, {0});
  ram.replace(0x2000, avail.size(), avail);
  Seed s;
  s.Bool(false).Bool(true).Int(0, 9, 3);                      // deferred, size 8
  s.Bool(false).Int(0, (64 << 10) + 64, 0x1000).Bool(false);  // desc
  s.Bool(false).Int(0, (64 << 10) + 64, 0x2000).Bool(false);  // avail
  s.Bool(false).Int(0, (64 << 10) + 64, 0x3000).Bool(false);  // used
  s.Int(0, 64 << 10, ram.size()).Bytes(ram);
  s.Int(0, 4, 0).Int(0, 4096, 64).Int(0, 70000, 8).Bool(true).U32(1).Bool(true);  // pop, use
  s.Int(0, 4, 0);  // pop: nothing more
  Write("virtqueue_fuzz", "chain", s.Finish());
}

// The ops of mmio_transport_fuzz (see that file).
constexpr int kOpInit = 2, kOpRam = 3, kOpNotify = 4, kOpKick = 5, kOpPublish = 6, kOpSave = 7;

Seed& Ram(Seed& s, uint64_t at, const std::string& bytes) {
  return s.Int(0, 8, kOpRam)
      .Int(0, (64 << 10) - 1, at)
      .Int(0, (64 << 10) - at, bytes.size())
      .Bytes(bytes);
}
Seed& Init(Seed& s, int queues) {
  s.Int(0, 8, kOpInit).U32(~0u).U32(~0u);
  for (int q = 0; q < queues; ++q) s.Int(0, 8, 6);  // queue size 64
  return s;
}

void MmioSeeds() {
  // virtio-blk: a write of one sector, then a read of it, a flush and a get-id.
  const uint64_t desc = 0x1000, avail = 0x2000;
  Seed blk;
  blk.Bool(true);
  Init(blk, 1);
  const auto header = [](uint32_t type, uint64_t sector) {
    return Le(type) + Le<uint32_t>(0) + Le(sector);
  };
  Ram(blk, 0x8000, header(rehome::virtio::BlkDevice::kTypeOut, 3));
  Ram(blk, 0x9000, std::string(512, 'w'));
  Ram(blk, 0x8100, header(rehome::virtio::BlkDevice::kTypeIn, 3));
  Ram(blk, 0x8200, header(rehome::virtio::BlkDevice::kTypeFlush, 0));
  Ram(blk, 0x8300, header(rehome::virtio::BlkDevice::kTypeGetId, 0));
  Ram(blk, desc,
      DescTable({{0x8000, 16, 1, 1},
                 {0x9000, 512, 1, 2},
                 {0xa000, 1, 2, 0},
                 {0x8100, 16, 1, 4},
                 {0xb000, 512, 3, 5},
                 {0xa001, 1, 2, 0},
                 {0x8200, 16, 1, 7},
                 {0xa002, 1, 2, 0},
                 {0x8300, 16, 1, 9},
                 {0xc000, 20, 3, 10},
                 {0xa003, 1, 2, 0}}));
  Ram(blk, avail, AvailRing(4, {0, 3, 6, 8}));
  blk.Int(0, 8, kOpNotify).Int(0, 2, 0);
  blk.Int(0, 8, kOpPublish).Bool(true);
  blk.Int(0, 8, kOpSave);
  Write("mmio_transport_fuzz", "blk", blk.Finish());

  // virtio-console: receive buffers posted, host input, a transmit of "hello".
  Seed con;
  con.Bool(false);
  Init(con, 2);
  Ram(con, desc, DescTable({{0x8000, 64, 2, 0}}));
  Ram(con, avail, AvailRing(1, {0}));
  con.Int(0, 8, kOpKick).String("input from the host").Int(0, 3, 1);  // Kick(-1 + 1)
  Ram(con, 0x9000, "hello");
  Ram(con, desc + 0x3000, DescTable({{0x9000, 5, 0, 0}}));
  Ram(con, avail + 0x3000, AvailRing(1, {0}));
  con.Int(0, 8, kOpNotify).Int(0, 2, 1);
  con.Int(0, 8, kOpSave);
  Write("mmio_transport_fuzz", "console", con.Finish());
}

void ExitResponseSeeds() {
  rehome::ExitResponse r{};
  r.seq = 1;
  r.action = rehome::ExitResponse::kContinue;
  r.data_len = 4;
  std::memcpy(r.data, "\x78\x56\x34\x12", 4);
  r.output_len = 3;
  std::memcpy(r.output, "abc", 3);
  const std::string raw(reinterpret_cast<const char*>(&r), sizeof(r));
  Seed s;
  s.Bool(true).Int(1, 4, 1).Int(0, 2, 0).Bool(false).Int(0, 3, 2).Int(1, 512, 1).Bool(true);
  s.Bytes(raw);
  Write("exit_response_fuzz", "pio-read", s.Finish());
  rehome::PostedRange ranges[2] = {{rehome::PostedRange::kPio, 4, 0x500},
                                   {rehome::PostedRange::kMmio, 0x200, 0xd0000000}};
  Seed p;
  p.Bool(false).Bool(false).Int(0, 9, 2);
  p.Bytes(std::string(reinterpret_cast<const char*>(ranges), sizeof(ranges)) +
          std::string(sizeof(rehome::ExitChannelHeader::posted_ranges) - sizeof(ranges), '\0'));
  p.Int(0, 3, 1).U64(0x502).Int(0, 1 << 20, 2);
  p.Int(0, 3, 2).U64(0xd0000100).Int(0, 1 << 20, 4);
  Write("exit_response_fuzz", "posted-ranges", p.Finish());
}

void ConsoleRingSeeds() {
  Seed s;
  s.Int(0, 4, 0).Bool(true).String("guest output").Bool(false);  // write
  s.Int(0, 4, 1).Bool(false);                                    // publish
  s.Int(0, 4, 4).Bool(false);                                    // take
  s.Int(0, 4, 2).Bool(false).U32(10).Bool(false);                // forged published
  s.Int(0, 4, 4).Bool(false);                                    // take
  Write("console_tx_ring_fuzz", "write-publish-take", s.Finish());
}

// A verified replica's effects for one virtio-blk request: the data read into guest RAM, a disk
// write and flush, the used-ring update, the interrupt edge, console bytes.
std::string EffectEntries() {
  std::vector<uint8_t> e;
  const std::string data(512, 'd');
  const auto bytes = [](const std::string& s) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  };
  rehome::AppendEffect(&e, rehome::EffectType::kRamWrite, 0x2000, bytes(data));
  rehome::AppendEffect(&e, rehome::EffectType::kDiskWrite, 1024, bytes(data));
  rehome::AppendEffect(&e, rehome::EffectType::kDiskFlush, 0, {});
  rehome::AppendEffect(&e, rehome::EffectType::kRamWrite, 0x3002, bytes(std::string("\x01\0", 2)));
  rehome::AppendEffect(&e, rehome::EffectType::kIrq, 5, {});
  rehome::AppendEffect(&e, rehome::EffectType::kConsoleOut, 0, bytes("hello\n"));
  return std::string(e.begin(), e.end());
}

void EffectsSeeds() {
  const std::string entries = EffectEntries();
  Write("effects_area_fuzz", "parse", Seed().Int(0, 3, 0).Int(0, 80, 6).Bytes(entries).Finish());
  // Guest RAM of 64 KiB at 0, a 4 KiB image, every sink.
  Write("effects_area_fuzz", "apply",
        Seed()
            .Int(0, 3, 3)
            .Int(0, 1 << 16, 1 << 16)
            .Bool(true)
            .Int(0, 1 << 16, 4096)
            .Bool(true)
            .Bool(true)
            .Bool(true)
            .Bytes(entries)
            .Finish());
  // The honest replica writes a RAM write and an interrupt edge as item 7.
  Write("effects_area_fuzz", "honest",
        Seed()
            .Int(0, 3, 1)
            .Int(1, 5, 1)
            .U64(0x2000)
            .Bool(true)
            .Int(0, 4096, 8)
            .Bytes("used-elt")
            .Int(1, 5, 4)
            .U64(5)
            .Bool(true)
            .Int(0, 4096, 0)
            .Finish());
}

// A device model of the given shape, with some state, saved.
std::vector<uint8_t> ModelState(bool disk, bool console, uint32_t oracle_cpus) {
  static std::vector<uint8_t> ram(64 << 10);
  static rehome::FlatGuestMemoryView mem(ram);
  rehome::DeviceModelConfig config;
  if (disk) {
    config.disk = rehome::UniqueFd(memfd_create("seed-disk", MFD_CLOEXEC));
    if (ftruncate(config.disk.get(), 64 * 512) != 0) std::abort();
  }
  config.console = console;
  if (oracle_cpus != 0) {
    rehome::CounterOracle::Config oracle;
    oracle.cpus = oracle_cpus;
    config.oracle = oracle;
  }
  auto model = rehome::DeviceModel::Create(std::move(config), mem);
  if (!model.ok()) std::abort();
  return (*model)->SaveState();
}

void JournalSeeds() {
  struct Shape {
    bool disk, console;
    uint32_t cpus;
    const char* name;
  };
  for (const Shape& shape : {Shape{false, false, 0, "bare"}, Shape{true, true, 2, "full"},
                             Shape{true, false, 1, "disk"}}) {
    rehome::CommitRecord record;
    record.l1_generation = 3;
    record.exits_handled = 1000;
    record.verified_reports = 7;
    for (uint32_t v = 0; v < std::max(shape.cpus, 1u); ++v) {
      rehome::CommittedAnswer a;
      a.seq = 10 + v;
      a.data = "\x01\x02";
      a.output = "out";
      record.last_answer.push_back(a);
    }
    record.device_state = ModelState(shape.disk, shape.console, shape.cpus);
    const std::vector<uint8_t> payload = rehome::EncodeCommitRecord(record);
    Seed s;
    s.Bool(shape.disk).Bool(shape.console).Bool(shape.cpus != 0);
    if (shape.cpus != 0) s.Int(1, 4, shape.cpus);
    s.Bool(true).Bytes(std::string(payload.begin(), payload.end()));
    Write("journal_fuzz", shape.name, s.Finish());
  }
}

void CpuStateSeeds() {
  rehome::CpuState cpu;
  cpu.regs.rip = 0x100000;
  cpu.regs.rflags = 2;
  cpu.sregs.cr0 = 0x80050033;
  cpu.xsave.bytes.assign(rehome::XsaveArea::kLegacySize, 0);
  cpu.xcrs = rehome::Xcrs{};
  cpu.msrs = {{0x10, 5}, {0xc0000080, 0x500}};
  cpu.lapic = rehome::LapicState{};
  cpu.tsc_khz = 2000000;
  Seed c;
  c.Bool(false).Bool(false).Bytes(rehome::EncodeCpuState(cpu));
  Write("cpu_state_fuzz", "cpu", c.Finish());
  rehome::VmState vm;
  vm.pic_master = rehome::Irqchip{};
  vm.pic_slave = rehome::Irqchip{};
  vm.ioapic = rehome::Irqchip{};
  vm.pit = rehome::PitState2{};
  vm.vcpus = {cpu, rehome::CpuState{}};
  Seed v;
  v.Bool(true).Bool(false).Bytes(rehome::EncodeVmState(vm));
  Write("cpu_state_fuzz", "vm", v.Finish());
}

void ElfSeeds(const std::string& guest_elf) {
  Seed s;
  s.Bool(true).String("workload=counter cpus=2").Bool(false).Bytes(ReadFile(guest_elf));
  Write("elf_loader_fuzz", "guest", s.Finish());
}

void QmpSeeds() {
  const std::string negotiate = R"({"execute":"qmp_capabilities","arguments":{"enable":["oob"]}})";
  const std::vector<std::pair<std::string, std::string>> sessions = {
      {"queries", negotiate +
                      R"({"execute":"query-status","id":1}{"execute":"query-version"})"
                      R"({"execute":"query-commands","id":"x"}{"execute":"query-cpus-fast"})"
                      R"({"execute":"__org.rehome_query-l1s","id":[1,{"a":null}]})"},
      {"control", negotiate + R"({"execute":"stop","id":1}{"execute":"cont"})"
                              R"({"execute":"__org.rehome_inject-fault","arguments":)"
                              R"({"target":"active","kind":"kill"},"id":2})"
                              R"({"exec-oob":"query-status","id":3}{"execute":"quit"})"},
      {"garbage",
       "{'execute': 'qmp_capabilities'}\r\n{\"execute\":\"query-name\",\"id\":1.5e3}"
       "[1,2,{]\xff{\"a\":\"\\u00e9\\ud83d\\ude00\"} nul {\"execute\":1}"},
      {"errors", negotiate + R"({"execute":"query-name","arguments":{"x":1},"id":true})"
                             R"({"execute":"no-such","id":null}{"arguments":{}}[])"},
  };
  for (const auto& [name, text] : sessions) {
    Write("qmp_server_fuzz", name, Seed().Int(0, 15, 5).String(text).Finish());
  }
  const std::string output =
      R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""},)"
      R"( "capabilities": ["oob"]}})"
      "\r\n"
      R"({"return": {}, "id": 1})"
      "\r\n"
      R"({"return": {"status": "running", "singlestep": false, "running": true}, "id": 2})"
      "\r\n"
      R"({"error": {"class": "GenericError", "desc": "JSON parse error, stray 'x'"}})"
      "\r\n"
      R"({"timestamp": {"seconds": 1700000000, "microseconds": 5}, "event": "STOP"})"
      "\r\n"
      R"({"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-signal"},)"
      R"( "timestamp": {"seconds": 1, "microseconds": 2}})"
      "\r\n";
  Write("qmp_client_fuzz", "server-output", Seed().Bool(true).String(output).Finish());
  Write("qmp_client_fuzz", "arguments",
        Seed()
            .Bool(false)
            .Bytes(R"({"target":"active","kind":["kill",{"x":[1,2.5,null]}]})")
            .Finish());
}

void DomainSeeds(const std::string& examples) {
  for (const auto& entry : std::filesystem::directory_iterator(examples)) {
    if (entry.path().extension() != ".xml") continue;
    // With and without libvirt's validation (selector 0).
    Write("domain_xml_fuzz", entry.path().stem().string(),
          Seed().Int(0, 3, 1).Bytes(ReadFile(entry.path())).Finish());
    Write("domain_xml_fuzz", entry.path().stem().string() + "-libvirt",
          Seed().Int(0, 3, 0).Bytes(ReadFile(entry.path())).Finish());
  }
  const std::string devices = R"(<domain type='kvm'><name>d</name><memory unit='MiB'>64</memory>
<vcpu current='2'>2</vcpu><os><type arch='x86_64'>hvm</type><kernel>k.elf</kernel>
<cmdline>x</cmdline></os><on_crash>preserve</on_crash><devices>
<emulator>/usr/bin/qemu</emulator><controller type='usb' model='none'/>
<disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/>
<source file='d.img'/><target dev='vda'/><readonly/></disk>
<console type='unix'><source mode='bind' path='c.sock'/><target type='virtio'/></console>
<interface type='network'><model type='virtio'/></interface><graphics type='vnc'/>
<memballoon model='none'/></devices><metadata>
<r:recovery xmlns:r="https://rehome.dev/xmlns/domain/1.0" version="1" mode="restart"
 standbys="0"><r:hang timeout-ms="100"/><r:limit failovers="3" window-s="5"/></r:recovery>
</metadata></domain>)";
  Write("domain_xml_fuzz", "devices", Seed().Int(0, 3, 1).Bytes(devices).Finish());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: make_seeds OUT_DIR GUEST_ELF EXAMPLES_DIR\n";
    return 2;
  }
  out_dir = argv[1];
  VirtqueueSeeds();
  MmioSeeds();
  ExitResponseSeeds();
  ConsoleRingSeeds();
  EffectsSeeds();
  JournalSeeds();
  CpuStateSeeds();
  ElfSeeds(argv[2]);
  QmpSeeds();
  DomainSeeds(argv[3]);
  return 0;
}
