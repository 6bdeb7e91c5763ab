//! The code's own layout rules, read from `src/`: every module is on `src/lib.rs`'s map,
//! each imports only modules listed before it there (the ground floor first), and no two
//! files import each other, directly or round a longer loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Every product source file (test modules left out), by its module path.
fn modules() -> BTreeMap<Vec<String>, (String, String)> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![std::path::PathBuf::from(SRC)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let rel = path.strip_prefix(SRC).unwrap().to_string_lossy().into_owned();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if !rel.ends_with(".rs") || name.ends_with("_tests") || name == "tests" || name == "main" {
                continue;
            }
            let mut segments: Vec<String> =
                Path::new(&rel).with_extension("").iter().map(|s| s.to_string_lossy().into_owned()).collect();
            if matches!(segments.last().map(String::as_str), Some("mod" | "lib")) {
                segments.pop();
            }
            out.insert(segments, (rel, product_code(&std::fs::read_to_string(&path).unwrap())));
        }
    }
    out
}

/// The file without comments and without its inline test module (always the file's end).
fn product_code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The paths named after `prefix::` at `at`: `a::b`, or each member of `a::{b, c::d}` and
/// of a group right after the prefix (`super::{a, b}`).
fn paths_at(text: &str, at: usize) -> Vec<Vec<String>> {
    let rest = &text[at..];
    let mut segments = Vec::new();
    let mut i = 0;
    loop {
        let ident: String = rest[i..].chars().take_while(|c| is_ident(*c)).collect();
        if !ident.is_empty() {
            i += ident.len();
            segments.push(ident);
        }
        let group = if segments.is_empty() && rest[i..].starts_with('{') {
            Some(i + 1)
        } else if rest[i..].starts_with("::{") {
            Some(i + 3)
        } else {
            None
        };
        if let Some(open) = group {
            let body = &rest[open..];
            let (mut depth, mut end) = (1, 0);
            for (j, c) in body.char_indices() {
                depth += match c {
                    '{' => 1,
                    '}' => -1,
                    _ => 0,
                };
                if depth == 0 {
                    end = j;
                    break;
                }
            }
            return split_group(&body[..end])
                .iter()
                .flat_map(|member| {
                    let inner = paths_at(member, 0);
                    inner.into_iter().map(|p| segments.iter().cloned().chain(p).collect()).collect::<Vec<_>>()
                })
                .collect();
        }
        if rest[i..].starts_with("::") && rest[i + 2..].starts_with(is_ident) {
            i += 2;
            continue;
        }
        return vec![segments];
    }
}

/// The members of a `{...}` use group, split at its top-level commas.
fn split_group(body: &str) -> Vec<String> {
    let (mut out, mut depth, mut current) = (Vec::new(), 0, String::new());
    for c in body.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut current).trim().to_string());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current.trim().to_string());
    out.into_iter().filter(|m| !m.is_empty()).collect()
}

/// What each directory module re-exports: (module, name) -> the path it re-exports.
type Reexports = BTreeMap<(Vec<String>, String), Vec<String>>;

/// The `pub use` lines of `mod.rs` and `lib.rs` files: a facade, not an import of their
/// own, but what a child's `super::Name` really names.
fn reexports(mods: &BTreeMap<Vec<String>, (String, String)>) -> Reexports {
    let mut out = Reexports::new();
    for (me, (rel, code)) in mods {
        if !(rel.ends_with("mod.rs") || rel == "lib.rs") {
            continue;
        }
        for line in code.lines().filter_map(|l| l.trim().strip_prefix("pub use ")) {
            let (base, line) = match line.strip_prefix("crate::") {
                Some(rest) => (vec![], rest),
                None => (me.clone(), line),
            };
            for path in paths_at(line, 0) {
                if let Some(name) = path.last() {
                    out.insert((me.clone(), name.clone()), [base.clone(), path.clone()].concat());
                }
            }
        }
    }
    out
}

/// The module file a path names: the longest prefix of it that is a module, or, when that
/// module only re-exports the next name, the module that defines it.
fn resolve(mods: &BTreeMap<Vec<String>, (String, String)>, again: &Reexports, path: &[String]) -> Option<Vec<String>> {
    let n = (0..=path.len()).rev().find(|n| mods.contains_key(&path[..*n]))?;
    let module = path[..n].to_vec();
    if let Some(target) = path.get(n).and_then(|name| again.get(&(module.clone(), name.clone())))
        && target.as_slice() != path
    {
        let rest = &path[n + 1..];
        return resolve(mods, again, &[target.clone(), rest.to_vec()].concat()).or(Some(module));
    }
    Some(module)
}

