"""Software faults as source mutations (the thesis's ch. 3 operators, after G-SWFIT's most
frequent fault types): each operator finds the places in a C++ source file where it applies and
produces the mutated text of one place. Line-based on rehome's clang-formatted code; a mutant
that does not compile is simply skipped by the builder. Pure functions.

  MFC   missing function call             a call statement removed
  MVAV  missing variable assignment       `x = <constant>;` removed
          using a value
  MVIV  missing variable initialization   `int x = <constant>;` -> `int x;`
          using a value
  WVAV  wrong value assigned to variable  `x = e;` -> `x = (e) ^ 1;`
  MIA   missing if construct around       `if (c) {` -> `{` (the statements always run)
          statements
  MIFS  missing if construct plus         a whole `if (c) { ... }` (no else) removed
          statements
  MLAC  missing AND clause in a branch    `if (a && b)` -> `if (a)` or `if (b)`
          condition
  MLOC  missing OR clause in a branch     `if (a || b)` -> `if (a)` or `if (b)`
          condition
  MLPA  missing small, localized part of  2 or 3 consecutive simple statements removed
          the algorithm
"""
import re
from dataclasses import dataclass

OPERATORS = ("MFC", "MVAV", "MVIV", "WVAV", "MIA", "MIFS", "MLAC", "MLOC", "MLPA")

_KEYWORDS = ("if", "for", "while", "switch", "return", "case", "else", "delete", "throw", "do",
             "goto", "break", "continue", "default", "co_return", "using", "namespace", "template",
             "typedef", "static_assert", "struct", "class", "enum", "public", "private",
             "protected")
_CONSTANT = r"(-?\d[\w.]*|true|false|nullptr|k[A-Z]\w*|\w+::k[A-Z]\w*|'[^']{1,2}')"
_CALL = re.compile(r"^(\s+)(?:\(void\))?[A-Za-z_][\w:.\->\[\]]*(?:<[\w:, ]*>)?\(.*\);\s*$")
_ASSIGN_CONST = re.compile(r"^(\s+)([A-Za-z_][\w.\->\[\]]*) = " + _CONSTANT + r";\s*$")
_DECL_CONST = re.compile(r"^(\s+)((?:u?int\d+_t|int|bool|size_t|unsigned|uint\w*|char)\s+"
                         r"[A-Za-z_]\w*) = " + _CONSTANT + r";\s*$")
_ASSIGN = re.compile(r"^(\s+)([A-Za-z_][\w.\->\[\]]*) (=|\+=|-=|\|=|&=) (.+);\s*$")
_IF_BLOCK = re.compile(r"^(\s+)(?:\} else )?if \((.*)\) \{\s*$")
_IF_LINE = re.compile(r"^(\s+)if \((.*)\) [^{].*;\s*$")
_SIMPLE = re.compile(r"^(\s+)[^\s{}#/][^{}]*;\s*$")


@dataclass(frozen=True)
class Mutation:
    operator: str
    line: int          # 0-based index of the first line changed
    count: int         # lines replaced
    original: tuple    # the original lines
    replacement: tuple  # what replaces them

    def apply(self, lines):
        """The mutated file's lines."""
        assert tuple(lines[self.line:self.line + self.count]) == self.original
        return lines[:self.line] + list(self.replacement) + lines[self.line + self.count:]

    def describe(self):
        old = " / ".join(l.strip() for l in self.original)[:120]
        new = " / ".join(l.strip() for l in self.replacement)[:120] or "(removed)"
        return f"{self.operator} line {self.line + 1}: {old} -> {new}"


def _code_lines(lines):
    """Indices of lines that are code inside function bodies (indented, not comments,
    preprocessor or string continuations)."""
    out = []
    in_block_comment = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if in_block_comment:
            in_block_comment = "*/" not in stripped
            continue
        if stripped.startswith("/*"):
            in_block_comment = "*/" not in stripped
            continue
        if not stripped or stripped.startswith(("//", "#", '"')) or not line.startswith("  "):
            continue
        out.append(i)
    return out


def _first_word(line):
    m = re.match(r"\s*([A-Za-z_]\w*)", line)
    return m.group(1) if m else ""


