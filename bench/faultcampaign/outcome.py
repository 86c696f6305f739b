"""The outcome of one campaign run: exactly one class per run (docs/fault-injection.md).

  no effect                 the guest was correct and no failure was detected
  detected, recovered       rehome detected a failure of an L1 (and failed over, or replaced a
                            standby), or replicas diverged (--verify) and were outvoted, the guest finished correct by every check, and afterwards
                            a standby was ready again, QMP answered and a new VM could start
  detected, not recovered   rehome detected a failure but the guest did not end correct: rehome
                            stopped it (failover limit, recovery failed, an L1 said stop), or
                            its result was wrong although a detector had fired
  silent data corruption    no detector fired, but the guest's result was wrong: rehome's oracle,
                            the guest's own checks or a host-side check found it
  hang                      the run did not end by its deadline
  L0 failure                the `rehome run` process died by a signal, or a sanitizer reported
Runs in which nothing was injected (the target exited first) are `not injected`, runs the
campaign itself could not drive (e.g. no QMP connection) `harness error`; both are left out of
the statistics. Pure functions.
"""
from dataclasses import dataclass, field

NO_EFFECT = "no effect"
RECOVERED = "detected, recovered"
NOT_RECOVERED = "detected, not recovered"
SDC = "silent data corruption"
HANG = "hang"
L0_FAILURE = "L0 failure"
NOT_INJECTED = "not injected"
HARNESS_ERROR = "harness error"  # the campaign could not drive the run (left out too)
EXCLUDED = (NOT_INJECTED, HARNESS_ERROR)
OUTCOMES = (NO_EFFECT, RECOVERED, NOT_RECOVERED, SDC, HANG, L0_FAILURE)

# `rehome run` exit statuses (rehome run --help).
EXIT_ORACLE = 65
EXIT_GUEST_CRASH = 66
EXIT_RECOVERY_STOPPED = 67
EXIT_INTERNAL = 70
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
                   "WARNING: ThreadSanitizer")


@dataclass
class Observation:
    injected: bool = True
    exit_code: int = 0          # rehome run's status; negative: killed by that signal
    timed_out: bool = False     # killed by the campaign at the run's deadline
    stderr: str = ""
    l1_failures: list = field(default_factory=list)    # __org.rehome_L1_FAILED event data
    failovers: list = field(default_factory=list)      # __org.rehome_FAILOVER_COMPLETED data
    failovers_failed: list = field(default_factory=list)  # __org.rehome_FAILOVER_FAILED data
    divergences: list = field(default_factory=list)    # __org.rehome_DIVERGENCE data (--verify)
    host_problems: list = field(default_factory=list)  # the workload's host-side checks
    standby_ready: bool = None  # after the last failover (None: not checked)
    qmp_ok: bool = None
    new_vm_ok: bool = None
    # Recovery stopped (FAILOVER_FAILED) and the guest was left paused for an operator (rehome
    # run with a QMP monitor waits for `cont`); the campaign then ended it with `quit`.
    recovery_stopped: bool = False


def _stderr_reason(stderr):
    for line in reversed(stderr.splitlines()):
        if line.startswith("rehome: ") and ("failed" in line or "stopped" in line or
                                            "violation" in line or "crashed" in line):
            return line[len("rehome: "):]
    return ""


def classify(obs):
    """(outcome, detail, wrong_data): wrong_data is true when the guest's result was wrong."""
    if not obs.injected:
        return NOT_INJECTED, "", False
    if any(mark in obs.stderr for mark in SANITIZER_MARKS):
        return L0_FAILURE, "sanitizer report", False
    if obs.timed_out:
        return HANG, "no end by the run's deadline", False
    if obs.exit_code < 0:
        return L0_FAILURE, f"rehome run killed by signal {-obs.exit_code}", False
    detected = bool(obs.l1_failures or obs.failovers or obs.failovers_failed or
                    obs.divergences)
    cause = ""
    if obs.divergences:  # verified execution: the replicas' results differed
        cause = "divergence: " + obs.divergences[0].get("what", "")
    elif obs.l1_failures:
        cause = obs.l1_failures[0].get("cause", "")
    elif obs.failovers_failed:
        cause = obs.failovers_failed[0].get("cause", "")
    if obs.recovery_stopped:
        error = obs.failovers_failed[0].get("error", "") if obs.failovers_failed else ""
        return NOT_RECOVERED, f"recovery stopped, guest paused: {error or cause}", False
    if obs.exit_code == EXIT_RECOVERY_STOPPED:
        return NOT_RECOVERED, f"recovery stopped: {_stderr_reason(obs.stderr) or cause}", False
    if obs.exit_code == EXIT_INTERNAL:
        # rehome stopped the VM: an L1 answered with a fatal action, or L0 gave up.
        return NOT_RECOVERED, f"VM stopped: {_stderr_reason(obs.stderr)}", False
    wrong = []
    if obs.exit_code == EXIT_ORACLE:
        wrong.append("counter oracle violation")
    elif obs.exit_code == EXIT_GUEST_CRASH:
        wrong.append("guest crash")
    elif obs.exit_code != 0:
        wrong.append(f"guest exit status {obs.exit_code}")
    elif obs.host_problems:
        wrong.append("host check: " + "; ".join(obs.host_problems[:3]))
    if wrong:
        reason = _stderr_reason(obs.stderr)
        detail = wrong[0] + (f" ({reason})" if reason and obs.exit_code != 0 else "")
        if detected:
            return NOT_RECOVERED, f"wrong result after a detected failure ({cause}): {detail}", True
        return SDC, detail, True
    if not detected:
        return NO_EFFECT, "", False
    missing = [name for name, ok in (("no standby ready again", obs.standby_ready),
                                     ("QMP did not answer", obs.qmp_ok),
                                     ("a new VM could not start", obs.new_vm_ok)) if ok is False]
    if missing:
        return NOT_RECOVERED, f"after recovery ({cause}): " + ", ".join(missing), False
    return RECOVERED, cause, False
