//! The docs live in the repository: every link in README.md and `docs/` leads to a file
//! that exists, every path the code and docs cite exists, every section they cite by name
//! is there, and nothing cites a file kept outside the repository.

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The text files that cite paths: docs, code, scripts, units, configs.
fn cited_in() -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from(ROOT).join("README.md"), PathBuf::from(ROOT).join("BENCHMARKS.md")];
    let mut dirs: Vec<PathBuf> = [
        "docs",
        "src",
        "tests",
        "bench",
        "reports",
        "contrib",
        "packaging",
        "systemd",
        "config",
        ".ci",
        "fuzz",
        "examples",
        "scripts",
    ]
    .iter()
    .map(|d| PathBuf::from(ROOT).join(d))
    .collect();
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                // Fixtures, the fuzzer's corpus and its build stay as they were made.
                if !matches!(name.as_str(), "fixtures" | "corpus" | "target" | "artifacts" | "seeds") {
                    dirs.push(path);
                }
            } else if [".rs", ".md", ".sh", ".py", ".sql", ".yml", ".toml", ".service", ".txt", "run"]
                .iter()
                .any(|ext| name.ends_with(ext))
            {
                files.push(path);
            }
        }
    }
    files
}

fn rel(path: &Path) -> String {
    path.strip_prefix(ROOT).unwrap().to_string_lossy().into_owned()
}

/// The relative targets of the Markdown links `[text](target)` in `text`, anchors cut.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let target: String = rest.chars().take_while(|c| *c != ')' && !c.is_whitespace()).collect();
        let target = target.split('#').next().unwrap_or_default().to_string();
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            out.push(target);
        }
    }
    out
}

#[test]
fn every_link_in_the_docs_leads_to_a_file_of_the_repository() {
    let mut broken = Vec::new();
    for file in cited_in().into_iter().filter(|f| f.extension().is_some_and(|e| e == "md")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for target in links(&text) {
            if !file.parent().unwrap().join(&target).exists() {
                broken.push(format!("{} links to {target}", rel(&file)));
            }
        }
    }
    assert!(broken.is_empty(), "links to nothing:\n{}", broken.join("\n"));
}

/// Repository paths named in `text`: a known top-level folder, then a file with an extension.
fn cited_paths(text: &str) -> Vec<String> {
    const TOPS: [&str; 12] = [
        "docs/",
        "src/",
        "tests/",
        "bench/",
        "reports/",
        "contrib/",
        "packaging/",
        "systemd/",
        "config/",
        "fuzz/",
        "examples/",
        "scripts/",
    ];
    let mut out = Vec::new();
    for (at, _) in text.char_indices() {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || matches!(c, '/' | '_' | '-' | '.' | '{' | '$')) {
            continue;
        }
        let Some(top) = TOPS.iter().find(|t| text[at..].starts_with(**t)) else { continue };
        let path: String = text[at..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '/' | '_' | '-' | '.' | '@'))
            .collect();
        let path = path.trim_end_matches('.');
        let name = path.rsplit('/').next().unwrap_or_default();
        if path.len() > top.len() && name.contains('.') && !path.contains('*') {
            out.push(path.to_string());
        }
    }
    out
}

#[test]
fn every_path_the_code_and_docs_cite_exists() {
    let mut missing = Vec::new();
    for file in cited_in().into_iter().filter(|f| !f.ends_with("tests/it/docs.rs")) {
        let text = std::fs::read_to_string(&file).unwrap();
        // What the contract promises and this build does not have yet says so on its line.
        let built: String = text.lines().filter(|l| !l.contains("(planned)")).collect::<Vec<_>>().join("\n");
        for path in cited_paths(&built) {
            // `config/mod.rs` in a comment under src/ names src/config/mod.rs.
            let found = [Path::new(ROOT).join(&path), Path::new(ROOT).join("src").join(&path)];
            if !found.iter().any(|p| p.exists()) {
                missing.push(format!("{} cites {path}", rel(&file)));
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "cited but not in the repository:\n{}", missing.join("\n"));
}

#[test]
fn nothing_cites_a_file_kept_outside_the_repository() {
    // The developers' brief files and the API pages they came with are not in a clone; their
    // content lives in docs/ (contract.md, api/).
    let outside = ["CONTRACT.md", "TOOLCHAIN.md", "DESIGN.md", "shared/", "`state.rs`", "see `state.rs`"];
    let mut found = Vec::new();
    for file in cited_in() {
        if rel(&file) == "tests/it/docs.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for name in outside {
            if text.contains(name) {
                found.push(format!("{} cites {name}", rel(&file)));
            }
        }
        for (at, _) in text.match_indices("api/list_task.md").chain(text.match_indices("api/auth-and-errors.md")) {
            let in_docs = text[..at].ends_with("docs/") || rel(&file).starts_with("docs/");
            if !in_docs && !text[..at].ends_with("](") {
                found.push(format!("{} cites {} without docs/", rel(&file), &text[at..at + 16]));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The section names cited as `docs/X.md, "Heading"` or `README.md, "Heading"`.
fn cited_sections(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for doc in [
        "README.md",
        "docs/operating.md",
        "docs/configuration.md",
        "docs/analysts.md",
        "docs/exactness.md",
        "docs/internals.md",
    ] {
        for (at, _) in text.match_indices(doc) {
            let rest = text[at + doc.len()..].trim_start_matches([',', ':', ' ', '(']).trim_start_matches('\\');
            if let Some(quoted) = rest.strip_prefix('"') {
                let heading: String = quoted.chars().take_while(|c| *c != '"' && *c != '\\').collect();
                // A heading is one line of words; anything else is code that names the file.
                if !heading.is_empty() && !heading.contains('\n') && !heading.contains(['(', ')', ',']) {
                    out.push((doc.to_string(), heading));
                }
            }
        }
    }
    out
}

#[test]
fn every_section_cited_by_name_is_a_heading_of_its_document() {
    let mut missing = Vec::new();
    for file in cited_in().into_iter().filter(|f| !f.ends_with("tests/it/docs.rs")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (doc, heading) in cited_sections(&text) {
            let target = std::fs::read_to_string(Path::new(ROOT).join(&doc)).unwrap();
            if !target.lines().any(|l| l.starts_with('#') && l.trim_start_matches('#').trim() == heading) {
                missing.push(format!("{} cites {doc}, \"{heading}\"", rel(&file)));
            }
        }
    }
    assert!(missing.is_empty(), "sections cited but not there:\n{}", missing.join("\n"));
}

#[test]
fn the_front_door_stays_short_and_names_every_document() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    assert!(readme.lines().count() <= 150, "README.md is the front door; the manual lives in docs/");
    for doc in std::fs::read_dir(Path::new(ROOT).join("docs")).unwrap() {
        let name = doc.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            assert!(readme.contains(&format!("(docs/{name})")), "README.md does not link docs/{name}");
        }
    }
}
