//! Validators for token-shaped secrets and credentials, plus the small helpers
//! every validator shares (boundaries, placeholders, base64).
//!
//! Each validator gets the trigger span found by the combined regex and returns
//! the scan's resume position; replacements go to `hits`. Validators check the
//! left boundary *before* extending a match by hand, so a candidate that starts
//! inside a longer run of token characters costs O(1) to reject. That is what
//! keeps the whole scan linear.

use super::{Ctx, Hit, Kind};

// ---------------------------------------------------------------- helpers

#[inline]
pub(crate) fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Characters of base64url / most token alphabets.
#[inline]
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

#[inline]
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Characters allowed in an HTTP credential (RFC 7235 token68, plus `@`).
#[inline]
fn is_cred_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'+' | b'/' | b'=' | b'-' | b'@')
}

/// First index `>= i` whose byte fails `f`. Only ASCII predicates are used, so
/// the result is always a char boundary.
#[inline]
pub(crate) fn extend(b: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while i < b.len() && f(b[i]) {
        i += 1;
    }
    i
}

/// `end` cut back to the start of a `-----BEGIN` inside `text[start..end]`:
/// PEM armour never belongs to a token, and a token glued to a key block must
/// end where a second pass (seeing `[PRIVATE_KEY]` there) would end it.
pub(crate) fn cut_armor(text: &str, start: usize, end: usize) -> usize {
    match text[start..end].find("-----BEGIN") {
        Some(i) => start + i,
        None => end,
    }
}

/// True when the byte before `i` (as a second pass would see it) is not in `class`.
#[inline]
pub(crate) fn left_ok(ctx: &Ctx<'_>, i: usize, class: impl Fn(u8) -> bool) -> bool {
    match ctx.prev_byte(i) {
        Some(b) => !class(b),
        None => true,
    }
}

/// True when the byte at `i` is absent or not in `class`, or PEM armour
/// (`-----BEGIN`) starts there.
#[inline]
pub(crate) fn right_ok(b: &[u8], i: usize, class: impl Fn(u8) -> bool) -> bool {
    if b.get(i..).is_some_and(|r| r.starts_with(b"-----BEGIN")) {
        return true;
    }
    match b.get(i) {
        Some(&c) => !class(c),
        None => true,
    }
}

/// `xxxx`, `XXXX-XXXX`, `****`, `hf_xxxxxxxx…`, `glc_1111…`: three or more
/// characters drawn from at most two distinct ones, or eight or more letters
/// and digits where one of them is the majority (ASCII case-insensitive).
/// Random secrets never look like this.
pub(crate) fn few_distinct(v: &str) -> bool {
    is_mask(v) || {
        // Only letters and digits vote: `_` and `-` are a token's own
        // separators and repeat in real ones (`glpat-A_0-__a____-a__-_0_A`).
        let (n, _, max) = char_spread_of(v, |c| c.is_ascii_alphanumeric());
        n >= 8 && max * 2 > n
    }
}

/// `****`, `xxxx`, `XXXX-XXXX`: the stricter half of [`few_distinct`], for
/// values a keyword already vouches for. A password the user chose may
/// repeat one symbol most of the time (`*%%^%A%*%%`) and is still a secret.
pub(crate) fn is_mask(v: &str) -> bool {
    let (n, distinct, _) = char_spread(v);
    n >= 3 && distinct <= 2
}

/// Non-blank length, distinct characters and the commonest one's count,
/// ASCII case-insensitive.
fn char_spread(v: &str) -> (u32, usize, u32) {
    char_spread_of(v, |c| !c.is_ascii_whitespace())
}

fn char_spread_of(v: &str, counted: impl Fn(u8) -> bool) -> (u32, usize, u32) {
    let mut freq = [0u32; 256];
    let mut n = 0u32;
    for c in v.bytes().filter(|&c| counted(c)) {
        freq[usize::from(c.to_ascii_lowercase())] += 1;
        n += 1;
    }
    let distinct = freq.iter().filter(|&&f| f > 0).count();
    let max = freq.iter().copied().max().unwrap_or(0);
    (n, distinct, max)
}

/// `~/src/app.py`: a path under a home directory, which is also what a
/// scrubbed `C:\Users\<name>` leaves behind; never a token.
fn is_home_path(v: &str) -> bool {
    v.starts_with("~/")
}

