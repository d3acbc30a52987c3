//! `{{date '<format>'}}`: moment.js display formats, rendered in UTC from a time the caller
//! gives (the domain has no clock).
//!
//! The format is parsed when the policy is, so a token hoist does not render the way moment
//! does (locale weeks, eras, `L` shorthands) is a config error instead of a silently different
//! tag. Letters that are not moment tokens (such as the `T` in `YYYY-MM-DDTHH:mm`) are copied
//! as moment copies them, and `[...]` is literal text.

use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DateFormat(Vec<Token>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    Year4,
    Year2,
    Quarter,
    QuarterOrdinal,
    Month,
    Month2,
    MonthOrdinal,
    MonthShort,
    MonthLong,
    Day,
    Day2,
    DayOrdinal,
    DayOfYear,
    DayOfYear3,
    /// `d` and `e` (English locale weeks start on Sunday): 0..=6 from Sunday.
    Weekday,
    WeekdayMin,
    WeekdayShort,
    WeekdayLong,
    IsoWeekday,
    IsoWeek,
    IsoWeek2,
    IsoWeekOrdinal,
    IsoWeekYear2,
    IsoWeekYear4,
    Hour,
    Hour2,
    Hour12,
    Hour12Pad,
    Hour24,
    Hour24Pad,
    Minute,
    Minute2,
    Second,
    Second2,
    /// `S` to `SSSSSSSSS`: fractional seconds; moment keeps milliseconds and pads with zeros.
    Fraction(u8),
    UpperMeridiem,
    LowerMeridiem,
    ZoneName,
    Offset,
    OffsetCompact,
    UnixSeconds,
    UnixMillis,
}

/// Longest first where one token is a prefix of another, as moment's tokenizer tries them.
const TOKENS: &[(&str, Token)] = &[
    ("Mo", Token::MonthOrdinal),
    ("MMMM", Token::MonthLong),
    ("MMM", Token::MonthShort),
    ("MM", Token::Month2),
    ("M", Token::Month),
    ("Do", Token::DayOrdinal),
    ("DDDD", Token::DayOfYear3),
    ("DDD", Token::DayOfYear),
    ("DD", Token::Day2),
    ("D", Token::Day),
    ("dddd", Token::WeekdayLong),
    ("ddd", Token::WeekdayShort),
    ("dd", Token::WeekdayMin),
    ("d", Token::Weekday),
    ("e", Token::Weekday),
    ("E", Token::IsoWeekday),
    ("Wo", Token::IsoWeekOrdinal),
    ("WW", Token::IsoWeek2),
    ("W", Token::IsoWeek),
    ("Qo", Token::QuarterOrdinal),
    ("Q", Token::Quarter),
    ("YYYY", Token::Year4),
    ("YY", Token::Year2),
    ("Y", Token::Year4),
    ("GGGG", Token::IsoWeekYear4),
    ("GG", Token::IsoWeekYear2),
    ("a", Token::LowerMeridiem),
    ("A", Token::UpperMeridiem),
    ("hh", Token::Hour12Pad),
    ("h", Token::Hour12),
    ("HH", Token::Hour2),
    ("H", Token::Hour),
    ("kk", Token::Hour24Pad),
    ("k", Token::Hour24),
    ("mm", Token::Minute2),
    ("m", Token::Minute),
    ("ss", Token::Second2),
    ("s", Token::Second),
    ("x", Token::UnixMillis),
    ("X", Token::UnixSeconds),
    ("zz", Token::ZoneName),
    ("z", Token::ZoneName),
    ("ZZ", Token::OffsetCompact),
    ("Z", Token::Offset),
];

/// Moment tokens (or token starts) hoist does not render: locale weeks and week-years,
/// eras, era years, six-digit years, ordinals of day-of-year and weekday, `L` shorthands.
const UNSUPPORTED: &[&str] = &["DDDo", "do", "w", "g", "N", "y", "YYYYY", "GGGGG", "L", "l"];

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

