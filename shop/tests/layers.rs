//! The shop's modules form layers (see the comment at the top of `src/lib.rs`): a module may use
//! modules of its own layer or below, never above, and no set of modules may use each other in a
//! circle. This test reads every file of `src/`, collects its `crate::…` paths (`use` items,
//! grouped `use crate::{a, b::{c, d}}` and paths written inline) and fails on the first rule broken,
//! naming the file and the path.
//!
//! Heuristics, kept simple on purpose: comments are skipped; `super::` is resolved against the
//! file's module; `use super::*` (a unit-test module's glob of its own file) is ignored.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// Every module and its layer, bottom (0) to top. A new module must be added here.
const LAYERS: &[(&str, u8)] = &[
    // 0 foundation: no state, no I/O of the shop's own
    ("domain", 0),
    ("templates", 0),
    ("proxies", 0),
    ("replica", 0),
    // 1 the error type
    ("error", 1),
    // 2 configuration
    ("settings", 2),
    // 3 infrastructure: database, session store, caches, metrics recorders
    ("infra", 3),
    // 4 the shared state of a process
    ("state", 4),
    // 5 the HTTP edge: input parsing, session, security, throttling, telemetry, page helpers
    ("edge", 5),
    // 6 the areas: one job of the shop each
    ("areas", 6),
    // 7 the application: routes, the OpenAPI document, start-up
    ("openapi", 7),
    ("startup", 7),
];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/a/b.rs` → `a::b`, `src/a/mod.rs` → `a`, `src/lib.rs` → `` (the crate root).
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(src_dir()).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts.join("::")
}

/// The code of a file without its comments (line comments and doc comments).
fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let code = match line.find("//") {
            // `//` right after `:` is a URL in a string, not a comment
            Some(i) if !line[..i].ends_with(':') => &line[..i],
            _ => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Expand the path that starts at `s` (just after `crate::`) into full paths; `{…}` groups are
/// expanded. Returns the paths and how many chars were consumed.
fn expand(s: &[char], prefix: &str, out: &mut Vec<String>) -> usize {
    let mut i = 0;
    let mut path = prefix.to_string();
    loop {
        while i < s.len() && s[i].is_whitespace() {
            i += 1;
        }
        if i < s.len() && s[i] == '{' {
            i += 1;
            loop {
                while i < s.len() && (s[i].is_whitespace() || s[i] == ',') {
                    i += 1;
                }
                if i >= s.len() || s[i] == '}' {
                    return i + 1;
                }
                i += expand(&s[i..], &path, out);
            }
        }
        let start = i;
        while i < s.len() && (is_ident(s[i]) || s[i] == '*') {
            i += 1;
        }
        let seg: String = s[start..i].iter().collect();
        if seg.is_empty() {
            break;
        }
        if !path.is_empty() {
            path.push_str("::");
        }
        path.push_str(&seg);
        if s.get(i) == Some(&':') && s.get(i + 1) == Some(&':') {
            i += 2;
        } else {
            break;
        }
    }
    out.push(path);
    // `… as name`: skip the alias
    let mut j = i;
    while j < s.len() && s[j].is_whitespace() {
        j += 1;
    }
    if s.get(j) == Some(&'a') && s.get(j + 1) == Some(&'s') && s.get(j + 2).is_some_and(|c| c.is_whitespace())
    {
        j += 3;
        while j < s.len() && s[j].is_whitespace() {
            j += 1;
        }
        while j < s.len() && is_ident(s[j]) {
            j += 1;
        }
        i = j;
    }
    i
}

/// The `crate::` and `super::` paths a file refers to, resolved to full paths.
fn references(file: &Path, module: &str) -> Vec<String> {
    let code: Vec<char> =
        strip_comments(&std::fs::read_to_string(file).unwrap_or_default()).chars().collect();
    let mut refs = vec![];
    let mut i = 0;
    while i < code.len() {
        let before_ok = i == 0 || !(is_ident(code[i - 1]) || code[i - 1] == '$');
        let rest = &code[i..];
        let starts = |w: &str| rest.len() >= w.len() && rest[..w.len()].iter().copied().eq(w.chars());
        if before_ok && starts("crate::") {
            i += expand(&code[i + 7..], "", &mut refs) + 7;
        } else if before_ok && starts("super::") {
            let mut local = vec![];
            let used = expand(&code[i + 7..], "", &mut local);
            // `super` of `a/b.rs` (module `a::b`) is `a`
            let parent = module.rsplit_once("::").map(|(p, _)| p.to_string()).unwrap_or_default();
            for p in local.into_iter().filter(|p| p != "*") {
                // a top-level file's `super::x` is an inline test module's view of its own file
                if !module.contains("::") && !file.ends_with("mod.rs") {
                    continue;
                }
                refs.push(if parent.is_empty() { p } else { format!("{parent}::{p}") });
            }
            i += used + 7;
        } else {
            i += 1;
        }
    }
    refs
}

