//! The identity routes, `/api/v1/users` (users, access keys, tokens) and `/api/v1/policies`: decode → authorize →
//! one service call → encode.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use riskserve_service::{Caller, CreateUser, Resource, Service, UpdateCredential};

use crate::respond::{answer, json_body, no_content};

/// The IAM routes, merged into the native API's router.
pub fn routes() -> Router<Service> {
    Router::new()
        .route("/api/v1/users", post(create_user).get(list_users))
        .route("/api/v1/users/{name}", get(get_user).patch(update_user).delete(delete_user))
        .route("/api/v1/users/{name}/access-keys", post(create_access_key))
        .route(
            "/api/v1/users/{name}/access-keys/{id}",
            axum::routing::patch(update_access_key).delete(delete_access_key),
        )
        .route("/api/v1/users/{name}/access-keys/{id}/rotate", post(rotate_access_key))
        .route("/api/v1/users/{name}/tokens", post(create_token))
        .route("/api/v1/users/{name}/tokens/{id}", axum::routing::patch(update_token).delete(delete_token))
        .route("/api/v1/users/{name}/tokens/{id}/rotate", post(rotate_token))
        .route("/api/v1/policies", get(list_policies))
        .route("/api/v1/policies/{name}", get(get_policy).put(put_policy).delete(delete_policy))
}

async fn create_user(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let request: CreateUser = json_body(&headers, body)?;
        service.authorize(&caller, "iam:CreateUser", Resource::User(request.name.clone())).await?;
        service.create_user(request).await
    };
    answer(StatusCode::CREATED, result.await)
}

async fn list_users(State(service): State<Service>, Extension(caller): Extension<Caller>) -> Response {
    let result = async {
        service.authorize(&caller, "iam:ListUsers", Resource::Account).await?;
        Ok(serde_json::json!({"items": service.list_users().await?, "next_token": null}))
    };
    answer(StatusCode::OK, result.await)
}

async fn get_user(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:GetUser", Resource::User(name.clone())).await?;
        service.get_user(&name).await
    };
    answer(StatusCode::OK, result.await)
}

async fn update_user(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:UpdateUser", Resource::User(name.clone())).await?;
        service.update_user(&name, json_body(&headers, body)?).await
    };
    answer(StatusCode::OK, result.await)
}

async fn delete_user(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:DeleteUser", Resource::User(name.clone())).await?;
        service.delete_user(&name).await
    };
    no_content(result.await)
}

async fn create_access_key(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:CreateAccessKey", Resource::User(name.clone())).await?;
        service.create_access_key(&name, None).await
    };
    answer(StatusCode::CREATED, result.await)
}

async fn rotate_access_key(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath((name, id)): UrlPath<(String, String)>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:RotateAccessKey", Resource::User(name.clone())).await?;
        service.create_access_key(&name, Some(&id)).await
    };
    answer(StatusCode::CREATED, result.await)
}

async fn update_access_key(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath((name, id)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:UpdateAccessKey", Resource::User(name.clone())).await?;
        let change: UpdateCredential = json_body(&headers, body)?;
        service.set_access_key_active(&name, &id, change.active).await
    };
    answer(StatusCode::OK, result.await)
}

async fn delete_access_key(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath((name, id)): UrlPath<(String, String)>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:DeleteAccessKey", Resource::User(name.clone())).await?;
        service.delete_access_key(&name, &id).await
    };
    no_content(result.await)
}

async fn create_token(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:CreateToken", Resource::User(name.clone())).await?;
        service.create_token(&name, None).await
    };
    answer(StatusCode::CREATED, result.await)
}

async fn rotate_token(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath((name, id)): UrlPath<(String, String)>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:RotateToken", Resource::User(name.clone())).await?;
        service.create_token(&name, Some(&id)).await
    };
    answer(StatusCode::CREATED, result.await)
}

async fn update_token(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath((name, id)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:UpdateToken", Resource::User(name.clone())).await?;
        let change: UpdateCredential = json_body(&headers, body)?;
        service.set_token_active(&name, &id, change.active).await
    };
    answer(StatusCode::OK, result.await)
}

async fn delete_token(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath((name, id)): UrlPath<(String, String)>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:DeleteToken", Resource::User(name.clone())).await?;
        service.delete_token(&name, &id).await
    };
    no_content(result.await)
}

async fn list_policies(State(service): State<Service>, Extension(caller): Extension<Caller>) -> Response {
    let result = async {
        service.authorize(&caller, "iam:ListPolicies", Resource::Account).await?;
        Ok(serde_json::json!({"items": service.list_policies().await?, "next_token": null}))
    };
    answer(StatusCode::OK, result.await)
}

async fn get_policy(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:GetPolicy", Resource::Policy(name.clone())).await?;
        service.get_policy(&name).await
    };
    answer(StatusCode::OK, result.await)
}

async fn put_policy(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:PutPolicy", Resource::Policy(name.clone())).await?;
        service.put_policy(&name, json_body(&headers, body)?).await
    };
    answer(StatusCode::OK, result.await)
}

async fn delete_policy(
    State(service): State<Service>,
    Extension(caller): Extension<Caller>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let result = async {
        service.authorize(&caller, "iam:DeletePolicy", Resource::Policy(name.clone())).await?;
        service.delete_policy(&name).await
    };
    no_content(result.await)
}
