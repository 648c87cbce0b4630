//! CronJob schedules as kube-controller-manager reads them (the standard five fields of
//! `robfig/cron`, with its `@` descriptors): minute, hour, day of month, month, day of week;
//! `*` and `?`, values, ranges, lists and steps, month and weekday names.

/// A parsed schedule: the allowed values of each field as bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// Whether day of month or day of week is `*` (or `?`): then a day must match both
    /// fields, else either (cron's rule).
    any_day: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// The bits one field allows, and whether it was a star; `names` are the values' names from
/// `min` on.
fn field(text: &str, min: u32, max: u32, names: &[&str]) -> Result<(u64, bool), String> {
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(min + i as u32);
        }
        s.parse::<u32>()
            .map_err(|_| format!("failed to parse int from {s}: strconv.Atoi: parsing {s:?}: invalid syntax"))
    };
    let mut bits = 0u64;
    let mut star = false;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(value(s)?)),
            None => (part, None),
        };
        let (low, high) = if range == "*" || range == "?" {
            star = step.is_none();
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            // `a/n` runs from a to the end.
            (v, if step.is_some() { max } else { v })
        };
        if low < min {
            return Err(format!("beginning of range ({low}) below minimum ({min}): {part}"));
        }
        if high > max {
            return Err(format!("end of range ({high}) above maximum ({max}): {part}"));
        }
        if low > high {
            return Err(format!(
                "beginning of range ({low}) beyond end of range ({high}): {part}"
            ));
        }
        let step = step.unwrap_or(1);
        if step == 0 {
            return Err(format!("step of range should be a positive number: {part}"));
        }
        for v in (low..=high).step_by(step as usize) {
            bits |= 1 << v;
        }
    }
    Ok((bits, star))
}

impl Schedule {
    pub fn parse(spec: &str) -> Result<Schedule, String> {
        let spec = spec.trim();
        let expanded = match spec {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s if s.starts_with('@') => return Err(format!("unrecognized descriptor: {s}")),
            s => s,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields.as_slice() else {
            return Err(format!("expected exactly 5 fields, found {}: {spec}", fields.len()));
        };
        let (days, day_star) = field(day, 1, 31, &[])?;
        let (weekdays, weekday_star) = field(weekday, 0, 6, &WEEKDAYS)?;
        Ok(Schedule {
            minutes: field(minute, 0, 59, &[])?.0,
            hours: field(hour, 0, 23, &[])?.0,
            days,
            months: field(month, 1, 12, &MONTHS)?.0,
            weekdays,
            any_day: day_star || weekday_star,
        })
    }

    /// Whether the schedule fires at this minute (in the schedule's time zone).
    pub fn fires_at(&self, t: &jiff::civil::DateTime) -> bool {
        let bit = |set: u64, v: i8| set & (1u64 << v) != 0;
        let day = bit(self.days, t.day());
        let weekday = bit(self.weekdays, t.weekday().to_sunday_zero_offset());
        let day_matches = if self.any_day { day && weekday } else { day || weekday };
        bit(self.minutes, t.minute()) && bit(self.hours, t.hour()) && bit(self.months, t.month()) && day_matches
    }

    /// The last time the schedule fired after `after` and at or before `now` (Unix seconds),
    /// in `zone`, and how many times it fired in that span (kube-controller-manager starts only
    /// the last of several missed runs).
    pub fn last_between(&self, after: i64, now: i64, zone: &jiff::tz::TimeZone) -> Option<(i64, usize)> {
        // Minute by minute: at most a week back, as far as a missed run matters here.
        let start = (after.max(now - 7 * 24 * 3600) / 60 + 1) * 60;
        let mut last = None;
        let mut count = 0;
        let mut t = start;
        while t <= now {
            if let Ok(ts) = jiff::Timestamp::from_second(t)
                && self.fires_at(&ts.to_zoned(zone.clone()).datetime())
            {
                last = Some(t);
                count += 1;
            }
            t += 60;
        }
        last.map(|l| (l, count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> jiff::civil::DateTime {
        text.parse().expect("a civil time")
    }

    #[test]
    fn fields_steps_names_and_descriptors() {
        let every_five = Schedule::parse("*/5 * * * *").expect("parses");
        assert!(every_five.fires_at(&at("2026-11-27T10:15")));
        assert!(!every_five.fires_at(&at("2026-11-27T10:16")));
        let weekdays = Schedule::parse("30 9 * JAN-mar mon-fri").expect("parses");
        assert!(weekdays.fires_at(&at("2026-01-05T09:30")), "a Monday in January");
        assert!(!weekdays.fires_at(&at("2026-01-04T09:30")), "a Sunday");
        assert!(!weekdays.fires_at(&at("2026-04-06T09:30")), "April");
        assert_eq!(Schedule::parse("@daily"), Schedule::parse("0 0 * * *"));
        // Both day fields restricted: either matches.
        let either = Schedule::parse("0 0 13 * 5").expect("parses");
        assert!(either.fires_at(&at("2026-11-13T00:00")), "the 13th");
        assert!(either.fires_at(&at("2026-11-27T00:00")), "a Friday");
        assert!(!either.fires_at(&at("2026-11-26T00:00")));
        for bad in [
            "* * * *",
            "60 * * * *",
            "* * 0 * *",
            "*/0 * * * *",
            "@every 1h",
            "x * * * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_last_missed_run_and_how_many() {
        let hourly = Schedule::parse("@hourly").expect("parses");
        let start = jiff::Timestamp::from_second(0).expect("epoch").as_second();
        assert_eq!(
            hourly.last_between(start, start + 3 * 3600 + 59, &jiff::tz::TimeZone::UTC),
            Some((start + 3 * 3600, 3))
        );
        assert_eq!(hourly.last_between(start, start + 3599, &jiff::tz::TimeZone::UTC), None);
    }
}
