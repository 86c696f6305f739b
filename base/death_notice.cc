// base/death_notice.cc: ClaimDeathNotice and the waits on the word (robust futexes, futex(2)).
#include "base/death_notice.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <cstddef>

#include "base/errno_status.h"

namespace rehome {
namespace {

// The claiming thread's robust list: one entry, in this process's own memory. The kernel finds
// the word at `entry + futex_offset`, which may lie in another mapping (the shared one).
thread_local robust_list_head robust_head;
thread_local robust_list robust_entry;

long Futex(std::atomic<uint32_t>* word, int op, uint32_t value, const timespec* timeout) {
  // Shared (no FUTEX_PRIVATE_FLAG): the waiter and the dying thread are different processes.
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, value, timeout, nullptr, 0);
}

}  // namespace

absl::Status ClaimDeathNotice(std::atomic<uint32_t>* word) {
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
  if (reinterpret_cast<uintptr_t>(word) % alignof(uint32_t) != 0) {
    return absl::InvalidArgumentError("death notice word is not 4-byte aligned");
  }
  robust_entry.next = &robust_head.list;
  robust_head.list.next = &robust_entry;
  robust_head.futex_offset =
      reinterpret_cast<const char*>(word) - reinterpret_cast<const char*>(&robust_entry);
  robust_head.list_op_pending = nullptr;
  // The owner's id as the kernel compares it at the thread's death (its own pid namespace).
  word->store(static_cast<uint32_t>(syscall(SYS_gettid)) & FUTEX_TID_MASK,
              std::memory_order_release);
  if (syscall(SYS_set_robust_list, &robust_head, sizeof(robust_head)) != 0) {
    const absl::Status status = ErrnoToStatus(errno, "set_robust_list");
    word->store(0, std::memory_order_release);
    return status;
  }
  return absl::OkStatus();
}

bool DeathNoticed(const std::atomic<uint32_t>& word) {
  return (word.load(std::memory_order_acquire) & FUTEX_OWNER_DIED) != 0;
}

bool AwaitDeathNotice(std::atomic<uint32_t>* word, absl::Duration timeout) {
  uint32_t value = word->load(std::memory_order_acquire);
  if ((value & FUTEX_OWNER_DIED) != 0) return true;
  // The kernel wakes a waiter at the owner's death only if FUTEX_WAITERS is set.
  if ((value & FUTEX_TID_MASK) != 0 && (value & FUTEX_WAITERS) == 0) {
    if (!word->compare_exchange_strong(value, value | FUTEX_WAITERS, std::memory_order_acq_rel)) {
      return DeathNoticed(*word);  // changed meanwhile (claimed again or died): look again
    }
    value |= FUTEX_WAITERS;
  }
  const timespec relative = absl::ToTimespec(timeout);
  Futex(word, FUTEX_WAIT, value, &relative);  // EAGAIN (changed), EINTR, ETIMEDOUT: look again
  return DeathNoticed(*word);
}

void WakeDeathNoticeWaiters(std::atomic<uint32_t>* word) {
  Futex(word, FUTEX_WAKE, INT_MAX, nullptr);
}

}  // namespace rehome
