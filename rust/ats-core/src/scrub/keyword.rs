//! Secrets identified by the name they are assigned to: `password=…`,
//! `"api_key": "…"`, `client_secret: …`, `token => "…"`, `"…" == password`.
//!
//! The trigger is only the keyword (`pass`, `secret`, `token`, `api_key`, …);
//! this module finds the whole identifier around it (bounded to
//! [`IDENT_MAX`] bytes each way), splits it into words (`snake_case`,
//! `kebab-case`, `dotted.names`, `camelCase`), decides whether the name
//! denotes a secret, then parses the operator and the value by hand.
//!
//! Only the value is replaced; the name, the operator and any quotes stay.

use super::validators::{extend, is_marker, is_mask, is_placeholder_word, is_template_or_marker};
use super::{Ctx, Hit, Kind};

/// Longest identifier looked at on either side of the keyword. Longer names are
/// not assignments people write, and the bound keeps rejected triggers O(1).
const IDENT_MAX: usize = 128;
/// Most words kept from one identifier.
const MAX_WORDS: usize = 24;

#[inline]
fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

#[inline]
fn is_quote(b: u8) -> bool {
    matches!(b, b'"' | b'\'' | b'`')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `=`
    Assign,
    /// `:`
    Colon,
    /// `:=`, `=>`: code; the value must be a literal.
    Bind,
    /// `==`, `!=`, `===`, `!==`: code; the value must be a literal.
    Compare,
    /// `name "value"` (configuration files): the value must be quoted.
    Space,
}

/// Facts about a secret-looking identifier.
#[derive(Debug, Clone, Copy, Default)]
struct NameInfo {
    /// One of the words is `aws` (so a 40-character value is an AWS secret key).
    aws: bool,
    /// The secret word is `pwd`, which is also the shell's working directory.
    pwd: bool,
}

