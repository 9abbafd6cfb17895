//! Home-directory segments of paths: `/home/NAME`, `/Users/NAME` and
//! `C:\Users\NAME` (also `C:/Users/NAME` and JSON-escaped `C:\\Users\\NAME`)
//! become `~`, so `/home/alice/src/app.py` reads `~/src/app.py`.
//!
//! Only a path that *starts* there counts: `/srv/home/alice` is not a home
//! directory. Shared system folders (`/Users/Shared`, `C:\Users\Public`,
//! `C:\Users\Default`) name no person and stay.

use super::validators::{extend, left_ok};
use super::{Ctx, Hit, Kind};

/// Longest user name accepted.
const NAME_MAX: usize = 64;

#[inline]
fn is_name(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// Bytes that, right before the path, mean it is the tail of something else.
#[inline]
fn glued(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'~' | b'/' | b'\\' | b'-' | b'$')
}

fn replace(
    ctx: &Ctx<'_>,
    s: usize,
    name_start: usize,
    shared: &[&str],
    hits: &mut Vec<Hit>,
) -> usize {
    let b = ctx.text.as_bytes();
    if !left_ok(ctx, s, glued) {
        return name_start;
    }
    let end = extend(b, name_start, is_name);
    let name = &ctx.text[name_start..end];
    if end - name_start > NAME_MAX
        || name.bytes().all(|c| c == b'.')
        || shared.iter().any(|x| name.eq_ignore_ascii_case(x))
    {
        // Resume at the name: it may itself be something else (a token).
        return name_start;
    }
    hits.push(Hit {
        start: s,
        end,
        kind: Kind::HomePath,
    });
    end
}

pub(crate) fn home_unix(ctx: &Ctx<'_>, s: usize, e: usize, hits: &mut Vec<Hit>) -> usize {
    // Trigger: `/home/` or `/Users/` plus the name's first byte.
    replace(ctx, s, e - 1, &["Shared"], hits)
}

pub(crate) fn home_windows(ctx: &Ctx<'_>, s: usize, e: usize, hits: &mut Vec<Hit>) -> usize {
    replace(
        ctx,
        s,
        e - 1,
        &["Public", "Default", "All Users", "Default User"],
        hits,
    )
}
