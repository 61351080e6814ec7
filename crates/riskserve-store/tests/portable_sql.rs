//! Keeps the crate's SQL portable: engine-specific text may appear only in the engine's own backend module.
//!
//! Every `src/**/*.rs` file is split into code, comments and string literals and searched for what only SQLite
//! understands (or what names it), and for `?` bind placeholders in SQL literals (PostgreSQL reads only `$N`).
//! `src/backend/sqlite.rs` is exempt; `src/backend.rs`, which dispatches to the engines, may name them but holds
//! no engine SQL either.

use std::path::{Path, PathBuf};

/// Text that belongs to SQLite only: statements and clauses, functions, the implicit row id, sqlx's
/// `?`-writing query builder. Matched without regard to case, in code, comments and literals alike.
const SQLITE_ONLY: &[(&str, Match)] = &[
    ("PRAGMA", Match::Word),
    ("IMMEDIATE", Match::Word),
    ("EXCLUSIVE", Match::Word),
    ("AUTOINCREMENT", Match::Word),
    ("STRICT", Match::Word),
    ("WITHOUT ROWID", Match::Word),
    ("ROWID", Match::Word),
    ("INSERT OR", Match::Word),
    ("REPLACE INTO", Match::Word),
    ("LIMIT -1", Match::Word),
    ("GLOB", Match::Word),
    ("IFNULL", Match::Word),
    ("GROUP_CONCAT", Match::Word),
    ("last_insert_rowid", Match::Text),
    ("strftime", Match::Text),
    ("julianday", Match::Text),
    ("datetime(", Match::Text),
    ("unixepoch(", Match::Text),
    ("QueryBuilder", Match::Text),
];

/// The engine's name, in any case and inside any identifier (`SqliteRow`, `sqlx::sqlite`, "SQLite's").
const ENGINE_NAME: &str = "sqlite";

/// The one file allowed everything.
const ENGINE_MODULE: &str = "backend/sqlite.rs";
/// The dispatcher: may name the engine, nothing more.
const DISPATCHER: &str = "backend.rs";

#[derive(Clone, Copy)]
enum Match {
    /// Not part of a longer word (`STRICT` is found, `strictly` is not).
    Word,
    /// Anywhere.
    Text,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Code,
    Comment,
    Literal,
}

/// A run of source text of one kind, with the line it starts on.
struct Segment {
    kind: Kind,
    line: usize,
    text: String,
}

/// Splits Rust source into code, comments (`//`, `/* */`) and string literals (`"…"`, `r#"…"#`, `b"…"`, contents
/// only). Char literals (`'"'`) and lifetimes (`'a`) stay code. Enough Rust for this crate's sources, not a parser.
fn segments(source: &str) -> Vec<Segment> {
    let chars: Vec<char> = source.chars().collect();
    let mut out: Vec<Segment> = Vec::new();
    let mut line = 1;
    let mut index = 0;
    let mut push = |kind: Kind, line: usize, text: String| match out.last_mut() {
        Some(last) if last.kind == kind && kind == Kind::Code => last.text.push_str(&text),
        _ => out.push(Segment { kind, line, text }),
    };
    let is_ident = |character: char| character.is_alphanumeric() || character == '_';
    while index < chars.len() {
        let start_line = line;
        let here = chars[index];
        let next = chars.get(index + 1).copied();
        let (kind, end, content) = if here == '/' && next == Some('/') {
            let end = chars[index..].iter().position(|&c| c == '\n').map_or(chars.len(), |offset| index + offset);
            (Kind::Comment, end, (index, end))
        } else if here == '/' && next == Some('*') {
            let (mut depth, mut end) = (1, index + 2);
            while end < chars.len() && depth > 0 {
                if chars[end] == '/' && chars.get(end + 1) == Some(&'*') {
                    depth += 1;
                    end += 2;
                } else if chars[end] == '*' && chars.get(end + 1) == Some(&'/') {
                    depth -= 1;
                    end += 2;
                } else {
                    end += 1;
                }
            }
            (Kind::Comment, end, (index, end))
        } else if here == '"' {
            let mut end = index + 1;
            while end < chars.len() && chars[end] != '"' {
                end += if chars[end] == '\\' { 2 } else { 1 };
            }
            (Kind::Literal, (end + 1).min(chars.len()), (index + 1, end.min(chars.len())))
        } else if (here == 'r' || (here == 'b' && next == Some('r')))
            && (index == 0 || !is_ident(chars[index - 1]))
            && raw_string_hashes(&chars, index + if here == 'b' { 2 } else { 1 }).is_some()
        {
            let open = index + if here == 'b' { 2 } else { 1 };
            let hashes = raw_string_hashes(&chars, open).unwrap_or(0);
            let body = open + hashes + 1;
            let closing: Vec<char> = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            let end = (body..chars.len()).find(|&at| chars[at..].starts_with(&closing)).unwrap_or(chars.len());
            (Kind::Literal, (end + closing.len()).min(chars.len()), (body, end))
        } else if here == '\'' {
            // A char literal ('x', '\n', '"'), else a lifetime or label.
            let end = if next == Some('\\') {
                chars[index + 2..].iter().position(|&c| c == '\'').map_or(chars.len(), |offset| index + 3 + offset)
            } else if chars.get(index + 2) == Some(&'\'') {
                index + 3
            } else {
                index + 1
            };
            (Kind::Code, end, (index, end))
        } else {
            (Kind::Code, index + 1, (index, index + 1))
        };
        let text: String = chars[content.0..content.1].iter().collect();
        line += chars[index..end].iter().filter(|&&c| c == '\n').count();
        push(kind, start_line, text);
        index = end;
    }
    out
}