/// Splits an identifier into lowercase-comparable words (byte ranges), trailing
/// digits dropped (`token1` → `token`).
fn words(ident: &[u8], out: &mut [(usize, usize); MAX_WORDS]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < ident.len() && n < MAX_WORDS {
        if !ident[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < ident.len() && ident[i].is_ascii_alphanumeric() {
            let (p, c) = (ident[i - 1], ident[i]);
            // camelCase: aB splits; ABc splits before B ("AWSToken" → AWS, Token).
            if (p.is_ascii_lowercase() || p.is_ascii_digit()) && c.is_ascii_uppercase() {
                break;
            }
            if p.is_ascii_uppercase()
                && c.is_ascii_uppercase()
                && ident.get(i + 1).is_some_and(|d| d.is_ascii_lowercase())
            {
                break;
            }
            i += 1;
        }
        let mut end = i;
        while end > start + 1 && ident[end - 1].is_ascii_digit() {
            end -= 1;
        }
        out[n] = (start, end);
        n += 1;
    }
    n
}

fn eq_any(w: &[u8], list: &[&str]) -> bool {
    list.iter().any(|x| w.eq_ignore_ascii_case(x.as_bytes()))
}

fn ends_with_ci(w: &[u8], suffix: &str) -> bool {
    w.len() > suffix.len() && w[w.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "pass",
    "passphrase",
    "passcode",
    "passwort",
    "secret",
    "token",
    "apikey",
    "apitoken",
    "credential",
    "credentials",
    "privatekey",
    "secretkey",
    "accesskey",
    "authkey",
    "accesstoken",
    "refreshtoken",
    "authtoken",
    "clientsecret",
    "sessionkey",
];
/// `<qualifier>_key` is a secret (`api_key`, `private_key`, …); `some_key` is not.
const KEY_QUALIFIERS: &[&str] = &[
    "api",
    "access",
    "private",
    "secret",
    "auth",
    "signing",
    "encryption",
    "master",
    "client",
    "session",
    "app",
    "account",
    "storage",
];
/// A later word that says the value is metadata about the secret, not the secret.
const METADATA_WORDS: &[&str] = &[
    "count",
    "counts",
    "limit",
    "limits",
    "len",
    "length",
    "size",
    "type",
    "types",
    "kind",
    "usage",
    "used",
    "max",
    "min",
    "name",
    "names",
    "file",
    "filename",
    "path",
    "dir",
    "url",
    "uri",
    "endpoint",
    "host",
    "id",
    "ids",
    "arn",
    "ttl",
    "expiry",
    "expires",
    "expiration",
    "exp",
    "lifetime",
    "header",
    "field",
    "policy",
    "hint",
    "prompt",
    "budget",
    "index",
    "idx",
    "hash",
    "version",
    "format",
    "mode",
    "enabled",
    "enable",
    "required",
    "rotation",
    "created",
    "updated",
    "source",
    "ref",
    "location",
    "env",
    "var",
    "manager",
    "store",
    "provider",
    "label",
    "regex",
    "pattern",
    "prefix",
    "suffix",
    "strength",
    "reset",
    "changed",
    "valid",
    "validation",
    "timeout",
    "rate",
    "per",
    "total",
    "estimate",
    "through",
    "fail",
    "placeholder",
    "input",
    "param",
    "length",
];
/// `max_token`, `prompt_token`, `next_token`: counts and cursors, not credentials.
const TOKEN_NOT_SECRET_BEFORE: &[&str] = &[
    "max",
    "min",
    "num",
    "total",
    "input",
    "output",
    "prompt",
    "completion",
    "cached",
    "reasoning",
    "next",
    "page",
    "continuation",
    "cancellation",
    "sync",
    "audio",
    "text",
    "image",
    "thinking",
    "estimated",
    "remaining",
    "used",
    "per",
];

/// Whether `ident` names a secret.
fn secret_name(ident: &[u8]) -> Option<NameInfo> {
    let mut ws = [(0usize, 0usize); MAX_WORDS];
    let n = words(ident, &mut ws);
    let word = |k: usize| &ident[ws[k].0..ws[k].1];
    let mut key_at = None;
    let mut info = NameInfo::default();
    for k in 0..n {
        let w = word(k);
        if w.eq_ignore_ascii_case(b"aws") {
            info.aws = true;
        }
        let secret = eq_any(w, SECRET_WORDS)
            || (w.eq_ignore_ascii_case(b"key") && k > 0 && eq_any(word(k - 1), KEY_QUALIFIERS))
            || ["password", "passwd", "secret", "apikey", "passphrase"]
                .iter()
                .any(|s| ends_with_ci(w, s));
        if secret {
            key_at = Some(k);
        }
    }
    let k = key_at?;
    if (k + 1..n).any(|j| eq_any(word(j), METADATA_WORDS)) {
        return None;
    }
    if k > 0 && eq_any(word(k - 1), &["public", "publishable"]) {
        return None;
    }
    if word(k).eq_ignore_ascii_case(b"token")
        && k > 0
        && eq_any(word(k - 1), TOKEN_NOT_SECRET_BEFORE)
    {
        return None;
    }
    info.pwd = word(k).eq_ignore_ascii_case(b"pwd");
    Some(info)
}

/// Operator at `i`, with its length.
fn operator(b: &[u8], i: usize) -> Option<(Op, usize)> {
    let at = |k: usize| b.get(i + k).copied();
    Some(match (at(0)?, at(1), at(2)) {
        (b'=', Some(b'='), Some(b'=')) => (Op::Compare, 3),
        (b'!', Some(b'='), Some(b'=')) => (Op::Compare, 3),
        (b'=', Some(b'='), _) | (b'!', Some(b'='), _) => (Op::Compare, 2),
        (b'=', Some(b'>'), _) | (b':', Some(b'='), _) => (Op::Bind, 2),
        (b'=', _, _) => (Op::Assign, 1),
        (b':', Some(b':'), _) => return None, // `Secret::new`: a path, not a pair
        (b':', Some(b'/'), Some(b'/')) => return None, // `token://`: a URL scheme
        (b':', _, _) => (Op::Colon, 1),
        _ => return None,
    })
}

/// End of a quoted value starting after the opening quote at `open`, on the
/// same line; backslash escapes honoured for `"` and `'`.
fn closing_quote(b: &[u8], open: usize) -> Option<usize> {
    let q = b[open];
    let mut i = open + 1;
    while i < b.len() {
        match b[i] {
            b'\n' | b'\r' => return None,
            b'\\' if q != b'`' => i += 2,
            c if c == q => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Drops trailing whitespace, `,` / `;`, and closing brackets that have no
/// opening partner inside the value (`{password: abc}` → `abc`).
fn trim_value(b: &[u8], start: usize, mut end: usize) -> usize {
    loop {
        while end > start && matches!(b[end - 1], b' ' | b'\t' | b'\r' | b',' | b';') {
            end -= 1;
        }
        if end > start {
            let (open, close) = match b[end - 1] {
                b')' => (b'(', b')'),
                b'}' => (b'{', b'}'),
                b']' => (b'[', b']'),
                _ => return end,
            };
            let v = &b[start..end];
            let opens = v.iter().filter(|&&c| c == open).count();
            let closes = v.iter().filter(|&&c| c == close).count();
            if closes > opens {
                end -= 1;
                continue;
            }
        }
        return end;
    }
}

/// Start of the separator before a following `name =` / `name:` pair in
/// `b[from..to]` (`password = x, user = bob` stops after `x`).
fn next_pair(b: &[u8], from: usize, to: usize) -> Option<usize> {
    const LOOKAHEAD: usize = 64;
    // `name` then optional blanks then `=` / `:` (not `==`, `::`, `://`);
    // returns the end of the name.
    let pair_at = |id: usize| -> Option<usize> {
        let mut j = id;
        while j < to && j - id < LOOKAHEAD && is_ident(b[j]) {
            j += 1;
        }
        if j == id {
            return None;
        }
        let name_end = j;
        j = extend(b, j, |c| c == b' ' || c == b'\t').min(to);
        let pair = match b.get(j) {
            Some(b'=') => b.get(j + 1) != Some(&b'='),
            Some(b':') => b.get(j + 1) != Some(&b'/') && b.get(j + 1) != Some(&b':'),
            _ => false,
        };
        (pair && j < to).then_some(name_end)
    };
    let mut i = from;
    while i < to {
        let c = b[i];
        if matches!(c, b' ' | b'\t' | b',' | b';') {
            // `, user = bob` / ` user: bob`: any name starts a new pair.
            let sep = i;
            let mut j = i;
            while j < to && matches!(b[j], b',' | b';') {
                j += 1;
            }
            let ws = j;
            j = extend(b, j, |c| c == b' ' || c == b'\t').min(to);
            if (j > ws || j > sep && matches!(b[sep], b',' | b';')) && pair_at(j).is_some() {
                return Some(sep);
            }
            i = ws.max(i + 1);
        } else if !is_ident(c) && i + 1 < to && is_ident(b[i + 1]) {
            // `…|token: x`: without a blank only a secret name starts a pair,
            // so that one replacement never swallows the next pair's value.
            if let Some(name_end) = pair_at(i + 1) {
                if secret_name(&b[i + 1..name_end]).is_some() {
                    return Some(i + 1);
                }
            }
            i += 1;
        } else {
            i += 1;
        }
    }
    None
}

/// Whether a value (quoted or not) is worth removing.
fn value_ok(v: &str, quoted: bool, info: NameInfo, name: &[u8]) -> bool {
    // `access_token=ACCESS_TOKEN`: the name repeated is a placeholder.
    if v.as_bytes().eq_ignore_ascii_case(name) {
        return false;
    }
    // One character is a flag (`PuttyPassword=0`), not a secret.
    if v.len() < 2
        || !v.bytes().any(|c| c.is_ascii_alphanumeric())
        || is_template_or_marker(v)
        || is_placeholder_word(v)
        || is_mask(v)
    {
        return false;
    }
    if info.pwd && (v.starts_with('/') || v.starts_with('~')) {
        return false;
    }
    if !quoted {
        let b = v.as_bytes();
        // Structures, code and prompts: `{…}`, `[…]`, `<your password>`,
        // `os.environ["X"]`, `getpass()`.
        if matches!(b[0], b'{' | b'[' | b':' | b'=' | b'(' | b'<') {
            return false;
        }
        let id_end = extend(b, 0, |c| {
            c.is_ascii_alphanumeric() || c == b'_' || c == b'.'
        });
        if id_end > 0 && matches!(b.get(id_end), Some(b'(') | Some(b'[')) {
            return false;
        }
    }
    true
}

fn kind_for(v: &str, info: NameInfo) -> Kind {
    let aws_shape = v.len() == 40
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'/' || c == b'+');
    if info.aws && aws_shape {
        Kind::AwsSecretKey
    } else {
        Kind::KeywordSecret
    }
}

/// `name <op> value` with the trigger inside `name`.
pub(crate) fn forward(ctx: &Ctx<'_>, s: usize, e: usize, hits: &mut Vec<Hit>) -> usize {
    let text = ctx.text;
    let b = text.as_bytes();
    let floor = ctx.floor();
    let mut is = s;
    while is > floor && is_ident(b[is - 1]) {
        if s - is >= IDENT_MAX {
            return e;
        }
        is -= 1;
    }
    let mut ie = e;
    while ie < b.len() && is_ident(b[ie]) {
        if ie - e >= IDENT_MAX {
            return e;
        }
        ie += 1;
    }
    // `[API_KEY]`, `[SECRET]`: a marker (or a bracketed label), not a name.
    if is > 0 && b[is - 1] == b'[' && b.get(ie) == Some(&b']') {
        return e;
    }
    let Some(info) = secret_name(&b[is..ie]) else {
        return e;
    };

    // Closing quote / bracket of the name: `"password":`, `['password'] =`.
    let mut i = ie;
    let mut closers = 0;
    while closers < 2 && i < b.len() && matches!(b[i], b'"' | b'\'' | b']') {
        i += 1;
        closers += 1;
    }
    let ws = i;
    i = extend(b, i, |c| c == b' ' || c == b'\t').min(ws + 8);
    let ws_before = i > ws;
    let op = match operator(b, i) {
        Some((op, n)) => {
            i += n;
            op
        }
        None if ws_before && closers == 0 && b.get(i).is_some_and(|&c| is_quote(c)) => Op::Space,
        None => return e,
    };
    let ws2 = i;
    i = extend(b, i, |c| c == b' ' || c == b'\t').min(ws2 + 8);
    let ws_after = i > ws2;

    let (vs, ve, quoted, resume) = if b.get(i).is_some_and(|&c| is_quote(c)) {
        match closing_quote(b, i) {
            Some(c) => (i + 1, c, true, c + 1),
            None if matches!(op, Op::Assign | Op::Colon) => {
                let le = extend(b, i + 1, |c| c != b'\n' && c != b'\r');
                let ve = trim_value(b, i + 1, le);
                (i + 1, ve, true, ve)
            }
            None => return e,
        }
    } else {
        if !matches!(op, Op::Assign | Op::Colon) {
            return e;
        }
        let ve = if op == Op::Assign && !ws_before && !ws_after {
            // key=value (logfmt, query strings, env): one word.
            extend(b, i, |c| {
                !c.is_ascii_whitespace() && !matches!(c, b'&' | b',' | b';' | b'"' | b'\'' | b'`')
            })
        } else {
            // key: value / key = value (YAML, INI): the rest of the line, up to
            // the next `name =` / `name:` pair on it.
            let le = extend(b, i, |c| {
                !matches!(c, b'"' | b'\'' | b'`') && (c >= 0x20 || c == b'\t')
            });
            let le = next_pair(b, i, le).unwrap_or(le);
            trim_value(b, i, le)
        };
        (i, ve, false, ve)
    };
    let v = &text[vs..ve];
    if is_marker(v) {
        return resume;
    }
    if !value_ok(v, quoted, info, &b[is..ie]) {
        return e;
    }
    hits.push(Hit {
        start: vs,
        end: ve,
        kind: kind_for(v, info),
    });
    resume
}

/// `"value" == name` (the literal first, as in `if ("…" == password)`).
pub(crate) fn reverse(ctx: &Ctx<'_>, s: usize, e: usize, hits: &mut Vec<Hit>) -> usize {
    let text = ctx.text;
    let b = text.as_bytes();
    let q = b[s];
    // The trigger's value excludes every quote, so the first one closes it.
    let Some(c) = b[s + 1..e]
        .iter()
        .position(|&x| is_quote(x))
        .map(|j| s + 1 + j)
    else {
        return s + 1;
    };
    if b[c] != q {
        return s + 1;
    }
    let mut ie = e;
    while ie < b.len() && is_ident(b[ie]) {
        if ie - e >= IDENT_MAX {
            return s + 1;
        }
        ie += 1;
    }
    if b.get(e) == Some(&b'[') {
        return s + 1;
    }
    let Some(info) = secret_name(&b[e..ie]) else {
        return s + 1;
    };
    let v = &text[s + 1..c];
    if is_marker(v) {
        return ie;
    }
    if !value_ok(v, true, info, &b[e..ie]) {
        return s + 1;
    }
    hits.push(Hit {
        start: s + 1,
        end: c,
        kind: kind_for(v, info),
    });
    ie
}
