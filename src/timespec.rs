//! Times and durations as people type them (CLI flags, HTTP query strings):
//! one parser for both, so `--since 7d` and `?since=7d` mean the same.

use crate::error::{Error, Result};
use crate::output::{clip, sanitize};

const HUNDRED_YEARS: i64 = 100 * 365 * 86_400;

/// `<digits><unit>` with unit `s`, `m`, `h`, `d` or `w` → seconds; `None`
/// when malformed or over a hundred years.
pub fn duration_secs(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(mult).filter(|v| *v <= HUNDRED_YEARS)
}

/// `since`: `YYYY-MM-DD` (00:00 UTC), RFC 3339, or a duration back from now
/// (`90s`, `30m`, `12h`, `7d`, `2w`). Returns epoch seconds.
pub fn parse_since(s: &str) -> Result<f64> {
    let s = s.trim();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp() as f64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp() as f64 + f64::from(t.timestamp_subsec_micros()) / 1e6);
    }
    let back = duration_secs(s).ok_or_else(|| {
        Error::usage(format!(
            "--since {:?}: expected YYYY-MM-DD, RFC 3339 or a duration like 7d",
            clip(&sanitize(s), 40)
        ))
    })?;
    Ok((chrono::Utc::now().timestamp() - back) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_forms() {
        assert_eq!(parse_since("1970-01-02").unwrap(), 86_400.0);
        assert_eq!(parse_since("1970-01-01T00:00:10.5Z").unwrap(), 10.5);
        let now = chrono::Utc::now().timestamp() as f64;
        assert!((now - 7.0 * 86_400.0 - parse_since("7d").unwrap()).abs() < 5.0);
        for bad in ["", "7", "7y", "-1d", "abc", "9999999999999w", "大d"] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration_secs("90d"), Some(90 * 86_400));
        assert_eq!(duration_secs(" 2w "), Some(14 * 86_400));
        for bad in ["d", "10y", "99999999999999d", "1dd", "+1d"] {
            assert_eq!(duration_secs(bad), None, "{bad}");
        }
    }
}
