//! The house, checked: no module of a crate imports one that imports it back, every file a
//! doc comment or a document names exists, and every invariant the code cites is one
//! `docs/invariants.md` documents, with tests that exist. Text only: no tool, no network.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// Every file below `dir` (relative to the root) whose name ends with one of `endings`,
/// leaving out build output and installed tools.
fn files(dir: &str, endings: &[&str]) -> Vec<PathBuf> {
    files_in(&root().join(dir), endings)
}

/// [`files`] below any directory.
fn files_in(dir: &Path, endings: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !matches!(name.as_str(), "target" | "node_modules" | ".git" | ".tools") {
                    pending.push(path);
                }
            } else if endings.iter().any(|ending| name.ends_with(ending)) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The source files of the repository's Rust code.
fn rust_files() -> Vec<PathBuf> {
    ["crates", "bin", "tests"].iter().flat_map(|dir| files(dir, &[".rs"])).collect()
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap().to_string_lossy().into_owned()
}

/// The crate a file belongs to: its directory under `crates/` or `bin/`, or `tests`; the root
/// for the documents.
fn crate_dir(path: &Path) -> PathBuf {
    let relative = path.strip_prefix(root()).unwrap();
    let parts: Vec<_> = relative.components().map(|part| part.as_os_str().to_owned()).collect();
    match parts.first().and_then(|first| first.to_str()) {
        Some("tests") => root().join("tests"),
        Some("crates" | "bin") if parts.len() > 2 => root().join(&parts[0]).join(&parts[1]),
        _ => root(),
    }
}

// ---- Module cycles ----

/// A crate's modules: the path of each (`store::commit`, `` for the root) and its file.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut modules = BTreeMap::new();
    for file in files_in(src, &[".rs"]) {
        let inside = file.strip_prefix(src).unwrap().with_extension("");
        let mut parts: Vec<String> =
            inside.components().map(|part| part.as_os_str().to_string_lossy().into()).collect();
        if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
            parts.pop();
        }
        modules.insert(parts.join("::"), file);
    }
    modules
}

/// The code of a file outside its tests: up to a `#[cfg(test)]` module at the end.
fn code_outside_tests(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("#[cfg(test)]")
            && lines.peek().is_some_and(|next| next.starts_with("mod tests"))
        {
            break;
        }
        let line = line.trim_start();
        if !line.starts_with("//") {
            code.push_str(line);
            code.push('\n');
        }
    }
    code
}

/// Every path a `use` item names, its brace groups expanded: `use a::{b, c::d};` is `a::b`
/// and `a::c::d`.
fn use_paths(item: &str) -> Vec<String> {
    fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
        let tree = tree.trim();
        let Some(open) = tree.find('{') else {
            let path = tree.split(" as ").next().unwrap().split("_as_").next().unwrap().trim();
            if !path.is_empty() {
                out.push(format!("{prefix}{path}"));
            }
            return;
        };
        let prefix = format!("{prefix}{}", &tree[..open]);
        let inner = &tree[open + 1..tree.rfind('}').unwrap()];
        let (mut depth, mut start) = (0, 0);
        for (at, char) in inner.char_indices() {
            match char {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&prefix, &inner[start..at], out);
                    start = at + 1;
                }
                _ => {}
            }
        }
        expand(&prefix, &inner[start..], out);
    }
    let mut out = Vec::new();
    expand("", item, &mut out);
    out
}

/// The paths a module's code names through `crate::`, `super::` or `self::`: in its `use`
/// items and inline.
fn named_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut item: Option<String> = None;
    for line in code.lines() {
        let start = ["use ", "pub use ", "pub(crate) use ", "pub(super) use "]
            .iter()
            .find_map(|start| line.strip_prefix(start));
        match (&mut item, start) {
            (Some(item), _) => item.push_str(line),
            (None, Some(rest)) => item = Some(rest.to_owned()),
            (None, None) => continue,
        }
        if let Some(complete) = item.take_if(|item| item.contains(';')) {
            let tree = complete.split(';').next().unwrap_or_default().replace(" as ", "_as_");
            // A line of a string that happens to begin with "use " is no use item.
            let path_like = |char: char| char.is_alphanumeric() || "_:{},* ".contains(char);
            if tree.chars().all(path_like) && tree.matches('{').count() == tree.matches('}').count()
            {
                paths.extend(use_paths(&tree));
            }
        }
    }
    let ident = |char: char| char.is_alphanumeric() || char == '_' || char == ':';
    for start in ["crate::", "super::", "self::"] {
        for (at, _) in code.match_indices(start) {
            if code[..at].chars().last().is_some_and(ident) {
                continue;
            }
            let end = code[at..].find(|char: char| !ident(char)).map_or(code.len(), |e| at + e);
            paths.push(code[at..end].to_owned());
        }
    }
    paths
}