impl DateFormat {
    pub(super) fn parse(format: &str) -> Result<Self, String> {
        let mut tokens = Vec::new();
        let mut rest = format;
        'scan: while let Some(first) = rest.chars().next() {
            // Like moment, `[` only opens literal text when a `]` closes it before any `[`.
            if first == '['
                && let Some(close) = rest[1..].find(['[', ']'])
                && rest[1 + close..].starts_with(']')
            {
                tokens.extend(rest[1..1 + close].chars().map(Token::Literal));
                rest = &rest[close + 2..];
                continue;
            }
            if first == '\\'
                && let Some(next) = rest[1..].chars().next()
            {
                tokens.push(Token::Literal(next));
                rest = &rest[1 + next.len_utf8()..];
                continue;
            }
            if let Some(unsupported) = UNSUPPORTED.iter().find(|u| rest.starts_with(**u)) {
                return Err(format!(
                    "date format token {unsupported:?} is not supported (write literal text as [text])"
                ));
            }
            if first == 'S' {
                let count = rest.bytes().take_while(|&b| b == b'S').count().min(9);
                tokens.push(Token::Fraction(count as u8));
                rest = &rest[count..];
                continue;
            }
            for (text, token) in TOKENS {
                if let Some(after) = rest.strip_prefix(text) {
                    tokens.push(*token);
                    rest = after;
                    continue 'scan;
                }
            }
            tokens.push(Token::Literal(first));
            rest = &rest[first.len_utf8()..];
        }
        Ok(DateFormat(tokens))
    }

    pub(super) fn render(&self, at: SystemTime) -> String {
        let moment = Moment::from(at);
        let mut out = String::new();
        for token in &self.0 {
            moment.push(*token, &mut out);
        }
        out
    }
}

/// One instant broken down in UTC.
struct Moment {
    unix_millis: i64,
    year: i64,
    month: u32,
    day: u32,
    day_of_year: u32,
    weekday: u32,
    iso_week: u32,
    iso_week_year: i64,
    hour: u32,
    minute: u32,
    second: u32,
    millisecond: u32,
}

impl From<SystemTime> for Moment {
    fn from(at: SystemTime) -> Self {
        let unix_millis = match at.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
        };
        let days = unix_millis.div_euclid(86_400_000);
        let millis_of_day = unix_millis.rem_euclid(86_400_000) as u32;
        let (year, month, day) = civil_from_days(days);
        // 1970-01-01 was a Thursday.
        let weekday = (days + 4).rem_euclid(7) as u32;
        let iso_weekday = if weekday == 0 { 7 } else { i64::from(weekday) };
        let thursday = days + 4 - iso_weekday;
        let (iso_week_year, _, _) = civil_from_days(thursday);
        Moment {
            unix_millis,
            year,
            month,
            day,
            day_of_year: day_of_year(year, month, day),
            weekday,
            iso_week: (day_of_year_of(thursday) - 1) / 7 + 1,
            iso_week_year,
            hour: millis_of_day / 3_600_000,
            minute: millis_of_day / 60_000 % 60,
            second: millis_of_day / 1000 % 60,
            millisecond: millis_of_day % 1000,
        }
    }
}