/// Template references and markers: `${X}`, `$X`, `{{x}}`, `$(cmd)`, `%(x)s`,
/// `#{x}`, `<%= x %>`, `<token>`, `[SECRET]`. Never real values, and keeping
/// markers out is what makes scrubbing idempotent.
pub(crate) fn is_template_or_marker(v: &str) -> bool {
    let b = v.as_bytes();
    if ["${", "{{", "$(", "%(", "%{", "#{", "<%"]
        .iter()
        .any(|p| v.starts_with(p))
    {
        return true;
    }
    // printf conversions: `%s`, `%d`, `%-5s`.
    if b.first() == Some(&b'%') && b.len() <= 4 {
        return true;
    }
    // `$NAME`, `$_x`, `$1` (shell variables and positional arguments).
    if b.len() >= 2 && b[0] == b'$' && (b[1].is_ascii_alphanumeric() || b[1] == b'_') {
        return true;
    }
    (b.first() == Some(&b'<') && b.last() == Some(&b'>'))
        || (b.first() == Some(&b'[') && b.last() == Some(&b']'))
}

/// A marker this module writes (`[SECRET]`, `[API_KEY]`, …). A validator that
/// finds one where its value goes resumes exactly where it would have after
/// replacing the value, so a second pass skips what the first pass skipped.
pub(crate) fn is_marker(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() >= 3
        && b[0] == b'['
        && b[b.len() - 1] == b']'
        && b[1..b.len() - 1]
            .iter()
            .all(|&c| c.is_ascii_uppercase() || c == b'_')
}

/// Words people write where a real value would go, whole (`changeme`) or as a
/// telling part (`insert_key_here`, `your-api-key`, `example-secret`).
pub(crate) fn is_placeholder_word(v: &str) -> bool {
    const PARTS: &[&str] = &[
        "placeholder",
        "your_",
        "your-",
        "_here",
        "-here",
        "changeme",
        "dummy",
        "insert_",
        "replace_me",
    ];
    let lower_has = |p: &str| {
        v.as_bytes()
            .windows(p.len())
            .any(|w| w.eq_ignore_ascii_case(p.as_bytes()))
    };
    if PARTS.iter().any(|p| lower_has(p)) {
        return true;
    }
    const WORDS: &[&str] = &[
        "password",
        "passwd",
        "pass",
        "pwd",
        "secret",
        "token",
        "changeme",
        "change_me",
        "test",
        "example",
        "placeholder",
        "redacted",
        "dummy",
        "null",
        "none",
        "nil",
        "undefined",
        "true",
        "false",
        "empty",
        "your_password",
        "yourpassword",
        "mypassword",
        "my_password",
        "username",
        "user",
        "api_key",
        "apikey",
    ];
    WORDS.iter().any(|w| v.eq_ignore_ascii_case(w))
}

/// Lenient base64 / base64url decoding: either alphabet, padding optional,
/// a dangling sixth-bit group ignored. `None` on any other character.
pub(crate) fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4 + 1);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in s.as_bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

// ---------------------------------------------------------------- e-mail

/// The trigger starts at the `@` and covers the domain; the local part is
/// found by walking back (at most 64 bytes, RFC 5321's limit), non-ASCII
/// letters included (`jürgen@…`). `ssh://git@host` is a URL's user.
pub(crate) fn email(ctx: &Ctx<'_>, s: usize, e: usize, hits: &mut Vec<Hit>) -> usize {
    const LOCAL_MAX: usize = 64;
    let text = ctx.text;
    let floor = ctx.floor();
    let mut start = s;
    for (i, c) in text[floor..s].char_indices().rev() {
        let i = floor + i;
        if s - i > LOCAL_MAX || !(c.is_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')) {
            break;
        }
        start = i;
    }
    // No leading dots (`…sentence.bob@x.io` keeps the sentence's dot).
    while start < s && text.as_bytes()[start] == b'.' {
        start += 1;
    }
    if start == s || text[..start].ends_with("://") {
        return s + 1;
    }
    hits.push(Hit {
        start,
        end: e,
        kind: Kind::Email,
    });
    e
}

// ---------------------------------------------------------------- PEM

