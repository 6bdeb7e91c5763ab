//! The maps of the code agree with the tree: every `mod.rs` names each of its rooms,
//! docs/internals.md's "Layout of the code" lists every top-level module and nothing that
//! is gone, and no file or function has grown past what a reader takes in at once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every `.rs` file under `src/`.
fn sources() -> Vec<PathBuf> {
    let (mut out, mut dirs) = (Vec::new(), vec![Path::new(ROOT).join("src")]);
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The child modules a file declares (`mod x;` or `pub mod x;`), test modules left out.
fn declared(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut after_cfg_test = false;
    for line in text.lines().map(str::trim) {
        let decl = line.strip_prefix("pub mod ").or_else(|| line.strip_prefix("mod "));
        if let Some(name) = decl.and_then(|d| d.strip_suffix(';'))
            && !after_cfg_test
        {
            out.insert(name.to_string());
        }
        after_cfg_test = line.starts_with("#[cfg(test)]") || (after_cfg_test && line.starts_with("#[path"));
    }
    out
}

#[test]
fn every_mod_rs_names_each_of_its_rooms_in_its_opening_comment() {
    let mut missing = Vec::new();
    for file in sources().into_iter().filter(|f| f.ends_with("mod.rs")) {
        let text = std::fs::read_to_string(&file).unwrap();
        let doc: String = text.lines().filter(|l| l.starts_with("//!")).collect::<Vec<_>>().join("\n");
        for room in declared(&text) {
            if !doc.contains(&format!("`{room}`")) {
                missing.push(format!("{} does not name its room `{room}`", file.strip_prefix(ROOT).unwrap().display()));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// The `src/...` entries at the start of the lines of docs/internals.md's layout block.
fn layout_entries() -> Vec<String> {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("docs/internals.md")).unwrap();
    let section = doc.split("## Layout of the code").nth(1).expect("docs/internals.md has its layout");
    let block = section.split("```").nth(1).expect("the layout is a code block");
    block
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.starts_with("src/"))
        .map(String::from)
        .collect()
}

#[test]
fn the_layout_in_docs_internals_lists_every_top_level_module_and_nothing_gone() {
    let entries = layout_entries();
    let mut top: BTreeSet<String> = BTreeSet::new();
    for entry in std::fs::read_dir(Path::new(ROOT).join("src")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            top.insert(format!("src/{name}/"));
        } else if name != "main.rs" && !name.ends_with("_tests.rs") {
            top.insert(format!("src/{name}"));
        }
    }
    let listed: BTreeSet<String> = entries.iter().cloned().collect();
    let unlisted: Vec<_> = top.difference(&listed).collect();
    assert!(unlisted.is_empty(), "docs/internals.md's layout lacks {unlisted:?}");
    let gone: Vec<_> = entries.iter().filter(|e| !Path::new(ROOT).join(e).exists()).collect();
    assert!(gone.is_empty(), "docs/internals.md's layout lists what is not in the tree: {gone:?}");
}

#[test]
fn no_source_file_is_over_450_lines_and_no_function_over_70() {
    let mut big = Vec::new();
    for file in sources() {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let name = file.strip_prefix(ROOT).unwrap().display().to_string();
        if lines.len() > 450 {
            big.push(format!("{name}: {} lines", lines.len()));
        }
        for (i, line) in lines.iter().enumerate() {
            let body = line.trim_start();
            let indent = &line[..line.len() - body.len()];
            let signature = ["fn ", "pub fn ", "async fn ", "pub async fn ", "pub(crate) fn ", "pub(super) fn "]
                .iter()
                .any(|p| body.starts_with(p));
            if !signature || body.ends_with(';') {
                continue;
            }
            let end = format!("{indent}}}");
            if let Some(len) = lines[i + 1..].iter().position(|l| *l == end)
                && len + 2 > 70
            {
                big.push(format!("{name}:{}: a function of {} lines", i + 1, len + 2));
            }
        }
    }
    assert!(big.is_empty(), "too long to read at once:\n{}", big.join("\n"));
}