impl Moment {
    fn push(&self, token: Token, out: &mut String) {
        use std::fmt::Write as _;
        let hour12 = if self.hour.is_multiple_of(12) {
            12
        } else {
            self.hour % 12
        };
        let hour24 = if self.hour == 0 { 24 } else { self.hour };
        let text = match token {
            Token::Literal(c) => {
                out.push(c);
                return;
            }
            Token::Year4 => pad_signed(self.year, 4),
            Token::Year2 => format!("{:02}", self.year.rem_euclid(100)),
            Token::Quarter => ((self.month - 1) / 3 + 1).to_string(),
            Token::QuarterOrdinal => ordinal((self.month - 1) / 3 + 1),
            Token::Month => self.month.to_string(),
            Token::Month2 => format!("{:02}", self.month),
            Token::MonthOrdinal => ordinal(self.month),
            Token::MonthShort => MONTHS[self.month as usize - 1][..3].to_owned(),
            Token::MonthLong => MONTHS[self.month as usize - 1].to_owned(),
            Token::Day => self.day.to_string(),
            Token::Day2 => format!("{:02}", self.day),
            Token::DayOrdinal => ordinal(self.day),
            Token::DayOfYear => self.day_of_year.to_string(),
            Token::DayOfYear3 => format!("{:03}", self.day_of_year),
            Token::Weekday => self.weekday.to_string(),
            Token::WeekdayMin => WEEKDAYS[self.weekday as usize][..2].to_owned(),
            Token::WeekdayShort => WEEKDAYS[self.weekday as usize][..3].to_owned(),
            Token::WeekdayLong => WEEKDAYS[self.weekday as usize].to_owned(),
            Token::IsoWeekday => (if self.weekday == 0 { 7 } else { self.weekday }).to_string(),
            Token::IsoWeek => self.iso_week.to_string(),
            Token::IsoWeek2 => format!("{:02}", self.iso_week),
            Token::IsoWeekOrdinal => ordinal(self.iso_week),
            Token::IsoWeekYear2 => format!("{:02}", self.iso_week_year.rem_euclid(100)),
            Token::IsoWeekYear4 => pad_signed(self.iso_week_year, 4),
            Token::Hour => self.hour.to_string(),
            Token::Hour2 => format!("{:02}", self.hour),
            Token::Hour12 => hour12.to_string(),
            Token::Hour12Pad => format!("{hour12:02}"),
            Token::Hour24 => hour24.to_string(),
            Token::Hour24Pad => format!("{hour24:02}"),
            Token::Minute => self.minute.to_string(),
            Token::Minute2 => format!("{:02}", self.minute),
            Token::Second => self.second.to_string(),
            Token::Second2 => format!("{:02}", self.second),
            Token::Fraction(digits) => {
                let millis = format!("{:03}", self.millisecond);
                let digits = usize::from(digits);
                if digits <= 3 {
                    millis[..digits].to_owned()
                } else {
                    format!("{millis}{}", "0".repeat(digits - 3))
                }
            }
            Token::UpperMeridiem => (if self.hour < 12 { "AM" } else { "PM" }).to_owned(),
            Token::LowerMeridiem => (if self.hour < 12 { "am" } else { "pm" }).to_owned(),
            Token::ZoneName => "UTC".to_owned(),
            Token::Offset => "+00:00".to_owned(),
            Token::OffsetCompact => "+0000".to_owned(),
            Token::UnixSeconds => self.unix_millis.div_euclid(1000).to_string(),
            Token::UnixMillis => self.unix_millis.to_string(),
        };
        let _ = write!(out, "{text}");
    }
}

fn pad_signed(value: i64, width: usize) -> String {
    if value < 0 {
        format!("-{:0width$}", value.unsigned_abs())
    } else {
        format!("{value:0width$}")
    }
}

/// English ordinals, as moment's default locale writes them: 1st, 2nd, 3rd, 11th, 22nd.
fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100 / 10) {
        (_, 1) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn day_of_year(year: i64, month: u32, day: u32) -> u32 {
    const BEFORE_MONTH: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    BEFORE_MONTH[month as usize - 1] + day + u32::from(month > 2 && is_leap(year))
}

fn day_of_year_of(days: i64) -> u32 {
    let (year, month, day) = civil_from_days(days);
    day_of_year(year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// 2020-01-10T00:30:00.000Z, the instant metadata-action's own tests freeze.
    fn action_test_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_578_616_200)
    }

    fn render(format: &str, at: SystemTime) -> String {
        DateFormat::parse(format).unwrap().render(at)
    }

    #[test]
    fn renders_the_formats_the_action_documents() {
        let at = action_test_time();
        assert_eq!(render("YYYYMMDD", at), "20200110");
        assert_eq!(render("YYYYMMDD-HHmmss", at), "20200110-003000");
        assert_eq!(render("YYYY-MM-DD", at), "2020-01-10");
        assert_eq!(
            render("YYYY-MM-DDTHH:mm:ss.SSS[Z]", at),
            "2020-01-10T00:30:00.000Z"
        );
        let afternoon = UNIX_EPOCH + Duration::from_secs(1_578_669_950);
        assert_eq!(
            render("dddd, MMMM Do YYYY, h:mm:ss a", afternoon),
            "Friday, January 10th 2020, 3:25:50 pm"
        );
    }

    #[test]
    fn iso_weeks_cross_year_boundaries() {
        // 2021-01-01 is a Friday in ISO week 53 of 2020.
        let new_year = UNIX_EPOCH + Duration::from_secs(1_609_459_200);
        assert_eq!(render("GGGG-[W]WW-E", new_year), "2020-W53-5");
        assert_eq!(render("DDDD Q X", new_year), "001 1 1609459200");
    }

    #[test]
    fn unsupported_tokens_are_refused() {
        for format in ["YYYY-ww", "LL", "gggg", "Do DDDo", "NNNN"] {
            assert!(DateFormat::parse(format).is_err(), "{format}");
        }
    }

    #[test]
    fn civil_dates_round_trip_around_leap_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(day_of_year(2020, 12, 31), 366);
    }
}
