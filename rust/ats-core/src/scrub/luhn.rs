//! Payment card numbers and US social security numbers inside runs of digits.
//!
//! A trigger (13 digits with optional separators, or an `AAA-GG-SSSS` shape)
//! hands over the start of a *run*: digit groups joined by one or two of
//! space, `-` and `.`. The run is split into groups once and every window of
//! consecutive groups is checked:
//!
//! * card: 13–19 digits, one separator string used throughout the window,
//!   groups of at least three digits, Luhn-valid; unseparated numbers must start with 2–6 (issuer ranges) so
//!   that epoch-millisecond timestamps and snowflake ids stay;
//! * SSN: groups of 3, 2 and 4 digits with one separator character (`-`, space
//!   or `.`), not 000/666/9xx, 00, 0000, and not part of a longer number
//!   written with the same separator.
//!
//! A card window may touch a neighbouring number only through spaces: next to
//! a `.` (decimals, versions, addresses) or a `-` (dashed ids, SSNs) it is not
//! a card. The run is parsed once and the scan resumes after it.

use super::{Ctx, Hit, Kind};

/// Groups looked at in one run; a longer run continues at the next trigger.
/// Large enough that no real text reaches it (the cut could otherwise split a
/// card differently from a second pass), small enough to bound memory.
const MAX_GROUPS: usize = 1024;

/// Luhn checksum over ASCII digits (other bytes skipped).
pub(crate) fn luhn_valid(digits: impl DoubleEndedIterator<Item = u8>) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits
        .rev()
        .filter(u8::is_ascii_digit)
        .map(|c| u32::from(c - b'0'))
        .enumerate()
    {
        sum += if i % 2 == 1 {
            let x = d * 2;
            if x > 9 {
                x - 9
            } else {
                x
            }
        } else {
            d
        };
    }
    // (`is_multiple_of` would need Rust 1.87; the workspace targets 1.80.)
    matches!(sum % 10, 0)
}

#[inline]
fn is_sep(b: u8) -> bool {
    matches!(b, b' ' | b'-' | b'.')
}

#[derive(Clone, Copy)]
struct Group {
    start: usize,
    end: usize,
}

pub(crate) fn digits(ctx: &Ctx<'_>, s: usize, e: usize, hits: &mut Vec<Hit>) -> usize {
    let text = ctx.text;
    let b = text.as_bytes();
    let floor = ctx.floor();
    // A trigger can start inside a digit group (`12078-05-1123`); the group
    // starts earlier. At most 12 digits precede a trigger, so this is bounded.
    let mut rs = s;
    while rs > floor && b[rs - 1].is_ascii_digit() {
        rs -= 1;
    }
    // Letters or `_` glued to the front: the first group is part of an
    // identifier (`a456-…`), the rest of the run is still looked at.
    let glued_left =
        !super::validators::left_ok(ctx, rs, |c| c.is_ascii_alphanumeric() || c == b'_');
    // Separator before the run that joins it to an earlier (unredacted) number.
    let lead_sep = lead_separator(b, rs, floor);

    let mut buf: Vec<Group> = Vec::with_capacity(8);
    let mut i = rs;
    loop {
        let ge = super::validators::extend(b, i, |c| c.is_ascii_digit());
        buf.push(Group { start: i, end: ge });
        i = ge;
        if buf.len() >= MAX_GROUPS {
            break;
        }
        // One or two separator bytes, then a digit.
        let sep_end = if b.get(i).is_some_and(|&c| is_sep(c)) {
            if b.get(i + 1).is_some_and(|&c| is_sep(c)) {
                i + 2
            } else {
                i + 1
            }
        } else {
            break;
        };
        if b.get(sep_end).is_some_and(u8::is_ascii_digit) {
            i = sep_end;
        } else {
            break;
        }
    }
    let run_end = i;
    let groups = &buf[..];
    let glued_right =
        !super::validators::right_ok(b, run_end, |c| c.is_ascii_alphanumeric() || c == b'_');

    let trail = trail_separator(b, run_end);
    let sep = |k: usize| -> &[u8] { &b[groups[k - 1].end..groups[k].start] };
    // Separators around a window are read from the text as it is, whether or
    // not the neighbouring group gets replaced: a marker (`…]`, `[…`) joins
    // like a digit, so a second pass sees exactly the same neighbours.
    let before = |k: usize| if k == 0 { lead_sep } else { Some(sep(k)) };
    let after = |w: usize| {
        if w + 1 < groups.len() {
            Some(sep(w + 1))
        } else {
            trail
        }
    };
    let mut k = usize::from(glued_left);
    while k < groups.len() {
        if let Some(w) = card_window(b, groups, k, &before, &after, glued_right, &sep) {
            hits.push(Hit {
                start: groups[k].start,
                end: groups[w].end,
                kind: Kind::CreditCard,
            });
            k = w + 1;
            continue;
        }
        if ssn_window(b, groups, k, &before, &after, glued_right, &sep) {
            hits.push(Hit {
                start: groups[k].start,
                end: groups[k + 2].end,
                kind: Kind::Ssn,
            });
            k += 3;
            continue;
        }
        k += 1;
    }
    run_end.max(e)
}

/// The 1–2 separator bytes before `rs` if a digit, a `]` or replaced text
/// (which becomes a marker ending in `]`) precedes them.
fn lead_separator(b: &[u8], rs: usize, floor: usize) -> Option<&[u8]> {
    for n in [1usize, 2] {
        if rs < n + 1 || rs - n < floor {
            return None;
        }
        let seps = &b[rs - n..rs];
        if !seps.iter().all(|&c| is_sep(c)) {
            return None;
        }
        let p = rs - n - 1;
        if p < floor || b[p].is_ascii_digit() || b[p] == b']' {
            return Some(seps);
        }
    }
    None
}

