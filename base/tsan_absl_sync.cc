// base/tsan_absl_sync.cc: ThreadSanitizer annotations for Debian's Abseil synchronization
// primitives (linked only into the REHOME_TSAN build).
//
// Debian 12 ships Abseil built without TSan, so the happens-before edges its Mutex, CondVar and
// Notification create (atomics and futexes inside libabsl_synchronization.so) are invisible to
// TSan, which would then report every access to mutex-guarded data as a race. The TSan build
// links every binary with `-Wl,--wrap=SYMBOL` for the entry points below (CMakeLists.txt,
// REHOME_TSAN_WRAPPED): our calls reach these wrappers, which call the real function
// (`__real_SYMBOL`) between TSan's mutex annotations, exactly as an Abseil built with TSan
// annotates itself (ABSL_TSAN_MUTEX_* in absl/synchronization/mutex.cc):
//   - a lock is pre_lock / real / post_lock (TSan acquires at post_lock);
//   - an unlock is pre_unlock (TSan releases) / real / post_unlock;
//   - Await, LockWhen and CondVar waits release and re-acquire around the real call.
// Memory accesses between pre_* and post_* are ignored by TSan: that covers Abseil evaluating a
// waiter's Condition while it unlocks (our code, run under the lock on another thread).
// Notification: Notify releases, a successful wait or HasBeenNotified acquires.
// The mangled names are those of Debian 12's Abseil (inline namespace absl::debian3); a build
// against another Abseil fails to link (undefined __real_ symbols), never silently.
// Thread-safety: the wrappers are as thread-safe as what they wrap.
#include <sanitizer/tsan_interface.h>

#include <atomic>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Notification;
using absl::Time;

constexpr unsigned kRead = __tsan_mutex_read_lock;

void PreLock(Mutex* mu, unsigned flags) { __tsan_mutex_pre_lock(mu, flags); }
void PostLock(Mutex* mu, unsigned flags) { __tsan_mutex_post_lock(mu, flags, 0); }
void PreUnlock(Mutex* mu, unsigned flags) { __tsan_mutex_pre_unlock(mu, flags); }
void PostUnlock(Mutex* mu, unsigned flags) { __tsan_mutex_post_unlock(mu, flags); }

// Around a call that gives up the held mutex, waits, and holds it again when it returns.
template <typename Fn>
auto Relock(Mutex* mu, unsigned flags, Fn real) {
  PreUnlock(mu, flags);
  auto result = real();
  PostUnlock(mu, flags);
  PreLock(mu, flags);
  PostLock(mu, flags);
  return result;
}

// Around a call that takes the mutex.
template <typename Fn>
auto Locking(Mutex* mu, unsigned flags, Fn real) {
  PreLock(mu, flags);
  auto result = real();
  PostLock(mu, flags);
  return result;
}

// Notification keys: the object, and its notified flag (which follows its Mutex), the address
// HasBeenNotified() passes to Abseil.
const void* NotifiedFlag(const Notification* n) {
  static_assert(sizeof(Notification) == 2 * sizeof(void*), "unexpected absl::Notification layout");
  return reinterpret_cast<const char*>(n) + sizeof(Mutex);
}

}  // namespace

// Each wrapper is declared with the C linkage name the linker gives it: the C++ member
// function's mangled name with __wrap_ / __real_ in front; `self` is the `this` argument.
#define REHOME_REAL_AND_WRAP(ret, mangled, ...) \
  extern "C" ret __real_##mangled(__VA_ARGS__); \
  extern "C" ret __wrap_##mangled(__VA_ARGS__)

// ---- Mutex ----
REHOME_REAL_AND_WRAP(void, _ZN4absl7debian35Mutex4LockEv, Mutex* self) {
  Locking(self, 0, [&] {
    __real__ZN4absl7debian35Mutex4LockEv(self);
    return 0;
  });
}

REHOME_REAL_AND_WRAP(void, _ZN4absl7debian35Mutex6UnlockEv, Mutex* self) {
  PreUnlock(self, 0);
  __real__ZN4absl7debian35Mutex6UnlockEv(self);
  PostUnlock(self, 0);
}

REHOME_REAL_AND_WRAP(bool, _ZN4absl7debian35Mutex7TryLockEv, Mutex* self) {
  __tsan_mutex_pre_lock(self, __tsan_mutex_try_lock);
  const bool locked = __real__ZN4absl7debian35Mutex7TryLockEv(self);
  __tsan_mutex_post_lock(self, __tsan_mutex_try_lock | (locked ? 0 : __tsan_mutex_try_lock_failed),
                         0);
  return locked;
}

