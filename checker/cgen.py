"""C source for a compiled spec: successors, properties, packing, symmetry canonicalisation.

The native explorer (`checker.native`) runs the explicit engine's breadth-first search in
C, the way SPIN compiles a Promela model to pan.c. The C is generated from the same
folded expressions and the same action plan (`checker.compile.action_plan`) as the Python
successor function, so action ids, successor order and values are identical; any
runtime error of the spec (a value outside its domain, an index out of range, a division
by zero) only raises a flag, and the caller re-runs the Python successor function on that
state to report it with the reference wording.
"""

from __future__ import annotations

from importlib import resources

from checker.compile import Compiled, _bounds, _needs_check, action_plan, fold
from checker.expr import BVT, Const, Expr, Op, Slot, SlotSelect
from checker.flat import Transition
from checker.spec import SpecError

CTYPES = {"B": "uint8_t", "b": "int8_t", "H": "uint16_t", "h": "int16_t", "I": "uint32_t",
          "i": "int32_t", "Q": "uint64_t", "q": "int64_t"}
SIZES = {"B": 1, "b": 1, "H": 2, "h": 2, "I": 4, "i": 4, "Q": 8, "q": 8}
SMALL = 1 << 62  # values and masks below this fit int64 arithmetic without overflow


class Unsupported(Exception):
    """The spec needs something the C engine does not do; use the Python engine."""


def _lit(v: int) -> str:
    if -SMALL < v < SMALL:
        return f"((V){v}LL)"
    return f"(((V){v >> 62}LL << 62) + {v & (SMALL - 1)}LL)"


def cexpr(e: Expr) -> str:
    """Expression to C over `const V *s` (Python semantics: floor division, 0/1 booleans)."""
    if isinstance(e, Const):
        return _lit(int(e.value))
    if isinstance(e, Slot):
        return f"s[{e.index}]"
    if isinstance(e, SlotSelect):
        return f"sel(s, {e.base}, {e.size}, {cexpr(e.idx)})"
    if not isinstance(e, Op):
        raise SpecError("compile", f"unresolved reference {e!r}")
    a = [cexpr(x) for x in e.args]
    op = e.op
    mask = e.args[0].sort.mask if e.args and isinstance(e.args[0].sort, BVT) else None
    m = _lit(mask) if mask is not None else ""
    match op:
        case "and":
            return "(" + " && ".join(a) + ")"
        case "or":
            return "(" + " || ".join(a) + ")"
        case "not":
            return f"(!{a[0]})"
        case "=>":
            return f"(!{a[0]} || {a[1]})"
        case "ite":
            return f"({a[0]} ? {a[1]} : {a[2]})"
        case "~":
            return f"({a[0]} ^ {m})"
        case "bit":
            return f"(shr({a[0]}, {a[1]}) & 1)"
        case "<<" if mask is not None:
            return f"(shl({a[0]}, {a[1]}) & {m})"
        case "+" | "-" | "*" if mask is not None:
            return f"(({a[0]} {op} {a[1]}) & {m})"
        case "+" | "-" | "*" | "&" | "|" | "^":
            return f"({a[0]} {op} {a[1]})"
        case "//":
            return f"floordiv({a[0]}, {a[1]})"
        case "%":
            return f"floormod({a[0]}, {a[1]})"
        case "<<":
            return f"shl({a[0]}, {a[1]})"
        case ">>":
            return f"shr({a[0]}, {a[1]})"
        case "==" | "!=" | "<" | "<=" | ">" | ">=":
            return f"({a[0]} {op} {a[1]})"
    raise SpecError("compile", f"unknown operator {op}")


def _wide(compiled: Compiled) -> bool:
    """Whether some domain needs more than int64 arithmetic."""
    for info in compiled.flat.slots:
        r = info.type.values()
        if r.start <= -SMALL or r.stop > SMALL:
            return True
    return False


