"""Writes `tables.rs` next to this script: the Unicode and codec facts Easel's port of
ftfy's `fix_text` needs, computed from Python's own codecs and `unicodedata` and from the
character classes of the installed ftfy's regular expressions (facts, not code: sets of
characters and byte -> character maps).

Run with the reference venv (ftfy 6.3.1 on CPython 3.11, Unicode 14.0.0):

    .venv/bin/python core/src/text/ftfy/gen_tables.py

What it writes:
- per single-byte codec ftfy tries (`CHARMAP_ENCODINGS`): the 256 characters its bytes
  decode to (ftfy's "sloppy" codecs fill the holes of the Windows code pages with Latin-1
  and map byte 0x1A to U+FFFD) and the set of characters ftfy considers encodable;
- the character sets of ftfy's mojibake detector (`badness.BADNESS_RE`) as a list of short
  sequences of sets, found by walking the parsed regex (`re._parser`), with `\\s` and `\\w`
  expanded by testing every code point with Python's `re`;
- the character classes of `chardata.UTF8_DETECTOR_RE` and the full-width map.

A self-check at the end compares the sequence form against the real regex on random text.
"""

import codecs
import os
import random
import re
import re._constants as C
import re._parser as P
import sys
import unicodedata

import ftfy
import ftfy.bad_codecs  # noqa: F401  (registers the sloppy codecs)
from ftfy import badness, chardata

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "tables.rs")
MAX = sys.maxunicode + 1


def ranges(codepoints):
    out = []
    for c in sorted(set(codepoints)):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return [tuple(r) for r in out]


def brute(pattern):
    rx = re.compile(pattern)
    return [c for c in range(MAX) if rx.match(chr(c))]


SPACE = brute(r"\s")
WORD = brute(r"\w")
DIGIT = brute(r"\d")
CATEGORIES = {C.CATEGORY_SPACE: SPACE, C.CATEGORY_WORD: WORD, C.CATEGORY_DIGIT: DIGIT}


def class_set(items):
    """Code points of a parsed `[...]` class and whether it is negated."""
    negated, chars = False, set()
    for op, av in items:
        if op is C.NEGATE:
            negated = True
        elif op is C.LITERAL:
            chars.add(av)
        elif op is C.RANGE:
            chars.update(range(av[0], av[1] + 1))
        elif op is C.CATEGORY:
            chars.update(CATEGORIES[av])
        else:
            raise ValueError(f"unsupported class item {op}")
    return frozenset(chars), negated


def element(op, av, optional=False):
    if op is C.LITERAL:
        return ("set", frozenset([av]), False, optional)
    if op is C.NOT_LITERAL:
        return ("set", frozenset([av]), True, optional)
    if op is C.IN:
        chars, negated = class_set(av)
        return ("set", chars, negated, optional)
    if op is C.ANY:
        return ("set", frozenset([10]), True, optional)
    raise ValueError(f"unsupported element {op}")


def expand(seq):
    """All alternatives of a parsed sequence, each a list of elements."""
    alts = [[]]
    for op, av in seq:
        if op is C.BRANCH:
            subs = [a for branch in av[1] for a in expand(branch)]
            alts = [a + s for a in alts for s in subs]
        elif op is C.SUBPATTERN:
            subs = expand(av[-1])
            alts = [a + s for a in alts for s in subs]
        elif op is C.AT:
            if av is not C.AT_BEGINNING:
                raise ValueError(f"unsupported anchor {av}")
            alts = [a + [("start",)] for a in alts]
        elif op is C.MAX_REPEAT:
            lo, hi, body = av
            if (lo, hi) != (0, 1) or len(body) != 1:
                raise ValueError(f"unsupported repeat {av}")
            (bop, bav), = list(body)
            alts = [a + [element(bop, bav, optional=True)] for a in alts]
        else:
            alts = [a + [element(op, av)] for a in alts]
    return alts


def class_of(content):
    return frozenset(brute("[" + content + "]"))


