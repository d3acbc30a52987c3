//! Cursor pagination shared by the list endpoints: `?limit=` (default 100, at most 500)
//! and `?next=` (the cursor the previous page returned).

use serde::Serialize;

use crate::ApiError;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 500;

#[derive(Debug, Clone)]
pub struct Page {
    /// The cursor of the page asked for: what `next` said on the previous page.
    pub after: Option<String>,
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
        Ok(Page {
            after: next.map(str::to_owned),
            limit,
        })
    }

    /// The cursor as the row id it stands for, for lists ordered by id.
    pub fn after_id(&self) -> Result<i64, ApiError> {
        match &self.after {
            None => Ok(0),
            Some(text) => text.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::BadRequest(format!("next: {text:?} is not a cursor from this API"))
            }),
        }
    }
}

/// A page of items and the cursor of the next one (absent on the last page).
#[derive(Debug, Serialize)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Listing<T> {
    pub fn new(items: Vec<T>, page: &Page, cursor: impl Fn(&T) -> String) -> Self {
        let full = i64::try_from(items.len()).unwrap_or(i64::MAX) >= page.limit;
        let next = if full { items.last().map(cursor) } else { None };
        Listing { items, next }
    }
}
