//! The SQL functions Django's SQLite backend registers on its connections
//! (`django.db.backends.sqlite3._functions`), run by the host: a guest's
//! Python functions cannot be called from the host's SQLite, so without
//! these `__month` lookups, `Extract*`/`Trunc*`, `dates()`, `__regex`,
//! `MD5()` and the like would fail with "no such function". Each does
//! what Django's Python does, for the same arguments, NULL in NULL out;
//! time zones are IANA names (the tz database is compiled in) or Django's
//! `NAME+HH:MM` offsets. `regexp` is Python's `re.search` syntax as far as
//! `fancy-regex` follows it (lookaround and backreferences included), so
//! SQLAlchemy's `regexp_match` and a flaskr-style `REGEXP` work too.
//!
//! Also `django_format_dtdelta` (arithmetic on `DurationField` values),
//! `RAND()` and the `STDDEV_*`/`VAR_*` aggregates (which skip NULLs, as
//! SQL's aggregates do, where Django's Python raises). Django's math
//! functions (`ACOS`, `CEILING`, `LN`, `POWER`...) are SQLite's own,
//! compiled in (`SQLITE_ENABLE_MATH_FUNCTIONS`, `.cargo/config.toml`):
//! with these, every function Django 5.2's SQLite backend registers.

use std::sync::Arc;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike};
use md5::Digest as _;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Error, Result};

/// A hash function: bytes in, digest out.
type Digester = fn(&[u8]) -> Vec<u8>;

