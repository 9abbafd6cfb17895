//! PII and secret scrubber for free text.
//!
//! [`scrub`] (or [`Scrubber::scrub`]) returns its input with personal data and
//! credentials replaced by markers. Text that contains nothing sensitive comes
//! back as [`Cow::Borrowed`] without any allocation.
//!
//! ```
//! use ats_core::scrub::scrub;
//! assert_eq!(scrub("mail bob@example.com"), "mail [EMAIL]");
//! assert_eq!(scrub("open /home/alice/src/app.py"), "open ~/src/app.py");
//! assert_eq!(scrub("postgres://app:hunter2@db:5432/x"), "postgres://app:[PASSWORD]@db:5432/x");
//! assert_eq!(scrub("version 1.2.3 on 2025-10-16"), "version 1.2.3 on 2025-10-16");
//! ```
//!
//! # What is replaced, and by what
//!
//! | [`Kind`] | name | marker | what is replaced |
//! |---|---|---|---|
//! | `Email` | `email` | `[EMAIL]` | the whole address (`local@domain.tld`, punycode domains too) |
//! | `Ssn` | `ssn` | `[SSN]` | `AAA-GG-SSSS` (also with one space or dot as separator, used consistently); area 000, 666, 9xx, group 00 and serial 0000 are not SSNs |
//! | `CreditCard` | `credit_card` | `[CREDIT_CARD]` | 13–19 digits that pass Luhn, unseparated or grouped with one consistent separator (space, dash, or two of them); unseparated numbers must start with 2–6 (issuer ranges), so epoch-millisecond timestamps and snowflake ids are left alone |
//! | `AwsAccessKey` | `aws_access_key` | `[API_KEY]` | `AKIA`/`ASIA`/`ABIA`/`ACCA`/`A3T?` + 16 |
//! | `AwsSecretKey` | `aws_secret_key` | `[AWS_SECRET_KEY]` | a 40-character key assigned to an `aws…` keyword (only the value) |
//! | `GithubToken` | `github_token` | `[API_KEY]` | `ghp_ gho_ ghu_ ghs_ ghr_` (36+), `github_pat_` (80+) |
//! | `GitlabToken` | `gitlab_token` | `[API_KEY]` | `glpat- gldt- glft- glsoat- glrt- glcbt- glimt- glptt- glagent- gloas- …`, `GR1348941…`, with each prefix's length rules |
//! | `SlackToken` | `slack_token` | `[API_KEY]` | `xoxb- xoxp- xoxa- xoxo- xoxs- xoxr- xoxe-`, `xoxe.xoxp-`, `xapp-`, webhook paths under `hooks.slack.com` |
//! | `StripeKey` | `stripe_key` | `[API_KEY]` | secret and restricted keys `sk_/rk_` + `live/test/prod` (publishable `pk_` keys are public) |
//! | `GoogleApiKey` | `google_api_key` | `[API_KEY]` | `AIza` + 35 |
//! | `OpenaiKey` | `openai_key` | `[API_KEY]` | `sk-…` / `sk-proj-…` / `sk-svcacct-…` / `sk-admin-…` containing OpenAI's `T3BlbkFJ` marker |
//! | `AnthropicKey` | `anthropic_key` | `[API_KEY]` | `sk-ant-<kind>NN-…AA` (API and admin keys) |
//! | `Jwt` | `jwt` | `[JWT]` | `header.payload[.signature]` whose header decodes to a JSON object |
//! | `BearerCredential` | `bearer_credential` | `[CREDENTIAL]` | the credential after `Authorization:` (any scheme but Basic) or after a bare `Bearer` |
//! | `BasicCredential` | `basic_credential` | `[CREDENTIAL]` | the credential of `Authorization: Basic …`, a bare `Basic <base64 of user:pw>`, and the password of `curl -u/--user user:pw` |
//! | `PrivateKey` | `private_key` | `[PRIVATE_KEY]` | a whole PEM/PGP `-----BEGIN … PRIVATE KEY-----` block (to the end of the text if the END line is missing) |
//! | `UrlPassword` | `url_password` | `[PASSWORD]` | the password of `scheme://user:password@host` (user and host are kept) |
//! | `KeywordSecret` | `keyword_secret` | `[SECRET]` | the value assigned to or compared with a secret-looking name: `password`, `passwd`, `pwd`, `pass`, `secret`, `token`, `api_key`, `apikey`, `access_token`, `client_secret`, `*_key` compounds …, as `k=v`, `k = v`, `k: v`, `"k": "v"`, `k => "v"`, `k == "v"`, `"v" == k`, `k "v"` |
//! | `HomePath` | `home_path` | `~` | `/home/NAME`, `/Users/NAME`, `C:\Users\NAME` (so `/home/alice/src/app.py` → `~/src/app.py`) |
//! | `Extra` | `extra` | from configuration | matches of [`ExtraPattern`]s |
//!
//! Values that are plainly not secrets are left alone: empty values, template
//! references (`${X}`, `$X`, `{{x}}`, `<token>`, `%(x)s`), markers (`[SECRET]`),
//! placeholders made of one or two distinct characters (`xxxx`, `****`), the words
//! `null`, `none`, `true`, `password`, … and names whose last word says the value is
//! metadata (`token_count`, `password_file`, `max_tokens`, `secret_name`, …).
//!
//! # How it runs
//!
//! All detectors are *triggers* in one multi-pattern regex
//! ([`regex_automata::meta::Regex`], leftmost-first, linear time). The text is
//! scanned once; each trigger hands its position to a small hand-written
//! validator that checks boundaries, extends the match (token bodies, quoted
//! values, digit groups; backwards for an e-mail's local part from the `@` and a
//! URL's scheme from the `://`) and decides. Triggers carry no counted
//! repetition over word characters, which keeps the lazy DFA small and fast. A
//! rejected trigger resumes the scan just after its own start; validators check
//! the left boundary before extending and bound every look-around (names 128
//! bytes, local parts 64, URL users 128 and passwords 256), so no run of
//! characters is re-read more than a bounded number of times. Total work is
//! linear in the input; text with nothing to replace is returned borrowed.
//!
//! Scrubbing is idempotent for the built-in rules (`scrub(scrub(x)) == scrub(x)`):
//! markers never match a rule; a position right after a replacement counts as a
//! boundary in the first pass just as the marker's `]` does in the second; a
//! validator that finds a marker where its value goes resumes where it would
//! have after replacing it; keyword values never span a line break. One case
//! cannot be seen in a single pass: a candidate rejected because its body ran
//! into a secret that a later rule then replaced (`glpat-…-ghp_…`). When a
//! replacement lands within 512 bytes of a rejected candidate, a confirming
//! pass runs over the output (at most three); clean text never pays for it.
//! Extra patterns are the caller's: a marker that its own regex matches breaks that.

