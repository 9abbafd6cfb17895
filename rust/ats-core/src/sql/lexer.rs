//! Byte-level SQL lexer: one forward pass, no regex, no allocation.
//!
//! Whitespace and comments are skipped (a token remembers whether any preceded
//! it, so the normaliser can keep word boundaries). Every token boundary falls
//! on an ASCII byte or at the end of input; bytes >= 0x80 only ever occur
//! inside words, strings, quoted identifiers or comments, so slicing the source
//! `&str` at token boundaries is always valid UTF-8.
//!
//! Safety rule: whenever the input is ambiguous or truncated, the lexer picks
//! the reading that turns *more* text into a literal. An unterminated string,
//! quoted identifier or dollar-quoted body becomes a [`TokenKind::String`]
//! running to the end of the input, so its content is redacted.

use super::dialect::Dialect;

/// What a token is, as far as normalisation cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Unquoted identifier or keyword (`select`, `t2`, `@@version`, `#tmp`).
    Word,
    /// `"x"`, `` `x` ``, `[x]`.
    QuotedIdent,
    /// Any string-like literal, including prefixed, dollar-quoted, hex/bit and
    /// unterminated ones.
    String,
    /// Numeric literal without sign (`42`, `1.5e-3`, `.5`, `0x1F`, `0b101`).
    Number,
    /// A bind placeholder: `?`, `?1`, `$1`, `%s`, `%(name)s`, `:name`, `@name`.
    Placeholder,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Semicolon,
    Dot,
    /// Any operator or other punctuation, including unknown bytes.
    Op,
}

/// One token: a byte range of the source plus layout information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub start: usize,
    pub end: usize,
    /// Whitespace or a comment separated this token from the previous one.
    pub space_before: bool,
}

/// Length of the operator starting at `b[0]` (1, 2 or 3 bytes).
#[inline]
fn op_len(b: &[u8]) -> usize {
    let c0 = b[0];
    let c1 = b.get(1).copied().unwrap_or(0);
    let c2 = b.get(2).copied().unwrap_or(0);
    match (c0, c1, c2) {
        (b'-', b'>', b'>')
        | (b'#', b'>', b'>')
        | (b'<', b'=', b'>')
        | (b'!', b'~', b'*')
        | (b'-', b'|', b'-') => 3,
        (b'<', b'=' | b'>' | b'@' | b'<', _)
        | (b'>', b'=' | b'>', _)
        | (b'!', b'=' | b'~' | b'!', _)
        | (b'=', b'=' | b'>', _)
        | (b'|', b'|', _)
        | (b'&', b'&' | b'<' | b'>', _)
        | (b':', b':' | b'=', _)
        | (b'-', b'>', _)
        | (b'#', b'>' | b'-', _)
        | (b'@', b'>', _)
        | (b'~', b'*' | b'~', _)
        | (b'?', b'|' | b'&', _) => 2,
        _ => 1,
    }
}

/// Streaming lexer over one statement text.
#[derive(Clone)]
pub struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    dialect: Dialect,
    /// Kind of the previously returned token (for `.5` vs `t.x` and `[x]`).
    prev: Option<TokenKind>,
    /// Blanks or a comment precede the token being lexed.
    spaced: bool,
}

#[inline]
fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