/// The module a path from module `from` lands in: the longest prefix that is a module.
fn target(from: &str, path: &str, modules: &BTreeMap<String, PathBuf>) -> Option<String> {
    let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<&str> = if from.is_empty() { Vec::new() } else { from.split("::").collect() };
    match segments.first().copied() {
        Some("crate") => base.clear(),
        Some("self") => {}
        Some("super") => {
            while segments.first() == Some(&"super") {
                base.pop();
                segments.remove(0);
            }
            segments.insert(0, "self");
        }
        _ => return None,
    }
    segments.remove(0);
    let mut module = base.join("::");
    for segment in segments {
        let deeper =
            if module.is_empty() { segment.to_owned() } else { format!("{module}::{segment}") };
        if !modules.contains_key(&deeper) {
            break;
        }
        module = deeper;
    }
    Some(module)
}

fn is_within(inner: &str, outer: &str) -> bool {
    outer.is_empty() || inner == outer || inner.starts_with(&format!("{outer}::"))
}

/// The cycles among a crate's modules, each as the modules in it. A module naming its own
/// ancestors or descendants does not count: a parent declares and re-exports its children,
/// and children use what their parent holds.
fn cycles(src: &Path) -> Vec<Vec<String>> {
    let modules = modules(src);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in &modules {
        if module.split("::").any(|part| part == "tests" || part == "test_utils") {
            continue;
        }
        let code = code_outside_tests(&fs::read_to_string(file).unwrap());
        for path in named_paths(&code) {
            let Some(to) = target(module, &path, &modules) else { continue };
            if !is_within(module, &to) && !is_within(&to, module) {
                edges.entry(module.clone()).or_default().insert(to);
            }
        }
    }
    // Strongly connected components (Tarjan), the ones of more than one module.
    struct Search<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        found: Vec<Vec<String>>,
    }
    impl Search<'_> {
        fn visit(&mut self, node: &str) {
            let at = self.index.len();
            self.index.insert(node.to_owned(), at);
            self.low.insert(node.to_owned(), at);
            self.stack.push(node.to_owned());
            for next in self.edges.get(node).into_iter().flatten() {
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node.to_owned(), low);
                } else if self.stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node.to_owned(), low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    let done = top == node;
                    component.push(top);
                    if done {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut search = Search {
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for module in edges.keys() {
        if !search.index.contains_key(module) {
            search.visit(module);
        }
    }
    search.found
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let mut found = Vec::new();
    for dir in files("crates", &["Cargo.toml"]).iter().chain(&files("bin", &["Cargo.toml"])) {
        let src = dir.parent().unwrap().join("src");
        for cycle in cycles(&src) {
            found.push(format!("{}: {}", relative(&src), cycle.join(" <-> ")));
        }
    }
    assert!(found.is_empty(), "modules that import each other:\n{}", found.join("\n"));
}

#[test]
fn the_cycle_check_finds_a_cycle_and_expands_brace_groups() {
    let paths = use_paths("super::{Store, entries::{EntryWriter, next_seq}, window as w}");
    assert_eq!(
        paths,
        [
            "super::Store",
            "super::entries::EntryWriter",
            "super::entries::next_seq",
            "super::window"
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    fs::create_dir_all(src.join("store")).unwrap();
    fs::write(src.join("lib.rs"), "mod store;\n").unwrap();
    fs::write(src.join("store/mod.rs"), "mod a;\nmod b;\npub use a::A;\n").unwrap();
    fs::write(src.join("store/a.rs"), "use super::b::B;\npub struct A;\n").unwrap();
    fs::write(src.join("store/b.rs"), "pub struct B(crate::store::a::A);\n").unwrap();
    assert_eq!(cycles(src), [["store::a", "store::b"]]);
}

// ---- Files named in docs ----

/// The backquoted words of `text` that name a file or a folder: a path ending with a known
/// extension (a `:line` after it is left out), or with `/`.
fn named_files(text: &str) -> Vec<String> {
    const ENDINGS: [&str; 10] =
        [".rs", ".md", ".json", ".sh", ".toml", ".svg", ".sol", ".yml", ".yaml", ".service"];
    let path_char = |char: char| char.is_ascii_alphanumeric() || "_./-".contains(char);
    let mut named = Vec::new();
    for (index, part) in text.split('`').enumerate() {
        if index % 2 == 0 {
            continue;
        }
        let word = part.split(':').next().unwrap_or_default();
        // Build output is not in the repository.
        let built = word.starts_with("target/");
        if word.is_empty() || !word.chars().all(path_char) || word.starts_with('.') || built {
            continue;
        }
        if ENDINGS.iter().any(|ending| word.ends_with(ending))
            || (word.ends_with('/') && word.len() > 1)
        {
            named.push(word.to_owned());
        }
    }
    named
}

/// Whether `word`, named in `file`, is a file or folder there: from the root, the file's
/// crate, its source folder or the file's own folder; or, shortened, the end of a path in the crate
/// (for code) or the repository (for documents).
fn exists(word: &str, file: &Path, everything: &[String]) -> bool {
    let krate = crate_dir(file);
    let places = [root(), krate.clone(), krate.join("src"), file.parent().unwrap().to_owned()];
    if places.iter().any(|place| place.join(word.trim_end_matches('/')).exists()) {
        return true;
    }
    let scope = if file.extension().is_some_and(|ending| ending == "rs") {
        format!("{}/", relative(&krate))
    } else {
        String::new()
    };
    let word = word.trim_end_matches('/');
    everything
        .iter()
        .filter(|path| path.starts_with(&scope))
        .any(|path| path.ends_with(&format!("/{word}")) || path.contains(&format!("/{word}/")))
}

#[test]
fn every_file_a_doc_names_exists() {
    let everything: Vec<String> = ["crates", "bin", "tests", "docs", "scripts", "rpc-spec", ".ci"]
        .iter()
        .flat_map(|dir| files(dir, &[""]))
        .map(|path| relative(&path))
        .collect();
    let mut missing = Vec::new();
    let mut checked = 0;
    for file in rust_files() {
        let text = fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if !(line.starts_with("//!") || line.starts_with("///")) {
                continue;
            }
            for word in named_files(line) {
                checked += 1;
                if !exists(&word, &file, &everything) {
                    missing.push(format!("{}:{}: `{word}`", relative(&file), number + 1));
                }
            }
        }
    }
    let documents = [files("docs", &[".md"]), vec![root().join("README.md")]].concat();
    for file in documents {
        for (number, line) in fs::read_to_string(&file).unwrap().lines().enumerate() {
            for word in named_files(line) {
                checked += 1;
                if !exists(&word, &file, &everything) {
                    missing.push(format!("{}:{}: `{word}`", relative(&file), number + 1));
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} names found: the scan is broken");
    assert!(missing.is_empty(), "named but not there:\n{}", missing.join("\n"));
}

#[test]
fn a_named_file_that_is_gone_is_found() {
    let everything = vec!["crates/rpc/src/consumers/mod.rs".to_owned()];
    let doc = root().join("crates/rpc/src/public.rs");
    assert_eq!(named_files("see `consumers.rs` and `places.rs:12`"), ["consumers.rs", "places.rs"]);
    assert!(!exists("consumers.rs", &doc, &everything), "a folder now, not a file");
    assert!(exists("consumers/", &doc, &everything));
    assert!(!exists("consumers/places.rs", &root().join("docs/architecture.md"), &everything));
}

// ---- Invariants ----

/// The invariants `docs/invariants.md` documents (its `##` headings) and the tests it names.
fn documented_invariants() -> (Vec<String>, Vec<String>) {
    let text = fs::read_to_string(root().join("docs/invariants.md")).unwrap();
    let names = text.lines().filter_map(|line| line.strip_prefix("## ")).map(str::to_owned);
    let mut tests = Vec::new();
    let mut in_tests = false;
    for line in text.lines() {
        in_tests = line.starts_with("- Tests:") || (in_tests && line.starts_with("  "));
        if in_tests {
            for (index, part) in line.split('`').enumerate() {
                if index % 2 == 1 && part.contains('_') && !part.contains('/') {
                    tests.push(part.to_owned());
                }
            }
        }
    }
    (names.collect(), tests)
}

#[test]
fn every_invariant_the_code_cites_is_documented_with_tests_that_exist() {
    let (names, tests) = documented_invariants();
    assert!(names.len() > 10 && tests.len() > 20, "{names:?} {tests:?}");
    let mut unknown = Vec::new();
    let mut defined = BTreeSet::new();
    for file in rust_files() {
        let text = fs::read_to_string(&file).unwrap();
        // Comments joined, so that a name wrapped over two lines reads as one.
        let comments: String = text
            .lines()
            .map(str::trim_start)
            .filter_map(|line| line.strip_prefix("//"))
            .map(|line| line.trim_start_matches(['!', '/']).trim())
            .collect::<Vec<_>>()
            .join(" ");
        for (at, _) in comments.match_indices("invariant: ") {
            let cited = &comments[at + "invariant: ".len()..];
            if !names.iter().any(|name| cited.starts_with(name.as_str())) {
                let end = cited.find(')').unwrap_or(cited.len().min(40));
                unknown.push(format!("{}: {}", relative(&file), &cited[..end]));
            }
        }
        for line in text.lines() {
            if let Some(rest) = line
                .trim_start()
                .strip_prefix("async fn ")
                .or_else(|| line.trim_start().strip_prefix("fn "))
            {
                defined.insert(rest.split(['(', '<']).next().unwrap().to_owned());
            }
        }
    }
    assert!(unknown.is_empty(), "invariants cited but not documented:\n{}", unknown.join("\n"));
    let absent: Vec<&String> = tests.iter().filter(|test| !defined.contains(*test)).collect();
    assert!(absent.is_empty(), "tests docs/invariants.md names that do not exist: {absent:?}");
}
