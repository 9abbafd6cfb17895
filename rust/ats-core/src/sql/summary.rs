//! Operation name, collection (table) names and the OpenTelemetry
//! `db.query.summary`, extracted from the token stream without a parser.
//!
//! Conventions (OpenTelemetry database semantic conventions):
//! * `operation` (`db.operation.name`): the statement's leading keyword,
//!   upper case (`SELECT`, `INSERT`, `CREATE`, `BEGIN`, ...). A `WITH` query
//!   reports its main statement's operation; `EXPLAIN ...` reports `EXPLAIN`;
//!   for several statements, the first one's. Empty when unknown.
//! * `tables`: names after FROM, JOIN, INTO, UPDATE, TABLE, TRUNCATE, COPY,
//!   USING (DELETE/MERGE) and `CREATE INDEX .. ON`, in query order,
//!   schema-qualified as written, quotes removed, de-duplicated (first
//!   occurrence wins). CTE names are not tables. At most [`MAX_TABLES`].
//! * `summary` (`db.query.summary`): operations and their targets in order of
//!   appearance, e.g. `SELECT users orders`, `INSERT shipping_details SELECT
//!   orders`, `SELECT SELECT orders customers` (subquery in FROM). A target is
//!   not repeated within one operation. Cut at a word boundary to at most
//!   [`MAX_SUMMARY`] bytes.
//!
//! The extractor is a small state machine with one frame per open
//! parenthesis, so `EXTRACT(YEAR FROM ts)` or `x IS DISTINCT FROM y` are not
//! mistaken for a FROM clause. Memory is bounded: nesting beyond
//! [`MAX_DEPTH`] is only counted.

use super::keywords::{w, Word, QUERY, SKIP, STMT};
use super::lexer::TokenKind;

pub const MAX_TABLES: usize = 64;
pub const MAX_SUMMARY: usize = 255;
const MAX_DEPTH: usize = 256;
const MAX_CTES: usize = 64;