/// `-----BEGIN … PRIVATE KEY-----` through the matching END line; to the end of
/// the text when the END line is missing (a truncated key is still a key).
pub(crate) fn private_key(ctx: &Ctx<'_>, s: usize, e: usize, hits: &mut Vec<Hit>) -> usize {
    let text = ctx.text;
    let (body_end, end) = match text[e..].find("-----END") {
        Some(i) => {
            let f = e + i;
            let after = f + "-----END".len();
            let line_end = text[after..].find('\n').map_or(text.len(), |j| after + j);
            let end = match text[after..line_end].find("-----") {
                Some(j) => after + j + 5,
                None => line_end,
            };
            (f, end)
        }
        None => (text.len(), text.len()),
    };
    if text[e..body_end].trim().is_empty() {
        return e;
    }
    hits.push(Hit {
        start: s,
        end,
        kind: Kind::PrivateKey,
    });
    end
}

// ---------------------------------------------------------------- HTTP credentials

/// `Authorization: <scheme> <credential>` or `Authorization: <credential>`.
pub(crate) fn auth_header(ctx: &Ctx<'_>, _s: usize, e: usize, hits: &mut Vec<Hit>) -> usize {
    let b = ctx.text.as_bytes();
    let w_end = extend(b, e, is_cred_char);
    if w_end == e {
        return e;
    }
    let after_ws = extend(b, w_end, |c| c == b' ' || c == b'\t');
    let word = &ctx.text[e..w_end];
    let scheme_like = word.bytes().all(|c| c.is_ascii_alphabetic() || c == b'-');
    let (scheme, cs, ce) =
        if after_ws > w_end && after_ws < b.len() && is_cred_char(b[after_ws]) && scheme_like {
            (Some(word), after_ws, extend(b, after_ws, is_cred_char))
        } else if after_ws > w_end && scheme_like {
            // A scheme followed by something that is not a credential (`$TOKEN`,
            // `<token>`, `{base64(...)}`): nothing to remove. Every rejection
            // resumes right after the trigger so no other rule's text is skipped.
            return e;
        } else {
            // No scheme. Prose ("authorization: required") is not a credential.
            if !(word.bytes().any(|c| c.is_ascii_digit()) || word.len() >= 16) {
                return e;
            }
            (None, e, w_end)
        };
    let cred = &ctx.text[cs..ce];
    // The header vouches for the value: only a mask is a placeholder here.
    if !cred.bytes().any(is_alnum)
        || is_mask(cred)
        || is_placeholder_word(cred)
        || is_home_path(cred)
    {
        return e;
    }
    let kind = match scheme {
        Some(sc) if sc.eq_ignore_ascii_case("basic") => {
            if !is_basic_payload(cred) {
                // Not `user:password` in base64 (a JWT, say): let other rules look.
                return cs;
            }
            Kind::BasicCredential
        }
        _ => Kind::BearerCredential,
    };
    hits.push(Hit {
        start: cs,
        end: ce,
        kind,
    });
    ce
}

/// Base64 that decodes to `user:password`.
fn is_basic_payload(v: &str) -> bool {
    v.len() >= 4 && b64_decode(v).is_some_and(|d| d.contains(&b':') && d.len() >= 2)
}

/// `Basic <base64(user:password)>` outside a header.
pub(crate) fn bare_basic(ctx: &Ctx<'_>, s: usize, e: usize, hits: &mut Vec<Hit>) -> usize {
    let b = ctx.text.as_bytes();
    if !left_ok(ctx, s, is_word) {
        return s + 1;
    }
    let ts = extend(b, s + 5, |c| c == b' ' || c == b'\t');
    let te = extend(b, ts, |c| {
        c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=')
    });
    if !right_ok(b, te, is_cred_char)
        || !is_basic_payload(&ctx.text[ts..te])
        || few_distinct(&ctx.text[ts..te])
    {
        return e;
    }
    hits.push(Hit {
        start: ts,
        end: te,
        kind: Kind::BasicCredential,
    });
    te
}

