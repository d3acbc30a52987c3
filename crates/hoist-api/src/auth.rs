//! Bearer-token extractors: `CiCaller` for `POST /v1/builds`, `Operator` for the REST API.
//! Static tokens are looked up in constant time (`Config::ci_token`, `Config::api_token`);
//! a JWT on `POST /v1/builds` is a GitHub Actions OIDC token, checked by [`crate::oidc`].

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use hoist_domain::ci::ActionsClaims;
use hoist_domain::config::{CiToken, Role};

use crate::oidc::{OidcError, looks_like_jwt};
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

/// Who is reporting a build: a static CI token (its `ref` is a claim), or a GitHub Actions
/// run whose OIDC token GitHub signed.
#[derive(Debug, Clone)]
pub enum CiCaller {
    Token(CiToken),
    Actions(Box<ActionsClaims>),
}

impl FromRequestParts<AppState> for CiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let presented = bearer(parts)?;
        if let Some(token) = state.config().ci_token(presented) {
            return Ok(CiCaller::Token(token.clone()));
        }
        if !looks_like_jwt(presented) {
            return Err(ApiError::Unauthorized("unknown CI token".to_owned()));
        }
        let Some(verifier) = state.oidc() else {
            return Err(ApiError::Unauthorized(
                "an OIDC token was presented, but this hoist accepts none ([github] oidc_audience is not set)"
                    .to_owned(),
            ));
        };
        match verifier.verify(presented).await {
            Ok(claims) => Ok(CiCaller::Actions(Box::new(claims))),
            Err(OidcError::Invalid(why)) => {
                tracing::info!(error = %why, "OIDC token refused");
                Err(ApiError::Unauthorized(format!("OIDC token refused: {why}")))
            }
            Err(OidcError::Unavailable(why)) => Err(ApiError::IssuerUnavailable(why)),
        }
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