def main():
    print(f"ftfy {ftfy.__version__}, Unicode {unicodedata.unidata_version}")
    sets = {}

    def set_name(chars):
        key = frozenset(chars)
        if key not in sets:
            sets[key] = f"SET_{len(sets)}"
        return sets[key]

    # --- badness ---
    alternatives = expand(P.parse(badness.BADNESS_RE.pattern, badness.BADNESS_RE.flags))
    bad_rows = []
    for alt in alternatives:
        row = []
        for el in alt:
            if el[0] == "start":
                row.append("Elem::Start")
            else:
                _, chars, negated, optional = el
                row.append(
                    f"Elem::Set {{ set: {set_name(chars)}, negated: {str(negated).lower()}, "
                    f"optional: {str(optional).lower()} }}"
                )
        bad_rows.append(row)

    # Self-check: the sequence form finds mojibake exactly where the regex does.
    def seq_match(alt, text, pos):
        def go(i, p):
            if i == len(alt):
                return True
            el = alt[i]
            if el[0] == "start":
                return p == 0 and go(i + 1, p)
            _, chars, negated, optional = el
            if p < len(text) and ((ord(text[p]) in chars) != negated) and go(i + 1, p + 1):
                return True
            return optional and go(i + 1, p)
        return go(0, pos)

    def seq_is_bad(text):
        return any(seq_match(a, text, p) for p in range(len(text) + 1) for a in alternatives)

    rng = random.Random(0)
    pool = sorted({c for k in sets for c in k if c < 0x3000})
    pool = [chr(c) for c in pool] + list("abcXYZ .,!?\n\t") * 3
    for _ in range(20000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 6)))
        assert seq_is_bad(text) == badness.is_bad(text), repr(text)

    # --- UTF-8 detector classes ---
    clue = {name: set_name(class_of(content)) for name, content in chardata.UTF8_CLUES.items()}

    # --- codecs ---
    codec_rows = []
    for enc in chardata.CHARMAP_ENCODINGS:
        decoded = bytes(range(256)).decode(enc)
        assert len(decoded) == 256
        possible = [c for c in range(MAX) if chardata.possible_encoding(chr(c), enc)]
        for c in possible:
            b = chr(c).encode(enc)
            assert len(b) == 1 and decoded[b[0]] == chr(c), (enc, hex(c))
        codec_rows.append((enc, decoded, set_name(possible)))

    digit = set_name(DIGIT)

    # --- width map ---
    width = sorted(chardata.WIDTH_MAP.items())

    lines = [
        "//! Generated by `gen_tables.py` from CPython 3.11's codecs and `unicodedata` (Unicode",
        f"//! {unicodedata.unidata_version}) and the character classes of ftfy {ftfy.__version__}'s regular expressions.",
        "//! Do not edit by hand.",
        "",
        "#![allow(clippy::unreadable_literal)]",
        "",
        "/// Inclusive code-point ranges, sorted.",
        "pub(super) type Ranges = &'static [(u32, u32)];",
        "",
        "/// One position of a mojibake pattern.",
        "#[derive(Clone, Copy)]",
        "pub(super) enum Elem {",
        "    /// Matches only at the start of the text (takes no character).",
        "    Start,",
        "    /// One character in `set` (outside it when `negated`); may be skipped when `optional`.",
        "    Set {",
        "        set: Ranges,",
        "        negated: bool,",
        "        optional: bool,",
        "    },",
        "}",
        "",
    ]
    for chars, name in sorted(sets.items(), key=lambda kv: int(kv[1][4:])):
        body = ", ".join(f"(0x{a:X}, 0x{b:X})" for a, b in ranges(chars))
        lines.append(f"const {name}: Ranges = &[{body}];")
    lines.append("")
    lines.append("/// ftfy's mojibake patterns (`badness.BADNESS_RE`), one alternative per row.")
    lines.append("pub(super) const BADNESS: &[&[Elem]] = &[")
    for row in bad_rows:
        lines.append("    &[" + ", ".join(row) + "],")
    lines.append("];")
    lines.append("")
    for name, set_ in clue.items():
        lines.append(f"/// `chardata.UTF8_CLUES[\"{name}\"]`.")
        lines.append(f"pub(super) const {name.upper()}: Ranges = {set_};")
    lines.append("/// Python's `\\d` (Unicode decimal digits), used by ftfy's terminal-escape pattern.")
    lines.append(f"pub(super) const DIGIT: Ranges = {digit};")
    lines.append("")
    lines.append("/// A single-byte codec ftfy re-encodes text with.")
    lines.append("pub(super) struct Charmap {")
    lines.append("    /// Python's codec name.")
    lines.append("    pub name: &'static str,")
    lines.append("    /// The character each byte decodes to.")
    lines.append("    pub decode: [char; 256],")
    lines.append("    /// Characters ftfy accepts as encodable (`chardata.possible_encoding`).")
    lines.append("    pub possible: Ranges,")
    lines.append("}")
    lines.append("")
    lines.append("/// `chardata.CHARMAP_ENCODINGS`, in ftfy's order of preference.")
    lines.append("pub(super) static CHARMAPS: &[Charmap] = &[")
    for enc, decoded, possible in codec_rows:
        chars = ", ".join(f"'\\u{{{ord(ch):X}}}'" for ch in decoded)
        lines.append(f"    Charmap {{ name: \"{enc}\", decode: [{chars}], possible: {possible} }},")
    lines.append("];")
    lines.append("")
    lines.append("/// `chardata.WIDTH_MAP`: full-width and half-width forms (and U+3000) to NFKC.")
    lines.append("pub(super) const WIDTH_MAP: &[(char, &str)] = &[")
    for cp, text in width:
        esc = "".join(f"\\u{{{ord(ch):X}}}" for ch in text)
        lines.append(f"    ('\\u{{{cp:X}}}', \"{esc}\"),")
    lines.append("];")
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{OUT}: {len(bad_rows)} badness patterns, {len(sets)} sets")


if __name__ == "__main__":
    main()
