"""Tests of mutation.py: each operator on a small clang-formatted C++ function."""
import unittest

from mutation import OPERATORS, candidates

SOURCE = """\
// a comment with if (x) { and Foo();
int Handle(Device& d, int v) {
  int count = 0;
  d.Reset();
  if (v > 3 && d.ready()) {
    count = 7;
    d.Kick(v);
  }
  if (v == 0 || v == 9) return -1;
  total_ += v;
  d.Log(v);
  flags_ = kEnabled;
  return count;
}
"""


def by_operator(found):
    out = {}
    for m in found:
        out.setdefault(m.operator, []).append(m)
    return out


class MutationTest(unittest.TestCase):
    def setUp(self):
        self.lines = SOURCE.split("\n")
        self.found = by_operator(candidates(SOURCE))

    def mutated(self, m):
        return "\n".join(m.apply(self.lines))

    def test_every_operator_finds_its_place(self):
        self.assertEqual(sorted(self.found), sorted(OPERATORS))

    def test_missing_function_call_removes_call_statements_only(self):
        removed = {m.original[0].strip() for m in self.found["MFC"]}
        self.assertEqual(removed, {"d.Reset();", "d.Kick(v);", "d.Log(v);"})

    def test_assignments_and_initialisations(self):
        self.assertEqual([m.original[0].strip() for m in self.found["MVAV"]],
                         ["count = 7;", "flags_ = kEnabled;"])
        self.assertEqual(self.found["MVIV"][0].replacement, ("  int count;",))
        wvav = {m.replacement[0].strip() for m in self.found["WVAV"]}
        self.assertIn("total_ += (v) ^ 1;", wvav)
        self.assertIn("count = (7) ^ 1;", wvav)

    def test_if_operators(self):
        mia = self.found["MIA"][0]
        self.assertEqual(mia.replacement, ("  {",))
        self.assertIn("  {\n    count = 7;", self.mutated(mia))
        blocks = [m for m in self.found["MIFS"] if m.count > 1]
        self.assertEqual(len(blocks), 1)
        self.assertNotIn("d.Kick", self.mutated(blocks[0]))
        self.assertTrue(any(m.count == 1 and "return -1" in m.original[0]
                            for m in self.found["MIFS"]))
        self.assertEqual({m.replacement[0].strip() for m in self.found["MLAC"]},
                         {"if (d.ready()) {", "if (v > 3) {"})
        self.assertEqual({m.replacement[0].strip() for m in self.found["MLOC"]},
                         {"if (v == 9) return -1;", "if (v == 0) return -1;"})

    def test_comments_are_never_mutated(self):
        for ms in self.found.values():
            for m in ms:
                self.assertNotEqual(m.line, 0)

    def test_missing_part_of_algorithm_removes_a_run_of_statements(self):
        runs = [m.original for m in self.found["MLPA"]]
        self.assertIn(("  total_ += v;", "  d.Log(v);", "  flags_ = kEnabled;"), runs)

    def test_apply_checks_the_original(self):
        m = self.found["MFC"][0]
        changed = list(self.lines)
        changed[m.line] = "  other();"
        with self.assertRaises(AssertionError):
            m.apply(changed)


if __name__ == "__main__":
    unittest.main()
