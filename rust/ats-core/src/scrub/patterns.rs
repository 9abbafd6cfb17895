//! The trigger table: one regex per detector, all compiled into one automaton.
//!
//! Triggers are short and bounded on purpose. They only find *where* a
//! candidate is; the validators in the sibling modules check boundaries and
//! extend the match by hand (forwards over token bodies, backwards over an
//! e-mail's local part or a URL's scheme). Short triggers keep the lazy DFA
//! small: a counted repetition over word characters (`[a-z]{1,64}@`) would be
//! live on every word of every text and multiply the automaton's states until
//! its cache thrashes.
//!
//! Order matters only between triggers that start at the same byte
//! (leftmost-first): the more specific rule comes first.

use super::{keyword, luhn, path, tokens, validators, Ctx, Hit};

/// Which validator a trigger belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handler {
    PrivateKey,
    AuthHeader,
    BareBasic,
    BareBearer,
    CurlUser,
    UrlPassword,
    Email,
    Jwt,
    AwsAccessKey,
    Github,
    Gitlab,
    Slack,
    Stripe,
    Google,
    Anthropic,
    Openai,
    KeywordForward,
    KeywordReverse,
    Digits,
    HomeUnix,
    HomeWindows,
    Extra(u16),
}

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub regex: &'static str,
    pub handler: Handler,
}

const fn rule(regex: &'static str, handler: Handler) -> Rule {
    Rule { regex, handler }
}

/// Built-in triggers in priority order.
pub(crate) fn builtin_rules() -> Vec<Rule> {
    use Handler::*;
    vec![
        rule(
            r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----",
            PrivateKey,
        ),
        rule(
            r#"(?i-u:(?:proxy-)?authorization)["']?[ \t]{0,4}[:=][ \t]{0,4}["']?"#,
            AuthHeader,
        ),
        rule(
            r"(?:Basic|BASIC|basic)[ \t]{1,4}[A-Za-z0-9+/]{4}",
            BareBasic,
        ),
        rule(
            r"(?:Bearer|BEARER|bearer)[ \t]{1,4}[A-Za-z0-9._~+/-]{4}",
            BareBearer,
        ),
        rule(r"(?:^|[ \t\n])(?:-u|--user)(?:[ \t]{1,8}|=)", CurlUser),
        rule(r"://", UrlPassword),
        // From the `@`: the local part is found by walking back (bounded), so
        // no counter over word characters lives in the automaton.
        rule(
            r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]",
            Email,
        ),
        rule(r"eyJ[A-Za-z0-9_-]{4}", Jwt),
        rule(
            r"(?:A3T[A-Z0-9]|AKIA|ABIA|ACCA|ASIA)[A-Z0-9]{16}",
            AwsAccessKey,
        ),
        rule(
            r"gh[pousr]_[A-Za-z0-9]{4}|github_pat_[A-Za-z0-9_]{4}",
            Github,
        ),
        rule(
            r"(?:gl(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas|ffct|wt|cit|drt|rtr|fct|sat)-|GR1348941)[A-Za-z0-9_-]{4}",
            Gitlab,
        ),
        rule(
            r"xox[abeoprs]-[A-Za-z0-9]|xoxe\.xox[bp]-[0-9]|xapp-[0-9]{1,3}-[A-Za-z0-9]|https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9]",
            Slack,
        ),
        rule(r"[sr]k_(?:live|test|prod)_[A-Za-z0-9]{4}", Stripe),
        rule(r"AIza[0-9A-Za-z_-]{4}", Google),
        rule(r"sk-ant-[a-z]{2,10}[0-9]{2}-[A-Za-z0-9_-]{4}", Anthropic),
        rule(r"sk-[A-Za-z0-9_-]{4}", Openai),
        rule(
            r"(?i-u:pass|pwd|secret|token|credential|(?:api|access|private|secret|auth|signing|encryption|master|client|session|app|account|storage)[_.-]?key)",
            KeywordForward,
        ),
        rule(
            r#"["'`][^"'`\r\n]+["'`][ \t]{0,4}(?:===?|!==?)[ \t]{0,4}"#,
            KeywordReverse,
        ),
        rule(
            r"[0-9](?:[ -]{0,2}[0-9]){12}|[0-9]{3}[ .-][0-9]{2}[ .-][0-9]{4}",
            Digits,
        ),
        rule(r"/(?:home|Users)/[A-Za-z0-9._-]", HomeUnix),
        rule(
            r"[A-Za-z]:(?:\\{1,2}|/)(?i-u:users)(?:\\{1,2}|/)[A-Za-z0-9._-]",
            HomeWindows,
        ),
    ]
}

/// Runs the validator for `handler` on the trigger `text[start..end]`, pushing
/// ordered replacements to `hits`. Returns where the scan resumes.
pub(crate) fn run(
    handler: Handler,
    ctx: &Ctx<'_>,
    start: usize,
    end: usize,
    hits: &mut Vec<Hit>,
) -> usize {
    match handler {
        Handler::PrivateKey => validators::private_key(ctx, start, end, hits),
        Handler::AuthHeader => validators::auth_header(ctx, start, end, hits),
        Handler::BareBasic => validators::bare_basic(ctx, start, end, hits),
        Handler::BareBearer => validators::bare_bearer(ctx, start, end, hits),
        Handler::CurlUser => validators::curl_user(ctx, start, end, hits),
        Handler::UrlPassword => validators::url_password(ctx, start, end, hits),
        Handler::Email => validators::email(ctx, start, end, hits),
        Handler::Jwt => validators::jwt(ctx, start, end, hits),
        Handler::AwsAccessKey => tokens::aws_access_key(ctx, start, end, hits),
        Handler::Github => tokens::github(ctx, start, end, hits),
        Handler::Gitlab => tokens::gitlab(ctx, start, end, hits),
        Handler::Slack => tokens::slack(ctx, start, end, hits),
        Handler::Stripe => tokens::stripe(ctx, start, end, hits),
        Handler::Google => tokens::google(ctx, start, end, hits),
        Handler::Anthropic => tokens::anthropic(ctx, start, end, hits),
        Handler::Openai => tokens::openai(ctx, start, end, hits),
        Handler::KeywordForward => keyword::forward(ctx, start, end, hits),
        Handler::KeywordReverse => keyword::reverse(ctx, start, end, hits),
        Handler::Digits => luhn::digits(ctx, start, end, hits),
        Handler::HomeUnix => path::home_unix(ctx, start, end, hits),
        Handler::HomeWindows => path::home_windows(ctx, start, end, hits),
        // Handled by the caller, which owns the extra markers.
        Handler::Extra(_) => end,
    }
}
