#!/usr/bin/env python3
"""Unit tests of bench/service_bench.py's steady-state latency (--skip-first-s): the same
nearest-rank percentiles as rehome-loadgen, over the answered requests sent after the skip."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import service_bench as sb  # noqa: E402
import service_files as sf  # noqa: E402

MS = 1_000_000


def record(send_ms, latency_ms):
    latency = -1 if latency_ms is None else int(latency_ms * MS)
    return sf.Record(0, 0, 0, int(send_ms * MS), latency, 0, b"")


class SteadyLatencyTest(unittest.TestCase):
    def test_nearest_rank_matches_the_load_generator(self):
        self.assertEqual(sb.nearest_rank([], 99), 0)
        self.assertEqual(sb.nearest_rank([7], 1), 7)
        self.assertEqual(sb.nearest_rank([1, 2, 3, 4], 50), 2)  # ceil(0.5 * 4) = rank 2
        self.assertEqual(sb.nearest_rank([1, 2, 3, 4], 99), 4)
        self.assertEqual(sb.nearest_rank(list(range(1, 101)), 99), 99)

    def test_cold_start_requests_are_left_out_and_unanswered_ones_never_count(self):
        # 10 requests at a cold start (200 ms each), then 100 at 1 ms, one unanswered.
        records = [record(i, 200) for i in range(10)]
        records += [record(1000 + i, 1) for i in range(100)] + [record(1200, None)]
        everything = sb.steady_latency(records, 0)
        self.assertEqual(everything["p99"], 200_000)
        self.assertEqual(everything["max"], 200_000)
        steady = sb.steady_latency(records, 0.5)  # sent from 500 ms after the first request
        self.assertEqual(steady["p99"], 1000)
        self.assertEqual(steady["max"], 1000)
        self.assertAlmostEqual(steady["mean"], 1000)

    def test_nothing_left_gives_zeros(self):
        self.assertEqual(sb.steady_latency([record(0, 5)], 10)["p99"], 0)
        self.assertEqual(sb.steady_latency([], 1)["max"], 0)


if __name__ == "__main__":
    unittest.main()
