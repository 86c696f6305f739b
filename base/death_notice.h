// base/death_notice.h: an early notice, written by the kernel, that a thread of another process
// died. The thread claims a 32-bit word in memory both processes map shared (ClaimDeathNotice):
// its robust-futex list names the word, so as the thread exits the kernel marks the word
// (FUTEX_OWNER_DIED) and wakes a waiter, before the process's memory is torn down. A process
// with much memory mapped can take milliseconds to be torn down, and only then does its pidfd
// become readable: the notice comes first (docs/exit-channel.md, `exit_thread_notice`).
//
// The word is the claimer's thread id (in its own pid namespace), with FUTEX_WAITERS set by a
// waiter. Anyone who can write the word can also fake the notice: a reader must treat it as
// "dead or lying", e.g. fence the owner with SIGKILL either way.
//
// Thread-safety: every function may be called from any thread of either process; the word is
// only touched atomically.
#ifndef REHOME_BASE_DEATH_NOTICE_H_
#define REHOME_BASE_DEATH_NOTICE_H_

#include <atomic>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace rehome {

// The calling thread claims `word` (4-byte aligned, in a MAP_SHARED mapping): the kernel will
// mark it when the thread dies, however it dies. Replaces the thread's robust-futex list, so
// robust pthread mutexes held by this thread are no longer released at its death (the L1 has
// none). Call once per thread; `word` must stay mapped for the thread's life.
absl::Status ClaimDeathNotice(std::atomic<uint32_t>* word);

// Whether the owner of `word` died: the kernel set FUTEX_OWNER_DIED (or someone who can write
// the word wrote it). False for a word that was never claimed.
bool DeathNoticed(const std::atomic<uint32_t>& word);

// Blocks until the owner of `word` died or `timeout` passed (or a spurious wake-up); returns
// DeathNoticed(*word). A word not yet claimed is waited on for `timeout` (its claim does not
// wake the waiter).
bool AwaitDeathNotice(std::atomic<uint32_t>* word, absl::Duration timeout);

// Wakes every thread blocked in AwaitDeathNotice on `word`: the kernel wakes only one at a death.
void WakeDeathNoticeWaiters(std::atomic<uint32_t>* word);

}  // namespace rehome

#endif  // REHOME_BASE_DEATH_NOTICE_H_
