//! Keeps the crate's SQL portable: engine-specific text may appear only in the engine's own backend module.
//!
//! Every `src/**/*.rs` file is split into code, comments and string literals and searched for what only SQLite
//! understands (or what names it), for what only PostgreSQL understands (its functions, `LISTEN`/`NOTIFY`, serial
//! types, `::` casts, sqlx's PostgreSQL driver types), and for `?` bind placeholders in SQL literals (PostgreSQL
//! reads only `$N`). SQLite's text belongs in `src/backend/sqlite.rs`, which also holds the one rewrite of its
//! migrations into PostgreSQL's DDL and so may use the PostgreSQL type words that rewrite produces; PostgreSQL's
//! text belongs in `src/backend/postgres.rs` (and the replicas' coordination, which only PostgreSQL has). The
//! dispatcher `src/backend.rs` and the engine modules may name the engines but hold no other engine's SQL.

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

/// Text that belongs to PostgreSQL only: its functions and settings, `LISTEN`/`NOTIFY`, serial and byte types,
/// collations, isolation levels, `ILIKE`, sqlx's PostgreSQL driver. (`::` casts and `pg_` names in SQL literals, and
/// `Pg…` driver types in code, are found by [`postgres_findings`].)
const POSTGRES_ONLY: &[(&str, Match)] = &[
    ("pg_advisory", Match::Text),
    ("pg_try_advisory", Match::Text),
    ("pg_notify", Match::Text),
    ("LISTEN", Match::UpperWord),
    ("UNLISTEN", Match::UpperWord),
    ("NOTIFY", Match::UpperWord),
    ("BIGSERIAL", Match::Word),
    ("SMALLSERIAL", Match::Word),
    ("SERIAL", Match::Word),
    ("BYTEA", Match::Word),
    ("COLLATE", Match::Word),
    ("ISOLATION LEVEL", Match::Word),
    ("ILIKE", Match::Word),
    ("search_path", Match::Text),
    ("lock_timeout", Match::Text),
    ("current_database", Match::Text),
    ("sqlx::postgres", Match::Text),
];

/// SQLite's name, in any case and inside any identifier (`SqliteRow`, `sqlx::sqlite`, "SQLite's").
const ENGINE_NAME: &str = "sqlite";

/// The SQLite backend: all of SQLite's text, and the rewrite of its migrations into PostgreSQL's DDL.
const ENGINE_MODULE: &str = "backend/sqlite.rs";
/// What the rewrite in [`ENGINE_MODULE`] writes: PostgreSQL's words for SQLite's types and collation.
const POSTGRES_DDL_WORDS: &[&str] = &["BIGSERIAL", "BYTEA", "COLLATE"];
/// The files allowed PostgreSQL's text: its backend, and the replicas' coordination (a change feed and a leader lock
/// on PostgreSQL's own primitives; replicas exist only there).
const POSTGRES_MODULES: &[&str] = &["backend/postgres.rs", "coordination.rs"];
/// The dispatcher: may name the engines, nothing more.
const DISPATCHER: &str = "backend.rs";