def _successors(compiled: Compiled) -> list[str]:
    flat = compiled.flat
    p = flat.params
    lines = ["static int successors(const V *s, V *out, int *aids) {", "    int n = 0; V *o;"]
    for pc_slot, by_label in action_plan(flat, p):
        lines.append(f"    switch ((int)s[{pc_slot}]) {{")
        for label_code, planned in by_label:
            if not planned:
                continue
            lines.append(f"    case {label_code}: {{")
            for pa in planned:
                lines += ["        " + x for x in _action(compiled, pa.aid, pa.transition,
                                                          pa.guard, pa.choice)]
            lines.append("        break; }")
        lines.append("    default: break;")
        lines.append("    }")
    lines += ["    return ERR ? -1 : n;", "}"]
    return lines


def _action(compiled: Compiled, aid: int, t: Transition, guard: Expr,
            cvals: dict[str, int]) -> list[str]:
    flat = compiled.flat
    p = flat.params
    body: list[str] = []
    writes: list[str] = []
    dyn: list[str] = []
    for k, (tgt, val) in enumerate(t.updates):
        v = fold(val, p, cvals)
        body.append(f"V v{k} = {cexpr(v)};")
        if _needs_check(tgt.type, v):
            lo, hi = _bounds(tgt.type)
            body.append(f"if (!({_lit(lo)} <= v{k} && v{k} <= {_lit(hi)})) ERR = 1;")
        if isinstance(tgt, Slot):
            writes.append(f"o[{tgt.index}] = v{k};")
        else:
            idx = fold(tgt.idx, p, cvals)
            body.append(f"V i{k} = {cexpr(idx)};")
            body.append(f"if (!(0 <= i{k} && i{k} < {tgt.size})) {{ ERR = 1; i{k} = 0; }}")
            dyn.append(f"o[{tgt.base} + i{k}] = v{k};")
    out = [f"if ({cexpr(guard)}) {{  /* action {aid} */"]
    out += ["    " + b for b in body]
    out += ["    o = out + (size_t)n * NS;", "    memcpy(o, s, sizeof(V) * NS);"]
    out += ["    " + w for w in dyn + writes]
    out += [f"    aids[n++] = {aid};", "}"]
    return out


def _predicate(name: str, e: Expr | None, p: dict[str, int]) -> list[str]:
    body = "1" if e is None else cexpr(fold(e, p, {}))
    return [f"static int {name}(const V *s) {{ return ({body}) != 0; }}"]


def _pack(codes: list[str]) -> tuple[list[str], int]:
    pack = ["static void pack(const V *s, uint8_t *b) {"]
    unpack = ["static void unpack(const uint8_t *b, V *s) {"]
    off = 0
    for k, c in enumerate(codes):
        ct = CTYPES[c]
        pack.append(f"    {{ {ct} x = ({ct})s[{k}]; memcpy(b + {off}, &x, {SIZES[c]}); }}")
        unpack.append(f"    {{ {ct} x; memcpy(&x, b + {off}, {SIZES[c]}); s[{k}] = (V)x; }}")
        off += SIZES[c]
    return pack + ["}"] + unpack + ["}"], off


