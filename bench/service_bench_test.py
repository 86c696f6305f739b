#!/usr/bin/env python3
"""Unit tests of bench/service_bench.py's steady-state latency (--skip-first-s): the same
nearest-rank percentiles as rehome-loadgen, over the answered requests sent after the skip; and
of its configurations with guest arguments (split/io_depth=1)."""
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


class ConfigTest(unittest.TestCase):
    def test_guest_arguments_after_a_slash(self):
        self.assertEqual(sb.split_config("split"), ("split", ""))
        self.assertEqual(sb.split_config("monolithic/io_depth=1"), ("monolithic", "io_depth=1"))
        self.assertEqual(sb.split_config("split/io_depth=1+cache_kib=8"),
                         ("split", "io_depth=1 cache_kib=8"))

    def test_ratios_pair_the_same_configuration_per_rep(self):
        def result(mode, rep, p99):
            return {"mode": mode, "rep": rep,
                    "summary": {"throughput_per_s": 100.0,
                                "latency_us": {"p99": p99, "mean": p99}}}
        results = [result("split/io_depth=1", 0, 30), result("monolithic/io_depth=1", 0, 10),
                   result("split", 0, 12), result("monolithic", 0, 10)]
        self.assertTrue(sb.ratios(results, "split/io_depth=1",
                                  "monolithic/io_depth=1")["p99"].startswith("3.000"))
        self.assertTrue(sb.ratios(results, "split", "monolithic")["p99"].startswith("1.200"))

    def test_pooled_latency_takes_every_rep_of_the_mode_without_its_first_seconds(self):
        def result(mode, rep, latencies_ms):
            # one request per second from t = 100 s; the first 2 s are the cold start
            return {"mode": mode, "rep": rep,
                    "records": [(int((100 + i) * 1e9), int(ms * 1e6))
                                for i, ms in enumerate(latencies_ms)]}
        results = [result("split", 0, [50, 40] + [1] * 98), result("split", 1, [60] + [2] * 99),
                   result("monolithic", 0, [9] * 100)]
        pooled = sb.pooled_latency(results, "split", 2)
        self.assertEqual(pooled["n"], 98 + 98)
        self.assertEqual(pooled["max"], 2000)  # the cold starts are out
        self.assertEqual(pooled["p50"], 1000)  # 98 ones then 98 twos: rank 98 of 196 is a one
        self.assertEqual(pooled["p99"], 2000)
        self.assertAlmostEqual(pooled["mean"], 1500)
        self.assertEqual(sb.pooled_latency(results, "qemu", 2)["n"], 0)
        unanswered = [result("split", 0, [1, 1, 1, -1e-6, 5])]
        self.assertEqual(sb.pooled_latency(unanswered, "split", 0)["max"], 5000)
        self.assertEqual(sb.pooled_latency(unanswered, "split", 0)["n"], 4)

    def test_p99_ratio_interval_brackets_the_ratio_and_narrows_with_a_clear_difference(self):
        same = [1000 * (i % 100 + 1) for i in range(1000)]  # 1..100 us, ten of each
        lo, hi = sb.p99_ratio_interval(same, list(same))
        self.assertLessEqual(lo, 1.0)
        self.assertGreaterEqual(hi, 1.0)
        self.assertEqual(sb.p99_ratio_interval(same, list(same)), (lo, hi))  # seeded
        doubled = [2 * v for v in same]
        lo2, hi2 = sb.p99_ratio_interval(doubled, same)
        self.assertGreater(lo2, 1.5)  # twice as slow everywhere: clearly above 1
        self.assertLess(hi2, 2.5)
        self.assertIsNone(sb.p99_ratio_interval([], same))


if __name__ == "__main__":
    unittest.main()