#[derive(Clone, Copy)]
enum Match {
    /// Not part of a longer word (`STRICT` is found, `strictly` is not).
    Word,
    /// A whole word in upper case, as this crate writes SQL (`NOTIFY` is found, a method `notify` is not).
    UpperWord,
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

/// Where `needle` occurs in `haystack`, ignoring ASCII case (but with `Match::UpperWord`); with `Match::Word` and
/// `Match::UpperWord`, only where it is not part of a longer identifier.
fn occurs(haystack: &str, needle: &str, how: Match) -> bool {
    let (haystack, needle) = match how {
        Match::UpperWord => (haystack.to_string(), needle.to_string()),
        Match::Word | Match::Text => (haystack.to_ascii_lowercase(), needle.to_ascii_lowercase()),
    };
    let is_ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    haystack.match_indices(&needle).any(|(at, _)| match how {
        Match::Text => true,
        Match::Word | Match::UpperWord => {
            !is_ident(haystack[..at].chars().next_back()) && !is_ident(haystack[at + needle.len()..].chars().next())
        }
    })
}

/// PostgreSQL's text beyond [`POSTGRES_ONLY`] in one segment: a `::` cast or a `pg_` name in a SQL literal, a `Pg…`
/// type of sqlx's PostgreSQL driver in code.
fn postgres_findings(segment: &Segment) -> Vec<String> {
    let mut found = Vec::new();
    match segment.kind {
        Kind::Literal if is_sql(&segment.text) => {
            if segment.text.contains("::") {
                found.push("PostgreSQL-only `::` cast".to_string());
            }
            if segment.text.to_ascii_lowercase().contains("pg_") {
                found.push("PostgreSQL-only `pg_` name".to_string());
            }
        }
        Kind::Code => {
            let chars: Vec<char> = segment.text.chars().collect();
            for (at, window) in chars.windows(3).enumerate() {
                let starts_word = at == 0 || !(chars[at - 1].is_alphanumeric() || chars[at - 1] == '_');
                if starts_word && window[0] == 'P' && window[1] == 'g' && window[2].is_ascii_uppercase() {
                    let name: String = chars[at..].iter().take_while(|c| c.is_alphanumeric() || **c == '_').collect();
                    found.push(format!("PostgreSQL driver type `{name}`"));
                }
            }
        }
        _ => {}
    }
    found
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
    let sqlite_module = relative == ENGINE_MODULE;
    let postgres_module = POSTGRES_MODULES.contains(&relative);
    let may_name_engines = relative == DISPATCHER || sqlite_module || relative.starts_with("backend/");
    let mut found = Vec::new();
    for segment in segments(source) {
        let place = format!("src/{relative}:{}", segment.line);
        if !sqlite_module {
            for (token, how) in SQLITE_ONLY {
                if occurs(&segment.text, token, *how) {
                    found.push(format!("{place}: SQLite-only `{token}` in {:?}", segment.kind));
                }
            }
        }
        if !postgres_module {
            for (token, how) in POSTGRES_ONLY {
                let rewritten = sqlite_module && POSTGRES_DDL_WORDS.contains(token);
                if !rewritten && occurs(&segment.text, token, *how) {
                    found.push(format!("{place}: PostgreSQL-only `{token}` in {:?}", segment.kind));
                }
            }
            for why in postgres_findings(&segment) {
                found.push(format!("{place}: {why} in {:?}", segment.kind));
            }
        }
        if !may_name_engines && occurs(&segment.text, ENGINE_NAME, Match::Text) {
            found.push(format!("{place}: the engine is named in {:?}", segment.kind));
        }
        if segment.kind == Kind::Literal && !sqlite_module {
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
    for expected in [ENGINE_MODULE, POSTGRES_MODULES[0], DISPATCHER, "metadata.rs", "audit.rs"] {
        assert!(relative.iter().any(|name| name == expected), "no src/{expected} in {relative:?}");
    }
    let mut found = Vec::new();
    for (path, name) in files.iter().zip(&relative) {
        let source = std::fs::read_to_string(path).expect("a readable source file");
        found.extend(findings(name, &source));
    }
    assert!(found.is_empty(), "engine-specific text outside the engines' modules:\n{}", found.join("\n"));
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
        ("backend/postgres.rs", "const BEGIN: &str = \"BEGIN IMMEDIATE\";", "IMMEDIATE"),
        ("backend/postgres.rs", "sqlx::query(\"SELECT * FROM t WHERE a = ?\")", "placeholder"),
        // PostgreSQL's text outside its module.
        ("metadata.rs", "sqlx::query(\"SELECT pg_advisory_xact_lock($1)\")", "pg_advisory"),
        ("iam.rs", "sqlx::query(\"SELECT pg_notify($1, $2)\")", "pg_notify"),
        ("audit.rs", "sqlx::query(\"NOTIFY riskserve_changes\")", "NOTIFY"),
        ("audit.rs", "// then LISTEN riskserve_changes", "LISTEN"),
        ("scaling.rs", "\"CREATE TABLE t (id BIGSERIAL PRIMARY KEY)\"", "BIGSERIAL"),
        ("scaling.rs", "\"CREATE TABLE t (id SERIAL PRIMARY KEY)\"", "SERIAL"),
        ("usage.rs", "sqlx::query(\"SELECT minute::text FROM usage_minutes WHERE a = $1\")", "`::` cast"),
        ("metadata.rs", "sqlx::query(\"SELECT * FROM models WHERE name ILIKE $1\")", "ILIKE"),
        ("metadata.rs", "sqlx::query(\"SELECT * FROM models ORDER BY name COLLATE \\\"C\\\"\")", "COLLATE"),
        ("metrics.rs", "sqlx::query(\"SELECT pg_sleep(1) FROM t WHERE a = $1\")", "`pg_` name"),
        ("metadata.rs", "use sqlx::postgres::PgListener;", "sqlx::postgres"),
        ("metadata.rs", "fn listen(listener: &mut PgListener) {}", "driver type `PgListener`"),
        ("backend.rs", "const BEGIN: &str = \"BEGIN ISOLATION LEVEL READ COMMITTED\";", "ISOLATION LEVEL"),
        ("backend/sqlite.rs", "const LOCK: &str = \"SELECT pg_advisory_xact_lock(1)\";", "pg_advisory"),
        ("backend/sqlite.rs", "// a NOTIFY in the same transaction", "NOTIFY"),
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
        // The rewrite of the migrations writes PostgreSQL's type words; the PostgreSQL backend has all of its text.
        (
            "backend/sqlite.rs",
            "\"INTEGER\" => \"BIGINT\", \"BLOB\" => \"BYTEA\", \"TEXT\" => \"TEXT COLLATE \\\"C\\\"\", BIGSERIAL",
        ),
        (
            "backend/postgres.rs",
            "sqlx::query(\"SELECT pg_notify($1, $2)\"); // NOTIFY, LISTEN; PgListener; sqlite::x()",
        ),
        ("backend/postgres.rs", "const BEGIN: &str = \"BEGIN ISOLATION LEVEL READ COMMITTED\"; SET lock_timeout"),
        ("coordination.rs", "use sqlx::postgres::{PgConnection, PgListener}; \"SELECT pg_try_advisory_lock($1)\""),
        ("backend.rs", "mod postgres;\n/// PostgreSQL, a server.\nBackend::Postgres => postgres::notify(t).await,"),
        // A method called notify, a Rust path, a format string, a type that merely starts with Pg.
        ("metadata.rs", "self.backend.notify(&mut transaction, \"models\", name).await?; Page { items }"),
        ("metadata.rs", "let x = std::mem::take(&mut y); format!(\"{name:?} and {:?}\", z); Pgood; APgX"),
        ("audit.rs", "// PostgreSQL cannot type a parameter that only meets `IS NULL`"),
        ("lib.rs", "\"the store {:?} is not a postgres:// URL\""),
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