/// Registers the functions on `connection`.
pub fn register(connection: &Connection) -> Result<()> {
    let pure = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS;
    connection.create_scalar_function("django_date_extract", 2, pure, |ctx| {
        datetime_arg(ctx, 1, None, None).and_then(|dt| dt.map(|dt| extract(&text(ctx, 0)?, dt)).transpose())
    })?;
    connection.create_scalar_function("django_datetime_extract", 4, pure, |ctx| {
        zoned_arg(ctx).and_then(|dt| dt.map(|dt| extract(&text(ctx, 0)?, dt)).transpose())
    })?;
    connection.create_scalar_function("django_date_trunc", 4, pure, |ctx| {
        zoned_arg(ctx).and_then(|dt| dt.map(|dt| truncate_date(&text(ctx, 0)?, dt)).transpose())
    })?;
    connection.create_scalar_function("django_datetime_trunc", 4, pure, |ctx| {
        zoned_arg(ctx).and_then(|dt| dt.map(|dt| truncate_datetime(&text(ctx, 0)?, dt)).transpose())
    })?;
    connection.create_scalar_function("django_datetime_cast_date", 3, pure, |ctx| {
        let dt = datetime_arg(ctx, 0, optional_text(ctx, 1)?.as_deref(), optional_text(ctx, 2)?.as_deref())?;
        Ok(dt.map(|dt| dt.date().format("%Y-%m-%d").to_string()))
    })?;
    connection.create_scalar_function("django_datetime_cast_time", 3, pure, |ctx| {
        let dt = datetime_arg(ctx, 0, optional_text(ctx, 1)?.as_deref(), optional_text(ctx, 2)?.as_deref())?;
        Ok(dt.map(|dt| iso_time(dt.time())))
    })?;
    connection.create_scalar_function("django_time_extract", 2, pure, |ctx| {
        let Some(time) = optional_text(ctx, 1)?.as_deref().and_then(parse_time) else { return Ok(None) };
        extract_time(&text(ctx, 0)?, time).map(Some)
    })?;
    connection.create_scalar_function("django_time_trunc", 4, pure, |ctx| {
        let time = match zoned_arg(ctx)? {
            Some(dt) => dt.time(),
            None => match optional_text(ctx, 1)?.as_deref().and_then(parse_time) {
                Some(time) => time,
                None => return Ok(None),
            },
        };
        truncate_time(&text(ctx, 0)?, time).map(Some)
    })?;
    connection.create_scalar_function("django_timestamp_diff", 2, pure, |ctx| {
        let (Some(left), Some(right)) = (datetime_arg(ctx, 0, None, None)?, datetime_arg(ctx, 1, None, None)?) else {
            return Ok(None);
        };
        Ok((left - right).num_microseconds())
    })?;
    connection.create_scalar_function("django_time_diff", 2, pure, |ctx| {
        let (Some(left), Some(right)) = (
            optional_text(ctx, 0)?.as_deref().and_then(parse_time),
            optional_text(ctx, 1)?.as_deref().and_then(parse_time),
        ) else {
            return Ok(None);
        };
        Ok((left - right).num_microseconds())
    })?;
    connection.create_scalar_function("regexp", 2, pure, |ctx| {
        if matches!(ctx.get_raw(0), ValueRef::Null) || matches!(ctx.get_raw(1), ValueRef::Null) {
            return Ok(None);
        }
        let pattern: Arc<fancy_regex::Regex> =
            ctx.get_or_create_aux(0, |pattern| fancy_regex::Regex::new(pattern.as_str()?).map_err(user_error))?;
        let subject = value_text(ctx.get_raw(1));
        pattern.is_match(&subject).map(Some).map_err(user_error)
    })?;
    let digests: [(&str, Digester); 6] = [
        ("MD5", |data| md5::Md5::digest(data).to_vec()),
        ("SHA1", |data| ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data).as_ref().to_vec()),
        ("SHA224", |data| sha2::Sha224::digest(data).to_vec()),
        ("SHA256", |data| sha2::Sha256::digest(data).to_vec()),
        ("SHA384", |data| sha2::Sha384::digest(data).to_vec()),
        ("SHA512", |data| sha2::Sha512::digest(data).to_vec()),
    ];
    for (name, digest) in digests {
        connection.create_scalar_function(name, 1, pure, move |ctx| {
            Ok(optional_text(ctx, 0)?.map(|text| hex::encode(digest(text.as_bytes()))))
        })?;
    }
    connection.create_scalar_function("LPAD", 3, pure, |ctx| pad(ctx, true))?;
    connection.create_scalar_function("RPAD", 3, pure, |ctx| pad(ctx, false))?;
    connection.create_scalar_function("REPEAT", 2, pure, |ctx| {
        let (Some(text), Some(count)) = (optional_text(ctx, 0)?, ctx.get::<Option<i64>>(1)?) else { return Ok(None) };
        let count = usize::try_from(count).unwrap_or(0);
        if text.len().saturating_mul(count) > MAX_TEXT {
            return Err(user_error(format!("REPEAT would make a text over {MAX_TEXT} bytes")));
        }
        Ok(Some(text.repeat(count)))
    })?;
    connection.create_scalar_function("REVERSE", 1, pure, |ctx| {
        Ok(optional_text(ctx, 0)?.map(|text| text.chars().rev().collect::<String>()))
    })?;
    connection.create_scalar_function("SIGN", 1, pure, |ctx| {
        Ok(match ctx.get_raw(0) {
            ValueRef::Integer(n) => Some(n.signum()),
            // -1, 0 or 1; NULL for NaN.
            ValueRef::Real(x) => x.partial_cmp(&0.0).map(|order| order as i64),
            _ => None,
        })
    })?;
    connection.create_scalar_function("BITXOR", 2, pure, |ctx| {
        let (Some(x), Some(y)) = (ctx.get::<Option<i64>>(0)?, ctx.get::<Option<i64>>(1)?) else { return Ok(None) };
        Ok(Some(x ^ y))
    })?;
    connection.create_scalar_function("COT", 1, pure, |ctx| Ok(ctx.get::<Option<f64>>(0)?.map(|x| 1.0 / x.tan())))?;
    connection.create_scalar_function("django_format_dtdelta", 3, pure, |ctx| format_dtdelta(ctx))?;
    // Django's RAND: uniform in [0, 1), unlike SQLite's RANDOM().
    let volatile = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_INNOCUOUS;
    connection.create_scalar_function("RAND", 0, volatile, |_| Ok(rand::random::<f64>()))?;
    for (name, spread) in [
        ("STDDEV_POP", Spread { sample: false, root: true }),
        ("STDDEV_SAMP", Spread { sample: true, root: true }),
        ("VAR_POP", Spread { sample: false, root: false }),
        ("VAR_SAMP", Spread { sample: true, root: false }),
    ] {
        connection.create_aggregate_function(name, 1, pure, spread)?;
    }
    Ok(())
}