def _key(classes: list[tuple[tuple[int, ...], ...]], codes: list[str]) -> tuple[list[str], int]:
    """make_key: the visited-set key of a state (its packing, each class's rows sorted),
    and the number of permutation bytes stored with each key (0: states stored apart).

    With one-byte row slots the rows are packed as contiguous byte strings after the
    other slots and sorted with memcmp; the permutation that sorted them (one byte per
    row: which instance's row went there) is returned too, and `unkey` rebuilds the
    concrete state from key and permutation, so the state itself need not be stored.
    Otherwise rows are sorted as values, then packed, and states are stored as well.
    """
    sig = "static void make_key(const V *s, uint8_t *k, uint8_t *perm)"
    if not classes:
        return [sig + " { (void)perm; pack(s, k); }"], 0
    row_slots = {j for rows in classes for row in rows for j in row}
    if any(SIZES[codes[j]] != 1 for j in row_slots) or any(len(r) > 255 for r in classes):
        lines = ["static V TMP[NS];", sig + " {", "    (void)perm;",
                 "    memcpy(TMP, s, sizeof(V) * NS);"]
        for ci, rows in enumerate(classes):
            r, w = len(rows), len(rows[0])
            flat_rows = ", ".join(str(j) for row in rows for j in row)
            lines.append(f"    {{ static const int R{ci}[{r * w}] = {{{flat_rows}}};")
            lines.append(f"      sort_rows(TMP, R{ci}, {r}, {w}); }}")
        return lines + ["    pack(TMP, k);", "}"], 0
    key = [sig + " {"]
    unkey = ["static void unkey(const uint8_t *k, const uint8_t *perm, V *s) {"]
    off = 0
    for j, c in enumerate(codes):
        if j in row_slots:
            continue
        ct = CTYPES[c]
        key.append(f"    {{ {ct} x = ({ct})s[{j}]; memcpy(k + {off}, &x, {SIZES[c]}); }}")
        unkey.append(f"    {{ {ct} x; memcpy(&x, k + {off}, {SIZES[c]}); s[{j}] = (V)x; }}")
        off += SIZES[c]
    poff = 0
    for ci, rows in enumerate(classes):
        r, w = len(rows), len(rows[0])
        key.append(f"    {{ uint8_t *b = k + {off};")
        for a, row in enumerate(rows):
            key += [f"      b[{a * w + q}] = (uint8_t)s[{j}];" for q, j in enumerate(row)]
        key.append(f"      sort_bytes(b, {r}, {w}, perm + {poff}); }}")
        flat_rows = ", ".join(str(j) for row in rows for j in row)
        casts = ", ".join("1" if codes[j] == "b" else "0" for row in rows for j in row)
        unkey.append(f"    {{ static const int R{ci}[{r * w}] = {{{flat_rows}}};")
        unkey.append(f"      static const char S{ci}[{r * w}] = {{{casts}}};")
        unkey.append(f"      for (int q = 0; q < {r}; q++) for (int j = 0; j < {w}; j++) {{")
        unkey.append(f"        int at = perm[{poff} + q] * {w} + j, x = R{ci}[at];")
        unkey.append(f"        uint8_t v = k[{off} + q * {w} + j];")
        unkey.append(f"        s[x] = S{ci}[at] ? (V)(int8_t)v : (V)v; }} }}")
        off += r * w
        poff += r
    return key + ["}"] + unkey + ["}"], poff


def c_source(compiled: Compiled, checks: list[tuple[str, Expr | None]], finals: list[Expr | None],
             codes: list[str], classes: list[tuple[tuple[int, ...], ...]]) -> str:
    """The whole C program: generated parts, then the fixed search in `native_bfs.c`."""
    flat = compiled.flat
    if _wide(compiled):
        raise Unsupported("a domain needs more than 62 bits")
    if any(len(rows) > 64 or len(rows[0]) > 64 for rows in classes):
        raise Unsupported("a symmetric class has more than 64 instances or row slots")
    p = flat.params
    pack, width = _pack(codes)
    head = ["#include <stdint.h>", "#include <string.h>", "#include <stdlib.h>",
            "#include <sys/mman.h>",
            "typedef int64_t V;", f"#define NS {len(flat.slots)}", f"#define W {width}",
            f"#define NACT {max(len(compiled.actions), 1)}", f"#define NINV {len(checks)}",
            f"#define NFIN {len(finals)}", f"#define SYM {int(bool(classes))}",
            "#define PERMS @PERMS@",
            "static int ERR;", resources.files("checker").joinpath("native_prelude.c").read_text()]
    body: list[str] = []
    body += _successors(compiled)
    for k, (_, e) in enumerate(checks):
        body += _predicate(f"inv_{k}", e, p)
    for k, e in enumerate(finals):
        body += _predicate(f"fin_{k}", e, p)
    body += _predicate("finished", compiled.flat.finished, p)
    tables = ["static int (*const INV[])(const V *) = {" + ", ".join(
        [f"inv_{k}" for k in range(len(checks))] or ["0"]) + "};",
        "static int (*const FIN[])(const V *) = {" + ", ".join(
        [f"fin_{k}" for k in range(len(finals))] or ["0"]) + "};"]
    key, perms = _key(classes, codes)
    body += pack + key + tables
    bfs = resources.files("checker").joinpath("native_bfs.c").read_text()
    src = "\n".join(head + body + [bfs]) + "\n"
    return src.replace("@PERMS@", str(perms), 1)


__all__ = ["Unsupported", "c_source", "cexpr"]