REHOME_REAL_AND_WRAP(void, _ZN4absl7debian35Mutex10ReaderLockEv, Mutex* self) {
  Locking(self, kRead, [&] {
    __real__ZN4absl7debian35Mutex10ReaderLockEv(self);
    return 0;
  });
}

REHOME_REAL_AND_WRAP(void, _ZN4absl7debian35Mutex12ReaderUnlockEv, Mutex* self) {
  PreUnlock(self, kRead);
  __real__ZN4absl7debian35Mutex12ReaderUnlockEv(self);
  PostUnlock(self, kRead);
}

REHOME_REAL_AND_WRAP(void, _ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE, Mutex* self,
                     const Condition& cond) {
  Locking(self, 0, [&] {
    __real__ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE(self, cond);
    return 0;
  });
}

REHOME_REAL_AND_WRAP(bool,
                     _ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE,
                     Mutex* self, const Condition& cond, Duration timeout) {
  return Locking(self, 0, [&] {
    return __real__ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE(
        self, cond, timeout);
  });
}

REHOME_REAL_AND_WRAP(bool, _ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE,
                     Mutex* self, const Condition& cond, Time deadline) {
  return Locking(self, 0, [&] {
    return __real__ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE(
        self, cond, deadline);
  });
}

REHOME_REAL_AND_WRAP(void, _ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE, Mutex* self,
                     const Condition& cond) {
  Relock(self, 0, [&] {
    __real__ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(self, cond);
    return 0;
  });
}

REHOME_REAL_AND_WRAP(bool, _ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE,
                     Mutex* self, const Condition& cond, Duration timeout) {
  return Relock(self, 0, [&] {
    return __real__ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(
        self, cond, timeout);
  });
}

REHOME_REAL_AND_WRAP(bool, _ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE,
                     Mutex* self, const Condition& cond, Time deadline) {
  return Relock(self, 0, [&] {
    return __real__ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE(self, cond,
                                                                                        deadline);
  });
}

// ---- CondVar ----
REHOME_REAL_AND_WRAP(void, _ZN4absl7debian37CondVar4WaitEPNS0_5MutexE, CondVar* self, Mutex* mu) {
  Relock(mu, 0, [&] {
    __real__ZN4absl7debian37CondVar4WaitEPNS0_5MutexE(self, mu);
    return 0;
  });
}

REHOME_REAL_AND_WRAP(bool, _ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE,
                     CondVar* self, Mutex* mu, Duration timeout) {
  return Relock(mu, 0, [&] {
    return __real__ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE(self, mu,
                                                                                       timeout);
  });
}

REHOME_REAL_AND_WRAP(bool, _ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE,
                     CondVar* self, Mutex* mu, Time deadline) {
  return Relock(mu, 0, [&] {
    return __real__ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE(self, mu,
                                                                                    deadline);
  });
}

// ---- Notification ----
REHOME_REAL_AND_WRAP(void, _ZN4absl7debian312Notification6NotifyEv, Notification* self) {
  __tsan_release(self);
  __tsan_release(const_cast<void*>(NotifiedFlag(self)));
  __real__ZN4absl7debian312Notification6NotifyEv(self);
}

REHOME_REAL_AND_WRAP(void, _ZNK4absl7debian312Notification19WaitForNotificationEv,
                     const Notification* self) {
  __real__ZNK4absl7debian312Notification19WaitForNotificationEv(self);
  __tsan_acquire(const_cast<Notification*>(self));
}

REHOME_REAL_AND_WRAP(bool,
                     _ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE,
                     const Notification* self, Duration timeout) {
  const bool notified =
      __real__ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(
          self, timeout);
  if (notified) __tsan_acquire(const_cast<Notification*>(self));
  return notified;
}

REHOME_REAL_AND_WRAP(bool,
                     _ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE,
                     const Notification* self, Time deadline) {
  const bool notified =
      __real__ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE(self,
                                                                                         deadline);
  if (notified) __tsan_acquire(const_cast<Notification*>(self));
  return notified;
}

REHOME_REAL_AND_WRAP(bool, _ZN4absl7debian312Notification23HasBeenNotifiedInternalEPKSt6atomicIbE,
                     const std::atomic<bool>* flag) {
  const bool notified =
      __real__ZN4absl7debian312Notification23HasBeenNotifiedInternalEPKSt6atomicIbE(flag);
  if (notified) __tsan_acquire(const_cast<std::atomic<bool>*>(flag));
  return notified;
}
