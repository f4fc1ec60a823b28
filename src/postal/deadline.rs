//! Delivery deadlines and the timestamps operators send. A standard `J+N` means: delivered by
//! the end (23:59:59 local) of the N-th business day after the day of acceptance (day J), in the
//! daemon's time zone; weekends and holidays are not business days. `J+0` is the same day.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// Business days: not in `weekend`, not a holiday.
pub struct Calendar<'a> {
    pub tz: Tz,
    pub weekend: &'a [Weekday],
    pub holidays: &'a [NaiveDate],
}

impl Calendar<'_> {
    fn is_business(&self, d: NaiveDate) -> bool {
        !self.weekend.contains(&d.weekday()) && !self.holidays.contains(&d)
    }

    /// The deadline of a consignment accepted at `accepted` under standard `J+days`.
    pub fn deadline(&self, accepted: DateTime<Utc>, days: u32) -> DateTime<Utc> {
        let mut d = accepted.with_timezone(&self.tz).date_naive();
        let mut left = days;
        // Bounded: a calendar of only holidays must not loop forever.
        let mut steps = 0;
        while left > 0 && steps < 3660 {
            d = d.checked_add_days(Days::new(1)).unwrap_or(d);
            steps += 1;
            if self.is_business(d) {
                left -= 1;
            }
        }
        end_of_day(d, self.tz)
    }
}

/// 23:59:59 local on `d`.
pub fn end_of_day(d: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let t = NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default();
    local(d.and_time(t), tz)
}

fn local(t: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    match tz.from_local_datetime(&t).earliest() {
        Some(x) => x.with_timezone(&Utc),
        // A local time skipped by a DST change: read it as UTC offset of the day before.
        None => Utc.from_utc_datetime(&t),
    }
}

/// Reads a timestamp as operators send them: RFC 3339, local `2021-07-05T08:00:00` (also with a
/// space, without seconds, or as `05/07/2021 08:00`) in the daemon's zone, or Unix time in
/// seconds or milliseconds.
pub fn parse_when(s: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty timestamp".into());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().ok().and_then(from_epoch).ok_or_else(|| format!("{s:?} is not a plausible Unix time"));
    }
    const FORMATS: [&str; 6] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
        "%d/%m/%Y %H:%M:%S",
        "%d/%m/%Y %H:%M",
    ];
    for f in FORMATS {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(local(t, tz));
        }
    }
    for f in ["%Y-%m-%d", "%d/%m/%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return Ok(local(d.and_time(NaiveTime::MIN), tz));
        }
    }
    Err(format!(
        "{s:?} is not a timestamp (expected RFC 3339, local YYYY-MM-DDTHH:MM[:SS] or DD/MM/YYYY HH:MM[:SS], a date, or Unix seconds or milliseconds)"
    ))
}

/// A deadline as written: a timestamp, or a bare date meaning the end of that local day.
pub fn parse_deadline(s: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(end_of_day(d, tz));
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%d/%m/%Y") {
        return Ok(end_of_day(d, tz));
    }
    parse_when(t, tz)
}

/// A JSON number as Unix time (seconds, or milliseconds when it is that large), in 2000..2200.
pub fn from_epoch(n: i64) -> Option<DateTime<Utc>> {
    let ms = if n.abs() >= 100_000_000_000 { n } else { n.checked_mul(1000)? };
    DateTime::from_timestamp_millis(ms).filter(|t| (2000..2200).contains(&t.year()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    fn cal<'a>(holidays: &'a [NaiveDate]) -> Calendar<'a> {
        Calendar { tz: HCM, weekend: &[Weekday::Sat, Weekday::Sun], holidays }
    }

    fn at(s: &str) -> DateTime<Utc> {
        parse_when(s, HCM).expect("timestamp")
    }

    #[test]
    fn standards_count_business_days_in_local_time() {
        let c = cal(&[]);
        // Monday 2021-07-05 08:00 local, J+2: Wednesday 23:59:59 local.
        assert_eq!(c.deadline(at("2021-07-05T08:00:00"), 2), at("2021-07-07T23:59:59"));
        // Friday, J+1: Monday.
        assert_eq!(c.deadline(at("2021-07-09T10:00:00"), 1), at("2021-07-12T23:59:59"));
        // Accepted on a Saturday: J+1 is Monday.
        assert_eq!(c.deadline(at("2021-07-10T10:00:00"), 1), at("2021-07-12T23:59:59"));
        // J+0: the same day.
        assert_eq!(c.deadline(at("2021-07-05T08:00:00"), 0), at("2021-07-05T23:59:59"));
    }

    #[test]
    fn the_day_of_acceptance_is_the_local_day_around_midnight() {
        let c = cal(&[]);
        // 23:59 local Monday is still Monday (16:59 UTC); 00:01 Tuesday local is Monday in UTC.
        assert_eq!(c.deadline(at("2021-07-05T23:59:00"), 1), at("2021-07-06T23:59:59"));
        assert_eq!(c.deadline(at("2021-07-06T00:01:00"), 1), at("2021-07-07T23:59:59"));
        assert_eq!(at("2021-07-06T00:01:00"), at("2021-07-05T17:01:00Z"));
    }

    #[test]
    fn holidays_are_skipped() {
        let h =
            [NaiveDate::from_ymd_opt(2021, 9, 2).expect("date"), NaiveDate::from_ymd_opt(2021, 9, 3).expect("date")];
        let c = cal(&h);
        // Wednesday 1 Sep, J+1: Thursday and Friday are holidays, then the weekend: Monday 6 Sep.
        assert_eq!(c.deadline(at("2021-09-01T09:00:00"), 1), at("2021-09-06T23:59:59"));
        // Every day a holiday: bounded, no hang.
        let all = Calendar {
            tz: HCM,
            weekend: &[
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Sat,
                Weekday::Sun,
            ],
            holidays: &[],
        };
        let _ = all.deadline(at("2021-09-01T09:00:00"), 2);
    }

    #[test]
    fn timestamps_in_the_forms_operators_send() {
        let t = at("2021-07-05T08:00:00Z");
        assert_eq!(at("2021-07-05T15:00:00"), t);
        assert_eq!(at("2021-07-05 15:00"), t);
        assert_eq!(at("05/07/2021 15:00"), t);
        assert_eq!(at("2021-07-05T15:00:00+07:00"), t);
        assert_eq!(at("1625472000"), t);
        assert_eq!(at("1625472000000"), t);
        assert!(parse_when("yesterday", HCM).is_err());
        assert!(parse_when("99999999999999999999", HCM).is_err());
        assert!(parse_when("", HCM).is_err());
        assert_eq!(parse_deadline("2021-07-06", HCM), Ok(at("2021-07-06T23:59:59")));
        // A bare date as a time is midnight, in either form.
        assert_eq!(at("2021-07-05"), at("2021-07-05T00:00:00"));
        assert_eq!(at("05/07/2021"), at("2021-07-05T00:00:00"));
    }
}