/// Which module files each module file imports from.
fn file_imports() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mods = modules();
    let again = reexports(&mods);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (me, (rel, code)) in &mods {
        let is_dir_module = rel.ends_with("mod.rs") || rel == "lib.rs";
        let parent: Vec<String> = if me.is_empty() { vec![] } else { me[..me.len() - 1].to_vec() };
        let mut named = Vec::new();
        for (prefix, base) in [("crate::", vec![]), ("super::", parent), ("self::", me.clone())] {
            for (at, _) in code.match_indices(prefix) {
                if code[..at].ends_with(is_ident) || code[..at].ends_with(':') {
                    continue;
                }
                named.extend(paths_at(code, at + prefix.len()).into_iter().map(|p| [base.clone(), p].concat()));
            }
        }
        // A directory module naming its own children outside `mod` and `pub use` lines.
        if is_dir_module {
            for line in code.lines().map(str::trim) {
                if line.starts_with("pub use") || line.contains("mod ") {
                    continue;
                }
                for child in mods.keys().filter(|k| k.len() == me.len() + 1 && k.starts_with(me)) {
                    let word = format!("{}::", child.last().unwrap());
                    for (at, _) in line.match_indices(&word) {
                        if !line[..at].ends_with(is_ident) && !line[..at].ends_with(':') {
                            named.push(child.clone());
                        }
                    }
                }
            }
        }
        let targets = named.iter().filter_map(|p| resolve(&mods, &again, p)).filter(|t| t != me).collect();
        edges.insert(me.clone(), targets);
    }
    edges
}

/// The modules of `src/lib.rs`'s map, in its order.
fn map_order() -> Vec<String> {
    let lib = std::fs::read_to_string(format!("{SRC}/lib.rs")).unwrap();
    lib.lines().filter_map(|l| l.strip_prefix("//! - [`")?.split('`').next().map(str::to_string)).collect()
}

#[test]
fn every_module_is_on_the_map_and_imports_only_modules_listed_before_it() {
    let order = map_order();
    let lib = std::fs::read_to_string(format!("{SRC}/lib.rs")).unwrap();
    let declared: BTreeSet<String> =
        lib.lines().filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';').map(str::to_string)).collect();
    assert_eq!(order.iter().cloned().collect::<BTreeSet<_>>(), declared, "src/lib.rs's map lists every module once");
    assert_eq!(order.len(), declared.len(), "no module is listed twice: {order:?}");
    let rank = |m: &str| order.iter().position(|o| o == m);
    let mut wrong = Vec::new();
    for (from, targets) in file_imports() {
        let Some(top) = from.first() else { continue };
        for to in targets.iter().filter_map(|t| t.first()).filter(|t| *t != top) {
            if rank(to) >= rank(top) {
                wrong.push(format!("{} imports {to}", from.join("/")));
            }
        }
    }
    assert!(wrong.is_empty(), "imports that point up the map (or off it): {wrong:#?}");
}

#[test]
fn no_two_files_import_each_other_even_round_a_loop() {
    let edges = file_imports();
    // Depth-first search; a file met again while still on the path closes a loop.
    fn visit(
        at: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        path: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
        loops: &mut Vec<String>,
    ) {
        if let Some(i) = path.iter().position(|p| p == at) {
            let names: Vec<String> = path[i..].iter().chain([at]).map(|p| p.join("/")).collect();
            loops.push(names.join(" -> "));
            return;
        }
        if !done.insert(at.clone()) {
            return;
        }
        path.push(at.clone());
        for next in edges.get(at).into_iter().flatten() {
            visit(next, edges, path, done, loops);
        }
        path.pop();
    }
    let (mut done, mut loops) = (BTreeSet::new(), Vec::new());
    for file in edges.keys() {
        visit(file, &edges, &mut Vec::new(), &mut done, &mut loops);
    }
    assert!(loops.is_empty(), "files that import each other: {loops:#?}");
    assert!(edges.len() > 50, "the source was read ({} files)", edges.len());
}

#[test]
fn the_import_reader_sees_groups_nested_paths_and_children() {
    let code = "use crate::a::{b::C, d, e::{f, g::H}};\nfn x() { crate::k::m(); }";
    let at = code.find("crate::").unwrap() + "crate::".len();
    let found = paths_at(code, at);
    let show: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(show, ["a::b::C", "a::d", "a::e::f", "a::e::g::H"]);
    let at = code.rfind("crate::").unwrap() + "crate::".len();
    assert_eq!(paths_at(code, at), vec![vec!["k".to_string(), "m".to_string()]]);
    let group = "use super::{error::SyncError, pass};";
    let found: Vec<String> = paths_at(group, "use super::".len()).iter().map(|p| p.join("::")).collect();
    assert_eq!(found, ["error::SyncError", "pass"]);
}

#[test]
fn a_name_a_directory_module_re_exports_resolves_to_the_file_that_defines_it() {
    let mods = modules();
    let again = reexports(&mods);
    let path = |s: &str| s.split("::").map(String::from).collect::<Vec<_>>();
    assert_eq!(resolve(&mods, &again, &path("sync::Context")), Some(path("sync::context")));
    assert_eq!(resolve(&mods, &again, &path("state::LeftBehindRecord")), Some(path("state::checkpoints")));
    assert_eq!(resolve(&mods, &again, &path("source::walker::Walk")), Some(path("source::walker")));
}