/// `Bearer <token>` outside a header. Needs a digit or 24+ characters so that
/// prose ("bearer authentication") is left alone.
pub(crate) fn bare_bearer(ctx: &Ctx<'_>, s: usize, e: usize, hits: &mut Vec<Hit>) -> usize {
    let b = ctx.text.as_bytes();
    if !left_ok(ctx, s, is_word) {
        return s + 1;
    }
    let ts = extend(b, s + 6, |c| c == b' ' || c == b'\t');
    let te = extend(b, ts, is_cred_char);
    let tok = &ctx.text[ts..te];
    if !(tok.bytes().any(|c| c.is_ascii_digit()) || tok.len() >= 24)
        || few_distinct(tok)
        || is_home_path(tok)
    {
        return e;
    }
    hits.push(Hit {
        start: ts,
        end: te,
        kind: Kind::BearerCredential,
    });
    te
}

/// `curl -u user:password` / `--user user:password`: the password goes (or the
/// user, when it is the only part, as in `-u sk_live_…:`); an e-mail user too.
pub(crate) fn curl_user(ctx: &Ctx<'_>, _s: usize, e: usize, hits: &mut Vec<Hit>) -> usize {
    const MAX_WORD: usize = 512;
    let text = ctx.text;
    let b = text.as_bytes();
    // One shell word: unquoted runs and quoted pieces, up to whitespace or a
    // shell operator.
    let mut i = e;
    while i < b.len()
        && !b[i].is_ascii_whitespace()
        && !matches!(b[i], b';' | b'|' | b'&' | b'>' | b'(' | b')')
    {
        if i - e > MAX_WORD {
            return e;
        }
        if b[i] == b'"' || b[i] == b'\'' {
            let q = b[i];
            match b[i + 1..].iter().position(|&c| c == q || c == b'\n') {
                Some(j) if b[i + 1 + j] == q => i += j + 2,
                _ => return e,
            }
        } else {
            i += 1;
        }
    }
    let we = i;
    let Some(colon) = text[e..we].find(':').map(|j| e + j) else {
        return e;
    };
    let is_q = |c: u8| c == b'"' || c == b'\'';
    let trim = |mut a: usize, mut z: usize| {
        if a < z && is_q(b[a]) {
            a += 1;
        }
        if z > a && is_q(b[z - 1]) {
            z -= 1;
        }
        (a, z)
    };
    let (us, ue) = trim(e, colon);
    let (ps, pe) = trim(colon + 1, we);
    let user = &text[us..ue];
    let pw = &text[ps..pe];
    let bad = |v: &str| {
        v.is_empty()
            || is_template_or_marker(v)
            || is_placeholder_word(v)
            || few_distinct(v)
            || v.contains('"')
            || v.contains('\'')
            || !v.bytes().any(is_alnum)
    };
    // A marker where the value goes: resume where replacing it would have.
    if is_marker(pw) || (pw.is_empty() && is_marker(user)) {
        return we;
    }
    // Every other rejection resumes right after the trigger, so an e-mail or
    // token inside the word is still seen.
    if user.starts_with('<') || is_template_or_marker(user) {
        return e;
    }
    if pw.is_empty() {
        if bad(user) {
            return e;
        }
        hits.push(Hit {
            start: us,
            end: ue,
            kind: Kind::BasicCredential,
        });
        return we;
    }
    // `-u 1000:1000` is docker's uid:gid, not a password.
    if bad(pw) || (pw.len() <= 6 && pw.bytes().all(|c| c.is_ascii_digit())) {
        return e;
    }
    if looks_like_email(user) {
        hits.push(Hit {
            start: us,
            end: ue,
            kind: Kind::Email,
        });
    }
    hits.push(Hit {
        start: ps,
        end: pe,
        kind: Kind::BasicCredential,
    });
    we
}

fn looks_like_email(v: &str) -> bool {
    match v.find('@') {
        Some(at) => at > 0 && v[at + 1..].contains('.') && !v.ends_with('.'),
        None => false,
    }
}

