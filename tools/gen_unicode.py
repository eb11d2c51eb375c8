#!/usr/bin/python3
"""Generate src/core/unicode_tables.inc from Python's unicodedata.

Run with Debian's /usr/bin/python3 from the repository root:

    /usr/bin/python3 tools/gen_unicode.py > src/core/unicode_tables.inc
    /usr/bin/python3 tools/gen_unicode.py --test-vectors   # expectations for unicode_test.cc

Only the standard library is used. The Unicode version is the one of the
interpreter's unicodedata module and is recorded in the output. The build does
not run this script; the output is committed.

Tables (all sorted, looked up by binary search):
  * run tables: uint32 entries (first_code_point << 8) | value; a run lasts
    until the next entry starts. They cover U+0000..U+10FFFF.
      kCccRuns      canonical combining class
      kPrecisRuns   RFC 8264 section 8 derived property (see PrecisProp)
      kBidiRuns     Bidi_Class (for the RFC 5893 Bidi Rule)
      kCaseRuns     1 = cased, 2 = case-ignorable (Final_Sigma context)
      kFlagRuns     bit set: scripts the RFC 5892 context rules ask about,
                    general category M* and Zs (see FLAG_*)
  * kDecomp        single-level canonical decompositions {cp, first, second}
  * kCompIndex     indices into kDecomp of the pairs that compose (primary
                   composites), sorted by (first, second)
  * kLowerRuns     simple lowercase mappings as runs {first, count, stride, delta}
  * kLowerSpecial  multi-code-point lowercase mappings (U+0130)
  * kWidthRuns     <wide>/<narrow> decompositions as runs {first, count, delta}
Hangul syllables and U+03A3 (Final_Sigma) are handled in code.
"""

import sys
import unicodedata as ud

MAX_CP = 0x10FFFF


def is_surrogate(cp):
    return 0xD800 <= cp <= 0xDFFF


def is_noncharacter(cp):
    return 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE


def is_hangul_syllable(cp):
    return 0xAC00 <= cp <= 0xD7A3


# ---------------------------------------------------------------- PRECIS ---
# Values of kPrecisRuns; unicode.cc mirrors them in enum class PrecisProp.
P_UNASSIGNED, P_PVALID, P_FREE_PVAL, P_DISALLOWED, P_CONTEXTJ, P_CONTEXTO = range(6)

# RFC 5892 section 2.6 Exceptions (F), used by RFC 8264 section 9.6.
EXCEPTIONS = {}
for cp in (0x00DF, 0x03C2, 0x06FD, 0x06FE, 0x0F0B, 0x3007):
    EXCEPTIONS[cp] = P_PVALID
for cp in [0x00B7, 0x0375, 0x05F3, 0x05F4, 0x30FB] + list(range(0x0660, 0x066A)) + \
        list(range(0x06F0, 0x06FA)):
    EXCEPTIONS[cp] = P_CONTEXTO
for cp in [0x0640, 0x07FA, 0x302E, 0x302F, 0x303B] + list(range(0x3031, 0x3036)):
    EXCEPTIONS[cp] = P_DISALLOWED

# Hangul_Syllable_Type L, V and T (HangulSyllableType.txt); unicodedata does
# not expose it. Stable since Unicode 5.2.
OLD_HANGUL_JAMO = [(0x1100, 0x11FF), (0xA960, 0xA97C), (0xD7B0, 0xD7C6), (0xD7CB, 0xD7FB)]

# Default_Ignorable_Code_Point is derived (DerivedCoreProperties.txt) as
#   Other_Default_Ignorable_Code_Point + Cf + Variation_Selector
#   - White_Space - FFF9..FFFB - 13430..13438 - Prepended_Concatenation_Mark
# The three PropList.txt inputs are not in unicodedata; they are listed here
# (Unicode 14.0; Default_Ignorable code points are stable by policy).
OTHER_DEFAULT_IGNORABLE = [(0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5),
                           (0x2065, 0x2065), (0x3164, 0x3164), (0xFFA0, 0xFFA0),
                           (0xFFF0, 0xFFF8), (0xE0000, 0xE0000), (0xE0002, 0xE001F),
                           (0xE0080, 0xE00FF), (0xE01F0, 0xE0FFF)]
VARIATION_SELECTOR = [(0x180B, 0x180D), (0x180F, 0x180F), (0xFE00, 0xFE0F), (0xE0100, 0xE01EF)]
PREPENDED_CONCATENATION_MARK = [(0x0600, 0x0605), (0x06DD, 0x06DD), (0x070F, 0x070F),
                                (0x0890, 0x0891), (0x08E2, 0x08E2), (0x110BD, 0x110BD),
                                (0x110CD, 0x110CD)]