/// Strip identifier quotes and undo doubled quote characters.
pub(crate) fn unquote(q: &str) -> String {
    let (body, close) =
        if let Some(rest) = q.strip_prefix("U&\"").or_else(|| q.strip_prefix("u&\"")) {
            (rest, '"')
        } else {
            match q.as_bytes().first() {
                Some(b'"') => (&q[1..], '"'),
                Some(b'`') => (&q[1..], '`'),
                Some(b'[') => (&q[1..], ']'),
                _ => return q.to_string(),
            }
        };
    let body = body.strip_suffix(close).unwrap_or(body);
    if close == ']' {
        return body.to_string();
    }
    let mut out = String::with_capacity(body.len());
    let mut prev_quote = false;
    for ch in body.chars() {
        if ch == close && prev_quote {
            prev_quote = false;
            continue;
        }
        prev_quote = ch == close;
        out.push(ch);
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Op(Word),
    Table(usize),
}

#[derive(Clone, Copy, Default)]
struct Frame {
    /// Operation of the statement this frame holds (None: not yet / not a query).
    op: Option<Word>,
    /// FROM/JOIN/INTO here introduce tables (false inside function arguments).
    is_query: bool,
    /// No token seen yet in this frame.
    first: bool,
    /// Opened right after FROM/JOIN: a derived table or parenthesised join.
    from_subquery: bool,
    /// Argument list of a table function in FROM (`generate_series(1, 3) g`).
    from_function: bool,
    /// Inside `WITH` before the main statement.
    in_with: bool,
    expect_cte: bool,
    /// After EXPLAIN: the next query operation is the explained statement.
    in_explain: bool,
    saw_index: bool,
}

impl Frame {
    fn statement() -> Self {
        Frame {
            is_query: true,
            first: true,
            ..Frame::default()
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum After {
    None,
    Table,
    ExpectAlias,
    Alias,
}

struct Name {
    text: String,
    from_like: bool,
    expect_part: bool,
}

/// Incremental extractor; feed every token in order, then [`finish`](Self::finish).
pub(crate) struct SummaryBuilder {
    frames: Vec<Frame>,
    overflow: usize,
    parts: Vec<Part>,
    summary_len: usize,
    last_op_part: usize,
    tables: Vec<String>,
    ctes: Vec<String>,
    first_top_op: Option<Word>,
    first_any_op: Option<Word>,
    expect: Option<bool>, // Some(from_like)
    list: bool,
    name: Option<Name>,
    after: After,
    pending_from_subquery: bool,
    pending_from_function: bool,
    prev: [Option<Word>; 2],
}

impl SummaryBuilder {
    pub(crate) fn new() -> Self {
        SummaryBuilder {
            frames: vec![Frame::statement()],
            overflow: 0,
            parts: Vec::new(),
            summary_len: 0,
            last_op_part: 0,
            tables: Vec::new(),
            ctes: Vec::new(),
            first_top_op: None,
            first_any_op: None,
            expect: None,
            list: false,
            name: None,
            after: After::None,
            pending_from_subquery: false,
            pending_from_function: false,
            prev: [None, None],
        }
    }

    fn push_part(&mut self, p: Part, len: usize) {
        // Everything past the summary cap is invisible: stop growing.
        if self.summary_len > MAX_SUMMARY {
            return;
        }
        self.summary_len += len + 1;
        self.parts.push(p);
    }

    fn push_op(&mut self, op: Word) {
        self.last_op_part = self.parts.len();
        self.push_part(Part::Op(op), op.name().len());
    }

    fn commit_name(&mut self, name: Name) {
        if name.text.is_empty() {
            return;
        }
        if !self.ctes.is_empty()
            && !name.text.contains('.')
            && self.ctes.contains(&name.text.to_lowercase())
        {
            return;
        }
        let idx = match self.tables.iter().position(|t| *t == name.text) {
            Some(i) => i,
            None => {
                if self.tables.len() >= MAX_TABLES {
                    return;
                }
                self.tables.push(name.text);
                self.tables.len() - 1
            }
        };
        let start = self.last_op_part.min(self.parts.len());
        if !self.parts[start..].contains(&Part::Table(idx)) {
            let len = self.tables[idx].len();
            self.push_part(Part::Table(idx), len);
        }
    }

    fn expect_table(&mut self, from_like: bool) {
        self.expect = Some(from_like);
        self.list = true;
        self.after = After::None;
    }

    fn start_op(&mut self, op: Word) {
        let depth = self.frames.len() - 1 + self.overflow;
        if self.first_any_op.is_none() && op != w::WITH {
            self.first_any_op = Some(op);
        }
        let Some(f) = self.frames.last_mut() else {
            return;
        };
        if op == w::WITH {
            f.in_with = true;
            f.expect_cte = true;
            f.is_query = true;
            return;
        }
        let nested_main = f.in_with || f.in_explain;
        f.in_with = false;
        f.in_explain = op == w::EXPLAIN;
        if op == w::EXPLAIN {
            // Let the explained statement be recognised as a leading keyword.
            f.first = true;
        }
        if f.op.is_none() || nested_main {
            f.op = Some(op);
            if depth == 0 && self.first_top_op.is_none() {
                self.first_top_op = Some(op);
            }
        }
        if depth > 0 && op.has(QUERY) {
            f.is_query = true;
        }
        // A nested VALUES list is data, not an operation worth summarising.
        if !(depth > 0 && op == w::VALUES) {
            self.push_op(op);
        }
        match op {
            w::UPDATE
            | w::INSERT
            | w::REPLACE
            | w::UPSERT
            | w::TRUNCATE
            | w::COPY
            | w::MERGE
            | w::TABLE
            | w::LOCK => self.expect_table(false),
            _ => {}
        }
    }

    /// Feed one token. `sw` is its entry in the word table, if any.
    pub(crate) fn feed(&mut self, kind: TokenKind, text: &str, sw: Option<Word>) {
        let kw = sw.filter(|w| w.is_kw());
        self.step(kind, text, kw, sw);
        self.prev = [sw, self.prev[0]];
    }

    fn step(&mut self, kind: TokenKind, text: &str, kw: Option<Word>, sw: Option<Word>) {
        use TokenKind::*;
        // 1. A (possibly qualified) table name under construction.
        if let Some(mut name) = self.name.take() {
            if name.expect_part {
                if matches!(kind, Word | QuotedIdent) {
                    name.text.push('.');
                    if kind == QuotedIdent {
                        name.text.push_str(&unquote(text));
                    } else {
                        name.text.push_str(text);
                    }
                    name.expect_part = false;
                    self.name = Some(name);
                    return;
                }
                // `t.*` or junk: not a name.
            } else if kind == Dot {
                name.expect_part = true;
                self.name = Some(name);
                return;
            } else if matches!(kind, LParen) && name.from_like {
                // `FROM generate_series(...)`: a function, not a table.
                self.after = After::None;
                self.pending_from_function = true;
            } else {
                self.commit_name(name);
                self.after = After::Table;
            }
        }
        // 2. Alias / list continuation after a table.
        match self.after {
            After::None => {}
            After::Table | After::Alias => {
                let was = self.after;
                self.after = After::None;
                if kind == Comma && self.list {
                    self.expect = Some(true);
                    return;
                }
                if was == After::Table && kind == Word && kw.is_none() && sw.is_none() {
                    // Bare alias (`FROM users u`): only right after the table.
                    self.after = After::Alias;
                    return;
                }
                if was == After::Table && kind == Word && kw == Some(w::AS) {
                    self.after = After::ExpectAlias;
                    return;
                }
            }
            After::ExpectAlias => {
                self.after = After::None;
                if (kind == Word && kw.is_none()) || kind == QuotedIdent {
                    self.after = After::Alias;
                    return;
                }
            }
        }
        // 3. Right after a table-introducing keyword.
        if let Some(from_like) = self.expect {
            match kind {
                Word => {
                    if sw.is_some_and(|w| w.has(SKIP)) {
                        return;
                    }
                    self.expect = None;
                    if kw.is_none() && sw != Some(w::STRAIGHT_JOIN) {
                        self.name = Some(Name {
                            text: text.to_string(),
                            from_like,
                            expect_part: false,
                        });
                        return;
                    }
                }
                QuotedIdent => {
                    self.expect = None;
                    self.name = Some(Name {
                        text: unquote(text),
                        from_like,
                        expect_part: false,
                    });
                    return;
                }
                LParen => {
                    self.expect = None;
                    self.pending_from_subquery = from_like;
                }
                _ => self.expect = None,
            }
        }
        // 4. Structure and keywords.
        match kind {
            LParen | LBracket => {
                let from_sub = std::mem::take(&mut self.pending_from_subquery);
                let from_function = std::mem::take(&mut self.pending_from_function);
                if let Some(f) = self.frames.last_mut() {
                    f.first = false;
                }
                if self.frames.len() >= MAX_DEPTH {
                    self.overflow += 1;
                    return;
                }
                self.frames.push(Frame {
                    is_query: from_sub,
                    first: true,
                    from_subquery: from_sub,
                    from_function,
                    ..Frame::default()
                });
                if from_sub {
                    // Parenthesised join: `FROM (a JOIN b)`.
                    self.expect_table(true);
                }
            }
            RParen | RBracket => {
                self.expect = None;
                if self.overflow > 0 {
                    self.overflow -= 1;
                } else if self.frames.len() > 1 {
                    if let Some(f) = self.frames.pop() {
                        if f.from_subquery || f.from_function {
                            self.after = After::Table;
                            self.list = true;
                        }
                    }
                }
            }
            Semicolon => {
                if self.frames.len() == 1 && self.overflow == 0 {
                    self.frames[0] = Frame::statement();
                    self.expect = None;
                    self.after = After::None;
                }
            }
            Word => self.word(text, sw),
            _ => {
                if let Some(f) = self.frames.last_mut() {
                    f.first = false;
                    if kind == Comma && f.in_with {
                        f.expect_cte = true;
                    }
                }
            }
        }
    }

    fn word(&mut self, text: &str, sw: Option<Word>) {
        if self.overflow > 0 {
            return;
        }
        let nested = self.frames.len() > 1;
        let Some(f) = self.frames.last_mut() else {
            return;
        };
        let was_first = f.first;
        f.first = false;
        if was_first {
            // Inside parentheses only a query can start (`(SELECT ..)`), so
            // `(SET ..` or `(END` are never operations there.
            if let Some(op) = sw.filter(|w| {
                if nested {
                    w.has(QUERY) || *w == w::WITH
                } else {
                    w.has(STMT)
                }
            }) {
                let f_in_explain = f.in_explain;
                if f_in_explain && matches!(op, w::ANALYZE | w::VERBOSE) {
                    f.first = true;
                    return;
                }
                self.start_op(op);
                return;
            }
        }
        if f.in_with {
            if sw == Some(w::RECURSIVE) {
                return;
            }
            if f.expect_cte {
                f.expect_cte = false;
                if self.ctes.len() < MAX_CTES {
                    self.ctes.push(text.to_lowercase());
                }
                return;
            }
            if let Some(op) = sw.filter(|w| w.has(QUERY)) {
                self.start_op(op);
            }
            return;
        }
        if !f.is_query {
            return;
        }
        let Some(w) = sw else { return };
        let op = f.op;
        match w {
            w::SELECT => self.start_op_nested(w::SELECT),
            w::FROM => {
                let distinct_from = self.prev[0] == Some(w::DISTINCT)
                    && matches!(self.prev[1], Some(w::IS | w::NOT));
                if !distinct_from && op != Some(w::COPY) {
                    self.expect_table(true);
                }
            }
            w::JOIN | w::STRAIGHT_JOIN => self.expect_table(true),
            w::USING if matches!(op, Some(w::DELETE | w::MERGE)) => self.expect_table(true),
            w::INTO if matches!(op, Some(w::INSERT | w::REPLACE | w::MERGE | w::UPSERT)) => {
                self.expect_table(false)
            }
            w::TABLE | w::TABLES
                if matches!(
                    self.prev[0],
                    Some(
                        w::CREATE
                            | w::DROP
                            | w::ALTER
                            | w::TRUNCATE
                            | w::LOCK
                            | w::TEMP
                            | w::TEMPORARY
                            | w::UNLOGGED
                            | w::GLOBAL
                            | w::LOCAL
                            | w::EXTERNAL
                            | w::VIRTUAL
                            | w::FOREIGN
                            | w::RENAME
                    )
                ) =>
            {
                self.expect_table(false)
            }
            w::INDEX if op == Some(w::CREATE) => f.saw_index = true,
            w::ON if op == Some(w::CREATE) && f.saw_index => {
                f.saw_index = false;
                self.expect_table(false);
            }
            _ => {}
        }
    }

    /// A SELECT inside a statement (`INSERT .. SELECT`, `UNION SELECT`, `AS SELECT`).
    fn start_op_nested(&mut self, op: Word) {
        if self.first_any_op.is_none() {
            self.first_any_op = Some(op);
        }
        self.push_op(op);
    }

    /// (operation, tables, summary)
    pub(crate) fn finish(mut self) -> (String, Vec<String>, String) {
        if let Some(name) = self.name.take() {
            if !name.expect_part {
                self.commit_name(name);
            }
        }
        let operation = self
            .first_top_op
            .or(self.first_any_op)
            .map_or("", Word::name)
            .to_string();
        let mut summary = String::new();
        for p in &self.parts {
            let s: &str = match *p {
                Part::Op(o) => o.name(),
                Part::Table(i) => self.tables.get(i).map(String::as_str).unwrap_or(""),
            };
            let need = if summary.is_empty() {
                s.len()
            } else {
                s.len() + 1
            };
            if summary.len() + need > MAX_SUMMARY {
                if summary.is_empty() {
                    // One over-long name: cut at a char boundary.
                    let mut cut = MAX_SUMMARY;
                    while !s.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    summary.push_str(&s[..cut]);
                }
                break;
            }
            if !summary.is_empty() {
                summary.push(' ');
            }
            summary.push_str(s);
        }
        (operation, self.tables, summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquote_forms() {
        assert_eq!(unquote("\"a\"\"b\""), "a\"b");
        assert_eq!(unquote("`x``y`"), "x`y");
        assert_eq!(unquote("[dbo]"), "dbo");
        assert_eq!(unquote("U&\"x\""), "x");
        assert_eq!(unquote("plain"), "plain");
    }
}
