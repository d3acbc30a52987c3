//! `GET /v1/signing/keys`: the public keys hoist signs published indexes with, as PEM, for
//! `cosign verify --key` and `hoist verify --key`. Public by nature: no token needed.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::{ApiError, AppState};

/// The public keys (SubjectPublicKeyInfo PEM blocks): the signing key first, then the
/// earlier keys configured for rotation.
#[utoipa::path(
    get,
    path = "/v1/signing/keys",
    responses(
        (status = 200, description = "PEM public keys, the signing key first", body = String, content_type = "application/x-pem-file"),
        (status = 404, description = "Signing is not configured", body = crate::error::ErrorBody),
        (status = 408, description = "The request took too long", body = crate::error::ErrorBody),
    ),
)]
pub(crate) async fn signing_keys(
    State(state): State<AppState>,
) -> Result<impl IntoResponse, ApiError> {
    let signing = state.config().signing.as_ref().ok_or_else(|| {
        ApiError::NotFound("hoist signs nothing: no [signing] section is configured".to_owned())
    })?;
    let pem: String = signing
        .public_keys()
        .iter()
        .map(|key| key.to_pem())
        .collect();
    Ok(([(CONTENT_TYPE, "application/x-pem-file")], pem))
}
