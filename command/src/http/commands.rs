//! `GET /commands/{command_id}`: what became of a command answered with 202.

use axum::Json;
use axum::extract::State;
use events::command::{Outcome, RejectionKind, Reply, Role};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use super::extract::{Anyone, ApiPath, Caller};
use crate::bus::{CommandBus, CommandStatus};
use crate::openapi::{InvalidRequest, Unauthorized};
use events::auth::signing::SigningKey;
use events::consistency::consistency_token;

/// A command's outcome, as far as this instance knows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandStatusResponse {
    pub command_id: Uuid,
    /// `pending`, `succeeded` or `rejected`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<CommandResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<CommandReason>,
}

/// What a succeeded command did.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandResult {
    pub version: u64,
    /// Types of the events it appended, e.g. `OrderPlaced`.
    pub events: Vec<String>,
    pub consistency_token: String,
}

/// Why a command was rejected.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandReason {
    /// The stable code, the same as the problem `type` suffix a direct answer has.
    pub code: String,
    pub message: String,
    /// `invalid`, `conflict` or `not_found`.
    pub kind: String,
}

/// The status of a command, for the caller who issued it and for
/// operators. Command ids derive from inputs a third party may guess, so
/// anyone else gets the same 404 as for an unknown command.
#[utoipa::path(
    get,
    path = "/commands/{command_id}",
    tag = "commands",
    params(("command_id" = Uuid, Path)),
    responses(
        (status = 200, description = "Known command", body = CommandStatusResponse),
        (status = 404, description = "Unknown command", body = crate::openapi::ProblemDetails,
            content_type = "application/problem+json"),
        Unauthorized, InvalidRequest,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn command_status<B: CommandBus>(
    State(state): State<AppState<B>>,
    caller: Caller<Anyone>,
    ApiPath(command_id): ApiPath<String>,
) -> Result<Json<CommandStatusResponse>, ApiError> {
    let command_id = Uuid::parse_str(&command_id).map_err(|_| ApiError::InvalidPath {
        name: "command_id",
        reason: "expected a uuid".to_owned(),
    })?;
    let status = state.bus.status(command_id);
    let issuer = match &status {
        CommandStatus::Unknown => None,
        CommandStatus::Pending { issued_by } => Some(issued_by),
        CommandStatus::Completed(reply) => reply.issued_by.as_ref(),
    };
    let visible = caller.principal.role == Role::Admin || issuer == Some(&caller.principal);
    if !visible {
        return Err(ApiError::CommandNotFound);
    }
    match status {
        CommandStatus::Unknown => Err(ApiError::CommandNotFound),
        CommandStatus::Pending { .. } => Ok(Json(CommandStatusResponse {
            command_id,
            status: "pending".to_owned(),
            result: None,
            reason: None,
        })),
        CommandStatus::Completed(reply) => Ok(Json(completed(reply, &state.settings.signing))),
    }
}

fn completed(reply: Reply, signing: &SigningKey) -> CommandStatusResponse {
    let (status, result, reason) = match reply.outcome {
        Outcome::Accepted { version, events } => {
            let token =
                consistency_token(reply.aggregate_type, &reply.aggregate_id, version, signing);
            let result = CommandResult {
                version,
                events,
                consistency_token: token,
            };
            ("succeeded", Some(result), None)
        }
        Outcome::Rejected {
            kind,
            code,
            message,
            ..
        } => {
            let kind = kind_name(kind).to_owned();
            (
                "rejected",
                None,
                Some(CommandReason {
                    code,
                    message,
                    kind,
                }),
            )
        }
    };
    CommandStatusResponse {
        command_id: reply.command_id,
        status: status.to_owned(),
        result,
        reason,
    }
}

fn kind_name(kind: RejectionKind) -> &'static str {
    match kind {
        RejectionKind::Invalid => "invalid",
        RejectionKind::Conflict => "conflict",
        RejectionKind::NotFound => "not_found",
    }
}
