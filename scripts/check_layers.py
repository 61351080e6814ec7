#!/usr/bin/env python3
"""Checks the workspace's layering: no import circle between the modules of any crate, and no HTTP crate under the
service layer. Exits 1 naming every circle it finds.

A module is a source file (`lib.rs`/`main.rs` is the crate root, `a/mod.rs` and `a.rs` are `a`, `a/b.rs` is `a::b`);
a module uses another when its code names a path into it (`crate::x::...`, `super::...`, `self::...`, in `use`
trees too). Inline `#[cfg(test)]` modules are left out: tests may look anywhere. Declaring a child (`mod x;`) is not
a use; a parent that names its child's items is, so with a child that names the parent's it closes a circle.

    python3 scripts/check_layers.py            # every crate under crates/
    python3 scripts/check_layers.py --self-test
"""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The HTTP server framework and the OpenAPI derive: nothing under the façades may pull them in, even indirectly (the
# S3 client of the store brings an HTTP *client* stack, hyper and tower among it, which is not a façade concern).
SERVER_FRAMEWORK = {"axum", "axum-core", "utoipa"}
# What the service crate itself may not name (issue 11: the service side knows no HTTP).
HTTP_CRATES = {"axum", "axum-core", "http", "http-body", "hyper", "reqwest", "tower", "tower-http", "utoipa"}
SERVICE_CRATES = ["riskserve-service", "riskserve-store", "riskserve-pipeline", "riskserve-model"]

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def module_of(src: pathlib.Path, file: pathlib.Path) -> tuple:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts in (["lib"], ["main"]):
        return ()
    if parts[-1] == "mod":
        parts = parts[:-1]
    return tuple(parts)


def strip_code(text: str) -> str:
    """Drops comments, string literals and `#[cfg(test)]` modules, which never make a layering edge."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    text = re.sub(r"'(?:\\.|[^'\\])'", "' '", text)
    out = []
    position = 0
    for match in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+" + IDENT + r"\s*\{", text):
        if match.start() < position:
            continue
        out.append(text[position : match.start()])
        depth, index = 1, match.end()
        while index < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            index += 1
        position = index
    out.append(text[position:])
    return "".join(out)


def expand_use_tree(tree: str) -> list:
    """`a::{b, c::{d, e}}` → ['a::b', 'a::c::d', 'a::c::e'] (renames and globs keep their path)."""
    tree = re.sub(r"\s+", "", tree)
    brace = tree.find("{")
    if brace < 0:
        return [re.sub(r"as" + IDENT + "$", "", tree).rstrip(":")] if tree else []
    prefix, inner = tree[:brace], tree[brace + 1 : tree.rindex("}")]
    items, depth, start = [], 0, 0
    for index, char in enumerate(inner):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(inner[start:index])
            start = index + 1
    items.append(inner[start:])
    paths = []
    for item in items:
        if item in ("", "self"):
            if item == "self":
                paths.append(prefix.rstrip(":"))
            continue
        paths.extend(prefix + sub for sub in expand_use_tree(item))
    return paths


def referenced_paths(code: str) -> list:
    paths = []
    for match in re.finditer(r"\buse\s+((?:crate|super|self)(?:::)?[^;]*);", code):
        paths.extend(expand_use_tree(match.group(1)))
    for match in re.finditer(r"\b((?:crate|super|self)(?:::(?:super|" + IDENT + r"))+)", code):
        paths.append(match.group(1))
    return paths


def resolve(path: str, here: tuple, modules: set) -> tuple | None:
    """The module a path points into: the longest known module prefix of its absolute form."""
    segments = path.split("::")
    if segments[0] == "crate":
        absolute, rest = [], segments[1:]
    else:
        absolute, rest = list(here), segments
        while rest and rest[0] in ("self", "super"):
            if rest[0] == "super":
                if not absolute:
                    return None
                absolute.pop()
            rest = rest[1:]
    best = tuple(absolute)
    for segment in rest:
        candidate = best + (segment,)
        if candidate in modules:
            best = candidate
        else:
            break
    return best if best in modules else None


def crate_graph(src: pathlib.Path) -> dict:
    files = sorted(src.rglob("*.rs"))
    modules = {module_of(src, file): file for file in files}
    graph = {module: set() for module in modules}
    for module, file in modules.items():
        code = strip_code(file.read_text())
        for path in referenced_paths(code):
            target = resolve(path, module, set(modules))
            if target is not None and target != module:
                graph[module].add(target)
    return graph


def circles(graph: dict) -> list:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def name(module: tuple) -> str:
    return "::".join(module) or "(root)"


def dependencies(crate: str, depth: int | None) -> set:
    command = ["cargo", "tree", "-p", crate, "-e", "normal", "--prefix", "none", "--format", "{p}"]
    if depth is not None:
        command += ["--depth", str(depth)]
    tree = subprocess.run(command + ["--offline"], cwd=ROOT, capture_output=True, text=True, check=False)
    if tree.returncode != 0:
        tree = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return {line.split(" ")[0] for line in tree.stdout.splitlines() if line.strip()} - {crate}


def http_under_service() -> list:
    problems = []
    for crate in SERVICE_CRATES:
        for bad in sorted(dependencies(crate, None) & SERVER_FRAMEWORK):
            problems.append(f"{crate} depends on {bad}: the service side must compile without the HTTP server framework")
    for bad in sorted(dependencies("riskserve-service", 1) & HTTP_CRATES):
        problems.append(f"riskserve-service names {bad}: the service crate knows no HTTP")
    return problems


def self_test() -> None:
    assert expand_use_tree("crate::{a::{B, c::D}, e}") == ["crate::a::B", "crate::a::c::D", "crate::e"]
    modules = {(), ("a",), ("a", "b"), ("c",)}
    assert resolve("super::Thing", ("a", "b"), modules) == ("a",)
    assert resolve("crate::a::b::Item", ("c",), modules) == ("a", "b")
    assert resolve("crate::c", ("a",), modules) == ("c",)
    graph = {("a",): {("b",)}, ("b",): {("c",)}, ("c",): {("a",)}, ("d",): {("a",)}}
    assert circles(graph) == [[("a",), ("b",), ("c",)]]
    code = strip_code('use crate::x::Y;\n// crate::z\nlet s = "crate::w";\n#[cfg(test)]\nmod tests { use super::*; }')
    assert referenced_paths(code) == ["crate::x::Y", "crate::x::Y"], referenced_paths(code)
    print("check_layers self-test: ok")


def main() -> int:
    if "--self-test" in sys.argv:
        self_test()
        return 0
    failures = []
    crates = sorted(path for path in (ROOT / "crates").iterdir() if (path / "src").is_dir())
    for crate in crates:
        graph = crate_graph(crate / "src")
        for component in circles(graph):
            members = ", ".join(name(module) for module in component)
            failures.append(f"{crate.name}: import circle between {members}")
        edges = sum(len(targets) for targets in graph.values())
        print(f"{crate.name}: {len(graph)} modules, {edges} uses between them, no circle"
              if not any(f.startswith(crate.name + ":") for f in failures) else f"{crate.name}: CIRCLES")
    failures.extend(http_under_service())
    for failure in failures:
        print("!!", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
