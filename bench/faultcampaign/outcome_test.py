"""Tests of outcome.classify: one case per class and the rules between them."""
import unittest

from outcome import (HANG, L0_FAILURE, NO_EFFECT, NOT_INJECTED, NOT_RECOVERED, RECOVERED, SDC,
                     Observation, classify)

CRASH = [{"cause": "crash: L1 pid 7 exited", "pid": 7}]
FAILOVER = [{"pid": 8, "downtime-us": 150}]


def obs(**kw):
    return Observation(**kw)


class ClassifyTest(unittest.TestCase):
    def test_nothing_detected_and_correct_is_no_effect(self):
        self.assertEqual(classify(obs())[0], NO_EFFECT)

    def test_failover_with_every_check_clean_is_recovered(self):
        o = obs(l1_failures=CRASH, failovers=FAILOVER, standby_ready=True, qmp_ok=True,
                new_vm_ok=True)
        self.assertEqual(classify(o), (RECOVERED, CRASH[0]["cause"], False))

    def test_a_failed_post_recovery_check_is_not_recovered(self):
        o = obs(l1_failures=CRASH, failovers=FAILOVER, standby_ready=False, qmp_ok=True,
                new_vm_ok=True)
        outcome, detail, _ = classify(o)
        self.assertEqual(outcome, NOT_RECOVERED)
        self.assertIn("no standby ready again", detail)

    def test_recovery_stopped_is_not_recovered(self):
        self.assertEqual(classify(obs(exit_code=67, l1_failures=CRASH))[0], NOT_RECOVERED)
        paused = obs(exit_code=0, l1_failures=CRASH, recovery_stopped=True,
                     failovers_failed=[{"cause": "crash", "error": "failover limit reached"}])
        outcome, detail, _ = classify(paused)
        self.assertEqual(outcome, NOT_RECOVERED)
        self.assertIn("failover limit reached", detail)

    def test_wrong_data_without_detection_is_silent_corruption(self):
        for o in (obs(exit_code=65), obs(exit_code=66), obs(exit_code=1),
                  obs(host_problems=["block 3: iteration 5 (want 9)"])):
            outcome, _, wrong = classify(o)
            self.assertEqual(outcome, SDC)
            self.assertTrue(wrong)

    def test_wrong_data_after_detection_is_not_recovered_and_flagged(self):
        outcome, detail, wrong = classify(obs(exit_code=65, l1_failures=CRASH, failovers=FAILOVER))
        self.assertEqual(outcome, NOT_RECOVERED)
        self.assertIn("wrong result after a detected failure", detail)
        self.assertTrue(wrong)

    def test_deadline_is_a_hang_and_signals_or_sanitizers_are_l0_failures(self):
        self.assertEqual(classify(obs(timed_out=True, exit_code=-9))[0], HANG)
        self.assertEqual(classify(obs(exit_code=-11))[0], L0_FAILURE)
        self.assertEqual(classify(obs(stderr="==1==ERROR: AddressSanitizer: heap"))[0], L0_FAILURE)

    def test_l1_stopping_the_vm_is_not_recovered(self):
        o = obs(exit_code=70, stderr="rehome: VM failed: malformed exit request from L0\n")
        outcome, detail, _ = classify(o)
        self.assertEqual(outcome, NOT_RECOVERED)
        self.assertIn("malformed exit request", detail)

    def test_not_injected_runs_are_set_apart(self):
        self.assertEqual(classify(obs(injected=False, exit_code=65))[0], NOT_INJECTED)


if __name__ == "__main__":
    unittest.main()
