//! The layering of `docs/design.md`, enforced: every `crate::MODULE` a
//! file under `src/` names must be allowed by the table between
//! `<!-- imports:begin -->` and `<!-- imports:end -->`; every module must
//! have a row; the rows form no cycle; and inside a module no two files
//! import each other (directly or around a loop).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The rule table: module -> modules it may import.
fn rules(design: &str) -> Graph {
    let start = design
        .find("<!-- imports:begin -->")
        .expect("imports:begin marker");
    let end = design.find("<!-- imports:end -->").expect("imports:end marker");
    let mut rules = Graph::new();
    let mut above: Vec<String> = Vec::new();
    for line in design[start..end].lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_string();
        let may = cells[3];
        let allowed: BTreeSet<String> = if may == "every module above" {
            above.iter().cloned().collect()
        } else {
            may.split(',')
                .map(|m| m.trim().trim_matches('`').to_string())
                .filter(|m| !m.is_empty())
                .collect()
        };
        above.push(name.clone());
        rules.insert(name, allowed);
    }
    rules
}

/// The code without comments (line comments and doc comments): a
/// `crate::x` in prose is not an import.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `prefix::name` in `code` (names are lowercase identifiers).
fn paths_after<'a>(code: &'a str, prefix: &'a str) -> impl Iterator<Item = String> + 'a {
    code.match_indices(prefix).filter_map(move |(i, _)| {
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            return None;
        }
        let rest = &code[i + prefix.len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        (!name.is_empty()).then_some(name)
    })
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// (module, file stem within it or "" for its root file, code) of every
/// library file.
fn sources() -> Vec<(String, String, String)> {
    let src = repo().join("src");
    rust_files(&src)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "main.rs" && n != "lib.rs"))
        .map(|p| {
            let rel = p.strip_prefix(&src).unwrap();
            let parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
            let module = parts[0].trim_end_matches(".rs").to_string();
            let stem = match parts.len() {
                1 => String::new(),
                _ => parts[1].trim_end_matches(".rs").to_string(),
            };
            let code = code_of(&std::fs::read_to_string(&p).unwrap());
            (module, stem, code)
        })
        .collect()
}

/// The module-level imports of the library.
fn module_imports(files: &[(String, String, String)]) -> Graph {
    let mut g = Graph::new();
    for (module, _, code) in files {
        let deps = g.entry(module.clone()).or_default();
        deps.extend(paths_after(code, "crate::").filter(|d| d != module));
    }
    g
}

/// The imports among the files of one module (`super::x` from a file
/// directly in it, `crate::module::x`), leaving out its root file (`mod.rs`).
fn file_imports(files: &[(String, String, String)], module: &str) -> Graph {
    let mut g = Graph::new();
    for (m, stem, code) in files
        .iter()
        .filter(|(m, s, _)| m == module && !s.is_empty() && s != "mod")
    {
        let code = code.split("#[cfg(test)]").next().unwrap_or(code);
        let deps = g.entry(stem.clone()).or_default();
        deps.extend(paths_after(code, "super::").filter(|d| d != stem && d != "super"));
        deps.extend(paths_after(code, &format!("crate::{m}::")).filter(|d| d != stem));
    }
    g
}

/// Edges that break the rules.
fn violations(rules: &Graph, imports: &Graph) -> Vec<String> {
    let mut bad = Vec::new();
    for (module, deps) in imports {
        let Some(allowed) = rules.get(module) else {
            bad.push(format!("src/{module}: no row in docs/design.md's import table"));
            continue;
        };
        for d in deps.iter().filter(|d| !allowed.contains(*d)) {
            bad.push(format!(
                "{module} imports {d}, which docs/design.md does not allow"
            ));
        }
    }
    bad
}

/// A cycle in `g`, if there is one.
fn cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        n: &str,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            match state.get(d.as_str()) {
                Some(1) => {
                    let from = stack.iter().position(|s| s == d).unwrap();
                    let mut c = stack[from..].to_vec();
                    c.push(d.clone());
                    return Some(c);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(g, d, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if !state.contains_key(n.as_str())
            && let Some(c) = visit(g, n, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

#[test]
fn modules_import_only_what_design_md_allows() {
    let design = std::fs::read_to_string(repo().join("docs/design.md")).unwrap();
    let rules = rules(&design);
    assert!(
        rules.len() > 15,
        "the import table was not found whole: {rules:?}"
    );
    let files = sources();
    let imports = module_imports(&files);
    let bad = violations(&rules, &imports);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    for module in rules.keys() {
        assert!(
            imports.contains_key(module),
            "docs/design.md has a row for {module}, which src/ does not have"
        );
    }
    assert_eq!(cycle(&rules), None, "the rules of docs/design.md form a cycle");
}

#[test]
fn no_two_files_of_a_module_import_each_other() {
    let files = sources();
    let modules: BTreeSet<&String> = files.iter().map(|(m, _, _)| m).collect();
    for m in modules {
        let g = file_imports(&files, m);
        assert_eq!(cycle(&g), None, "src/{m}: its files import each other in a loop");
    }
}

/// The checker itself: a forbidden import, a missing row and a cycle are
/// each caught (so the tests above cannot pass by finding nothing).
#[test]
fn the_checker_catches_what_it_must() {
    let design = "<!-- imports:begin -->\n| module | owns | may import |\n|---|---|---|\n| `report` | x | |\n| `bolt` | x | `report` |\n| `cli` | x | every module above |\n<!-- imports:end -->";
    let rules = rules(design);
    assert_eq!(
        rules["cli"],
        BTreeSet::from(["report".to_string(), "bolt".to_string()])
    );
    let files = vec![
        (
            "bolt".to_string(),
            String::new(),
            "use crate::report::Finding;\nlet x = crate::cli::run;".to_string(),
        ),
        (
            "report".to_string(),
            String::new(),
            code_of("// crate::bolt in a comment\nuse std::fmt;"),
        ),
        ("wire".to_string(), String::new(), String::new()),
    ];
    let bad = violations(&rules, &module_imports(&files));
    assert_eq!(
        bad,
        [
            "bolt imports cli, which docs/design.md does not allow",
            "src/wire: no row in docs/design.md's import table"
        ]
    );
    let looped = vec![
        (
            "mvcc".to_string(),
            "index".to_string(),
            "use super::kv::KvError;".to_string(),
        ),
        (
            "mvcc".to_string(),
            "kv".to_string(),
            "use crate::mvcc::index::KeyIndex;".to_string(),
        ),
    ];
    assert!(cycle(&file_imports(&looped, "mvcc")).is_some());
    assert_eq!(code_of("let a = 1; // crate::cli"), "let a = 1; ");
}
