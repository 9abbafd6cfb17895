//! The normaliser: one pass over the lexer's tokens that emits the redacted
//! `text`, the fingerprint key stream and (via [`SummaryBuilder`]) the
//! operation, tables and summary.
//!
//! Output rules (all dialects):
//! * Every literal (string of any form, number, typed literal such as
//!   `DATE '2024-01-01'`, `TRUE`/`FALSE`) is written `?`. A sign directly in
//!   front of a number where no operand precedes it belongs to the literal
//!   (`= -5` → `= ?`); after an operand it is a binary operator and stays
//!   (`a-5` → `a-?`, `a - 5` → `a - ?`: spacing follows the source).
//! * `NULL` is a keyword and stays (`IS NULL` keeps its meaning).
//! * Placeholders (`?`, `?1`, `$1`, `%s`, `%(name)s`, `:name`, `@name`) are
//!   kept verbatim.
//! * Keywords are upper-cased; identifiers keep their spelling and quotes.
//! * Comments are removed; any run of whitespace/comments becomes one space;
//!   no space at the start or end. Trailing (and empty) `;` are dropped.
//! * Lists collapse: inside `IN (...)` and `ARRAY[...]`, and among the rows
//!   of `VALUES (...), (...)`, an element that has the same shape as the
//!   element kept before it is dropped, keeping the first one as written.
//!   Shape = fingerprint keys, so all literals and placeholders are alike:
//!   `IN (1, 2, 3)` → `IN (?)`, `IN ($1, $2)` → `IN ($1)`,
//!   `VALUES (1, 'a'), (2, 'b')` → `VALUES (?, ?)`,
//!   `IN ((1, 2), (3, 4))` → `IN ((?, ?))`; `IN (a, b)` stays.

use super::dialect::Dialect;
use super::fingerprint::{self, ROLL_MOD};
use super::keywords::{self, w, Word, OPERAND};
use super::lexer::{Lexer, Token, TokenKind};
use super::summary::SummaryBuilder;

/// Result of normalising one statement text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Normalized {
    /// Redacted, whitespace-collapsed statement (OTel `db.query.text`).
    pub text: String,
    /// Statement fingerprint (see [`super::fingerprint`]); render with
    /// [`crate::record::model::air_id_string`].
    pub air_id: u64,
    /// OTel `db.operation.name`, e.g. `SELECT`; empty if unknown.
    pub operation: String,
    /// Collection names in query order, de-duplicated.
    pub tables: Vec<String>,
    /// OTel `db.query.summary`, e.g. `SELECT users orders`.
    pub summary: String,
}

impl Normalized {
    /// Approximate heap + inline footprint, used by the statement cache.
    pub fn approx_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.text.capacity()
            + self.operation.capacity()
            + self.summary.capacity()
            + self
                .tables
                .iter()
                .map(|t| t.capacity() + std::mem::size_of::<String>())
                .sum::<usize>()
    }
}

const F_OPERAND: u8 = 1;
const F_IN: u8 = 2;
const F_ARRAY: u8 = 4;
const F_SEMI: u8 = 8;
const F_VALUES: u8 = 16;