def in_ranges(cp, ranges):
    return any(a <= cp <= b for a, b in ranges)


def is_default_ignorable(cp):
    c = chr(cp)
    if in_ranges(cp, OTHER_DEFAULT_IGNORABLE) or in_ranges(cp, VARIATION_SELECTOR):
        return True
    if ud.category(c) != 'Cf':
        return False
    if c.isspace() or 0xFFF9 <= cp <= 0xFFFB or 0x13430 <= cp <= 0x13438:
        return False
    return not in_ranges(cp, PREPENDED_CONCATENATION_MARK)


def precis_property(cp):
    """RFC 8264 section 8, with ID_DIS/FREE_PVAL reported as P_FREE_PVAL."""
    if cp in EXCEPTIONS:
        return EXCEPTIONS[cp]
    c = chr(cp)
    cat = ud.category(c)
    if cat == 'Cn' and not is_noncharacter(cp):
        return P_UNASSIGNED
    if 0x21 <= cp <= 0x7E:
        return P_PVALID
    if cp in (0x200C, 0x200D):
        return P_CONTEXTJ
    if in_ranges(cp, OLD_HANGUL_JAMO):
        return P_DISALLOWED
    if is_noncharacter(cp) or is_default_ignorable(cp):
        return P_DISALLOWED
    if cat == 'Cc':
        return P_DISALLOWED
    if is_surrogate(cp):
        return P_DISALLOWED
    if ud.normalize('NFKC', c) != c:  # HasCompat
        return P_FREE_PVAL
    if cat in ('Ll', 'Lu', 'Lo', 'Nd', 'Lm', 'Mn', 'Mc'):
        return P_PVALID
    if cat in ('Lt', 'Nl', 'No', 'Me', 'Zs', 'Sm', 'Sc', 'Sk', 'So',
               'Pc', 'Pd', 'Ps', 'Pe', 'Pi', 'Pf', 'Po'):
        return P_FREE_PVAL
    return P_DISALLOWED


# ------------------------------------------------------------------ Bidi ---
BIDI_CLASSES = ['L', 'R', 'AL', 'EN', 'ES', 'ET', 'AN', 'CS', 'NSM', 'BN', 'B', 'S', 'WS',
                'ON', 'LRE', 'LRO', 'RLE', 'RLO', 'PDF', 'LRI', 'RLI', 'FSI', 'PDI']


def bidi_class(cp):
    b = ud.bidirectional(chr(cp))
    return BIDI_CLASSES.index(b) if b else 0  # unassigned: L (PRECIS rejects them anyway)


# ------------------------------------------------------------------ Case ---
CASE_OTHER, CASE_CASED, CASE_IGNORABLE = 0, 1, 2


def case_property(cp):
    """Cased / Case_Ignorable as str.lower() sees them for Final_Sigma.

    Measured from str.lower() itself so that to_lower() matches it exactly:
    'cased' is only reported for characters that are not case-ignorable,
    since the Final_Sigma scan skips case-ignorable ones first.
    """
    c = chr(cp)
    if is_surrogate(cp):
        return CASE_OTHER
    if (c + '\u03a3').lower()[-1] == '\u03c2':
        return CASE_CASED  # not ignorable, cased
    if ('A\u03a3' + c + 'A').lower()[1] == '\u03c2':
        return CASE_OTHER  # not ignorable, not cased
    return CASE_IGNORABLE


# --------------------------------------------------------------- Scripts ---
# RFC 5892 Appendix A needs Script = Greek (0375), Hebrew (05F3, 05F4) and
# Hiragana/Katakana/Han (30FB). unicodedata has no Script property; names are
# used, excluding the Common-script characters whose names carry the script
# word. This yields a subset of each script, so the rules fail closed.
SCRIPT_GREEK, SCRIPT_HEBREW, SCRIPT_KANA_HAN = 1, 2, 4
FLAG_MARK, FLAG_SPACE_SEPARATOR = 8, 16
COMMON_NAMED = {0x0374, 0x0375, 0x037E, 0x0385, 0x0387, 0x30FB, 0xFF65, 0xFF9E, 0xFF9F}


def flag_bits(cp):
    cat = ud.category(chr(cp))
    bits = script_bits(cp)
    if cat in ('Mn', 'Mc', 'Me'):
        bits |= FLAG_MARK
    if cat == 'Zs':
        bits |= FLAG_SPACE_SEPARATOR
    return bits


def script_bits(cp):
    if cp in COMMON_NAMED:
        return 0
    name = ud.name(chr(cp), '')
    if name.startswith('GREEK '):
        return SCRIPT_GREEK
    if name.startswith('HEBREW '):
        return SCRIPT_HEBREW
    for prefix in ('HIRAGANA ', 'HENTAIGANA ', 'KATAKANA ', 'HALFWIDTH KATAKANA ', 'CJK UNIFIED IDEOGRAPH-',
                   'CJK COMPATIBILITY IDEOGRAPH-'):
        if name.startswith(prefix):
            return SCRIPT_KANA_HAN
    return 0


