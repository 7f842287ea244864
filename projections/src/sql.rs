//! Building blocks shared by the read models' queries (each model's `queries.rs`): a page
//! window and the page it returns, LIKE patterns, and time bounds read in the tenant's timezone.
//!
//! Every value reaches PostgreSQL as a bind parameter; only column names and orderings, which
//! are constants of the calling query, are pasted into the SQL text.

use chrono::{DateTime, NaiveDate, Utc};
use omnistream_domain::TenantId;
use sqlx::{PgPool, Postgres, QueryBuilder};

/// Which rows of a list to read: `limit` rows after skipping `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// At most this many rows.
    pub limit: i64,
    /// Rows skipped first.
    pub offset: i64,
}

/// One page of a list, and how many rows the whole list holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The rows of the page, in the list's order.
    pub rows: Vec<T>,
    /// Rows in the whole list (every page).
    pub total: i64,
}

impl<T> Page<T> {
    /// The same page with each row mapped by `f`.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            rows: self.rows.into_iter().map(f).collect(),
            total: self.total,
        }
    }
}

/// Counts and reads one page of a filtered list. `filtered(prefix)` builds the query from
/// `prefix` (`count` for the total, `select` for the rows) on, with the list's conditions;
/// the rows are ordered by `order_by` (a constant of the calling query).
pub async fn fetch_page<'q, T>(
    pool: &PgPool,
    filtered: impl Fn(&str) -> QueryBuilder<'q, Postgres>,
    count: &str,
    select: &str,
    order_by: &'static str,
    window: Window,
) -> Result<Page<T>, sqlx::Error>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let total: i64 = filtered(count).build_query_scalar().fetch_one(pool).await?;
    let mut rows = filtered(select);
    rows.push(format!(" ORDER BY {order_by} LIMIT "))
        .push_bind(window.limit)
        .push(" OFFSET ")
        .push_bind(window.offset);
    let rows = rows.build_query_as::<T>().fetch_all(pool).await?;
    Ok(Page { rows, total })
}

/// The `ILIKE` pattern matching `text` anywhere, with its LIKE wildcards (`%`, `_`, `\`)
/// escaped so they match themselves.
pub fn like_pattern(text: &str) -> String {
    format!(
        "%{}%",
        text.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// One end of a time filter: an instant, or a whole day in the tenant's timezone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBound {
    /// An exact instant (inclusive at both ends).
    Instant(DateTime<Utc>),
    /// A calendar day of the tenant's timezone: from its start, or through its end.
    Date(NaiveDate),
}

impl TimeBound {
    /// Reads an RFC 3339 timestamp or a `YYYY-MM-DD` date (`None`: neither).
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if let Ok(instant) = DateTime::parse_from_rfc3339(raw) {
            return Some(Self::Instant(instant.with_timezone(&Utc)));
        }
        NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .ok()
            .map(Self::Date)
    }
}

/// A time filter on one column: from `from` (inclusive) through `to` (inclusive; a date
/// includes its whole day).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// The lower end, if any.
    pub from: Option<TimeBound>,
    /// The upper end, if any.
    pub to: Option<TimeBound>,
}

impl TimeRange {
    /// Adds ` AND <column> …` for each end; dates are read in `tenant`'s timezone.
    pub fn push(
        &self,
        builder: &mut QueryBuilder<'_, Postgres>,
        column: &'static str,
        tenant: TenantId,
    ) {
        if let Some(bound) = self.from {
            push_bound(builder, column, bound, false, tenant);
        }
        if let Some(bound) = self.to {
            push_bound(builder, column, bound, true, tenant);
        }
    }
}

fn push_bound(
    builder: &mut QueryBuilder<'_, Postgres>,
    column: &'static str,
    bound: TimeBound,
    is_upper: bool,
    tenant: TenantId,
) {
    match (bound, is_upper) {
        (TimeBound::Instant(at), false) => {
            builder.push(format!(" AND {column} >= ")).push_bind(at);
        }
        (TimeBound::Instant(at), true) => {
            builder.push(format!(" AND {column} <= ")).push_bind(at);
        }
        (TimeBound::Date(date), upper) => {
            // The upper end of a date is the start of the next day, exclusive.
            let day = if upper {
                date + chrono::Days::new(1)
            } else {
                date
            };
            builder
                .push(format!(" AND {column} {} ", if upper { "<" } else { ">=" }))
                .push("(")
                .push_bind(day)
                .push("::timestamp AT TIME ZONE (SELECT timezone FROM tenants WHERE id = ")
                .push_bind(tenant.as_uuid())
                .push("))");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn a_time_bound_is_a_timestamp_or_a_date() {
        assert_eq!(
            TimeBound::parse("2024-05-01"),
            NaiveDate::from_ymd_opt(2024, 5, 1).map(TimeBound::Date)
        );
        assert!(matches!(
            TimeBound::parse(" 2024-05-01T10:00:00+02:00 "),
            Some(TimeBound::Instant(_))
        ));
        assert_eq!(TimeBound::parse("yesterday"), None);
    }

    #[test]
    fn a_date_range_covers_the_whole_last_day() {
        let mut builder = QueryBuilder::<Postgres>::new("SELECT 1 WHERE true");
        let day = NaiveDate::from_ymd_opt(2024, 5, 1).map(TimeBound::Date);
        TimeRange { from: day, to: day }.push(&mut builder, "m.created_at", TenantId::new());
        assert_eq!(
            builder.sql(),
            "SELECT 1 WHERE true AND m.created_at >= ($1::timestamp AT TIME ZONE (SELECT timezone FROM tenants WHERE id = $2)) \
             AND m.created_at < ($3::timestamp AT TIME ZONE (SELECT timezone FROM tenants WHERE id = $4))"
        );
    }
}