mod keyword;
mod luhn;
mod path;
mod patterns;
mod tokens;
mod validators;
/// Shared with the OTLP transport (gRPC `-bin` trailers).
pub(crate) use validators::b64_decode;

use std::borrow::Cow;
use std::sync::OnceLock;

use regex_automata::meta::Regex;
use regex_automata::Input;

use patterns::{Handler, Rule};

/// A caller-supplied pattern: every match of `regex` is replaced by `marker`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraPattern {
    /// Name used in errors.
    pub name: String,
    /// Rust `regex` syntax (no look-around, no back-references).
    pub regex: String,
    /// Replacement text, e.g. `[EMPLOYEE_ID]`.
    pub marker: String,
}

/// Errors from building a [`Scrubber`].
#[derive(Debug, thiserror::Error)]
pub enum ScrubError {
    /// An extra pattern does not compile.
    #[error("invalid scrub pattern {name:?}: {message}")]
    InvalidPattern { name: String, message: String },
    /// The combined pattern set could not be built (for example, too large).
    #[error("cannot build scrubber: {message}")]
    Build { message: String },
    /// More extra patterns than the scrubber can address.
    #[error("too many extra scrub patterns: {count} (at most {max})")]
    TooManyPatterns { count: usize, max: usize },
}

/// What a replacement removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Email,
    Ssn,
    CreditCard,
    AwsAccessKey,
    AwsSecretKey,
    GithubToken,
    GitlabToken,
    SlackToken,
    StripeKey,
    GoogleApiKey,
    OpenaiKey,
    AnthropicKey,
    Jwt,
    BearerCredential,
    BasicCredential,
    PrivateKey,
    UrlPassword,
    KeywordSecret,
    HomePath,
    Extra,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 20] = [
        Kind::Email,
        Kind::Ssn,
        Kind::CreditCard,
        Kind::AwsAccessKey,
        Kind::AwsSecretKey,
        Kind::GithubToken,
        Kind::GitlabToken,
        Kind::SlackToken,
        Kind::StripeKey,
        Kind::GoogleApiKey,
        Kind::OpenaiKey,
        Kind::AnthropicKey,
        Kind::Jwt,
        Kind::BearerCredential,
        Kind::BasicCredential,
        Kind::PrivateKey,
        Kind::UrlPassword,
        Kind::KeywordSecret,
        Kind::HomePath,
        Kind::Extra,
    ];

    /// Stable snake_case name (for metrics and logs).
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Ssn => "ssn",
            Kind::CreditCard => "credit_card",
            Kind::AwsAccessKey => "aws_access_key",
            Kind::AwsSecretKey => "aws_secret_key",
            Kind::GithubToken => "github_token",
            Kind::GitlabToken => "gitlab_token",
            Kind::SlackToken => "slack_token",
            Kind::StripeKey => "stripe_key",
            Kind::GoogleApiKey => "google_api_key",
            Kind::OpenaiKey => "openai_key",
            Kind::AnthropicKey => "anthropic_key",
            Kind::Jwt => "jwt",
            Kind::BearerCredential => "bearer_credential",
            Kind::BasicCredential => "basic_credential",
            Kind::PrivateKey => "private_key",
            Kind::UrlPassword => "url_password",
            Kind::KeywordSecret => "keyword_secret",
            Kind::HomePath => "home_path",
            Kind::Extra => "extra",
        }
    }

    /// The replacement text. For [`Kind::Extra`] this is the default only; each
    /// extra pattern brings its own marker.
    pub fn marker(&self) -> &'static str {
        match self {
            Kind::Email => "[EMAIL]",
            Kind::Ssn => "[SSN]",
            Kind::CreditCard => "[CREDIT_CARD]",
            Kind::AwsSecretKey => "[AWS_SECRET_KEY]",
            Kind::AwsAccessKey
            | Kind::GithubToken
            | Kind::GitlabToken
            | Kind::SlackToken
            | Kind::StripeKey
            | Kind::GoogleApiKey
            | Kind::OpenaiKey
            | Kind::AnthropicKey => "[API_KEY]",
            Kind::Jwt => "[JWT]",
            Kind::BearerCredential | Kind::BasicCredential => "[CREDENTIAL]",
            Kind::PrivateKey => "[PRIVATE_KEY]",
            Kind::UrlPassword => "[PASSWORD]",
            Kind::KeywordSecret => "[SECRET]",
            Kind::HomePath => "~",
            Kind::Extra => "[REDACTED]",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Replacements made by one call, per [`Kind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    by_kind: [u32; Kind::ALL.len()],
}

impl Counts {
    /// Replacements of `kind`.
    pub fn get(&self, kind: Kind) -> u32 {
        self.by_kind[kind.index()]
    }

    /// All replacements.
    pub fn total(&self) -> u32 {
        self.by_kind.iter().fold(0u32, |a, &b| a.saturating_add(b))
    }

    /// `(kind, count)` for every kind with a non-zero count.
    pub fn iter(&self) -> impl Iterator<Item = (Kind, u32)> + '_ {
        Kind::ALL
            .iter()
            .map(|&k| (k, self.get(k)))
            .filter(|&(_, n)| n > 0)
    }

    fn bump(&mut self, kind: Kind) {
        let slot = &mut self.by_kind[kind.index()];
        *slot = slot.saturating_add(1);
    }
}

/// One replacement decided by a validator: `text[start..end]` becomes the marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hit {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

/// What a validator may look at besides its trigger.
pub(crate) struct Ctx<'t> {
    pub text: &'t str,
    /// End of the last replacement, if any. The byte before this position is
    /// treated as the last byte of the marker written there, so that a second
    /// pass over the output sees the same boundaries as the first.
    pub redacted_to: Option<usize>,
    /// Last byte of that marker (`]`, or `~` for a home directory).
    pub marker_last: u8,
}

impl Ctx<'_> {
    /// The byte before `i` as a later pass would see it.
    #[inline]
    pub fn prev_byte(&self, i: usize) -> Option<u8> {
        if i == 0 {
            return None;
        }
        if self.redacted_to == Some(i) {
            return Some(self.marker_last);
        }
        self.text.as_bytes().get(i - 1).copied()
    }

    /// Earliest position a validator may look back to (text before it was
    /// already replaced or rejected).
    #[inline]
    pub fn floor(&self) -> usize {
        self.redacted_to.unwrap_or(0)
    }
}

/// The most extra patterns one scrubber accepts (keeps the combined automaton small).
const MAX_EXTRA: usize = 256;

/// A compiled scrubber. `Send + Sync`; share it behind an `Arc` or use
/// [`default_scrubber`].
#[derive(Debug)]
pub struct Scrubber {
    regex: Regex,
    rules: Vec<Rule>,
    extra_markers: Vec<String>,
}

impl Scrubber {
    /// Builds a scrubber with the built-in rules plus `extra`.
    pub fn new(extra: &[ExtraPattern]) -> Result<Scrubber, ScrubError> {
        if extra.len() > MAX_EXTRA {
            return Err(ScrubError::TooManyPatterns {
                count: extra.len(),
                max: MAX_EXTRA,
            });
        }
        let mut rules = patterns::builtin_rules();
        let mut sources: Vec<String> = rules.iter().map(|r| r.regex.to_string()).collect();
        let mut extra_markers = Vec::with_capacity(extra.len());
        for (i, p) in extra.iter().enumerate() {
            // Compile alone first so the error names the offending pattern.
            if let Err(e) = Regex::new(&p.regex) {
                return Err(ScrubError::InvalidPattern {
                    name: p.name.clone(),
                    message: e.to_string(),
                });
            }
            sources.push(p.regex.clone());
            // `i < MAX_EXTRA` fits in u16.
            rules.push(Rule {
                regex: "",
                handler: Handler::Extra(i as u16),
            });
            extra_markers.push(p.marker.clone());
        }
        let regex = Regex::new_many(&sources).map_err(|e| ScrubError::Build {
            message: e.to_string(),
        })?;
        Ok(Scrubber {
            regex,
            rules,
            extra_markers,
        })
    }

    /// Returns `text` with every detected secret replaced by its marker.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.scrub_with_counts(text).0
    }

    /// Like [`Scrubber::scrub`], also counting replacements per kind.
    pub fn scrub_with_counts<'a>(&self, text: &'a str) -> (Cow<'a, str>, Counts) {
        let mut counts = Counts::default();
        let Some((mut current, mut confirm)) = self.pass(text, &mut counts) else {
            return (Cow::Borrowed(text), counts);
        };
        // A confirming pass, only when a rejected candidate sat right before a
        // replacement: its validator may have read into text that is now a
        // marker, and a second look must agree with the first (idempotence).
        for _ in 0..MAX_CONFIRM {
            if !confirm {
                break;
            }
            match self.pass(&current, &mut counts) {
                Some((next, again)) => {
                    current = next;
                    confirm = again;
                }
                None => break,
            }
        }
        (Cow::Owned(current), counts)
    }

    /// One scan. `None` when nothing was replaced; otherwise the new text and
    /// whether a confirming pass is needed.
    fn pass(&self, text: &str, counts: &mut Counts) -> Option<(String, bool)> {
        let mut out: Option<String> = None;
        let mut emitted = 0usize; // text[..emitted] is already in `out`
        let mut redacted_to: Option<usize> = None;
        let mut marker_last = b']';
        let mut last_reject: Option<usize> = None; // start of the latest rejected candidate
        let mut confirm = false;
        let mut hits: Vec<Hit> = Vec::new(); // allocates only on the first hit
        let mut pos = 0usize;
        let len = text.len();
        while pos < len {
            let Some(m) = self.regex.search(&Input::new(text).span(pos..len)) else {
                break;
            };
            let ctx = Ctx {
                text,
                redacted_to,
                marker_last,
            };
            hits.clear();
            let rule = &self.rules[m.pattern().as_usize()];
            let (resume, extra_marker) = match rule.handler {
                Handler::Extra(i) => {
                    if m.end() > m.start() {
                        hits.push(Hit {
                            start: m.start(),
                            end: m.end(),
                            kind: Kind::Extra,
                        });
                    }
                    (
                        m.end(),
                        Some(
                            self.extra_markers
                                .get(usize::from(i))
                                .map(String::as_str)
                                .unwrap_or(""),
                        ),
                    )
                }
                h => (patterns::run(h, &ctx, m.start(), m.end(), &mut hits), None),
            };
            if hits.is_empty() {
                last_reject = Some(m.start());
            }
            for h in &hits {
                // Validators return ordered hits at or after `pos`; anything
                // else would be a bug, and is skipped rather than panicking.
                if h.start < emitted || h.end < h.start || h.end > len {
                    debug_assert!(false, "bad hit {h:?}");
                    continue;
                }
                if last_reject
                    .is_some_and(|r| r >= emitted && h.start.abs_diff(r) <= CONFIRM_WINDOW)
                {
                    confirm = true;
                }
                let buf = out.get_or_insert_with(|| String::with_capacity(len));
                buf.push_str(&text[emitted..h.start]);
                let marker = extra_marker.unwrap_or(h.kind.marker());
                buf.push_str(marker);
                emitted = h.end;
                redacted_to = Some(h.end);
                // An empty extra marker leaves the byte before the hit in place.
                marker_last = marker.as_bytes().last().copied().unwrap_or(if h.start > 0 {
                    text.as_bytes()[h.start - 1]
                } else {
                    b' '
                });
                counts.bump(h.kind);
            }
            // Always make progress, never land inside a replacement or a char.
            let mut next = resume.max(m.start() + 1).max(emitted);
            while next < len && !text.is_char_boundary(next) {
                next += 1;
            }
            pos = next;
        }
        out.map(|mut buf| {
            buf.push_str(&text[emitted..]);
            (buf, confirm)
        })
    }
}

/// How far before a replacement a rejected candidate may start and still have
/// read into it (token bodies and keyword values are short).
const CONFIRM_WINDOW: usize = 512;
/// Most confirming passes; each only runs when the previous one changed text.
const MAX_CONFIRM: usize = 3;

/// The scrubber with built-in rules only, built on first use.
pub fn default_scrubber() -> &'static Scrubber {
    static DEFAULT: OnceLock<Scrubber> = OnceLock::new();
    DEFAULT.get_or_init(|| {
        // The built-in patterns are constants covered by tests; failing here is a
        // programming error, not an input-dependent condition.
        Scrubber::new(&[]).expect("built-in scrub patterns compile")
    })
}

/// Scrubs `text` with [`default_scrubber`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    default_scrubber().scrub(text)
}

#[cfg(test)]
mod tests;
