//! Reading a registry's "wait this long" hints, and drawing jitter for the backoff policy.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// A `Retry-After` header value in seconds (`"2"`, `"0.5"`). HTTP dates are not used by
/// registries in practice and are ignored.
pub fn parse_retry_after_header(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(3600.0)))
}

/// GHCR's hint inside an error message: `toomanyrequests: retry-after: 10.305464ms, allowed:
/// 2000/minute`. The value is a Go duration (`880.092µs`, `1.2s`, `1m30s`).
pub fn parse_retry_after_text(text: &str) -> Option<Duration> {
    let lower = text.to_ascii_lowercase();
    let start = lower.find("retry-after:")? + "retry-after:".len();
    let rest = text[start..].trim_start();
    let end = rest
        .find(|c: char| c == ',' || c == '"' || c.is_whitespace())
        .unwrap_or(rest.len());
    parse_go_duration(&rest[..end])
}

/// A Go `time.Duration` string: one or more `<decimal><unit>` with units h, m, s, ms, us,
/// µs, ns.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut rest = text;
    let mut total = 0.0_f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" | "μs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * seconds_per_unit;
    }
    (total.is_finite() && total <= 3600.0).then(|| Duration::from_secs_f64(total))
}

/// A fresh value in `[0, 1)` for the backoff's jitter, from the process's hash seed source
/// (good enough to spread retries; not for anything secret).
pub fn jitter() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_retry_after_seconds() {
        assert_eq!(parse_retry_after_header("2"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after_header(" 0.25 "),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_retry_after_header("Wed, 21 Oct 2015 07:28:00 GMT"),
            None
        );
        assert_eq!(parse_retry_after_header("-1"), None);
    }

    #[test]
    fn reads_ghcr_hints_from_error_messages() {
        let body = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"retry-after: 10.5ms, allowed: 2000/minute"}]}"#;
        assert_eq!(
            parse_retry_after_text(body),
            Some(Duration::from_micros(10_500))
        );
        assert_eq!(
            parse_retry_after_text(
                "toomanyrequests: retry-after: 880.092µs, allowed: 44000/minute"
            ),
            Some(Duration::from_nanos(880_092))
        );
        assert_eq!(
            parse_retry_after_text("Retry-After: 1m30s"),
            Some(Duration::from_secs(90))
        );
        assert_eq!(parse_retry_after_text("slow down"), None);
        assert_eq!(parse_retry_after_text("retry-after: soon"), None);
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }
}
