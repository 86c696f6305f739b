"""Tests of faultcampaign/nested.py's console parsing and classification, on console lines as the
emulated host prints them (tests.sh's nested-campaign test; the status lines are rehome's)."""
import os
import sys
import unittest

# Run by `unittest discover -s bench/faultcampaign` (this directory on the path): nested.py
# imports its siblings as the package faultcampaign, as campaign.py does.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from faultcampaign import nested, outcome  # noqa: E402

DIGEST = "rehome-guest: vcpu=0 step=20000000 digest=00aa00bb00cc00dd"
READY = ["rehome: standby L1 #2 ready in 13.5 s", "rehome: L1 #1 ready in 17.5 s; booting L2 in it"]
SUMMARY_OK = ("rehome: nested: guest wrote 0x0 to the debug-exit port (L2 ended); oracle: 200 "
              "reports verified, 0 violations; 686 exits; {f}; L1 boot to ready median 17.5 s "
              "over 3 L1s")
KILL = ["rehome: injecting kill into L1 #1", "rehome: L1 #1 failed: kill (injected)",
        "rehome: failover #1 (kill (injected)): L1 #1 -> L1 #2 in 171.2 ms (detect 0.0 ms, "
        "pause+capture 26.4 ms [parked, commit 1, 1 attempt(s)], handoff 14.0 ms, takeover "
        "130.9 ms; state 9352 bytes)"]


def console(index, log, l2, rc, wall=95.5):
    out = [f"   12.00 noise before NESTED-CAMPAIGN-LOG"]
    out += [f"  {40 + k}.00 NESTED-CAMPAIGN-LOG {index} {line}" for k, line in enumerate(log)]
    if l2:
        out.append(f"   90.00 NESTED-CAMPAIGN-L2 {index} {l2}\r")
    out.append(f"   91.00 NESTED-CAMPAIGN-RUN {index} rc={rc} wall={wall}")
    return "\n".join(out)


class NestedCampaignTest(unittest.TestCase):
    def classify(self, log, l2=DIGEST, rc=0):
        runs = nested.parse_console(console(7, log, l2, rc))
        self.assertEqual(list(runs), [7])
        return nested.classify_run(runs[7], DIGEST)

    def test_run_spec_is_reproducible_and_in_range(self):
        a, delay = nested.run_spec(3, "l1vm-register", 42)
        self.assertEqual((a, delay), nested.run_spec(3, "l1vm-register", 42))
        index, kind, delay_ms, seed = a.split(":")
        self.assertEqual((index, kind, int(delay_ms)), ("3", "register", delay))
        self.assertTrue(0 <= delay <= nested.MAX_DELAY_MS)
        self.assertNotEqual(int(seed), 0)  # 0 would mean the clock

    def test_a_run_counts_only_once_its_last_line_arrived(self):
        text = console(1, READY + KILL, DIGEST, 0)
        unfinished = "\n".join(l for l in text.splitlines() if "CAMPAIGN-RUN" not in l)
        self.assertEqual(nested.parse_console(unfinished), {})
        run = nested.parse_console(text)[1]
        self.assertEqual((run["rc"], run["wall_s"], run["l2"]), (0, 95.5, DIGEST))

    def test_a_killed_l1_whose_l2_ends_correct_is_recovered(self):
        row = self.classify(READY + KILL + [SUMMARY_OK.format(f="1 failovers")])
        self.assertEqual(row["outcome"], outcome.RECOVERED, row)
        self.assertEqual(row["detection_cause"], "kill (injected)")
        self.assertEqual((row["failovers"], row["failover_ms"]), (1, "171.2"))

    def test_a_masked_register_flip_is_no_effect(self):
        row = self.classify(READY + [
            "rehome: register fault #1: L1 #1 vCPU 0 rdx bit 6 (L1 kernel) 0x1 -> 0x41",
            "rehome: register fault #1 masked: L1 #1 shows no failure",
            SUMMARY_OK.format(f="0 failovers") + "; 1 register faults, 1 masked"])
        self.assertEqual(row["outcome"], outcome.NO_EFFECT, row)
        self.assertTrue(row["inj_injected"])

    def test_a_wrong_digest_without_a_detection_is_silent_corruption(self):
        row = self.classify(READY + ["rehome: register fault #1: L1 #1 r10 bit 14",
                                     SUMMARY_OK.format(f="0 failovers")],
                            l2=DIGEST.replace("dd", "de"))
        self.assertEqual(row["outcome"], outcome.SDC, row)
        self.assertIn("digest", row["detail"])

    def test_an_oracle_violation_after_a_failover_is_not_recovered(self):
        row = self.classify(READY + KILL + ["rehome: counter oracle violation: vcpu 0 step 300"],
                            rc=outcome.EXIT_ORACLE)
        self.assertEqual(row["outcome"], outcome.NOT_RECOVERED, row)
        self.assertTrue(row["wrong_data"])

    def test_l2_lost_is_not_recovered_and_a_killed_run_is_a_hang(self):
        lost = self.classify(READY + KILL[:2] + [
            "rehome: nested: cannot re-home L2 from L1 #1: L2 is neither in guest mode nor "
            "parked (recovery failed); oracle: 0 reports verified, 0 violations"],
            l2="", rc=outcome.EXIT_RECOVERY_STOPPED)
        self.assertEqual(lost["outcome"], outcome.NOT_RECOVERED, lost)
        hang = self.classify(READY + KILL[:1], l2="", rc=nested.KILLED_RC)
        self.assertEqual(hang["outcome"], outcome.HANG, hang)

    def test_a_run_whose_l2_ended_before_the_fault_was_not_injected(self):
        row = self.classify(READY + [SUMMARY_OK.format(f="0 failovers")])
        self.assertEqual(row["outcome"], outcome.NOT_INJECTED, row)


    def test_runs_a_dead_host_left_go_into_the_next_boot(self):
        boots, done = [], []

        def boot(chunk, on_run):  # the emulated host dies after two runs of its first boot
            boots.append(list(chunk))
            finished = chunk[:2] if len(boots) == 1 else chunk
            for i in finished:
                on_run(i, {})
            return (0 if finished == chunk else 1), [i for i in chunk if i not in finished]

        left = nested.run_all(range(nested.RUNS_PER_BOOT + 3), boot,
                              lambda i, run: done.append(i), log=lambda line: None)
        self.assertEqual(left, [])
        self.assertEqual(done, list(range(nested.RUNS_PER_BOOT + 3)))  # in order, each once
        self.assertEqual(boots[1][0], 2)
        self.assertEqual(len(boots), 3)

    def test_two_fruitless_boots_in_a_row_give_up(self):
        boots = []

        def boot(chunk, on_run):
            boots.append(list(chunk))
            return 1, list(chunk)

        left = nested.run_all([5, 6, 7], boot, lambda i, run: None, log=lambda line: None)
        self.assertEqual((left, len(boots)), ([5, 6, 7], 2))


if __name__ == "__main__":
    unittest.main()