/// The variance aggregates (`VAR_POP`...) and their square roots
/// (`STDDEV_POP`...), by Welford's method. NULLs are skipped and too few
/// values give NULL, as in PostgreSQL (Django's Python ones raise instead).
struct Spread {
    /// Divide by n - 1 (a sample), not n (the population).
    sample: bool,
    /// Answer the standard deviation, not the variance.
    root: bool,
}

/// Count, mean and sum of squared deviations so far.
type Moments = (u64, f64, f64);

impl rusqlite::functions::Aggregate<Moments, Option<f64>> for Spread {
    fn init(&self, _: &mut Context<'_>) -> Result<Moments> {
        Ok((0, 0.0, 0.0))
    }

    fn step(&self, ctx: &mut Context<'_>, (count, mean, squares): &mut Moments) -> Result<()> {
        if let Some(x) = ctx.get::<Option<f64>>(0)? {
            *count += 1;
            let delta = x - *mean;
            *mean += delta / *count as f64;
            *squares += delta * (x - *mean);
        }
        Ok(())
    }

    fn finalize(&self, _: &mut Context<'_>, moments: Option<Moments>) -> Result<Option<f64>> {
        let (count, _, squares) = moments.unwrap_or_default();
        let divisor = count.saturating_sub(u64::from(self.sample));
        if divisor == 0 {
            return Ok(None);
        }
        let variance = squares / divisor as f64;
        Ok(Some(if self.root { variance.sqrt() } else { variance }))
    }
}

/// An operand of `django_format_dtdelta` once Django's
/// `_sqlite_prepare_dtdelta_param` has typed it.
enum Operand {
    Delta(Duration),
    Date(NaiveDate),
    DateTime(NaiveDateTime),
}

/// Django's `_sqlite_format_dtdelta(connector, lhs, rhs)`: arithmetic on
/// durations (integers of microseconds), dates and datetimes for `+`/`-`,
/// answered as Python's `str()` of the result; plain numbers for `*`/`/`.
fn format_dtdelta(ctx: &Context<'_>) -> Result<Option<rusqlite::types::Value>> {
    use rusqlite::types::Value;
    let (Some(connector), lhs, rhs) = (optional_text(ctx, 0)?, ctx.get_raw(1), ctx.get_raw(2)) else { return Ok(None) };
    if matches!(lhs, ValueRef::Null) || matches!(rhs, ValueRef::Null) {
        return Ok(None);
    }
    let mismatched = || user_error(format!("unsupported operand types for {connector:?}"));
    match connector.trim() {
        sign @ ("+" | "-") => {
            let (Some(lhs), Some(rhs)) = (dtdelta_operand(lhs), dtdelta_operand(rhs)) else { return Ok(None) };
            let plus = sign == "+";
            let shifted = |delta: Duration| if plus { delta } else { -delta };
            let out = match (lhs, rhs) {
                (Operand::Delta(a), Operand::Delta(b)) => Some(python_timedelta(a + shifted(b))),
                // Python's `date - timedelta` is `date + timedelta(-td.days)`.
                (Operand::Date(date), Operand::Delta(delta)) => {
                    date_plus(date, whole_days(delta) * if plus { 1 } else { -1 })
                }
                (Operand::Delta(delta), Operand::Date(date)) if plus => date_plus(date, whole_days(delta)),
                (Operand::DateTime(dt), Operand::Delta(delta)) => datetime_plus(dt, shifted(delta)),
                (Operand::Delta(delta), Operand::DateTime(dt)) if plus => datetime_plus(dt, delta),
                (Operand::Date(a), Operand::Date(b)) if !plus => Some(python_timedelta(a - b)),
                (Operand::DateTime(a), Operand::DateTime(b)) if !plus => Some(python_timedelta(a - b)),
                _ => return Err(mismatched()),
            };
            out.map(|text| Some(Value::Text(text))).ok_or_else(|| user_error("date value out of range"))
        }
        operator @ ("*" | "/") => {
            let real = |value: ValueRef<'_>| match value {
                ValueRef::Integer(n) => Ok(n as f64),
                ValueRef::Real(x) => Ok(x),
                _ => Err(mismatched()),
            };
            if let ("*", ValueRef::Integer(a), ValueRef::Integer(b)) = (operator, lhs, rhs) {
                return a.checked_mul(b).map(|n| Some(Value::Integer(n))).ok_or_else(|| user_error("integer overflow"));
            }
            let (a, b) = (real(lhs)?, real(rhs)?);
            if operator == "/" && b == 0.0 {
                return Err(user_error("division by zero"));
            }
            Ok(Some(Value::Real(if operator == "*" { a * b } else { a / b })))
        }
        _ => Err(mismatched()),
    }
}