#[inline]
fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// Bytes that separate tokens. Control bytes (NUL included) count as blanks:
/// they carry no SQL meaning and keeping them out of tokens keeps output clean.
#[inline]
fn is_blank(c: u8) -> bool {
    c <= b' ' || c == 0x7f
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str, dialect: Dialect) -> Self {
        Lexer {
            src,
            b: src.as_bytes(),
            pos: 0,
            dialect,
            prev: None,
            spaced: false,
        }
    }

    /// The source text of a token.
    #[inline]
    pub fn text(&self, t: &Token) -> &'a str {
        // Boundaries are always char boundaries (module docs); `get` keeps this
        // panic-free even if that reasoning were ever wrong.
        self.src.get(t.start..t.end).unwrap_or("")
    }

    #[inline]
    fn at(&self, i: usize) -> u8 {
        // 0 doubles as "end of input": it is a blank, never part of a token.
        self.b.get(i).copied().unwrap_or(0)
    }

    /// Skip blanks and comments; report whether anything was skipped.
    fn skip_trivia(&mut self) -> bool {
        let start = self.pos;
        let n = self.b.len();
        while self.pos < n {
            let c = self.b[self.pos];
            if is_blank(c) {
                self.pos += 1;
            } else if (c == b'-' && self.at(self.pos + 1) == b'-' && self.line_comment_dashes_ok())
                || (c == b'#' && self.dialect == Dialect::Mysql)
            {
                self.skip_line();
            } else if c == b'/' && self.at(self.pos + 1) == b'*' {
                self.skip_block_comment();
            } else {
                break;
            }
        }
        self.pos > start
    }

    /// MySQL needs a blank (or end) after `--`; elsewhere `--` always starts a comment.
    fn line_comment_dashes_ok(&self) -> bool {
        if self.dialect != Dialect::Mysql {
            return true;
        }
        let c = self.at(self.pos + 2);
        is_blank(c)
    }

    fn skip_line(&mut self) {
        while self.pos < self.b.len() && self.b[self.pos] != b'\n' {
            self.pos += 1;
        }
    }

    /// Block comment; nests where the dialect nests. Unterminated: to the end.
    fn skip_block_comment(&mut self) {
        let nested = self.dialect.nested_comments();
        let n = self.b.len();
        let mut depth = 0usize;
        while self.pos < n {
            let c = self.b[self.pos];
            if c == b'/' && self.at(self.pos + 1) == b'*' && (nested || depth == 0) {
                depth += 1;
                self.pos += 2;
            } else if c == b'*' && self.at(self.pos + 1) == b'/' {
                depth -= 1;
                self.pos += 2;
                if depth == 0 {
                    return;
                }
            } else {
                self.pos += 1;
            }
        }
    }

    /// Quoted run starting at `self.pos` (the opening quote). `backslash`: a
    /// backslash escapes the next byte. A doubled quote is always an escape.
    /// Returns true when the closing quote was found.
    fn scan_quoted(&mut self, q: u8, backslash: bool) -> bool {
        let n = self.b.len();
        let mut i = self.pos + 1;
        while i < n {
            let c = self.b[i];
            if c == b'\\' && backslash {
                i += 2;
            } else if c == q {
                if self.at(i + 1) == q && i + 1 < n {
                    i += 2;
                } else {
                    self.pos = i + 1;
                    return true;
                }
            } else {
                i += 1;
            }
        }
        self.pos = n;
        false
    }

    fn scan_ident_chars(&mut self) {
        while self.pos < self.b.len() && is_ident_char(self.b[self.pos]) {
            self.pos += 1;
        }
    }

    /// `$tag$ ... $tag$` starting at `self.pos`. None if this `$` does not open one.
    fn try_dollar_quote(&mut self) -> Option<()> {
        let s = self.pos;
        let mut i = s + 1;
        if i < self.b.len() && is_ident_start(self.b[i]) {
            while i < self.b.len() && is_ident_char(self.b[i]) && self.b[i] != b'$' {
                i += 1;
            }
        }
        if self.at(i) != b'$' {
            return None;
        }
        let tag_end = i + 1;
        let tag = self.src.get(s..tag_end)?;
        // `str::find` is linear-time (two-way search) even for long tags.
        match self.src.get(tag_end..).and_then(|rest| rest.find(tag)) {
            Some(off) => self.pos = tag_end + off + tag.len(),
            None => self.pos = self.b.len(),
        }
        Some(())
    }

    /// `[name]` as an identifier: only when it cannot be an array subscript or
    /// a list of values, and never across a quote (so a string inside brackets
    /// is still lexed, and redacted, as a string).
    fn try_bracket_ident(&mut self) -> bool {
        // `a[1]` (no blank before `[`) is a subscript.
        if !self.spaced && self.prev_is_qualifiable() {
            return false;
        }
        let s = self.pos + 1;
        let mut i = s;
        let mut all_numeric = true;
        while i < self.b.len() {
            let c = self.b[i];
            match c {
                b']' => break,
                b'\'' | b'"' | b'[' | b'\n' | b'`' => return false,
                b'0'..=b'9' | b',' | b'.' | b':' | b' ' | b'+' | b'-' | b'?' | b'$' => {}
                _ => all_numeric = false,
            }
            i += 1;
        }
        if i >= self.b.len() || i == s || all_numeric {
            return false;
        }
        self.pos = i + 1;
        true
    }

    fn scan_number(&mut self) -> TokenKind {
        let b = self.b;
        let s = self.pos;
        if b[s] == b'0'
            && matches!(self.at(s + 1), b'x' | b'X')
            && self.at(s + 2).is_ascii_hexdigit()
        {
            self.pos = s + 2;
            while self.pos < b.len() && (b[self.pos].is_ascii_hexdigit() || b[self.pos] == b'_') {
                self.pos += 1;
            }
            return self.number_tail(false);
        }
        if b[s] == b'0'
            && matches!(self.at(s + 1), b'b' | b'B')
            && matches!(self.at(s + 2), b'0' | b'1')
        {
            self.pos = s + 2;
            while self.pos < b.len() && matches!(b[self.pos], b'0' | b'1' | b'_') {
                self.pos += 1;
            }
            return self.number_tail(false);
        }
        let mut pure_digits = true;
        self.digits();
        if self.at(self.pos) == b'.' && self.at(self.pos + 1) != b'.' {
            pure_digits = false;
            self.pos += 1;
            self.digits();
        }
        if matches!(self.at(self.pos), b'e' | b'E') {
            let d = self.at(self.pos + 1);
            if d.is_ascii_digit() {
                pure_digits = false;
                self.pos += 1;
                self.digits();
            } else if matches!(d, b'+' | b'-') && self.at(self.pos + 2).is_ascii_digit() {
                pure_digits = false;
                self.pos += 2;
                self.digits();
            }
        }
        self.number_tail(pure_digits)
    }

    fn digits(&mut self) {
        let b = self.b;
        while self.pos < b.len() {
            let c = b[self.pos];
            // `1_000` (PostgreSQL 16): an underscore only between digits.
            if c.is_ascii_digit() || (c == b'_' && self.at(self.pos + 1).is_ascii_digit()) {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// A digit run glued to identifier characters (`1abc`, `2fa_codes`) is an
    /// identifier (MySQL allows these); a decimal or exponent number stops.
    fn number_tail(&mut self, pure_digits: bool) -> TokenKind {
        if pure_digits && self.pos < self.b.len() && is_ident_start(self.b[self.pos]) {
            self.scan_ident_chars();
            return TokenKind::Word;
        }
        TokenKind::Number
    }

    /// `.5` is a number unless it follows something a `.` can qualify (`t.5`).
    fn prev_is_qualifiable(&self) -> bool {
        matches!(
            self.prev,
            Some(
                TokenKind::Word | TokenKind::QuotedIdent | TokenKind::RParen | TokenKind::RBracket
            )
        )
    }

    /// Word, possibly the prefix of a string literal (`E'..'`, `N'..'`,
    /// `X'..'`, `B'..'`, `U&'..'`).
    fn scan_word(&mut self) -> TokenKind {
        let s = self.pos;
        self.scan_ident_chars();
        let len = self.pos - s;
        let next = self.at(self.pos);
        if len == 1 {
            let p = self.b[s].to_ascii_uppercase();
            if next == b'\'' {
                let backslash = match p {
                    b'E' if self.dialect.escape_string_prefix() => Some(true),
                    b'N' | b'X' | b'B' => Some(self.dialect.backslash_escapes() && p == b'N'),
                    _ => None,
                };
                if let Some(bs) = backslash {
                    self.scan_quoted(b'\'', bs);
                    return TokenKind::String;
                }
            }
            if p == b'U' && next == b'&' && self.dialect.escape_string_prefix() {
                let q = self.at(self.pos + 1);
                if q == b'\'' || q == b'"' {
                    self.pos += 1;
                    let closed = self.scan_quoted(q, false);
                    return if q == b'"' && closed {
                        TokenKind::QuotedIdent
                    } else {
                        TokenKind::String
                    };
                }
            }
        }
        TokenKind::Word
    }

    fn scan_op(&mut self) -> TokenKind {
        self.pos += op_len(&self.b[self.pos..]);
        TokenKind::Op
    }

    fn lex_one(&mut self) -> TokenKind {
        let b = self.b;
        let s = self.pos;
        let c = b[s];
        let next = self.at(s + 1);
        let d = self.dialect;
        match c {
            b'\'' => {
                self.scan_quoted(b'\'', d.backslash_escapes());
                TokenKind::String
            }
            b'"' => {
                if d.double_quote_is_string() {
                    self.scan_quoted(b'"', true);
                    TokenKind::String
                } else if self.scan_quoted(b'"', false) {
                    TokenKind::QuotedIdent
                } else {
                    TokenKind::String
                }
            }
            b'`' => {
                if self.scan_quoted(b'`', false) {
                    TokenKind::QuotedIdent
                } else {
                    TokenKind::String
                }
            }
            b'[' => {
                if d.bracket_identifiers() && self.try_bracket_ident() {
                    TokenKind::QuotedIdent
                } else {
                    self.pos += 1;
                    TokenKind::LBracket
                }
            }
            b']' => {
                self.pos += 1;
                TokenKind::RBracket
            }
            b'(' => {
                self.pos += 1;
                TokenKind::LParen
            }
            b')' => {
                self.pos += 1;
                TokenKind::RParen
            }
            b',' => {
                self.pos += 1;
                TokenKind::Comma
            }
            b';' => {
                self.pos += 1;
                TokenKind::Semicolon
            }
            b'0'..=b'9' => self.scan_number(),
            b'.' if next.is_ascii_digit() && !self.prev_is_qualifiable() => self.scan_number(),
            b'.' => {
                self.pos += 1;
                TokenKind::Dot
            }
            b'$' => {
                if next.is_ascii_digit() && d != Dialect::Mysql {
                    self.pos += 1;
                    self.digits();
                    return TokenKind::Placeholder;
                }
                if d.dollar_quotes() && self.try_dollar_quote().is_some() {
                    return TokenKind::String;
                }
                match d {
                    Dialect::Sqlite if is_ident_start(next) => {
                        self.pos += 1;
                        self.scan_ident_chars();
                        return TokenKind::Placeholder;
                    }
                    Dialect::Mysql if is_ident_char(next) => {
                        self.pos += 1;
                        self.scan_ident_chars();
                        return TokenKind::Word;
                    }
                    _ => {}
                }
                self.pos += 1;
                TokenKind::Op
            }
            b'?' => {
                if d == Dialect::Postgresql && matches!(next, b'|' | b'&') {
                    self.pos += 2;
                    return TokenKind::Op;
                }
                self.pos += 1;
                if matches!(d, Dialect::Sqlite | Dialect::Generic) {
                    self.digits();
                }
                TokenKind::Placeholder
            }
            b'%' => {
                if matches!(next, b's' | b'b' | b't') && !is_ident_char(self.at(s + 2)) {
                    self.pos += 2;
                    return TokenKind::Placeholder;
                }
                if next == b'(' {
                    // %(name)s
                    let mut i = s + 2;
                    while i < b.len()
                        && b[i] != b')'
                        && (is_ident_char(b[i]) || b[i] == b' ' || b[i] == b'-')
                    {
                        i += 1;
                    }
                    if self.at(i) == b')'
                        && matches!(self.at(i + 1), b's' | b'b' | b't')
                        && i > s + 2
                    {
                        self.pos = i + 2;
                        return TokenKind::Placeholder;
                    }
                }
                self.scan_op()
            }
            b':' => {
                if next == b':' || next == b'=' {
                    self.pos += 2;
                    return TokenKind::Op;
                }
                if is_ident_start(next) {
                    self.pos += 1;
                    self.scan_ident_chars();
                    return TokenKind::Placeholder;
                }
                if next.is_ascii_digit() && matches!(d, Dialect::Sqlite | Dialect::Generic) {
                    self.pos += 1;
                    self.digits();
                    return TokenKind::Placeholder;
                }
                self.pos += 1;
                TokenKind::Op
            }
            b'@' => {
                if next == b'@' {
                    if d != Dialect::Postgresql && is_ident_start(self.at(s + 2)) {
                        self.pos += 2;
                        self.scan_ident_chars();
                        return TokenKind::Word;
                    }
                    return self.scan_op();
                }
                if is_ident_char(next) && next != b'$' {
                    self.pos += 1;
                    self.scan_ident_chars();
                    return TokenKind::Placeholder;
                }
                self.scan_op()
            }
            b'#' if d == Dialect::Generic && is_ident_start(next) => {
                // SQL Server temporary table (`#tmp`, `##global`).
                self.pos += 1;
                self.scan_ident_chars();
                TokenKind::Word
            }
            _ if is_ident_start(c) => self.scan_word(),
            _ => self.scan_op(),
        }
    }
}

impl Iterator for Lexer<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let space_before = self.skip_trivia();
        self.spaced = space_before;
        if self.pos >= self.b.len() {
            return None;
        }
        let start = self.pos;
        let kind = self.lex_one();
        // Every branch advances; this guard keeps the loop finite regardless.
        if self.pos <= start {
            self.pos = start + 1;
        }
        self.prev = Some(kind);
        Some(Token {
            kind,
            start,
            end: self.pos,
            space_before,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(s: &str, d: Dialect) -> Vec<(TokenKind, &str)> {
        let lx = Lexer::new(s, d);
        let l2 = lx.clone();
        lx.map(|t| (t.kind, l2.text(&t))).collect()
    }

    #[test]
    fn identifiers_with_digits_are_words() {
        use TokenKind::*;
        assert_eq!(
            lex("col1 t2.x3 table3 1abc", Dialect::Postgresql),
            vec![
                (Word, "col1"),
                (Word, "t2"),
                (Dot, "."),
                (Word, "x3"),
                (Word, "table3"),
                (Word, "1abc")
            ]
        );
    }

    #[test]
    fn numbers() {
        use TokenKind::*;
        assert_eq!(
            lex(
                "1 1.5 .5 1e10 1.5E-3 0x1F 0b101 1_000 x.5",
                Dialect::Generic
            ),
            vec![
                (Number, "1"),
                (Number, "1.5"),
                (Number, ".5"),
                (Number, "1e10"),
                (Number, "1.5E-3"),
                (Number, "0x1F"),
                (Number, "0b101"),
                (Number, "1_000"),
                (Word, "x"),
                (Dot, "."),
                (Number, "5"),
            ]
        );
    }

    #[test]
    fn strings_and_quotes_per_dialect() {
        use TokenKind::*;
        assert_eq!(
            lex(r#""a" 'b''c'"#, Dialect::Postgresql),
            vec![(QuotedIdent, "\"a\""), (String, "'b''c'")]
        );
        assert_eq!(
            lex(r#""a\"b" 'c\'d'"#, Dialect::Mysql),
            vec![(String, r#""a\"b""#), (String, r"'c\'d'")]
        );
        assert_eq!(
            lex(r"'c\' x", Dialect::Postgresql),
            vec![(String, r"'c\'"), (Word, "x")]
        );
        assert_eq!(
            lex(r"E'c\'d'", Dialect::Postgresql),
            vec![(String, r"E'c\'d'")]
        );
        assert_eq!(
            lex("$$a'b$$ $t$x$$y$t$", Dialect::Postgresql),
            vec![(String, "$$a'b$$"), (String, "$t$x$$y$t$")]
        );
        assert_eq!(
            lex("[a b] [1,2]", Dialect::Sqlite),
            vec![
                (QuotedIdent, "[a b]"),
                (LBracket, "["),
                (Number, "1"),
                (Comma, ","),
                (Number, "2"),
                (RBracket, "]")
            ]
        );
        assert_eq!(lex("'abc", Dialect::Sqlite), vec![(String, "'abc")]);
    }

    #[test]
    fn comments() {
        use TokenKind::*;
        assert_eq!(
            lex("a /* x /* y */ z */ b -- c\nd", Dialect::Postgresql),
            vec![(Word, "a"), (Word, "b"), (Word, "d")]
        );
        assert_eq!(
            lex("a /* x /* y */ z */ b", Dialect::Sqlite),
            vec![(Word, "a"), (Word, "z"), (Op, "*"), (Op, "/"), (Word, "b")]
        );
        assert_eq!(
            lex("a # c\nb", Dialect::Mysql),
            vec![(Word, "a"), (Word, "b")]
        );
        assert_eq!(
            lex("a --1", Dialect::Mysql),
            vec![(Word, "a"), (Op, "-"), (Op, "-"), (Number, "1")]
        );
    }

    #[test]
    fn placeholders() {
        use TokenKind::*;
        let got = lex("? ?1 $1 %s %(name)s :name @p :1", Dialect::Sqlite);
        assert!(got.iter().all(|(k, _)| *k == Placeholder), "{got:?}");
        assert_eq!(
            lex("a::int", Dialect::Postgresql),
            vec![(Word, "a"), (Op, "::"), (Word, "int")]
        );
    }
}
