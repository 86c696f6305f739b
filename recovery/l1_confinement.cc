// recovery/l1_confinement.cc: HostL1Confinement.
#include "recovery/l1_confinement.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/mapped_region.h"

namespace rehome {
namespace {

constexpr size_t kHelperStackBytes = 64 << 10;

// The helper's report through its pipe: the step that failed (nullptr: none) and its errno.
struct HelperResult {
  const char* step = nullptr;
  int error = 0;
};

struct HelperContext {
  int go_fd = -1;    // read: L0 has written the id maps
  int done_fd = -1;  // write: a HelperResult
};

[[noreturn]] void HelperDone(const HelperContext* c, const char* step) {
  const HelperResult result{step, step != nullptr ? errno : 0};
  syscall(SYS_write, c->done_fd, &result, sizeof(result));
  for (;;) syscall(SYS_pause);  // L0 opens /proc/PID/ns/* and then kills it
}

// Runs in a fork-like child of a multi-threaded process, in its new user, mount, net, ipc and uts
// namespaces: system calls only. Makes the mount namespace's root an empty read-only tmpfs.
__attribute__((no_sanitize("address", "undefined"))) int HelperMain(void* arg) {
  const auto* c = static_cast<const HelperContext*>(arg);
  char go = 0;
  if (syscall(SYS_read, c->go_fd, &go, 1) != 1) HelperDone(c, "waiting for the id maps");
  // Copied mounts are slaves of the host's; private, nothing here can propagate anywhere.
  if (syscall(SYS_mount, nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    HelperDone(c, "making / private");
  }
  // Any existing directory serves as the mount point: the host's tree is detached below.
  const char* point = "/tmp";
  const unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY;
  if (syscall(SYS_mount, "rehome-l1-root", point, "tmpfs", flags, "size=4k,mode=0555") != 0) {
    point = "/dev";
    if (syscall(SYS_mount, "rehome-l1-root", point, "tmpfs", flags, "size=4k,mode=0555") != 0) {
      HelperDone(c, "mounting the empty root");
    }
  }
  if (syscall(SYS_chdir, point) != 0) HelperDone(c, "chdir to the empty root");
  // pivot_root(".", "."): the old root ends up stacked on the new one, and is detached.
  if (syscall(SYS_pivot_root, ".", ".") != 0) HelperDone(c, "pivot_root");
  if (syscall(SYS_umount2, ".", MNT_DETACH) != 0) HelperDone(c, "detaching the host's root");
  if (syscall(SYS_chdir, "/") != 0) HelperDone(c, "chdir /");
  HelperDone(c, nullptr);
}

absl::Status WriteProcFile(pid_t pid, const char* name, const std::string& text) {
  const std::string path = absl::StrCat("/proc/", pid, "/", name);
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return LastErrnoStatus(absl::StrCat("open ", path));
  if (write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return LastErrnoStatus(absl::StrCat("write ", path));
  }
  return absl::OkStatus();
}

// Creates the namespaces through a helper process and returns fds for them.
absl::Status MakeNamespaces(std::vector<UniqueFd>* fds) {
  int go[2], done[2];
  if (pipe2(go, O_CLOEXEC) != 0) return LastErrnoStatus("pipe");
  UniqueFd go_read(go[0]), go_write(go[1]);
  if (pipe2(done, O_CLOEXEC) != 0) return LastErrnoStatus("pipe");
  UniqueFd done_read(done[0]), done_write(done[1]);
  HelperContext context{go_read.get(), done_write.get()};
  absl::StatusOr<MappedRegion> stack = MappedRegion::Map(
      kHelperStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (!stack.ok()) return stack.status();
  // No handler of L0's may run in the helper (a copy of a multi-threaded process).
  sigset_t all, old;
  sigfillset(&all);
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, _NSIG / 8);
  const pid_t pid = clone(
      HelperMain, stack->bytes() + kHelperStackBytes,
      CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD, &context);
  const int clone_errno = errno;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, nullptr, _NSIG / 8);
  if (pid < 0) return ErrnoToStatus(clone_errno, "clone with new namespaces");
  const auto reap = [pid] {
    kill(pid, SIGKILL);
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  };
  // Root maps the whole L1 id range 1:1; anyone else may map only their own ids.
  absl::Status maps;
  if (geteuid() == 0) {
    const std::string map = absl::StrCat(kL1IdBase, " ", kL1IdBase, " ", kL1IdCount, "\n");
    maps = WriteProcFile(pid, "uid_map", map);
    if (maps.ok()) maps = WriteProcFile(pid, "gid_map", map);
  } else {
    maps = WriteProcFile(pid, "uid_map", absl::StrCat(geteuid(), " ", geteuid(), " 1\n"));
    if (maps.ok()) maps = WriteProcFile(pid, "setgroups", "deny");
    if (maps.ok())
      maps = WriteProcFile(pid, "gid_map", absl::StrCat(getegid(), " ", getegid(), " 1\n"));
  }
  if (!maps.ok()) {
    reap();
    return maps;
  }
  const char one = 1;
  (void)!write(go_write.get(), &one, 1);
  HelperResult result;
  pollfd pfd{done_read.get(), POLLIN, 0};
  if (poll(&pfd, 1, 10000) != 1 ||
      read(done_read.get(), &result, sizeof(result)) != static_cast<ssize_t>(sizeof(result))) {
    reap();
    return absl::DeadlineExceededError("the namespace helper did not answer");
  }
  if (result.step != nullptr) {
    reap();
    return ErrnoToStatus(result.error, result.step);
  }
  for (const char* ns : {"user", "mnt", "net", "ipc", "uts"}) {
    const std::string path = absl::StrCat("/proc/", pid, "/ns/", ns);
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      const absl::Status status = LastErrnoStatus(absl::StrCat("open ", path));
      reap();
      fds->clear();
      return status;
    }
    fds->push_back(std::move(fd));
  }
  reap();
  return absl::OkStatus();
}

// An empty directory owned by root that no one else may write: the chroot of an L1 when there
// is no mount namespace.
absl::StatusOr<std::string> EnsureEmptyRoot() {
  const std::string parent = "/run/rehome";
  const std::string path = parent + "/l1-root";
  if (mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST)
    return LastErrnoStatus("mkdir " + parent);
  if (mkdir(path.c_str(), 0555) != 0 && errno != EEXIST) return LastErrnoStatus("mkdir " + path);
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return LastErrnoStatus("stat " + path);
  if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 0222) != 0) {
    return absl::FailedPreconditionError(path + " is not a read-only directory owned by root");
  }
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return LastErrnoStatus("opendir " + path);
  bool empty = true;
  while (const dirent* e = readdir(dir)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) empty = false;
  }
  closedir(dir);
  if (!empty) return absl::FailedPreconditionError(path + " is not empty");
  return path;
}

L1Confinement* Prepare() {
  auto* c = new L1Confinement();
  c->per_l1_ids = geteuid() == 0;
  if (absl::Status s = MakeNamespaces(&c->namespace_fds); !s.ok()) {
    c->namespaces_error = std::string(s.message());
    if (geteuid() == 0) {
      absl::StatusOr<std::string> root = EnsureEmptyRoot();
      if (root.ok()) {
        c->empty_root = *root;
      } else {
        c->empty_root_error = std::string(root.status().message());
      }
    } else {
      c->empty_root_error = "chroot needs root";
    }
  }
  return c;
}

}  // namespace

const L1Confinement& HostL1Confinement() {
  static const L1Confinement* confinement = Prepare();  // never freed: L1s may outlive callers
  return *confinement;
}

int L1Lifeline() {
  static const int read_end = [] {
    int ends[2];
    return pipe2(ends, O_CLOEXEC) == 0 ? ends[0] : -1;  // both ends stay open for good
  }();
  return read_end;
}

}  // namespace rehome
