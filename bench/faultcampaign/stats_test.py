"""Tests of stats.py: Clopper-Pearson against published values (R's binom.test) and against the
defining binomial tail identities computed with exact sums."""
import math
import unittest

from stats import betainc, clopper_pearson, format_share


def binom_cdf(k, n, p):
    return sum(math.comb(n, i) * p**i * (1 - p)**(n - i) for i in range(k + 1))


class ClopperPearsonTest(unittest.TestCase):
    def test_known_values_from_r_binom_test(self):
        # R 4.x: binom.test(x, n)$conf.int
        cases = {
            (5, 10): (0.1870860, 0.8129140),
            (0, 10): (0.0, 0.3084971),
            (10, 10): (0.6915029, 1.0),
            (1, 20): (0.001264927, 0.2487328),
            (50, 100): (0.3983211, 0.6016789),
        }
        for (k, n), (lo, hi) in cases.items():
            got_lo, got_hi = clopper_pearson(k, n)
            self.assertAlmostEqual(got_lo, lo, places=6, msg=f"{k}/{n} lower")
            self.assertAlmostEqual(got_hi, hi, places=6, msg=f"{k}/{n} upper")

    def test_ends_satisfy_the_binomial_tail_identities(self):
        for k, n in [(3, 7), (961, 1000), (12, 500), (499, 500), (1, 1000)]:
            lo, hi = clopper_pearson(k, n)
            # P(X <= k | p_u) = 0.025 and P(X >= k | p_l) = 0.025
            self.assertAlmostEqual(binom_cdf(k, n, hi), 0.025, places=7)
            self.assertAlmostEqual(1 - binom_cdf(k - 1, n, lo), 0.025, places=7)

    def test_betainc_symmetry_and_edges(self):
        self.assertAlmostEqual(betainc(2, 3, 0.4) + betainc(3, 2, 0.6), 1.0, places=12)
        self.assertEqual(betainc(2, 3, 0.0), 0.0)
        self.assertEqual(betainc(2, 3, 1.0), 1.0)
        self.assertAlmostEqual(betainc(1, 1, 0.3), 0.3, places=12)  # uniform

    def test_degenerate_inputs(self):
        self.assertEqual(clopper_pearson(0, 0), (0.0, 1.0))
        with self.assertRaises(ValueError):
            clopper_pearson(11, 10)
        self.assertEqual(format_share(0, 0), "0/0")
        self.assertEqual(format_share(5, 10), "5/10 = 50.0% [18.7, 81.3]")


if __name__ == "__main__":
    unittest.main()
