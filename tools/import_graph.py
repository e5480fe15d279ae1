#!/usr/bin/env python3
"""The import graph of src/: which file uses which, resolved through `pub use`
re-exports to the file that defines the item. Fails (exit 1) on a cycle between files
and on an import that runs against the data flow (a lower layer using a higher one).

Usage: tools/import_graph.py [--dot] [SRC_DIR]

Layers follow the data flow of docs/architecture.md; a module may use its own layer and
any layer below it. Tests (`#[cfg(test)]` modules and tests.rs files) are left out: they
may reach anywhere."""

import os
import re
import sys

# Lowest first: a module may import its own layer and those before it.
LAYERS = [
    {"bytes", "names", "crc32c", "checksums", "date", "escapes"},
    {"image"},
    {"volumes"},
    {"filesystems"},
    # Counters the walk and the rules update; knows volumes only by name.
    {"progress"},
    {"guest"},
    {"walk"},
    {"facts"},
    {"secrets"},
    {"rules"},
    {"gate"},
    {"report"},
    {"scan"},
    {"cli", "commands", "fuzzing", "main", "lib"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}

USE_RE = re.compile(r"^\s*(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.M)
PATH_RE = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def strip_tests(text):
    """The file without its `#[cfg(test)] mod ... { ... }` blocks and comments."""
    text = re.sub(r"//[^\n]*", "", text)
    out = []
    i = 0
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*(pub\s+)?mod\s+\w+\s*\{", text[i:])
        if not m:
            out.append(text[i:])
            break
        start = i + m.start()
        out.append(text[i:start])
        depth = 0
        j = i + m.end() - 1
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        i = j + 1
    return "".join(out)


def module_files(src):
    """Module path (tuple of names) -> file, for every .rs file under src."""
    files = {}
    for root, _, names in os.walk(src):
        for name in names:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                module = (rel[0],) if rel == ["main"] else ()
            else:
                module = tuple(rel)
            files[module] = path
    return files


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e'] (aliases dropped)."""
    tree = re.sub(r"\s+", "", tree)

    def split_top(s):
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            parts.append(cur)
        return parts

    def go(s):
        brace = s.find("{")
        if brace < 0:
            return [s.split("as")[0] if "::" not in s.split("as")[-1] else s]
        prefix, inner = s[:brace], s[brace + 1 : s.rfind("}")]
        out = []
        for part in split_top(inner):
            for sub in go(part):
                out.append(prefix + sub if sub != "self" else prefix.rstrip(":"))
        return out

    return [re.sub(r"as[A-Za-z_]\w*$", "", p) for p in go(tree)]


def resolve(module, path, files, reexports, depth=0):
    """The file defining what `path` (a list of names after crate/super/self) names."""
    best = None
    for n in range(len(path), -1, -1):
        candidate = tuple(path[:n])
        if candidate in files:
            best = candidate
            rest = path[n:]
            break
    if best is None:
        return None
    if rest and depth < 8:
        target = reexports.get((best, rest[0]))
        if target is not None:
            return resolve(module, list(target) + rest[1:], files, reexports, depth + 1)
    return best


def absolute(module, is_mod_file, head, tail):
    names = [t for t in tail.split("::") if t]
    base = list(module)
    if head == "crate":
        return names
    if head == "self":
        return (base if is_mod_file else base[:-1]) + names if False else base + names
    # super: the parent of this module
    parent = base[:-1]
    while names and names[0] == "super":
        parent = parent[:-1]
        names = names[1:]
    return parent + names


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    dot = "--dot" in sys.argv
    src = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "src")
    files = module_files(src)
    texts = {}
    for module, path in files.items():
        if os.path.basename(path) == "tests.rs" or "test_support" in path:
            continue
        with open(path, encoding="utf-8") as f:
            texts[module] = strip_tests(f.read())

    def child_modules(module):
        return {m[-1] for m in files if len(m) == len(module) + 1 and m[:-1] == module}

    # `pub use` re-exports: (module, name) -> absolute path of what it names.
    reexports = {}
    for module, text in texts.items():
        for m in USE_RE.finditer(text):
            if not m.group(1):
                continue
            for item in expand_use(m.group(2)):
                parts = item.split("::")
                head = parts[0]
                if head in ("crate", "super", "self"):
                    target = absolute(module, False, head, "::".join(parts[1:]))
                elif head in child_modules(module):
                    target = list(module) + parts
                else:
                    continue
                reexports[(module, parts[-1])] = target

    edges = {}
    for module, text in texts.items():
        used = set()
        for m in PATH_RE.finditer(text):
            target = absolute(module, False, m.group(1), m.group(2))
            used.add(tuple(target))
        for m in USE_RE.finditer(text):
            for item in expand_use(m.group(2)):
                parts = item.split("::")
                if parts[0] in child_modules(module):
                    used.add(tuple(list(module) + parts))
        targets = set()
        for target in used:
            found = resolve(module, list(target), files, reexports)
            if found is not None and found != module and found in texts:
                # A module's own descendants are its business, not an import cycle.
                if found[: len(module)] == module and len(found) > len(module):
                    continue
                if module[: len(found)] == found and texts.get(found) is not None:
                    # A child naming its parent module: only an edge when it uses an item
                    # the parent defines (not one of its siblings).
                    pass
                targets.add(found)
        edges[module] = targets

    def name(module):
        return "::".join(module) or "lib"

    if dot:
        print("digraph src {")
        for module, targets in sorted(edges.items()):
            for target in sorted(targets):
                print(f'  "{name(module)}" -> "{name(target)}";')
        print("}")

    problems = []
    for module, targets in sorted(edges.items()):
        top = module[0] if module else "lib"
        for target in sorted(targets):
            other = target[0] if target else "lib"
            if top not in RANK or other not in RANK:
                problems.append(f"{name(module)} -> {name(target)}: module not in LAYERS")
                continue
            if RANK[other] > RANK[top]:
                problems.append(f"upward import: {name(module)} -> {name(target)}")

    # Cycles between files (Tarjan's strongly connected components).
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                sccs.append(scc)

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            connect(v)
    for scc in sccs:
        problems.append("cycle: " + ", ".join(sorted(name(m) for m in scc)))

    if not dot:
        count = sum(len(t) for t in edges.values())
        print(f"{len(edges)} files, {count} imports between them")
        for p in problems:
            print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
