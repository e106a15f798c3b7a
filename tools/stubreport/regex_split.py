"""Split a regular expression at its top level into literal text and the parts between.

``I have (?P<n>\\d+) cukes in my (\\w+)`` → literals ``["I have ", " cukes in my ", ""]`` and
segments ``["(?P<n>\\d+)", "(\\w+)"]``. Used two ways by :mod:`.matching`:

- the literals are *necessary*: a text that lacks one of them (in order) cannot match, so the index
  only hands a step to patterns whose literal words it contains;
- when the split is *certain* (no top-level ``|``, no lookaround, backreference or word boundary that
  could peek across a literal, no global flag after the start), a text whose pieces between the
  literals each fully match their segment does match the whole expression (a regular language is
  closed under concatenation). That decides most steps without compiling the pattern; anything else
  goes to the runner's own compiled matcher.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_QUANTIFIER = re.compile(r"\{\d*(,\d*)?\}")
_FLAGS = re.compile(r"\(\?([aiLmsux]+)\)")
_FLAG_BITS = {"i": re.IGNORECASE, "s": re.DOTALL, "m": re.MULTILINE, "x": re.VERBOSE, "a": re.ASCII}


@dataclass
class Split:
    literals: list[str]  # len(segments) + 1 pieces of plain text
    segments: list[str]  # regex source between them
    certain: bool  # the split decides matches (see the module doc)
    alternation: bool = False  # a top-level "|": no literal is necessary
    flags: int = 0  # inline global flags found at the start
    valid: bool | None = None  # the segments compile and name no group twice (checked once, on use)


#: a group without nested parentheses (what parse generates for a field): found in one regex step
_FLAT_GROUP = re.compile(r"\((?:[^()\\\[]|\\.|\[\^?\]?(?:[^\]\\]|\\.)*\])*\)")
#: a run of characters that stand for themselves
_PLAIN = re.compile(r"[^\\()\[\]{}*+?|^$.]+")


def _group_end(source: str, start: int) -> int:
    """Index just after the ``)`` closing the group opened at ``start``."""
    flat = _FLAT_GROUP.match(source, start)
    if flat is not None:
        return flat.end()
    depth, i, n = 0, start, len(source)
    while i < n:
        ch = source[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            i = _class_end(source, i)
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError("unbalanced parenthesis")


def _class_end(source: str, start: int) -> int:
    i = start + 1
    if i < len(source) and source[i] == "^":
        i += 1
    if i < len(source) and source[i] == "]":
        i += 1
    while i < len(source):
        if source[i] == "\\":
            i += 2
            continue
        if source[i] == "]":
            return i + 1
        i += 1
    raise ValueError("unterminated character set")


def _quantifier_end(source: str, i: int) -> int:
    """If a quantifier starts at ``i``, the index after it (with a lazy/possessive mark), else ``i``."""
    if i >= len(source):
        return i
    if source[i] in "*+?":
        j = i + 1
    elif source[i] == "{" and (m := _QUANTIFIER.match(source, i)) and m.group() != "{}":
        j = m.end()
    else:
        return i
    if j < len(source) and source[j] in "?+":
        j += 1
    return j


def _escaped(source: str, index: int) -> bool:
    """The character at ``index`` follows an odd number of backslashes."""
    count = 0
    while index - count - 1 >= 0 and source[index - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def split(source: str) -> Split:
    """Split ``source`` (to be matched in full: anchors at its very ends are dropped)."""
    items: list[tuple[bool, str]] = []  # (is_literal, text)
    certain = True
    flags = 0
    i, n = 0, len(source)
    flag_match = _FLAGS.match(source)
    if flag_match:
        for letter in flag_match.group(1):
            flags |= _FLAG_BITS.get(letter, 0)
        i = flag_match.end()
    if source.startswith("^", i):
        i += 1
    elif source.startswith("\\A", i):
        i += 2
    end = n
    if source.endswith("\\Z") and not _escaped(source, n - 2):
        end -= 2
    elif source.endswith("$") and not _escaped(source, n - 1):
        end -= 1
    alternation = False
    while i < end:
        plain = _PLAIN.match(source, i, end)
        if plain is not None and plain.end() - i > 1:
            # all but the last character are literal for sure (the last may carry a quantifier)
            items.append((True, source[i : plain.end() - 1]))
            i = plain.end() - 1
        ch = source[i]
        start = i
        literal: str | None = None
        if ch == "\\":
            nxt = source[i + 1] if i + 1 < end else ""
            if not nxt:
                raise ValueError("bad escape at end")
            i += 2
            if nxt.isalnum() or nxt == "_":
                if nxt in "bBAZ" or nxt.isdigit() or nxt in "gk":
                    certain = False  # boundaries and backreferences peek across literals
            else:
                literal = nxt
        elif ch == "(":
            i = _group_end(source, i)
            head = source[start : start + 4]
            if head.startswith(("(?=", "(?!", "(?<=", "(?<!", "(?P=", "(?(", "(?#")):
                certain = False
            elif _FLAGS.match(source, start):
                certain = False  # global flags after the start: Python rejects them
        elif ch == "[":
            i = _class_end(source, i)
        elif ch == "|":
            alternation, certain = True, False
            i += 1
        elif ch in "^$":
            certain = False
            i += 1
        elif ch == ".":
            i += 1
        elif ch in "*+?" or (ch == "{" and _QUANTIFIER.match(source, i)):
            certain = False  # a quantifier with nothing to repeat: leave it to the real compiler
            i = _quantifier_end(source, i)
        else:
            literal = ch
            i += 1
        after = _quantifier_end(source, i)
        if after != i:  # a quantified atom is never literal text
            literal, i = None, after
        if literal is not None:
            items.append((True, literal))
        else:
            items.append((False, source[start:i]))
    if flags & (re.VERBOSE | re.MULTILINE):
        certain = False
    literals, segments = [""], []
    for is_literal, text in items:
        if is_literal:
            literals[-1] += text
        elif len(literals) == len(segments) + 1 and segments and literals[-1] == "":
            segments[-1] += text
        else:
            segments.append(text)
            literals.append("")
    return Split(literals, segments, certain, alternation, flags)
