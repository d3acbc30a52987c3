//! Bearer-token extractors: `CiCaller` for `POST /v1/builds`, `Operator` for the REST API.
//! Tokens are looked up in constant time (`Config::ci_token`, `Config::api_token`).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use hoist_domain::config::{CiToken, Role};

use crate::{ApiError, AppState};

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
        ApiError::Unauthorized("missing Authorization: Bearer <token>".to_owned())
    })?;
    header
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header is not Bearer <token>".to_owned())
        })
}

/// A CI token holder; which repositories it may report for is in `token`.
#[derive(Debug, Clone)]
pub struct CiCaller {
    pub token: CiToken,
}

impl FromRequestParts<AppState> for CiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let presented = bearer(parts)?;
        let token = state
            .config()
            .ci_token(presented)
            .ok_or_else(|| ApiError::Unauthorized("unknown CI token".to_owned()))?;
        Ok(CiCaller {
            token: token.clone(),
        })
    }
}

/// An operator with a read or admin token.
#[derive(Debug, Clone)]
pub struct Operator {
    pub name: String,
    pub role: Role,
}

impl Operator {
    /// Refuses (403) unless the token has the admin role; `action` names what was asked.
    pub fn require_admin(&self, action: &str) -> Result<(), ApiError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Read => Err(ApiError::Forbidden(format!(
                "{action} needs an admin token; {:?} has the read role",
                self.name
            ))),
        }
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let presented = bearer(parts)?;
        let token = state
            .config()
            .api_token(presented)
            .ok_or_else(|| ApiError::Unauthorized("unknown API token".to_owned()))?;
        Ok(Operator {
            name: token.name.clone(),
            role: token.role,
        })
    }
}