/// `scheme://user:password@host`: only the password goes. The trigger is the
/// `://`; the scheme is found by walking back (at most 32 bytes) and the user
/// by walking forward (at most 128). The password runs to the last `@` before
/// the authority ends, so `p@ss` is removed whole.
pub(crate) fn url_password(ctx: &Ctx<'_>, s: usize, e: usize, hits: &mut Vec<Hit>) -> usize {
    const MAX_SCHEME: usize = 32;
    const MAX_USER: usize = 128;
    const MAX_PW: usize = 256;
    let b = ctx.text.as_bytes();
    let floor = ctx.floor();
    // Scheme: letters, digits, `+ . -`, starting with a letter.
    let mut ss = s;
    while ss > floor
        && s - ss < MAX_SCHEME
        && (b[ss - 1].is_ascii_alphanumeric() || matches!(b[ss - 1], b'+' | b'.' | b'-'))
    {
        ss -= 1;
    }
    while ss < s && !b[ss].is_ascii_alphabetic() {
        ss += 1;
    }
    if ss == s {
        return e;
    }
    // User: up to the first `:`; an `@` or the end of the authority first
    // means there is no password.
    let mut i = e;
    loop {
        match b.get(i) {
            Some(b':') => break,
            Some(&c)
                if i - e < MAX_USER
                    && !c.is_ascii_whitespace()
                    && !matches!(c, b'/' | b'?' | b'#' | b'@' | b'"' | b'\'' | b'<' | b'>') =>
            {
                i += 1
            }
            _ => return e,
        }
    }
    let ps = i + 1;
    let mut last_at = None;
    let mut i = ps;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace()
            || matches!(
                c,
                b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'`' | b'\\'
            )
        {
            break;
        }
        if i - ps > MAX_PW {
            // No authority is this long; deciding on a cut-off `@` would make
            // the result depend on where the bound fell.
            return e;
        }
        if c == b'@' {
            last_at = Some(i);
        }
        i += 1;
    }
    let Some(at) = last_at else { return e };
    let host_ok = b
        .get(at + 1)
        .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'[' || c >= 0x80);
    let pw = &ctx.text[ps..at];
    if is_marker(pw) {
        return at;
    }
    // Already replaced, and what follows the marker was scanned on its own the
    // first time (a later replacement may since have removed the `/` that
    // ended this authority): resume right after the marker, as then.
    let marker = Kind::UrlPassword.marker();
    if pw.starts_with(marker) && b.get(ps + marker.len()) == Some(&b'@') {
        return ps + marker.len();
    }
    if at == ps || !host_ok || is_template_or_marker(pw) {
        return e;
    }
    hits.push(Hit {
        start: ps,
        end: at,
        kind: Kind::UrlPassword,
    });
    at
}

// ---------------------------------------------------------------- JWT

/// `header.payload[.signature]` where the header is base64url of a JSON object.
pub(crate) fn jwt(ctx: &Ctx<'_>, s: usize, _e: usize, hits: &mut Vec<Hit>) -> usize {
    let b = ctx.text.as_bytes();
    // A JWT starts at a boundary; `x.eyJ…` is the payload of something else.
    if !left_ok(ctx, s, |c| is_token_char(c) || c == b'.') {
        return s + 1;
    }
    let h_end = cut_armor(ctx.text, s, extend(b, s, is_token_char));
    if b.get(h_end) != Some(&b'.') {
        return s + 1;
    }
    let p_end = cut_armor(ctx.text, h_end + 1, extend(b, h_end + 1, is_token_char));
    if p_end - (h_end + 1) < 2 || !json_object_b64(&ctx.text[s..h_end]) {
        return s + 1;
    }
    // Signature (possibly empty) and, for JWE, up to two more segments.
    let mut end = p_end;
    for _ in 0..3 {
        if b.get(end) != Some(&b'.') {
            break;
        }
        end = cut_armor(ctx.text, end + 1, extend(b, end + 1, is_token_char));
    }
    hits.push(Hit {
        start: s,
        end,
        kind: Kind::Jwt,
    });
    end
}

fn json_object_b64(seg: &str) -> bool {
    let Some(raw) = b64_decode(seg) else {
        return false;
    };
    let t = raw.trim_ascii();
    if t.first() != Some(&b'{') || t.last() != Some(&b'}') {
        return false;
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(t).is_ok() {
        return true;
    }
    // Slightly damaged headers (a stray byte in a value) are still headers;
    // random base64 that happens to start with `eyJ` is mostly unprintable.
    let odd = t
        .iter()
        .filter(|&&c| !(0x20..0x7f).contains(&c) && !c.is_ascii_whitespace())
        .count();
    t.starts_with(b"{\"") && t.windows(2).any(|w| w == b"\":") && odd * 10 <= t.len()
}
