//! Cursor pagination shared by the list endpoints: `?limit=` (default 100, at most 500)
//! and `?next=` (the cursor the previous page returned).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// `Query<T>` whose refusal is the API's error envelope, naming the parameter.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => {
                let text = rejection.body_text();
                let detail = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                let message = match detail
                    .strip_prefix("missing field `")
                    .and_then(|rest| rest.strip_suffix('`'))
                {
                    Some(field) => format!("the {field} query parameter is required"),
                    None => format!("query: {detail}"),
                };
                Err(ApiError::BadRequest(message))
            }
        }
    }
}

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 500;

#[derive(Debug, Clone)]
pub struct Page {
    /// The cursor of the page asked for: what `next` said on the previous page.
    pub after: Option<String>,
    pub limit: i64,
}

impl Page {
    pub fn parse(limit: Option<i64>, next: Option<&str>) -> Result<Self, ApiError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
            Some(n) => {
                return Err(ApiError::BadRequest(format!(
                    "limit: {:?} is not a number from 1 to {MAX_LIMIT}",
                    n.to_string()
                )));
            }
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