# ------------------------------------------------------------ Generation ---
def runs(func):
    out = []
    prev = None
    for cp in range(MAX_CP + 1):
        v = func(cp)
        assert 0 <= v < 256
        if v != prev:
            out.append((cp << 8) | v)
            prev = v
    return out


def canonical_decomp(cp):
    d = ud.decomposition(chr(cp))
    if not d or d.startswith('<'):
        return None
    return [int(x, 16) for x in d.split()]


def emit_u32_array(lines, name, values, per_line=8):
    lines.append('static constexpr uint32_t %s[] = {' % name)
    for i in range(0, len(values), per_line):
        lines.append('    ' + ', '.join('0x%x' % v for v in values[i:i + per_line]) + ',')
    lines.append('};')
    lines.append('')


def delta_runs(mapping):
    """Group {cp: target} into (first, count, stride, delta) runs."""
    items = sorted(mapping.items())
    out = []
    i = 0
    while i < len(items):
        first, target = items[i]
        delta = target - first
        best = (1, 1)
        for stride in (1, 2):
            n = 1
            while i + n < len(items) and items[i + n][0] == first + n * stride and \
                    items[i + n][1] - items[i + n][0] == delta:
                n += 1
            if n > best[0]:
                best = (n, stride)
        count, stride = best
        assert count < 65536 and -2**31 <= delta < 2**31
        out.append((first, count, stride, delta))
        i += count
    return out


def generate():
    lines = []
    w = lines.append
    w('// Generated by tools/gen_unicode.py from Python %s unicodedata, Unicode %s.'
      % (sys.version.split()[0], ud.unidata_version))
    w('// Do not edit; rerun the generator. Included by src/core/unicode.cc only.')
    w('// clang-format off')
    w('')
    w('static constexpr char kUnicodeVersion[] = "%s";' % ud.unidata_version)
    w('')

    emit_u32_array(lines, 'kCccRuns', runs(lambda cp: ud.combining(chr(cp))))
    emit_u32_array(lines, 'kPrecisRuns', runs(precis_property))
    emit_u32_array(lines, 'kBidiRuns', runs(bidi_class))
    emit_u32_array(lines, 'kCaseRuns', runs(case_property))
    emit_u32_array(lines, 'kFlagRuns', runs(flag_bits))

    # Canonical decompositions (one level) and primary composites.
    decomp = []
    for cp in range(MAX_CP + 1):
        if is_hangul_syllable(cp):
            continue
        d = canonical_decomp(cp)
        if d is None:
            continue
        assert 1 <= len(d) <= 2, hex(cp)
        decomp.append((cp, d[0], d[1] if len(d) == 2 else 0))
    w('struct DecompEntry {')
    w('  char32_t cp, first, second;  // second == 0: singleton')
    w('};')
    w('static constexpr DecompEntry kDecomp[] = {')
    for cp, a, b in decomp:
        w('    {0x%x, 0x%x, 0x%x},' % (cp, a, b))
    w('};')
    w('')
    comp = []
    for i, (cp, a, b) in enumerate(decomp):
        # A pair composes iff NFC of its decomposition gives the character
        # back (drops singletons, non-starter decompositions, exclusions).
        if b and ud.normalize('NFC', chr(a) + chr(b)) == chr(cp):
            comp.append((a, b, i))
    comp.sort()
    assert len(decomp) < 65536
    w('static constexpr uint16_t kCompIndex[] = {')
    for i in range(0, len(comp), 12):
        w('    ' + ', '.join(str(x[2]) for x in comp[i:i + 12]) + ',')
    w('};')
    w('')

    # Lowercase (str.lower() full mapping, less the Final_Sigma context).
    simple, special = {}, {}
    for cp in range(MAX_CP + 1):
        if is_surrogate(cp) or cp == 0x03A3:
            continue
        low = chr(cp).lower()
        if low == chr(cp):
            continue
        if len(low) == 1:
            simple[cp] = ord(low)
        else:
            special[cp] = low
    assert '\u03a3'.lower() == '\u03c3' and 'A\u03a3'.lower() == 'a\u03c2'
    w('struct DeltaRun {')
    w('  char32_t first;')
    w('  uint16_t count;')
    w('  uint8_t stride;')
    w('  int32_t delta;')
    w('};')
    w('static constexpr DeltaRun kLowerRuns[] = {')
    for first, count, stride, delta in delta_runs(simple):
        w('    {0x%x, %d, %d, %d},' % (first, count, stride, delta))
    w('};')
    w('')
    w('struct SpecialLower {')
    w('  char32_t cp;')
    w('  char32_t to[3];')
    w('};')
    w('static constexpr SpecialLower kLowerSpecial[] = {')
    for cp, low in sorted(special.items()):
        assert len(low) <= 3
        vals = [ord(x) for x in low] + [0] * (3 - len(low))
        w('    {0x%x, {0x%x, 0x%x, 0x%x}},' % (cp, *vals))
    w('};')
    w('')

    # Width mapping (RFC 8265 section 3.3.1 rule 1).
    width = {}
    for cp in range(MAX_CP + 1):
        d = ud.decomposition(chr(cp))
        if d.startswith('<wide>') or d.startswith('<narrow>'):
            parts = d.split()[1:]
            assert len(parts) == 1
            width[cp] = int(parts[0], 16)
    w('static constexpr DeltaRun kWidthRuns[] = {')
    for first, count, stride, delta in delta_runs(width):
        w('    {0x%x, %d, %d, %d},' % (first, count, stride, delta))
    w('};')
    w('// clang-format on')
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------- Test vectors ---
def fnv1a64(data, h=0xcbf29ce484222325):
    for byte in data:
        h ^= byte
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def all_scalars():
    return (cp for cp in range(MAX_CP + 1) if not is_surrogate(cp))