/// An integer is microseconds; text is Django's `typecast_timestamp` (a date
/// without a space, else a datetime); anything else (Python's `TypeError` or
/// `ValueError`) is None, which makes the answer NULL.
fn dtdelta_operand(value: ValueRef<'_>) -> Option<Operand> {
    match value {
        ValueRef::Integer(micros) => Some(Operand::Delta(Duration::microseconds(micros))),
        ValueRef::Text(bytes) => {
            let text = std::str::from_utf8(bytes).ok()?.trim();
            if text.contains(' ') {
                parse_datetime(text).map(Operand::DateTime)
            } else {
                NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().map(Operand::Date)
            }
        }
        _ => None,
    }
}

/// Python's `timedelta.days`: floored.
fn whole_days(delta: Duration) -> i64 {
    delta.num_microseconds().unwrap_or(i64::MAX).div_euclid(MICROS_PER_DAY)
}

/// Python's `str(date + timedelta(days))`, years 1 to 9999.
fn date_plus(date: NaiveDate, days: i64) -> Option<String> {
    let date = date.checked_add_signed(Duration::try_days(days)?)?;
    (1..=9999).contains(&date.year()).then(|| date.format("%Y-%m-%d").to_string())
}

/// Python's `str(datetime + timedelta)`.
fn datetime_plus(dt: NaiveDateTime, delta: Duration) -> Option<String> {
    let dt = dt.checked_add_signed(delta)?;
    (1..=9999).contains(&dt.year()).then(|| format!("{} {}", dt.date().format("%Y-%m-%d"), iso_time(dt.time())))
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Python's `str(timedelta)`: `[-]D day[s], H:MM:SS[.ffffff]`, days
/// floored and the rest positive (`-1 day, 23:59:59.999999`).
fn python_timedelta(delta: Duration) -> String {
    let micros = delta.num_microseconds().unwrap_or(i64::MAX);
    let (days, rest) = (micros.div_euclid(MICROS_PER_DAY), micros.rem_euclid(MICROS_PER_DAY));
    let (seconds, fraction) = (rest / 1_000_000, rest % 1_000_000);
    let mut text = String::new();
    if days != 0 {
        text = format!("{days} day{}, ", if days.abs() == 1 { "" } else { "s" });
    }
    text += &format!("{}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60);
    if fraction != 0 {
        text += &format!(".{fraction:06}");
    }
    text
}

/// Longest text `LPAD`, `RPAD` and `REPEAT` make (SQLite's own limit on a
/// guest's connection is larger; this keeps a call from allocating it).
const MAX_TEXT: usize = 16 << 20;

fn user_error(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::UserFunctionError(err.into())
}

/// Argument `index` as text (Python's `str()` of a number), NULL as None.
fn optional_text(ctx: &Context<'_>, index: usize) -> Result<Option<String>> {
    Ok(match ctx.get_raw(index) {
        ValueRef::Null => None,
        value => Some(value_text(value)),
    })
}

fn text(ctx: &Context<'_>, index: usize) -> Result<String> {
    optional_text(ctx, index)?.ok_or_else(|| user_error("the lookup type is NULL"))
}

fn value_text(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => String::new(),
        ValueRef::Integer(n) => n.to_string(),
        ValueRef::Real(x) => x.to_string(),
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn pad(ctx: &Context<'_>, left: bool) -> Result<Option<String>> {
    let (Some(text), Some(length), Some(fill)) =
        (optional_text(ctx, 0)?, ctx.get::<Option<i64>>(1)?, optional_text(ctx, 2)?)
    else {
        return Ok(None);
    };
    let length = usize::try_from(length).unwrap_or(0);
    if length > MAX_TEXT {
        return Err(user_error(format!("cannot pad to more than {MAX_TEXT} characters")));
    }
    let chars: Vec<char> = text.chars().collect();
    if chars.len() >= length {
        return Ok(Some(chars[..length].iter().collect()));
    }
    let padding: String = fill.chars().cycle().take(if fill.is_empty() { 0 } else { length - chars.len() }).collect();
    Ok(Some(if left { padding + &text } else { text + &padding }))
}

/// Django's `typecast_timestamp`: `YYYY-MM-DD[ HH:MM:SS[.ffffff][±HH:MM]]`
/// (an offset is ignored: SQLite holds UTC or naive times).
fn parse_datetime(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    let (date, time) = match text.split_once([' ', 'T']) {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let time = match time {
        Some(time) => {
            let time = time.trim_end_matches('Z');
            let time = match time.rfind(['+', '-']) {
                Some(at) => &time[..at],
                None => time,
            };
            parse_time(time)?
        }
        None => NaiveTime::MIN,
    };
    Some(date.and_time(time))
}

/// Django's `typecast_time`: `HH:MM[:SS[.ffffff]]`.
fn parse_time(text: &str) -> Option<NaiveTime> {
    let text = text.trim();
    ["%H:%M:%S%.f", "%H:%M"].iter().find_map(|format| NaiveTime::parse_from_str(text, format).ok())
}

/// Argument `index` parsed as a datetime and moved from the connection's
/// time zone to `tzname`, as Django's `_sqlite_datetime_parse`; None for
/// NULL or text that is not a datetime.
fn datetime_arg(
    ctx: &Context<'_>,
    index: usize,
    tzname: Option<&str>,
    conn_tzname: Option<&str>,
) -> Result<Option<NaiveDateTime>> {
    let Some(dt) = optional_text(ctx, index)?.as_deref().and_then(parse_datetime) else { return Ok(None) };
    let Some(tzname) = tzname else { return Ok(Some(dt)) };
    if Some(tzname) == conn_tzname {
        return Ok(Some(dt));
    }
    let conn_tz = zone(conn_tzname.unwrap_or("UTC"))?;
    let Some(mut aware) = conn_tz.from_local_datetime(&dt).earliest() else { return Ok(None) };
    let (name, offset) = split_tzname_delta(tzname);
    if let Some(offset) = offset {
        aware += offset;
    }
    let target = if name.is_empty() { conn_tz } else { zone(name)? };
    Ok(Some(aware.with_timezone(&target).naive_local()))
}

/// Argument 1 moved to the zone arguments 2 and 3 name (the four-argument
/// functions' shape: lookup type, value, tzname, conn_tzname).
fn zoned_arg(ctx: &Context<'_>) -> Result<Option<NaiveDateTime>> {
    datetime_arg(ctx, 1, optional_text(ctx, 2)?.as_deref(), optional_text(ctx, 3)?.as_deref())
}

fn zone(name: &str) -> Result<chrono_tz::Tz> {
    name.parse().map_err(|_| user_error(format!("unknown time zone {name:?}")))
}

/// Django's `split_tzname_delta`: `Europe/Paris+02:00` into the name and
/// the signed offset.
fn split_tzname_delta(tzname: &str) -> (&str, Option<Duration>) {
    for sign in ['+', '-'] {
        if let Some((name, offset)) = tzname.rsplit_once(sign) {
            let (hours, minutes) = offset.split_once(':').unwrap_or((offset, "0"));
            if let (Ok(hours), Ok(minutes)) = (hours.parse::<i64>(), minutes.parse::<i64>()) {
                if (0..24).contains(&hours) && (0..60).contains(&minutes) {
                    let delta = Duration::hours(hours) + Duration::minutes(minutes);
                    return (name, Some(if sign == '+' { delta } else { -delta }));
                }
            }
        }
    }
    (tzname, None)
}

fn unsupported(lookup: &str) -> Error {
    user_error(format!("unsupported lookup type {lookup:?}"))
}

fn extract(lookup: &str, dt: NaiveDateTime) -> Result<i64> {
    Ok(match lookup {
        "year" => i64::from(dt.year()),
        "month" => i64::from(dt.month()),
        "day" => i64::from(dt.day()),
        "week_day" => i64::from(dt.weekday().num_days_from_sunday()) + 1,
        "iso_week_day" => i64::from(dt.weekday().number_from_monday()),
        "week" => i64::from(dt.iso_week().week()),
        "iso_year" => i64::from(dt.iso_week().year()),
        "quarter" => i64::from(dt.month().div_ceil(3)),
        _ => return extract_time(lookup, dt.time()),
    })
}

fn extract_time(lookup: &str, time: NaiveTime) -> Result<i64> {
    Ok(i64::from(match lookup {
        "hour" => time.hour(),
        "minute" => time.minute(),
        "second" => time.second(),
        "microsecond" => time.nanosecond() / 1000,
        _ => return Err(unsupported(lookup)),
    }))
}

fn truncate_date(lookup: &str, dt: NaiveDateTime) -> Result<String> {
    let date = dt.date();
    let truncated = match lookup {
        "year" => date.with_ordinal(1),
        "quarter" => date.with_day(1).and_then(|d| d.with_month(d.month() - (d.month() - 1) % 3)),
        "month" => date.with_day(1),
        "week" => Some(date - Duration::days(i64::from(date.weekday().num_days_from_monday()))),
        "day" => Some(date),
        _ => return Err(unsupported(lookup)),
    };
    truncated.map(|date| date.format("%Y-%m-%d").to_string()).ok_or_else(|| unsupported(lookup))
}

fn truncate_datetime(lookup: &str, dt: NaiveDateTime) -> Result<String> {
    let time = match lookup {
        "year" | "quarter" | "month" | "week" | "day" => {
            return truncate_date(lookup, dt).map(|date| format!("{date} 00:00:00"));
        }
        "hour" => format!("{:02}:00:00", dt.hour()),
        "minute" => format!("{:02}:{:02}:00", dt.hour(), dt.minute()),
        "second" => format!("{:02}:{:02}:{:02}", dt.hour(), dt.minute(), dt.second()),
        _ => return Err(unsupported(lookup)),
    };
    Ok(format!("{} {time}", dt.date().format("%Y-%m-%d")))
}

fn truncate_time(lookup: &str, time: NaiveTime) -> Result<String> {
    Ok(match lookup {
        "hour" => format!("{:02}:00:00", time.hour()),
        "minute" => format!("{:02}:{:02}:00", time.hour(), time.minute()),
        "second" => format!("{:02}:{:02}:{:02}", time.hour(), time.minute(), time.second()),
        _ => return Err(unsupported(lookup)),
    })
}

/// Python's `time.isoformat()`: microseconds only when there are some.
fn iso_time(time: NaiveTime) -> String {
    let micros = time.nanosecond() / 1000;
    if micros == 0 {
        time.format("%H:%M:%S").to_string()
    } else {
        format!("{}.{micros:06}", time.format("%H:%M:%S"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(connection: &Connection, sql: &str) -> rusqlite::types::Value {
        connection.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    fn text(connection: &Connection, sql: &str) -> String {
        match query(connection, sql) {
            rusqlite::types::Value::Text(text) => text,
            other => panic!("{sql}: {other:?}"),
        }
    }

    /// Whether `sql` is answered with an error.
    fn fails(connection: &Connection, sql: &str) -> bool {
        connection.query_row(sql, [], |row| row.get::<_, rusqlite::types::Value>(0)).is_err()
    }

    fn int(connection: &Connection, sql: &str) -> i64 {
        match query(connection, sql) {
            rusqlite::types::Value::Integer(n) => n,
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn the_date_functions_answer_as_djangos_python_does() {
        let connection = Connection::open_in_memory().unwrap();
        register(&connection).unwrap();
        // 2024-12-30 is a Monday in ISO week 1 of 2025.
        let at = "'2024-12-30 23:30:15.250000'";
        let cases = [
            ("year", 2024),
            ("month", 12),
            ("day", 30),
            ("week_day", 2),
            ("iso_week_day", 1),
            ("week", 1),
            ("iso_year", 2025),
            ("quarter", 4),
            ("hour", 23),
            ("minute", 30),
            ("second", 15),
        ];
        for (lookup, expected) in cases {
            assert_eq!(
                int(&connection, &format!("SELECT django_datetime_extract('{lookup}', {at}, NULL, NULL)")),
                expected,
                "{lookup}"
            );
        }
        assert_eq!(int(&connection, "SELECT django_date_extract('month', '2024-02-29')"), 2);
        // To Paris (UTC+1 in winter): the next day, and the next year.
        let paris = format!("SELECT django_datetime_extract('year', {at}, 'Europe/Paris', 'UTC')");
        assert_eq!(int(&connection, &paris), 2024, "23:30 UTC is 00:30 on the 31st in Paris");
        assert_eq!(
            int(&connection, "SELECT django_datetime_extract('year', '2024-12-31 23:30:00', 'Europe/Paris', 'UTC')"),
            2025
        );
        let texts = [
            ("django_datetime_trunc('week', {at}, NULL, NULL)", "2024-12-30 00:00:00"),
            ("django_datetime_trunc('quarter', {at}, NULL, NULL)", "2024-10-01 00:00:00"),
            ("django_datetime_trunc('minute', {at}, NULL, NULL)", "2024-12-30 23:30:00"),
            ("django_date_trunc('month', {at}, 'UTC', 'UTC')", "2024-12-01"),
            ("django_datetime_cast_date({at}, 'Asia/Tokyo', 'UTC')", "2024-12-31"),
            ("django_datetime_cast_time({at}, NULL, NULL)", "23:30:15.250000"),
            ("django_datetime_cast_date({at}, 'UTC-05:00', 'UTC')", "2024-12-30"),
        ];
        for (call, expected) in texts {
            assert_eq!(text(&connection, &format!("SELECT {}", call.replace("{at}", at))), expected, "{call}");
        }
        assert_eq!(int(&connection, "SELECT django_time_extract('minute', '10:42:00')"), 42);
        assert_eq!(text(&connection, "SELECT django_time_trunc('hour', '10:42:07', NULL, NULL)"), "10:00:00");
        assert_eq!(
            int(&connection, "SELECT django_timestamp_diff('2024-01-02 00:00:01', '2024-01-01 00:00:00')"),
            86_401_000_000
        );
        assert_eq!(int(&connection, "SELECT django_time_diff('10:00:00', '09:59:59.5')"), 500_000);
        assert_eq!(
            query(&connection, "SELECT django_datetime_extract('year', NULL, NULL, NULL)"),
            rusqlite::types::Value::Null
        );
        assert_eq!(
            query(&connection, "SELECT django_datetime_extract('year', 'not a date', NULL, NULL)"),
            rusqlite::types::Value::Null
        );
        assert!(fails(
            &connection,
            "SELECT django_datetime_extract('year', {at}, 'Mars/Olympus', 'UTC')".replace("{at}", at).as_str()
        ));
        assert!(fails(&connection, "SELECT django_datetime_trunc('fortnight', '2024-01-01', NULL, NULL)"));
    }

    #[test]
    fn duration_arithmetic_and_spread_aggregates_answer_as_djangos_python_does() {
        let connection = Connection::open_in_memory().unwrap();
        register(&connection).unwrap();
        // Each expected text is Python's str() of the same operation.
        let cases = [
            ("'+', 86400000000, 1500000", "1 day, 0:00:01.500000"),
            ("'-', 0, 1", "-1 day, 23:59:59.999999"),
            ("' + ', 172800000000, 0", "2 days, 0:00:00"),
            ("'+', '2024-02-28', 86400000000", "2024-02-29"),
            ("'-', '2024-03-01', 1", "2024-03-01"),
            ("'+', '2024-03-01', -1", "2024-02-29"),
            ("'+', 3600000000, '2024-03-31 23:30:00'", "2024-04-01 00:30:00"),
            ("'-', '2024-03-31 00:00:00.5', 500000", "2024-03-31 00:00:00"),
            ("'-', '2024-03-01 12:00:00', '2024-02-28 00:00:00'", "2 days, 12:00:00"),
            ("'-', '2024-03-01', '2024-03-08'", "-7 days, 0:00:00"),
        ];
        for (args, expected) in cases {
            assert_eq!(text(&connection, &format!("SELECT django_format_dtdelta({args})")), expected, "{args}");
        }
        assert_eq!(int(&connection, "SELECT django_format_dtdelta('*', 1500000, 3)"), 4_500_000);
        assert_eq!(query(&connection, "SELECT django_format_dtdelta('/', 3, 2)"), rusqlite::types::Value::Real(1.5));
        assert_eq!(query(&connection, "SELECT django_format_dtdelta('+', 'soon', 1)"), rusqlite::types::Value::Null);
        assert!(fails(&connection, "SELECT django_format_dtdelta('/', 1, 0)"));
        assert!(fails(&connection, "SELECT django_format_dtdelta('+', '2024-01-01', '2024-01-02')"));
        assert!(fails(&connection, "SELECT django_format_dtdelta('+', '9999-12-31', 86400000000)"));

        connection
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (2), (4), (4), (4), (5), (5), (7), (9), (NULL);")
            .unwrap();
        let spread = |sql: &str| connection.query_row(sql, [], |row| row.get::<_, Option<f64>>(0)).unwrap();
        assert_eq!(spread("SELECT STDDEV_POP(x) FROM t"), Some(2.0));
        assert_eq!(spread("SELECT VAR_POP(x) FROM t"), Some(4.0));
        assert!((spread("SELECT VAR_SAMP(x) FROM t").unwrap() - 32.0 / 7.0).abs() < 1e-12);
        assert!((spread("SELECT STDDEV_SAMP(x) FROM t").unwrap() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(spread("SELECT VAR_SAMP(x) FROM t WHERE x = 2"), None);
        assert_eq!(spread("SELECT STDDEV_POP(x) FROM t WHERE x > 100"), None);
        let random = spread("SELECT RAND()").unwrap();
        assert!((0.0..1.0).contains(&random), "{random}");
    }

    #[test]
    fn text_regexp_digests_and_math_are_there() {
        let connection = Connection::open_in_memory().unwrap();
        register(&connection).unwrap();
        assert_eq!(int(&connection, "SELECT 'wasmhost' REGEXP '^wasm(?=host)'"), 1);
        assert_eq!(int(&connection, "SELECT regexp('(a)\\1', 'xaay')"), 1);
        assert_eq!(query(&connection, "SELECT regexp('a', NULL)"), rusqlite::types::Value::Null);
        assert!(fails(&connection, "SELECT regexp('(', 'x')"));
        assert_eq!(text(&connection, "SELECT MD5('abc')"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(text(&connection, "SELECT SHA1('abc')"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(&text(&connection, "SELECT SHA256('abc')")[..16], "ba7816bf8f01cfea");
        assert_eq!(text(&connection, "SELECT LPAD('7', 3, '0')"), "007");
        assert_eq!(text(&connection, "SELECT RPAD('abcdef', 3, '-')"), "abc");
        assert_eq!(text(&connection, "SELECT REPEAT('ab', 3) || REVERSE('xyz')"), "abababzyx");
        assert_eq!(int(&connection, "SELECT SIGN(-4.5) + SIGN(3) * 10 + BITXOR(6, 3) * 100"), 509);
        assert!(fails(&connection, "SELECT REPEAT('x', 1000000000)"));
        // SQLite's own math functions are compiled in.
        assert_eq!(int(&connection, "SELECT CAST(POWER(2, 10) + CEILING(0.5) + FLOOR(SQRT(16)) AS INTEGER)"), 1029);
    }
}
