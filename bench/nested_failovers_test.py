#!/usr/bin/env python3
"""Tests of bench/nested_failovers.py on console lines as the emulated host prints them."""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nested_failovers  # noqa: E402

LINE = ("  {t:.2f}   {test} live: rehome: failover #{n} ({cause}): L1 #1 -> L1 #2 in {total} ms "
        "(detect {detect} ms, pause+capture 26.4 ms [parked, commit 1, 1 attempt(s)], handoff "
        "14.0 ms, takeover {takeover} ms; state 9352 bytes)")


class NestedFailoversTest(unittest.TestCase):
    def test_groups_by_l2_size_and_cause(self):
        text = "\n".join([
            LINE.format(t=1, test="nested-flat-64-1", n=1, cause="kill (injected)", total=171.2,
                        detect="0.0", takeover=130.9),
            # the same failover repeated in the failure dump ("stderr:") is not a sample
            LINE.format(t=2, test="nested-flat-64-1", n=1, cause="kill (injected)", total=171.2,
                        detect="0.0", takeover=130.9).replace(" live:", " stderr:"),
            LINE.format(t=3, test="nested-flat-1024-1", n=1, cause="kill (injected)",
                        total=200.0, detect="0.0", takeover=150.0),
            LINE.format(t=4, test="nested-panic", n=1,
                        cause="L1 VM ended by a kernel panic: vCPU 0: guest kernel panicked "
                              "(pvpanic event 0x1)", total=90.0, detect="812.5", takeover=70.0)])
        samples = nested_failovers.parse(text, 64)
        self.assertEqual([(s["mib"], s["cause"]) for s in samples],
                         [(64, "kill"), (1024, "kill"), (64, "L1 VM ended by a kernel panic")])
        self.assertEqual(samples[2]["detect"], 812.5)
        self.assertEqual(samples[1]["takeover"], 150.0)
        table = nested_failovers.table(samples, "mib", "L2 MiB")
        self.assertIn("| 64 | 2 | 131 [90-171] |", table)
        self.assertIn("| 1024 | 1 | 200 |", table)

    def test_a_log_without_failovers_is_refused(self):
        with tempfile.NamedTemporaryFile("w", suffix=".log") as f:
            f.write("nothing here\n")
            f.flush()
            done = subprocess.run([sys.executable, nested_failovers.__file__, f.name],
                                  capture_output=True, text=True, timeout=30)
        self.assertEqual(done.returncode, 2)
        self.assertIn("no failover lines", done.stderr)


if __name__ == "__main__":
    unittest.main()