def cpp_literal(s):
    out = ''
    for b in s.encode('utf-8'):
        if 0x20 <= b < 0x7F and chr(b) not in '"\\?':
            out += chr(b)
        else:
            out += '\\x%02x""' % b
    return '"' + out + '"'


def test_vectors():
    """Print the expectations tests/unit/core/unicode_test.cc embeds."""
    h_nfc = h_lower = h_nfc_marks = 0xcbf29ce484222325
    for cp in all_scalars():
        c = chr(cp)
        h_nfc = fnv1a64(ud.normalize('NFC', c).encode() + b'\n', h_nfc)
        h_lower = fnv1a64(c.lower().encode() + b'\n', h_lower)
        # Two marks out of canonical order after every character: exercises
        # reordering and composition past (un)blocked marks.
        h_nfc_marks = fnv1a64(ud.normalize('NFC', c + '\u0301\u0323').encode() + b'\n',
                              h_nfc_marks)
    print('// All scalar values, each followed by "\\n", hashed with FNV-1a 64.')
    print('constexpr uint64_t kHashNfcEach = 0x%016xULL;' % h_nfc)
    print('constexpr uint64_t kHashLowerEach = 0x%016xULL;' % h_lower)
    print('constexpr uint64_t kHashNfcMarks = 0x%016xULL;' % h_nfc_marks)
    samples = [
        'plain ascii',
        'e\u0301', 'E\u0301\u0327', 'a\u0323\u0302', 'a\u0302\u0323', 'o\u031b\u0323\u0301',
        '\u212b', '\u2126', 'A\u030a', '\u1e9b\u0323', '\u0958', '\u2adc', '\u0344',
        '\u1100\u1161\u11a8', '\u1100\u1161', '\uac00\u11a8', '\ud55c\uad6d\uc5b4',
        '\u1112\u1161\u11ab\u1100\u116e\u11a8', '\u0e40\u0e01', '\u0f73', '\u0f77',
        '\U0001d15e', '\U0001d160', '\u05d0\u05b7\u05bc', 'a\u0315\u0300\u05ae\u0301b',
        '\u0391\u0313\u0342\u0345', '\u1f80', 'caf\u00e9 na\u0308ive', '\u00c5\u0301',
        '\u0041\u0308\u0304', '\U0001109a', '\U00011099\U000110ba', '\U0001d15f\u0301',
        'I\u0307', '\u0130', '\u0130STANBUL', '\u03a3', '\u0391\u03a3', '\u0391\u03a3\u0391',
        '\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3', '\u0391\u03a3.', '\u0391\u0345\u03a3',
        '\u0391\u03a3\u0345', '\u0391\u0387\u03a3', 'A\u00ad\u03a3', '\u03a3\u0391',
        '\u1e9e', '\u2c6f', '\u24b6', '\U00010400', '\U0001e900', '\uff21\uff22', '\u01c5',
        'Ma\u00dfe', 'Juliet', '\u0410\u0411\u0412', '\u10a0', '\u212a',
    ]
    print('const Vector kVectors[] = {')
    for s in samples:
        print('    {%s, %s, %s},' % (cpp_literal(s), cpp_literal(ud.normalize('NFC', s)),
                                     cpp_literal(s.lower())))
    print('};')


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == '--test-vectors':
        test_vectors()
    else:
        sys.stdout.write(generate())