/// At `at`: `#…#"` opens a raw string; the number of `#`.
fn raw_string_hashes(chars: &[char], at: usize) -> Option<usize> {
    let hashes = chars[at.min(chars.len())..].iter().take_while(|&&c| c == '#').count();
    (chars.get(at + hashes) == Some(&'"')).then_some(hashes)
}

/// Where `needle` occurs in `haystack`, ignoring ASCII case; with `Match::Word`, only where it is not part of a
/// longer identifier.
fn occurs(haystack: &str, needle: &str, how: Match) -> bool {
    let (haystack, needle) = (haystack.to_ascii_lowercase(), needle.to_ascii_lowercase());
    let is_ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    haystack.match_indices(&needle).any(|(at, _)| match how {
        Match::Text => true,
        Match::Word => {
            !is_ident(haystack[..at].chars().next_back()) && !is_ident(haystack[at + needle.len()..].chars().next())
        }
    })
}

/// A string literal that is SQL: it has one of these words, upper case as this crate writes SQL.
fn is_sql(literal: &str) -> bool {
    ["SELECT", "INSERT", "UPDATE", "DELETE", "VALUES", "WHERE", "SET", "LIMIT"].iter().any(|keyword| {
        literal.match_indices(keyword).any(|(at, _)| {
            let before = literal[..at].chars().next_back();
            let after = literal[at + keyword.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
    })
}

/// What is not portable in one source file, as `path:line: why`; `relative` is the path under `src/`.
fn findings(relative: &str, source: &str) -> Vec<String> {
    if relative == ENGINE_MODULE {
        return Vec::new();
    }
    let mut found = Vec::new();
    for segment in segments(source) {
        let place = format!("src/{relative}:{}", segment.line);
        for (token, how) in SQLITE_ONLY {
            if occurs(&segment.text, token, *how) {
                found.push(format!("{place}: SQLite-only `{token}` in {:?}", segment.kind));
            }
        }
        if relative != DISPATCHER && occurs(&segment.text, ENGINE_NAME, Match::Text) {
            found.push(format!("{place}: the engine is named in {:?}", segment.kind));
        }
        if segment.kind == Kind::Literal {
            let text = &segment.text;
            let placeholder =
                ["= ?", "(?", ", ?", "> ?", "< ?", "IS ?", "LIMIT ?"].iter().any(|pattern| text.contains(pattern));
            if placeholder || (is_sql(text) && text.contains('?')) {
                found.push(format!("{place}: `?` placeholder in SQL (write $1, $2, ...): {text:?}"));
            }
        }
    }
    found
}

fn rust_files(folder: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(folder).expect("a readable source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_engine_specific_sql_outside_the_engine_backend() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let relative: Vec<String> = files
        .iter()
        .map(|path| path.strip_prefix(&src).expect("under src").to_string_lossy().replace('\\', "/"))
        .collect();
    // The layout this test relies on; when it changes, so must the test.
    for expected in [ENGINE_MODULE, DISPATCHER, "metadata.rs", "audit.rs"] {
        assert!(relative.iter().any(|name| name == expected), "no src/{expected} in {relative:?}");
    }
    let mut found = Vec::new();
    for (path, name) in files.iter().zip(&relative) {
        let source = std::fs::read_to_string(path).expect("a readable source file");
        found.extend(findings(name, &source));
    }
    assert!(found.is_empty(), "engine-specific text outside src/{ENGINE_MODULE}:\n{}", found.join("\n"));
}

#[test]
fn the_check_finds_what_it_looks_for() {
    let planted = [
        ("metadata.rs", "sqlx::query(\"SELECT * FROM models WHERE name = ?\")", "placeholder"),
        ("metadata.rs", "sqlx::query(\"DELETE FROM t WHERE a = $1 AND b =?\")", "placeholder"),
        ("usage.rs", "let q = r#\"INSERT OR REPLACE INTO t VALUES ($1)\"#;", "INSERT OR"),
        ("metadata.rs", "pool.begin_with(\"BEGIN IMMEDIATE\")", "IMMEDIATE"),
        ("metadata.rs", "// PRAGMA foreign_keys = ON", "PRAGMA"),
        ("metadata.rs", "/* outer /* nested */ strftime('%s') */", "strftime"),
        ("iam.rs", "use sqlx::sqlite::SqliteRow;", "engine is named"),
        ("iam.rs", "//! Identities in SQLite.", "engine is named"),
        ("audit.rs", "sqlx::QueryBuilder::<sqlx::Any>::new(\"INSERT INTO t \")", "QueryBuilder"),
        ("backend.rs", "const BEGIN: &str = \"BEGIN IMMEDIATE\";", "IMMEDIATE"),
        ("scaling.rs", "\"SELECT last_insert_rowid()\"", "last_insert_rowid"),
        ("metrics.rs", "\"CREATE TABLE t (id INTEGER PRIMARY KEY) STRICT\"", "STRICT"),
    ];
    for (file, source, why) in planted {
        let found = findings(file, source);
        assert!(found.iter().any(|finding| finding.contains(why)), "{source:?} in {file}: {found:?}");
    }
    // Portable code, the `?` operator, char literals and lifetimes, and a dispatcher naming its engines pass.
    let clean = [
        ("metadata.rs", "let row = sqlx::query(\"SELECT * FROM models WHERE name = $1 LIMIT $2\").bind(name).await?;"),
        ("metadata.rs", "fn f<'a>(x: &'a str) -> Result<char, E> { let c = '\"'; let q = '?'; Ok(g(x)?) }"),
        ("metadata.rs", "Err(StoreError::NotFound(format!(\"model {name:?} does not exist\")))"),
        ("metadata.rs", "// Strictly speaking, immediately; a rowidentifier."),
        ("backend.rs", "mod sqlite;\n/// SQLite is the default.\nBackend::Sqlite => sqlite::BEGIN_WRITE,"),
        ("backend/sqlite.rs", "PRAGMA journal_mode = WAL; BEGIN IMMEDIATE; sqlite \"= ?\""),
    ];
    for (file, source) in clean {
        assert_eq!(findings(file, source), Vec::<String>::new(), "{source:?} in {file}");
    }
    // Line numbers point at the offending line.
    let found =
        findings("metadata.rs", "fn a() {}\n// fine\nlet s = \"multi\nline\";\nsqlx::query(\"UPDATE t SET a = ?\")");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("src/metadata.rs:5:"), "{found:?}");
}
