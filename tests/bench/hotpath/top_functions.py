"""Top functions of a callgrind_annotate listing, per routed message (or
per presence recipient: ITERATIONS is then broadcasts x contacts).

Reads `callgrind_annotate --inclusive=yes|no` on stdin. callgrind_annotate
lists a function once per source file its inlined code came from; this
merges those rows (largest Ir for inclusive, sum for self), drops the
frames around the measured function (main, libc start, the
hearth_hotpath_message / hearth_hotpath_presence wrappers) and shortens C++ names to
namespace::function.

usage: top_functions.py yes|no ITERATIONS TOP TOTAL_IR
"""

import re
import sys


def short(name):
    # Drop argument lists and template arguments: "a::b(int) const" -> "a::b".
    out, depth = [], 0
    for ch in name:
        if ch in "(<":
            depth += 1
        elif ch in ")>":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    text = "".join(out).strip()
    text = text.replace("hearth::", "").replace("(anonymous namespace)::", "")
    text = text.replace("::::", "::")
    return text or name


def main():
    inclusive = sys.argv[1] == "yes"
    iterations, top, total = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    row = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$")
    skip = ("PROGRAM TOTALS", "(below main)", "__libc_start", ":main", "hearth_hotpath_message",
            "hearth_hotpath_presence")
    merged, objects, in_table = {}, {}, False
    for line in sys.stdin:
        if line.startswith("Ir") and "file:function" in line:
            in_table = True
            continue
        if not in_table or line.startswith("-"):
            continue
        if not line.strip():
            break  # the end of the function table
        m = row.match(line)
        if not m:
            continue
        ir = int(m.group(1).replace(",", ""))
        where = m.group(2)
        obj = ""
        b = re.search(r" \[([^\]]*)\]$", where)
        if b:
            obj = b.group(1).rsplit("/", 1)[-1]
            where = where[: b.start()]
        if any(s in where for s in skip):
            continue
        if re.search(r"\?\?\?:0x[0-9a-f]+$", where):
            # A library's static functions have no symbol: in the self list
            # they count together per library, in the inclusive list they
            # would only repeat their named callers.
            if inclusive or not obj:
                continue
            where = "???:(unnamed functions of " + obj + ")"
        fn = where.split(":", 1)[1] if ":" in where else where
        if fn.startswith("std::_Function_handler"):
            continue  # the std::function thunk around a lambda: counted in its caller
        key = short(fn)
        if obj and not obj.startswith("hotpath") and "unnamed" not in key:
            objects[key] = obj
        if inclusive:
            merged[key] = max(merged.get(key, 0), ir)
        else:
            merged[key] = merged.get(key, 0) + ir
    kind = "inclusive" if inclusive else "self"
    print(f"top {top} functions by {kind} Ir (per unit, % of the total):")
    for key, ir in sorted(merged.items(), key=lambda kv: -kv[1])[:top]:
        where = f" [{objects[key]}]" if key in objects else ""
        print(f"  {ir / iterations:10.0f}  {100.0 * ir / total:5.1f}%  {key}{where}")


if __name__ == "__main__":
    main()