def _balanced(text):
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


def _block_end(lines, start):
    """Index of the line closing the block opened at the end of lines[start], or None."""
    depth = 0
    for i in range(start, min(len(lines), start + 200)):
        code = re.sub(r'"(\\.|[^"\\])*"|\'(\\.|[^\'\\])*\'|//.*', "", lines[i])
        depth += code.count("{") - code.count("}")
        if depth == 0 and i > start:
            return i
    return None


def _top_level_split(condition, op):
    """`condition` split at top-level `op` (outside parentheses), or [condition]."""
    parts, depth, last, i = [], 0, 0, 0
    while i < len(condition):
        ch = condition[i]
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and condition.startswith(f" {op} ", i):
            parts.append(condition[last:i])
            i += len(op) + 2
            last = i
            continue
        i += 1
    parts.append(condition[last:])
    return parts


def candidates(text):
    """Every mutation of `text` (a C++ source file) the operators produce, in file order."""
    lines = text.split("\n")
    found = []
    code = _code_lines(lines)
    for i in code:
        line = lines[i]
        indent = line[:len(line) - len(line.lstrip())]
        word = _first_word(line)
        if word in _KEYWORDS:
            pass
        elif _CALL.match(line) and _balanced(line) and " = " not in line and not re.match(
                r"^\s*[\w:<>]+\s+[\w]+\(", line):
            found.append(Mutation("MFC", i, 1, (line,), ()))
        if word not in _KEYWORDS and _ASSIGN_CONST.match(line):
            found.append(Mutation("MVAV", i, 1, (line,), ()))
        m = _DECL_CONST.match(line)
        if m:
            found.append(Mutation("MVIV", i, 1, (line,), (f"{m.group(1)}{m.group(2)};",)))
        m = _ASSIGN.match(line)
        if m and word not in _KEYWORDS and not _DECL_CONST.match(line) and _balanced(m.group(4)):
            found.append(Mutation("WVAV", i, 1, (line,),
                                  (f"{m.group(1)}{m.group(2)} {m.group(3)} ({m.group(4)}) ^ 1;",)))
        m = _IF_BLOCK.match(line)
        if m and _balanced(m.group(2)) and not line.lstrip().startswith("}"):
            end = _block_end(lines, i)
            if end is not None and lines[end].strip() == "}":
                found.append(Mutation("MIA", i, 1, (line,), (f"{indent}{{",)))
                found.append(Mutation("MIFS", i, end - i + 1, tuple(lines[i:end + 1]), ()))
        m = _IF_LINE.match(line)
        if m and _balanced(m.group(2)):
            found.append(Mutation("MIFS", i, 1, (line,), ()))
        m = _IF_BLOCK.match(line) or _IF_LINE.match(line)
        if m and _balanced(m.group(2)):
            condition = m.group(2)
            for op, name in (("&&", "MLAC"), ("||", "MLOC")):
                parts = _top_level_split(condition, op)
                if len(parts) < 2:
                    continue
                for k in range(len(parts)):
                    kept = f" {op} ".join(p for j, p in enumerate(parts) if j != k)
                    found.append(Mutation(name, i, 1, (line,),
                                          (line.replace(f"({condition})", f"({kept})", 1),)))
    # MLPA: runs of 2-3 simple statements at the same indentation.
    for i in code:
        run = [i]
        while (len(run) < 3 and run[-1] + 1 < len(lines) and run[-1] + 1 in code and
               _SIMPLE.match(lines[run[-1] + 1]) and
               lines[run[-1] + 1][:len(lines[i]) - len(lines[i].lstrip())] ==
               lines[i][:len(lines[i]) - len(lines[i].lstrip())] and
               _first_word(lines[run[-1] + 1]) not in ("return", "case", "break")):
            run.append(run[-1] + 1)
        if (len(run) >= 2 and _SIMPLE.match(lines[i]) and
                _first_word(lines[i]) not in ("return", "case", "break")):
            found.append(Mutation("MLPA", i, len(run), tuple(lines[i:i + len(run)]), ()))
    return found