/// One emitted token. Text is rendered eagerly into the output string;
/// `text_pos` lets a collapse cut both the token list and the text.
#[derive(Clone, Copy)]
struct Out {
    key: u64,
    /// Rolling hash of all keys up to and including this one.
    roll: u64,
    text_pos: u32,
    flags: u8,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    Plain,
    /// `IN (...)` / `ARRAY[...]`: elements are deduplicated.
    List,
    /// One row of a VALUES list.
    ValuesRow,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Values {
    Off,
    /// After `VALUES` or after `,` between rows; holds the kept previous row.
    ExpectRow(Option<(usize, usize)>),
    AfterRow((usize, usize)),
}

#[derive(Clone, Copy)]
struct Frame {
    kind: FrameKind,
    /// Output index of this frame's opening bracket.
    open: usize,
    elem_start: usize,
    prev_elem: Option<(usize, usize)>,
    values: Values,
}

/// Nesting deeper than this is still normalised, just not collapsed.
const MAX_FRAMES: usize = 512;

enum Render<'a> {
    Slice(&'a str),
    Upper(&'a str),
    Question,
}

struct Emitter {
    text: String,
    out: Vec<Out>,
    pows: Vec<u64>,
}

impl Emitter {
    fn push(&mut self, r: Render<'_>, space: bool, key: u64, flags: u8) {
        let text_pos = u32::try_from(self.text.len()).unwrap_or(u32::MAX);
        if space && !self.text.is_empty() {
            self.text.push(' ');
        }
        match r {
            Render::Slice(s) => self.text.push_str(s),
            Render::Upper(s) => self.text.extend(s.chars().map(|c| c.to_ascii_uppercase())),
            Render::Question => self.text.push('?'),
        }
        let prefix = self.out.last().map_or(0, |o| o.roll);
        let roll = fingerprint::roll_push(prefix, key);
        self.out.push(Out {
            key,
            roll,
            text_pos,
            flags,
        });
    }

    fn truncate(&mut self, n: usize) {
        if let Some(o) = self.out.get(n) {
            let tp = o.text_pos as usize;
            self.out.truncate(n);
            self.text.truncate(tp.min(self.text.len()));
        }
    }

    fn roll_at(&self, i: usize) -> u64 {
        if i == 0 {
            0
        } else {
            self.out.get(i - 1).map_or(0, |o| o.roll)
        }
    }

    fn pow(&mut self, n: usize) -> u64 {
        if self.pows.is_empty() {
            self.pows.push(1);
        }
        while self.pows.len() <= n {
            let last = self.pows[self.pows.len() - 1];
            self.pows
                .push(fingerprint::mulmod(last, fingerprint::ROLL_BASE));
        }
        self.pows[n]
    }

    fn range_hash(&mut self, s: usize, e: usize) -> u64 {
        let p = self.pow(e - s);
        let a = self.roll_at(e);
        let b = fingerprint::mulmod(self.roll_at(s), p);
        (a + ROLL_MOD - b) % ROLL_MOD
    }

    fn same(&mut self, a: (usize, usize), b: (usize, usize)) -> bool {
        a.1 - a.0 == b.1 - b.0 && self.range_hash(a.0, a.1) == self.range_hash(b.0, b.1)
    }

    fn last_flags(&self) -> u8 {
        self.out.last().map_or(0, |o| o.flags)
    }
}

/// A token plus its keyword classification (computed once).
#[derive(Clone, Copy)]
struct Tok {
    t: Token,
    /// Table word (keyword or summary word), if any.
    word: Option<Word>,
}

/// Pulls tokens from the lexer with one token of lookahead and feeds every
/// token, in source order, to the summary extractor.
struct Source<'a> {
    lx: Lexer<'a>,
    peeked: Option<Option<Tok>>,
    summary: SummaryBuilder,
}

impl<'a> Source<'a> {
    fn pull(&mut self) -> Option<Tok> {
        let t = self.lx.next()?;
        let text = self.lx.text(&t);
        let word = if t.kind == TokenKind::Word {
            keywords::lookup(text)
        } else {
            None
        };
        self.summary.feed(t.kind, text, word);
        Some(Tok { t, word })
    }

    fn next(&mut self) -> Option<Tok> {
        match self.peeked.take() {
            Some(p) => p,
            None => self.pull(),
        }
    }

    fn peek(&mut self) -> Option<Tok> {
        if self.peeked.is_none() {
            let p = self.pull();
            self.peeked = Some(p);
        }
        self.peeked.flatten()
    }

    fn text(&self, t: &Token) -> &'a str {
        self.lx.text(t)
    }
}

fn is_typed_literal_word(w: &str) -> bool {
    ["DATE", "TIME", "TIMESTAMP", "TIMESTAMPTZ", "INTERVAL"]
        .iter()
        .any(|k| w.eq_ignore_ascii_case(k))
}

/// Content of a quoted identifier token, without its delimiters.
fn quoted_content(q: &str) -> &str {
    let body = q
        .strip_prefix("U&")
        .or_else(|| q.strip_prefix("u&"))
        .unwrap_or(q);
    let n = body.len();
    if n >= 2 {
        body.get(1..n - 1).unwrap_or(body)
    } else {
        body
    }
}

