//! Cursor pagination shared by the list endpoints: `?limit=` (default 100, at most 500)
//! and `?next=` (the cursor the previous page returned).

use serde::Serialize;

use crate::ApiError;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 500;

#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub after: i64,
    pub limit: i64,
}

impl Page {
    pub fn parse(limit: Option<&str>, next: Option<&str>) -> Result<Self, ApiError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "limit: {text:?} is not a number from 1 to {MAX_LIMIT}"
                    )));
                }
            },
        };
        let after = match next {
            None => 0,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("next: {text:?} is not a cursor from this API"))
                })?,
        };
        Ok(Page { after, limit })
    }
}

/// A page of items and the cursor of the next one (absent on the last page).
#[derive(Debug, Serialize)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Listing<T> {
    pub fn new(items: Vec<T>, page: Page, id: impl Fn(&T) -> i64) -> Self {
        let full = i64::try_from(items.len()).unwrap_or(i64::MAX) >= page.limit;
        let next = if full {
            items.last().map(|last| id(last).to_string())
        } else {
            None
        };
        Listing { items, next }
    }
}
