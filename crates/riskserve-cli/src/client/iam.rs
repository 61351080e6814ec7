//! `riskserve iam user|access-key|token|policy …`: identities, credentials and Cedar policies over the native API.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::{Value, json};

use super::http::segment;
use super::table::{self, cell};
use super::{Connection, Output, print_json, print_list};

#[derive(Debug, clap::Args)]
pub struct IamArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: IamCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum IamCommand {
    /// Users and their roles (admin, deployer, invoker, auditor, or roles custom policies name).
    #[command(subcommand)]
    User(UserCommand),
    /// Access keys for AWS Signature Version 4 (boto3, the AWS CLI); the secret is shown once.
    #[command(subcommand)]
    AccessKey(CredentialCommand),
    /// Bearer tokens (curl, the CLI's RISKSERVE_TOKEN); the token is shown once.
    #[command(subcommand)]
    Token(CredentialCommand),
    /// Custom Cedar policies, validated against the schema before they apply.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Create {
        #[arg(long)]
        name: String,
        /// A role (repeatable).
        #[arg(long)]
        role: Vec<String>,
    },
    List,
    Describe {
        name: String,
    },
    /// Replace a user's roles.
    SetRoles {
        name: String,
        #[arg(long)]
        role: Vec<String>,
    },
    /// Disable a user: none of its credentials authenticate until it is enabled again.
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
    /// Delete a user with its keys and tokens.
    Delete {
        name: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum CredentialCommand {
    /// A new credential for a user.
    Create {
        #[arg(long)]
        user: String,
    },
    /// A new credential that replaces ID, which is deactivated at once.
    Rotate {
        #[arg(long)]
        user: String,
        id: String,
    },
    Disable {
        #[arg(long)]
        user: String,
        id: String,
    },
    Enable {
        #[arg(long)]
        user: String,
        id: String,
    },
    Delete {
        #[arg(long)]
        user: String,
        id: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    List,
    Describe {
        name: String,
    },
    /// Create or replace a policy from a Cedar file; refused with Cedar's message when it does not validate.
    Put {
        name: String,
        /// The Cedar policy file.
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        description: Option<String>,
    },
    Delete {
        name: String,
    },
}

pub fn run(args: IamArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let output = args.connection.output;
    match args.command {
        IamCommand::User(command) => match command {
            UserCommand::Create { name, role } => {
                print_user(output, &client.post_json("/api/v1/users", &json!({"name": name, "roles": role}))?)
            }
            UserCommand::List => {
                let users = client.get_json("/api/v1/users")?;
                print_list(
                    output,
                    table::items(&users),
                    &[
                        ("NAME", &|user| cell(user, "name")),
                        ("ROLES", &|user| roles(user)),
                        ("DISABLED", &|user| cell(user, "disabled")),
                        ("KEYS", &|user| count(user, "access_keys")),
                        ("TOKENS", &|user| count(user, "tokens")),
                        ("CREATED", &|user| cell(user, "created_at")),
                    ],
                );
            }
            UserCommand::Describe { name } => print_user(output, &client.get_json(&user_path(&name))?),
            UserCommand::SetRoles { name, role } => {
                print_user(output, &client.patch_json(&user_path(&name), &json!({"roles": role}))?)
            }
            UserCommand::Disable { name } => {
                print_user(output, &client.patch_json(&user_path(&name), &json!({"disabled": true}))?)
            }
            UserCommand::Enable { name } => {
                print_user(output, &client.patch_json(&user_path(&name), &json!({"disabled": false}))?)
            }
            UserCommand::Delete { name } => {
                client.delete(&user_path(&name))?;
                done(output, &json!({"user": name, "deleted": true}), &format!("user `{name}` deleted"));
            }
        },
        IamCommand::AccessKey(command) => credential(&client, output, "access-keys", command)?,
        IamCommand::Token(command) => credential(&client, output, "tokens", command)?,
        IamCommand::Policy(command) => match command {
            PolicyCommand::List => {
                let policies = client.get_json("/api/v1/policies")?;
                print_list(
                    output,
                    table::items(&policies),
                    &[
                        ("NAME", &|policy| cell(policy, "name")),
                        ("BUILTIN", &|policy| cell(policy, "builtin")),
                        ("DESCRIPTION", &|policy| cell(policy, "description")),
                    ],
                );
            }
            PolicyCommand::Describe { name } => {
                let policy = client.get_json(&format!("/api/v1/policies/{}", segment(&name)))?;
                if output == Output::Json {
                    print_json(&policy);
                } else {
                    print!("{}", policy.get("text").and_then(Value::as_str).unwrap_or_default());
                }
            }
            PolicyCommand::Put { name, file, description } => {
                let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
                let body = json!({"text": text, "description": description});
                let policy = client.put_json(&format!("/api/v1/policies/{}", segment(&name)), &body)?;
                done(output, &policy, &format!("policy `{name}` applies"));
            }
            PolicyCommand::Delete { name } => {
                client.delete(&format!("/api/v1/policies/{}", segment(&name)))?;
                done(output, &json!({"policy": name, "deleted": true}), &format!("policy `{name}` deleted"));
            }
        },
    }
    Ok(())
}

fn credential(client: &super::Client, output: Output, kind: &str, command: CredentialCommand) -> anyhow::Result<()> {
    let base = |user: &str| format!("{}/{kind}", user_path(user));
    match command {
        CredentialCommand::Create { user } => print_secret(output, &client.post_json(&base(&user), &json!({}))?),
        CredentialCommand::Rotate { user, id } => {
            print_secret(output, &client.post_json(&format!("{}/{}/rotate", base(&user), segment(&id)), &json!({}))?)
        }
        CredentialCommand::Disable { user, id } => print_user(
            output,
            &client.patch_json(&format!("{}/{}", base(&user), segment(&id)), &json!({"active": false}))?,
        ),
        CredentialCommand::Enable { user, id } => print_user(
            output,
            &client.patch_json(&format!("{}/{}", base(&user), segment(&id)), &json!({"active": true}))?,
        ),
        CredentialCommand::Delete { user, id } => {
            client.delete(&format!("{}/{}", base(&user), segment(&id)))?;
            done(output, &json!({"user": user, "id": id, "deleted": true}), &format!("`{id}` of `{user}` deleted"));
        }
    }
    Ok(())
}

fn user_path(name: &str) -> String {
    format!("/api/v1/users/{}", segment(name))
}

fn roles(user: &Value) -> String {
    let roles: Vec<&str> = user
        .get("roles")
        .and_then(Value::as_array)
        .map(|roles| roles.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if roles.is_empty() { "-".to_string() } else { roles.join(",") }
}

fn count(user: &Value, member: &str) -> String {
    user.get(member).and_then(Value::as_array).map_or(0, Vec::len).to_string()
}

fn done(output: Output, value: &Value, message: &str) {
    if output == Output::Json {
        print_json(value);
    } else {
        eprintln!("{message}");
    }
}

fn print_user(output: Output, user: &Value) {
    if output == Output::Json {
        print_json(user);
        return;
    }
    print!(
        "{}",
        table::render_pairs(&[
            ("name", cell(user, "name")),
            ("id", cell(user, "id")),
            ("roles", roles(user)),
            ("disabled", cell(user, "disabled")),
            ("created", cell(user, "created_at")),
        ])
    );
    let mut rows = Vec::new();
    for (kind, member, id) in [("access key", "access_keys", "access_key_id"), ("token", "tokens", "id")] {
        for credential in user.get(member).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
            rows.push(vec![
                kind.to_string(),
                cell(credential, id),
                cell(credential, "active"),
                cell(credential, "created_at"),
            ]);
        }
    }
    if !rows.is_empty() {
        println!();
        print!("{}", table::render(&["KIND", "ID", "ACTIVE", "CREATED"], &rows));
    }
}

/// A new secret: printed once, on standard output, so that it can be captured.
fn print_secret(output: Output, answer: &Value) {
    if output == Output::Json {
        print_json(answer);
        return;
    }
    if let Some(secret) = answer.get("secret_access_key").and_then(Value::as_str) {
        println!("AWS_ACCESS_KEY_ID={}", cell(answer, "access_key_id"));
        println!("AWS_SECRET_ACCESS_KEY={secret}");
    } else {
        println!("RISKSERVE_TOKEN={}", cell(answer, "token"));
        eprintln!("token id {} (for rotate, disable, delete)", cell(answer, "id"));
    }
    eprintln!("the secret is shown once: keep it now");
}
