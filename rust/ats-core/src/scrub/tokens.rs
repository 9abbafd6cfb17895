//! Vendor tokens recognised by their prefix: AWS access key ids, GitHub,
//! GitLab, Slack, Stripe, Google, Anthropic and OpenAI keys.
//!
//! Each validator checks the left boundary first (O(1) for a trigger inside a
//! longer run), then extends the body by hand, cuts it before PEM armour,
//! and checks the vendor's length rules, the right boundary and that the body
//! is not a placeholder (`ghp_xxxx…`).

use super::validators::{
    cut_armor, extend, few_distinct, is_alnum, is_token_char, left_ok, right_ok,
};
use super::{Ctx, Hit, Kind};

#[inline]
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Shared shape: left boundary, body extension over `class`, length bounds,
/// right boundary, no placeholder body.
#[allow(clippy::too_many_arguments)]
fn prefixed(
    ctx: &Ctx<'_>,
    s: usize,
    body_start: usize,
    class: fn(u8) -> bool,
    boundary: fn(u8) -> bool,
    min: usize,
    max: usize,
    kind: Kind,
    hits: &mut Vec<Hit>,
) -> usize {
    let b = ctx.text.as_bytes();
    if !left_ok(ctx, s, boundary) {
        return s + 1;
    }
    let end = cut_armor(ctx.text, body_start, extend(b, body_start, class));
    let body = &ctx.text[body_start..end];
    if body.len() < min || body.len() > max || !right_ok(b, end, boundary) || few_distinct(body) {
        return s + 1;
    }
    hits.push(Hit {
        start: s,
        end,
        kind,
    });
    end
}

pub(crate) fn aws_access_key(ctx: &Ctx<'_>, s: usize, _e: usize, hits: &mut Vec<Hit>) -> usize {
    // The body is exactly 16 of [A-Z0-9]; anything alphanumeric after it means
    // a longer word ("TODAYINASIAASACKOFRICE…"). No placeholder check: the
    // prefix and exact length are specific enough, and even `AKIAXXXX…` is
    // better removed than explained.
    let b = ctx.text.as_bytes();
    if !left_ok(ctx, s, is_alnum) || !right_ok(b, s + 20, is_alnum) {
        return s + 1;
    }
    hits.push(Hit {
        start: s,
        end: s + 20,
        kind: Kind::AwsAccessKey,
    });
    s + 20
}

pub(crate) fn github(ctx: &Ctx<'_>, s: usize, _e: usize, hits: &mut Vec<Hit>) -> usize {
    if ctx.text[s..].starts_with("github_pat_") {
        prefixed(
            ctx,
            s,
            s + 11,
            is_word,
            is_word,
            80,
            255,
            Kind::GithubToken,
            hits,
        )
    } else {
        prefixed(
            ctx,
            s,
            s + 4,
            is_alnum,
            is_word,
            36,
            255,
            Kind::GithubToken,
            hits,
        )
    }
}

pub(crate) fn gitlab(ctx: &Ctx<'_>, s: usize, _e: usize, hits: &mut Vec<Hit>) -> usize {
    let text = ctx.text;
    let b = text.as_bytes();
    if !left_ok(ctx, s, is_token_char) {
        return s + 1;
    }
    let (prefix, body_start) = if text[s..].starts_with("GR1348941") {
        ("GR1348941", s + 9)
    } else {
        match text[s..].find('-') {
            Some(d) => (&text[s..s + d], s + d + 1),
            None => return s + 1,
        }
    };
    let body_end = cut_armor(text, body_start, extend(b, body_start, is_token_char));
    // Routable tokens carry `.part` suffixes (`glpat-….01.xxxxxxxxx`).
    let mut end = body_end;
    while b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(|&c| is_alnum(c)) {
        end = cut_armor(text, end + 1, extend(b, end + 1, is_token_char));
    }
    let routable = end > body_end;
    let n = body_end - body_start;
    let (min, max) = match prefix {
        "glimt" => (25, 25),
        "glptt" => (40, 40),
        "gloas" => (64, 64),
        "glagent" => (50, 1024),
        _ if routable => (20, 300),
        "glpat" | "gldt" | "glft" | "glsoat" | "glrt" | "glcbt" | "GR1348941" => (20, 50),
        _ => (20, 64),
    };
    if n < min || n > max || few_distinct(&text[body_start..end]) {
        return s + 1;
    }
    hits.push(Hit {
        start: s,
        end,
        kind: Kind::GitlabToken,
    });
    end
}