/// The 1–2 separator bytes at `end` if a digit or `[` follows them.
fn trail_separator(b: &[u8], end: usize) -> Option<&[u8]> {
    for n in [1usize, 2] {
        let seps = b.get(end..end + n)?;
        if !seps.iter().all(|&c| is_sep(c)) {
            return None;
        }
        if let Some(&c) = b.get(end + n) {
            if c.is_ascii_digit() || c == b'[' {
                return Some(seps);
            }
        }
    }
    None
}

/// Shortest valid card window starting at group `k`, as the index of its last
/// group. Shortest, so that a number written right after a card
/// (`4111 1111 1111 1111 12/25`, `… 078-05-1120`) is not swallowed into it.
#[allow(clippy::too_many_arguments)]
fn card_window<'b>(
    b: &'b [u8],
    groups: &[Group],
    k: usize,
    before: &dyn Fn(usize) -> Option<&'b [u8]>,
    after: &dyn Fn(usize) -> Option<&'b [u8]>,
    glued_right: bool,
    sep: &dyn Fn(usize) -> &'b [u8],
) -> Option<usize> {
    // Only whitespace may join a card to a neighbouring number: a `.` makes it
    // a decimal or version, a `-` makes the edge group part of a dashed number
    // (`…4000 001-01-0001`).
    let joined = |s: Option<&[u8]>| s.is_some_and(|s| s.iter().any(|&c| c != b' '));
    if joined(before(k)) {
        return None;
    }
    // Candidate ends: extend while the separator stays the same and digits <= 19.
    let mut digits = 0usize;
    let mut window_sep: Option<&[u8]> = None;
    let mut w = k;
    while w < groups.len() {
        let glen = groups[w].end - groups[w].start;
        if w > k {
            // Written cards group digits in threes or more (4-4-4-4, 4-6-5, …),
            // only the last group may be shorter (Diners 4-4-4-2); this also
            // keeps runs like `1 2 3 4 …` cheap.
            if groups[k].end - groups[k].start < 3 || groups[w - 1].end - groups[w - 1].start < 3 {
                break;
            }
            let s = sep(w);
            if s.contains(&b'.') {
                break;
            }
            match window_sep {
                None => window_sep = Some(s),
                Some(ws) if ws == s => {}
                Some(_) => break,
            }
        }
        digits += glen;
        if digits > 19 {
            break;
        }
        if digits >= 13 {
            let last = w + 1 == groups.len();
            let after_ok = !joined(after(w)) && (!last || !glued_right);
            let first = b[groups[k].start];
            // Unseparated numbers must carry an issuer prefix (2–6).
            let prefix_ok = if w == k {
                (b'2'..=b'6').contains(&first)
            } else {
                first != b'0'
            };
            if after_ok
                && prefix_ok
                && layout_ok(&groups[k..=w])
                && luhn_valid(b[groups[k].start..groups[w].end].iter().copied())
            {
                return Some(w);
            }
        }
        w += 1;
    }
    None
}

/// How cards are written: one block, two blocks (`422222 2222222`), fours with
/// a shorter last block (`4-4-4-4`, `4-4-4-4-3`, `4-4-4-2`), or `4-6-5` / `4-6-4`
/// (Amex, Diners). Anything else (`1024 3770 887226`) is several numbers.
fn layout_ok(window: &[Group]) -> bool {
    let len = |g: &Group| g.end - g.start;
    match window {
        [_] | [_, _] => true,
        [a, b, c] if len(a) == 4 && len(b) == 6 && (4..=5).contains(&len(c)) => true,
        [init @ .., last] => init.iter().all(|g| len(g) == 4) && (1..=4).contains(&len(last)),
        [] => false,
    }
}

/// `AAA-GG-SSSS` at group `k` with a single consistent separator.
#[allow(clippy::too_many_arguments)]
fn ssn_window<'b>(
    b: &'b [u8],
    groups: &[Group],
    k: usize,
    before: &dyn Fn(usize) -> Option<&'b [u8]>,
    after: &dyn Fn(usize) -> Option<&'b [u8]>,
    glued_right: bool,
    sep: &dyn Fn(usize) -> &'b [u8],
) -> bool {
    if k + 2 >= groups.len() {
        return false;
    }
    let len = |g: &Group| g.end - g.start;
    if len(&groups[k]) != 3 || len(&groups[k + 1]) != 2 || len(&groups[k + 2]) != 4 {
        return false;
    }
    let (s1, s2) = (sep(k + 1), sep(k + 2));
    if s1.len() != 1 || s1 != s2 {
        return false;
    }
    // Part of a longer number written the same way (`1-800-55-1234`)?
    if before(k).is_some_and(|p| p.contains(&s1[0]))
        || after(k + 2).is_some_and(|p| p.contains(&s1[0]))
    {
        return false;
    }
    if k + 3 == groups.len() && glued_right {
        return false;
    }
    let area = &b[groups[k].start..groups[k].end];
    let group = &b[groups[k + 1].start..groups[k + 1].end];
    let serial = &b[groups[k + 2].start..groups[k + 2].end];
    area != b"000" && area != b"666" && area[0] != b'9' && group != b"00" && serial != b"0000"
}

#[cfg(test)]
mod tests {
    use super::luhn_valid;

    #[test]
    fn luhn_known_values() {
        assert!(luhn_valid(b"4111111111111111".iter().copied()));
        assert!(luhn_valid(b"4012-8888-8888-1881".iter().copied()));
        assert!(!luhn_valid(b"4012-8888-8888-1882".iter().copied()));
        assert!(luhn_valid(b"378282246310005".iter().copied()));
        assert!(!luhn_valid(b"1234567890123".iter().copied()));
    }
}