/// Normalise one statement text. Never panics; linear in the input size.
pub fn normalize(sql: &str, dialect: Dialect) -> Normalized {
    if sql.len() >= u32::MAX as usize {
        // Positions are u32; a 4 GiB statement is redacted wholesale.
        return Normalized {
            text: "?".into(),
            air_id: fingerprint::air_id([fingerprint::param_key()]),
            ..Default::default()
        };
    }
    let mut src = Source {
        lx: Lexer::new(sql, dialect),
        peeked: None,
        summary: SummaryBuilder::new(),
    };
    // Rendered text is never longer than the input (each token renders to at
    // most its own length, one space per skipped run), so this never regrows.
    let mut em = Emitter {
        text: String::with_capacity(sql.len()),
        out: Vec::with_capacity((sql.len() / 4).clamp(16, 1 << 16)),
        pows: Vec::new(),
    };
    let mut frames: Vec<Frame> = vec![Frame {
        kind: FrameKind::Plain,
        open: 0,
        elem_start: 0,
        prev_elem: None,
        values: Values::Off,
    }];
    let mut overflow = 0usize;
    let mut scratch = Vec::new();
    let param = fingerprint::param_key();

    while let Some(Tok { t, word }) = src.next() {
        let kw = word.filter(|w| w.is_kw());
        let text = src.text(&t);
        let sp = t.space_before;

        // A VALUES list ends at the first token that does not continue it.
        if overflow == 0 {
            if let Some(top) = frames.last_mut() {
                match top.values {
                    Values::ExpectRow(_) if t.kind != TokenKind::LParen => top.values = Values::Off,
                    Values::AfterRow(_) if t.kind != TokenKind::Comma => top.values = Values::Off,
                    _ => {}
                }
            }
        }

        match t.kind {
            TokenKind::Word => {
                let next = src.peek();
                let next_is_string = next.is_some_and(|n| n.t.kind == TokenKind::String);
                if next_is_string
                    && (is_typed_literal_word(text)
                        || (dialect == Dialect::Mysql
                            && text.starts_with('_')
                            && next.is_some_and(|n| !n.t.space_before)))
                {
                    // DATE '2024-01-01', INTERVAL '1 day', _utf8mb4'x': one literal.
                    src.next();
                    em.push(Render::Question, sp, param, F_OPERAND);
                } else if matches!(kw, Some(w::TRUE | w::FALSE)) {
                    em.push(Render::Question, sp, param, F_OPERAND);
                } else {
                    let key = fingerprint::word_key(text, &mut scratch);
                    let mut flags = match kw {
                        Some(k) if !k.has(OPERAND) => 0,
                        _ => F_OPERAND,
                    };
                    match kw {
                        Some(w::IN) => flags |= F_IN,
                        Some(w::ARRAY) => flags |= F_ARRAY,
                        Some(w::VALUES) => flags |= F_VALUES,
                        _ => {}
                    }
                    let r = if kw.is_some() {
                        Render::Upper(text)
                    } else {
                        Render::Slice(text)
                    };
                    em.push(r, sp, key, flags);
                    if flags & F_VALUES != 0 && overflow == 0 {
                        if let Some(top) = frames.last_mut() {
                            top.values = Values::ExpectRow(None);
                        }
                    }
                }
            }
            TokenKind::QuotedIdent => {
                let key = fingerprint::quoted_key(quoted_content(text));
                em.push(Render::Slice(text), sp, key, F_OPERAND);
            }
            TokenKind::String | TokenKind::Number => {
                em.push(Render::Question, sp, param, F_OPERAND)
            }
            TokenKind::Placeholder => em.push(Render::Slice(text), sp, param, F_OPERAND),
            TokenKind::Op => {
                let is_sign = (text == "-" || text == "+") && em.last_flags() & F_OPERAND == 0;
                if is_sign && src.peek().is_some_and(|n| n.t.kind == TokenKind::Number) {
                    src.next();
                    em.push(Render::Question, sp, param, F_OPERAND);
                } else {
                    em.push(Render::Slice(text), sp, fingerprint::op_key(text), 0);
                }
            }
            TokenKind::Dot => em.push(Render::Slice(text), sp, fingerprint::op_key(text), 0),
            TokenKind::LParen | TokenKind::LBracket => {
                let prev = em.last_flags();
                let mut kind = FrameKind::Plain;
                if overflow == 0 {
                    if let Some(top) = frames.last() {
                        if t.kind == TokenKind::LParen && matches!(top.values, Values::ExpectRow(_))
                        {
                            kind = FrameKind::ValuesRow;
                        } else if (t.kind == TokenKind::LParen && prev & F_IN != 0)
                            || (t.kind == TokenKind::LBracket && prev & F_ARRAY != 0)
                        {
                            kind = FrameKind::List;
                        }
                    }
                }
                em.push(Render::Slice(text), sp, fingerprint::op_key(text), 0);
                if overflow > 0 || frames.len() >= MAX_FRAMES {
                    overflow += 1;
                } else {
                    let open = em.out.len() - 1;
                    frames.push(Frame {
                        kind,
                        open,
                        elem_start: em.out.len(),
                        prev_elem: None,
                        values: Values::Off,
                    });
                }
            }
            TokenKind::RParen | TokenKind::RBracket => {
                if overflow > 0 {
                    overflow -= 1;
                    em.push(
                        Render::Slice(text),
                        sp,
                        fingerprint::op_key(text),
                        F_OPERAND,
                    );
                } else if frames.len() > 1 {
                    let mut f = frames.pop().unwrap_or(frames[0]);
                    if f.kind == FrameKind::List {
                        finish_element(&mut em, &mut f);
                    }
                    em.push(
                        Render::Slice(text),
                        sp,
                        fingerprint::op_key(text),
                        F_OPERAND,
                    );
                    if f.kind == FrameKind::ValuesRow {
                        let row = (f.open, em.out.len());
                        if let Some(parent) = frames.last_mut() {
                            if let Values::ExpectRow(prev) = parent.values {
                                match prev {
                                    Some(p) if em.same(p, row) => {
                                        em.truncate(p.1);
                                        parent.values = Values::AfterRow(p);
                                    }
                                    _ => parent.values = Values::AfterRow(row),
                                }
                            }
                        }
                    }
                } else {
                    // Unbalanced close: keep it, nothing to collapse.
                    em.push(
                        Render::Slice(text),
                        sp,
                        fingerprint::op_key(text),
                        F_OPERAND,
                    );
                }
            }
            TokenKind::Comma => {
                if overflow == 0 {
                    if let Some(top) = frames.last_mut() {
                        if top.kind == FrameKind::List {
                            finish_element(&mut em, top);
                        } else if let Values::AfterRow(p) = top.values {
                            top.values = Values::ExpectRow(Some(p));
                        }
                    }
                }
                em.push(Render::Slice(text), sp, fingerprint::op_key(text), 0);
                if overflow == 0 {
                    if let Some(top) = frames.last_mut() {
                        if top.kind == FrameKind::List {
                            top.elem_start = em.out.len();
                        }
                    }
                }
            }
            TokenKind::Semicolon => {
                // Empty statements add nothing.
                if !em.out.is_empty() && em.last_flags() & F_SEMI == 0 {
                    em.push(Render::Slice(text), sp, fingerprint::op_key(text), F_SEMI);
                }
            }
        }
    }
    while em.last_flags() & F_SEMI != 0 {
        let n = em.out.len() - 1;
        em.truncate(n);
    }

    let air_id = fingerprint::air_id(em.out.iter().map(|o| o.key));
    let (operation, tables, summary) = src.summary.finish();
    let mut text = em.text;
    if text.capacity() > 2 * text.len() + 64 {
        text.shrink_to_fit();
    }
    Normalized {
        text,
        air_id,
        operation,
        tables,
        summary,
    }
}

/// Close the current list element; drop it if it repeats the previous one.
fn finish_element(em: &mut Emitter, f: &mut Frame) {
    let cur = (f.elem_start, em.out.len());
    if cur.1 <= cur.0 {
        return;
    }
    if let Some(prev) = f.prev_elem {
        if em.same(prev, cur) {
            em.truncate(prev.1);
            return;
        }
    }
    f.prev_elem = Some(cur);
}