pub(crate) fn slack(ctx: &Ctx<'_>, s: usize, _e: usize, hits: &mut Vec<Hit>) -> usize {
    let text = ctx.text;
    let b = text.as_bytes();
    if text[s..].starts_with("http") {
        // Webhook: keep the host, drop the path that authorises posting.
        let ps = s + text[s..]
            .find("slack.com/")
            .map_or(0, |i| i + "slack.com/".len());
        let ps = extend(b, ps, |c| c.is_ascii_alphabetic()) + 1; // services/ workflows/ triggers/
        let pe = extend(b, ps.min(b.len()), |c| is_token_char(c) || c == b'/');
        if pe <= ps || pe - ps < 10 {
            return s + 1;
        }
        hits.push(Hit {
            start: ps,
            end: pe,
            kind: Kind::SlackToken,
        });
        return pe;
    }
    if !left_ok(ctx, s, is_token_char) {
        return s + 1;
    }
    let is_body = |c: u8| is_alnum(c) || c == b'-';
    if text[s..].starts_with("xapp-") {
        let end = cut_armor(text, s, extend(b, s + 5, is_body));
        if end - s < 25 || few_distinct(&text[s + 5..end]) {
            return s + 1;
        }
        hits.push(Hit {
            start: s,
            end,
            kind: Kind::SlackToken,
        });
        return end;
    }
    let body_start = if text[s..].starts_with("xoxe.") {
        s + 10
    } else {
        s + 5
    };
    let end = cut_armor(text, body_start, extend(b, body_start, is_body));
    if !slack_body_ok(&text[body_start..end]) {
        return s + 1;
    }
    hits.push(Hit {
        start: s,
        end,
        kind: Kind::SlackToken,
    });
    end
}

/// Slack bodies are dash-separated: a numeric id of 6+ digits (or a long
/// mixed-alphanumeric blob for configuration tokens) and a real last part.
fn slack_body_ok(body: &str) -> bool {
    if body.ends_with('-') {
        return false;
    }
    let mut has_id = false;
    let mut last_len = 0;
    for seg in body.split('-') {
        let numeric = !seg.is_empty() && seg.bytes().all(|c| c.is_ascii_digit());
        if numeric && seg.len() >= 6 {
            has_id = true;
        }
        if seg.len() >= 30
            && seg.bytes().any(|c| c.is_ascii_digit())
            && seg.bytes().any(|c| c.is_ascii_alphabetic())
        {
            has_id = true;
        }
        if !numeric && seg.len() >= 4 && few_distinct(seg) {
            return false;
        }
        last_len = seg.len();
    }
    has_id && last_len >= 6
}

pub(crate) fn stripe(ctx: &Ctx<'_>, s: usize, _e: usize, hits: &mut Vec<Hit>) -> usize {
    let body_start = s + ctx.text[s..].find('_').map_or(0, |i| i + 1);
    let body_start = body_start + ctx.text[body_start..].find('_').map_or(0, |i| i + 1);
    prefixed(
        ctx,
        s,
        body_start,
        is_alnum,
        is_word,
        10,
        255,
        Kind::StripeKey,
        hits,
    )
}

pub(crate) fn google(ctx: &Ctx<'_>, s: usize, _e: usize, hits: &mut Vec<Hit>) -> usize {
    prefixed(
        ctx,
        s,
        s + 4,
        is_token_char,
        is_token_char,
        35,
        35,
        Kind::GoogleApiKey,
        hits,
    )
}

pub(crate) fn anthropic(ctx: &Ctx<'_>, s: usize, _e: usize, hits: &mut Vec<Hit>) -> usize {
    let text = ctx.text;
    let b = text.as_bytes();
    if !left_ok(ctx, s, is_token_char) {
        return s + 1;
    }
    let end = cut_armor(text, s, extend(b, s, is_token_char));
    // After `sk-ant-<kind>NN-`.
    let body_start = match text[s + 7..end].find('-') {
        Some(i) => s + 7 + i + 1,
        None => return s + 1,
    };
    let n = end - body_start;
    if !(80..=300).contains(&n)
        || !text[s..end].ends_with("AA")
        || few_distinct(&text[body_start..end])
    {
        return s + 1;
    }
    hits.push(Hit {
        start: s,
        end,
        kind: Kind::AnthropicKey,
    });
    end
}

pub(crate) fn openai(ctx: &Ctx<'_>, s: usize, _e: usize, hits: &mut Vec<Hit>) -> usize {
    let text = ctx.text;
    let b = text.as_bytes();
    if !left_ok(ctx, s, is_token_char) {
        return s + 1;
    }
    let end = cut_armor(text, s, extend(b, s, is_token_char));
    let tok = &text[s..end];
    // `T3BlbkFJ` is base64 of "OpenAI" and sits inside every OpenAI key format.
    if tok.starts_with("sk-ant-") || tok.len() > 512 || !tok.contains("T3BlbkFJ") {
        return s + 1;
    }
    hits.push(Hit {
        start: s,
        end,
        kind: Kind::OpenaiKey,
    });
    end
}
