//! The layout the README describes (issue 26 item 1): no file under
//! `src/http/` or `src/telemetry/` imports a file that imports it back,
//! directly or through others, and telemetry knows nothing of HTTP state.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

/// Every `.rs` file under `dir`, as its module path (`http::public::token`).
fn modules(root: &Path, dir: &Path, out: &mut BTreeMap<Module, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            modules(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).unwrap().with_extension("");
            let mut m: Module = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if m.last().is_some_and(|l| l == "mod") {
                m.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Unit tests may reach anywhere.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default().to_owned();
            out.insert(m, code);
        }
    }
}

/// The known module a path like `crate::http::public::token::direct` names.
fn resolve(parts: &[String], known: &BTreeMap<Module, String>) -> Option<Module> {
    (1..=parts.len())
        .rev()
        .map(|i| parts[..i].to_vec())
        .find(|m| known.contains_key(m))
}

fn imports(me: &Module, code: &str, known: &BTreeMap<Module, String>) -> BTreeSet<Module> {
    let mut deps = BTreeSet::new();
    let words = |rest: &str| -> Vec<String> {
        rest.split("::")
            .map(|w| {
                w.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|w| !w.is_empty())
            .collect()
    };
    for (i, _) in code.match_indices("crate::") {
        if let Some(m) = resolve(&words(&code[i + 7..]), known) {
            deps.insert(m);
        }
    }
    for (i, _) in code.match_indices("super::") {
        if code[..i].ends_with("super::") {
            continue;
        }
        let mut base: Module = me[..me.len() - 1].to_vec();
        base.extend(words(&code[i + 7..]));
        if let Some(m) = resolve(&base, known) {
            deps.insert(m);
        }
    }
    deps.remove(me);
    deps
}

#[test]
fn http_and_telemetry_files_import_each_other_in_one_direction_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut known = BTreeMap::new();
    modules(&src, &src.join("http"), &mut known);
    modules(&src, &src.join("telemetry"), &mut known);
    assert!(known.len() > 20, "the http and telemetry trees: {:?}", known.keys());
    let graph: BTreeMap<Module, BTreeSet<Module>> = known
        .iter()
        .map(|(m, code)| (m.clone(), imports(m, code, &known)))
        .collect();
    // Depth-first search for a path back to where it started.
    fn back_to(
        start: &Module,
        at: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        path: &mut Vec<Module>,
        seen: &mut BTreeSet<Module>,
    ) -> bool {
        for next in &graph[at] {
            path.push(next.clone());
            if next == start || (seen.insert(next.clone()) && back_to(start, next, graph, path, seen)) {
                return true;
            }
            path.pop();
        }
        false
    }
    for start in graph.keys() {
        let mut path = vec![start.clone()];
        let found = back_to(start, start, &graph, &mut path, &mut BTreeSet::new());
        let shown: Vec<String> = path.iter().map(|m| m.join("::")).collect();
        assert!(!found, "an import cycle: {}", shown.join(" -> "));
    }
    for (m, deps) in &graph {
        if m[0] == "telemetry" {
            assert!(
                deps.iter()
                    .all(|d| d[0] != "http" || d.get(1).is_some_and(|p| p == "paths")),
                "{} imports HTTP: {deps:?}",
                m.join("::")
            );
        }
    }
}
