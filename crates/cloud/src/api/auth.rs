//! Who is asking: the bearer credential of a request, and what it may see.

use std::collections::BTreeSet;

use access::{Credential, Denied, Permission, Scope};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::ApiState;
use super::error::ApiError;

/// The authenticated credential of a request (401 without a valid one).
#[derive(Debug, Clone)]
pub struct Caller(pub Credential);

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized("a bearer token is required"));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("the Authorization header is not `Bearer <token>`"))?;
        match state.auth.authenticate(token).await {
            Ok(Some(c)) if c.revoked_at.is_some() => Err(ApiError::unauthorized("this token was revoked")),
            Ok(Some(c)) => Ok(Caller(c)),
            Ok(None) => Err(ApiError::unauthorized("unknown or wrong token")),
            Err(e) if e.is_transient() => Err(ApiError::unavailable("credentials cannot be checked now; retry later")),
            Err(e) => Err(ApiError::unauthorized(e.to_string())),
        }
    }
}

fn denied(d: Denied) -> ApiError {
    ApiError::forbidden(d.to_string())
}

impl Caller {
    /// May read `plant`'s data (403 otherwise).
    pub fn read(&self, plant: u16) -> Result<(), ApiError> {
        self.0.authorize(Permission::ReadPlantData, Some(plant)).map_err(denied)
    }

    /// The plants a read covers: the ones asked for (each must be in scope), or every
    /// plant the credential may read.
    pub fn readable(&self, asked: Option<&BTreeSet<u16>>) -> Result<Option<Vec<i16>>, ApiError> {
        self.0.authorize(Permission::ReadPlantData, None).map_err(denied)?;
        match asked {
            Some(plants) => {
                for &p in plants {
                    self.read(p)?;
                }
                Ok(Some(plants.iter().map(|&p| p as i16).collect()))
            }
            None => Ok(match &self.0.scope {
                Scope::AllPlants => None,
                Scope::Plants(p) => Some(p.iter().map(|&p| p as i16).collect()),
            }),
        }
    }

    /// May ship `plant`'s log (403 otherwise).
    pub fn forward(&self, plant: u16) -> Result<(), ApiError> {
        self.0.authorize(Permission::ForwardPlantLog, Some(plant)).map_err(denied)
    }
}