/// The known module a path lands in (the longest module prefix), if any.
fn target_module(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let segs: Vec<&str> = path.split("::").collect();
    (1..=segs.len()).rev().map(|n| segs[..n].join("::")).find(|m| modules.contains(m))
}

fn layer_of(module: &str) -> Option<u8> {
    // a submodule (`infra::db`, `areas::orders::repo`) is in the layer of its top module
    let top = module.split("::").next().unwrap_or(module);
    LAYERS.iter().find(|(m, _)| *m == top).map(|(_, l)| *l)
}

struct Graph {
    /// module → (module it uses → the file and path that use it)
    edges: BTreeMap<String, BTreeMap<String, (String, String)>>,
}

fn graph() -> Graph {
    let mut files = vec![];
    rust_files(&src_dir(), &mut files);
    files.sort();
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(f)).filter(|m| !m.is_empty()).collect();
    let mut edges: BTreeMap<String, BTreeMap<String, (String, String)>> = BTreeMap::new();
    for f in &files {
        let from = module_of(f);
        if from.is_empty() {
            continue; // lib.rs declares the modules, main.rs is the binary
        }
        let name = f.strip_prefix(src_dir()).unwrap_or(f).display().to_string();
        let entry = edges.entry(from.clone()).or_default();
        for r in references(f, &from) {
            if let Some(to) = target_module(&r, &modules) {
                // a module's own children are its parts, not a dependency upward or in a circle
                if to != from && !to.starts_with(&format!("{from}::")) {
                    entry.entry(to).or_insert((name.clone(), format!("crate::{r}")));
                }
            }
        }
    }
    Graph { edges }
}

/// Every upward reference: "file uses crate::path (layer a → layer b)".
fn upward(g: &Graph) -> Vec<String> {
    let mut bad = vec![];
    for (from, tos) in &g.edges {
        for (to, (file, path)) in tos {
            let (Some(lf), Some(lt)) = (layer_of(from), layer_of(to)) else { continue };
            if lt > lf {
                bad.push(format!("{file} uses {path}: layer {lf} ({from}) must not use layer {lt} ({to})"));
            }
        }
    }
    bad
}

/// One cycle, if any, as the chain of modules with the file and path of each step.
fn cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        m: &str,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(pos) = stack.iter().position(|s| s == m) {
            let mut chain = stack[pos..].to_vec();
            chain.push(m.to_string());
            let steps = chain
                .windows(2)
                .map(|w| {
                    let (file, path) = &g.edges[&w[0]][&w[1]];
                    format!("{} → {} ({file} uses {path})", w[0], w[1])
                })
                .collect();
            return Some(steps);
        }
        if done.contains(m) {
            return None;
        }
        stack.push(m.to_string());
        if let Some(tos) = g.edges.get(m) {
            for to in tos.keys() {
                if let Some(c) = visit(g, to, stack, done) {
                    return Some(c);
                }
            }
        }
        stack.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.edges.keys().find_map(|m| visit(g, m, &mut vec![], &mut done))
}

#[test]
fn every_module_has_a_layer() {
    let g = graph();
    let missing: Vec<&String> = g.edges.keys().filter(|m| layer_of(m).is_none()).collect();
    assert!(missing.is_empty(), "modules without a layer in tests/layers.rs: {missing:?}");
}

#[test]
fn no_module_uses_a_higher_layer() {
    let bad = upward(&graph());
    assert!(bad.is_empty(), "{} upward reference(s):\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn no_modules_use_each_other_in_a_circle() {
    if let Some(c) = cycle(&graph()) {
        panic!("import cycle:\n{}", c.join("\n"));
    }
}

#[test]
fn the_reader_sees_grouped_and_inline_paths() {
    let mut out = vec![];
    let text: Vec<char> = "{a::{b, c::D}, e::F as G, h}".chars().collect();
    expand(&text, "", &mut out);
    assert_eq!(out, ["a::b", "a::c::D", "e::F", "h"]);
}
