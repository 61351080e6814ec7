//! Authorization with Cedar: the schema and the built-in role policies, custom policies validated
//! against the schema before they apply, and one decision per (principal, action, resource).

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId, PolicySet, Request,
    RestrictedExpression, Schema, ValidationMode, Validator,
};

use crate::caller::{Principal, Resource};

/// The Cedar schema every policy is validated against.
pub const SCHEMA: &str = include_str!("../policies/schema.cedarschema");
/// The built-in roles' policies.
pub const BUILTIN_POLICIES: &str = include_str!("../policies/builtin.cedar");

/// The action group an action belongs to. The schema declares the same groups for the actions it
/// names; actions it does not name (added by later façades) are grouped by their verb, so the
/// built-in roles cover them without a schema change.
pub fn action_group(action: &str) -> &'static str {
    let (service, verb) = action.split_once(':').unwrap_or(("", action));
    match service {
        "iam" => "Iam",
        "audit" => "Audit",
        "metrics" | "cost" => "Metrics",
        _ if verb.starts_with("Invoke") => "Invoke",
        _ if ["Describe", "List", "Get", "Search"].iter().any(|prefix| verb.starts_with(prefix)) => "ReadControlPlane",
        _ => "WriteControlPlane",
    }
}

fn uid(kind: &str, id: &str) -> Option<EntityUid> {
    let kind = EntityTypeName::from_str(kind).ok()?;
    Some(EntityUid::from_type_name_and_id(kind, EntityId::new(id)))
}

/// The active policy set (built-ins plus custom policies, each validated against the schema).
pub struct Policies {
    set: PolicySet,
    authorizer: Authorizer,
}

/// A custom policy that did not parse or validate: Cedar's own message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRejected(pub String);

/// Parses and validates `text` against the schema; every error Cedar reports, one per line.
pub fn check_policy_text(schema: &Schema, name: &str, text: &str) -> Result<PolicySet, PolicyRejected> {
    let parsed = PolicySet::from_str(text)
        .map_err(|error| PolicyRejected(format!("policy {name:?} does not parse: {}", render(&error))))?;
    if parsed.policies().next().is_none() && parsed.templates().next().is_none() {
        return Err(PolicyRejected(format!("policy {name:?} holds no policy statement")));
    }
    let result = Validator::new(schema.clone()).validate(&parsed, ValidationMode::Strict);
    if !result.validation_passed() {
        let messages: Vec<String> = result.validation_errors().map(|error| render(error)).collect();
        return Err(PolicyRejected(format!(
            "policy {name:?} does not validate against the schema: {}",
            messages.join("; ")
        )));
    }
    Ok(parsed)
}

/// Cedar's message with the help it attaches, on one line.
fn render(error: &dyn miette::Diagnostic) -> String {
    let mut text = error.to_string();
    if let Some(help) = error.help() {
        text.push_str(&format!(" ({help})"));
    }
    text
}

impl Policies {
    /// The built-in policies plus `custom` (name, text) pairs; a custom one that no longer validates is named.
    pub fn new(custom: &[(String, String)]) -> Result<Policies, PolicyRejected> {
        let (schema, _warnings) = Schema::from_cedarschema_str(SCHEMA)
            .map_err(|error| PolicyRejected(format!("the built-in schema is invalid: {}", render(&error))))?;
        let mut set = check_policy_text(&schema, "builtin", BUILTIN_POLICIES)?;
        for (name, text) in custom {
            let parsed = check_policy_text(&schema, name, text)?;
            for (index, policy) in parsed.policies().enumerate() {
                let renamed = policy.new_id(PolicyId::new(format!("custom.{name}.{index}")));
                set.add(renamed).map_err(|error| PolicyRejected(format!("policy {name:?}: {error}")))?;
            }
        }
        Ok(Policies { set, authorizer: Authorizer::new() })
    }

    /// The Cedar decision: true when some policy permits and none forbids.
    pub fn is_allowed(
        &self,
        principal: &Principal,
        action: &str,
        resource: &Resource,
        tags: &BTreeMap<String, String>,
    ) -> bool {
        let Some(decision) = self.decide(principal, action, resource, tags) else {
            return false;
        };
        decision == Decision::Allow
    }

    fn decide(
        &self,
        principal: &Principal,
        action: &str,
        resource: &Resource,
        tags: &BTreeMap<String, String>,
    ) -> Option<Decision> {
        let principal_uid = uid("User", &principal.id)?;
        let action_uid = uid("Action", action)?;
        let group_uid = uid("Action", action_group(action))?;
        let (kind, id) = resource.entity();
        let resource_uid = uid(kind, id)?;
        let mut entities = Vec::with_capacity(principal.roles.len() + 4);
        let roles: HashSet<EntityUid> = principal.roles.iter().filter_map(|role| uid("Role", role)).collect();
        for role in &roles {
            entities.push(Entity::new_no_attrs(role.clone(), HashSet::new()));
        }
        let name = RestrictedExpression::new_string(principal.name.clone());
        entities.push(Entity::new(principal_uid.clone(), [("name".to_string(), name)].into(), roles).ok()?);
        entities.push(Entity::new_no_attrs(group_uid.clone(), HashSet::new()));
        entities.push(Entity::new_no_attrs(action_uid.clone(), HashSet::from([group_uid])));
        let resource_entity = match resource {
            Resource::Model(name) | Resource::EndpointConfig(name) | Resource::Endpoint(name) => Entity::new_with_tags(
                resource_uid.clone(),
                [("name".to_string(), RestrictedExpression::new_string(name.clone()))],
                [],
                tags.iter().map(|(key, value)| (key.clone(), RestrictedExpression::new_string(value.clone()))),
            )
            .ok()?,
            _ => Entity::new_no_attrs(resource_uid.clone(), HashSet::new()),
        };
        entities.push(resource_entity);
        let entities = Entities::from_entities(entities, None).ok()?;
        let request = Request::new(principal_uid, action_uid, resource_uid, Context::empty(), None).ok()?;
        Some(self.authorizer.is_authorized(&request, &self.set, &entities).decision())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::from_cedarschema_str(SCHEMA).expect("the schema parses").0
    }

    fn principal(roles: &[&str]) -> Principal {
        Principal {
            id: "u-1".into(),
            name: "someone".into(),
            roles: roles.iter().map(|role| role.to_string()).collect(),
        }
    }

    #[test]
    fn schema_groups_agree_with_the_verb_rule() {
        Policies::new(&[]).expect("built-ins validate");
        let actions = schema().action_entities().expect("action entities");
        for entity in actions.iter() {
            let id = entity.uid().id().unescaped().to_string();
            let groups = ["ReadControlPlane", "WriteControlPlane", "Invoke", "Iam", "Audit", "Metrics"];
            if groups.contains(&id.as_str()) {
                continue;
            }
            let group = uid("Action", action_group(&id)).expect("a uid");
            assert!(actions.is_ancestor_of(&group, &entity.uid()), "{id} is not in {}", action_group(&id));
        }
    }

    #[test]
    fn default_deny_and_tag_policies() {
        let tags: BTreeMap<String, String> = [("team".to_string(), "cards".to_string())].into();
        let custom = "permit (principal in Role::\"cards-app\", action == Action::\"sagemaker:InvokeEndpoint\", \
                      resource is Endpoint) when { resource.hasTag(\"team\") && resource.getTag(\"team\") == \"cards\" };";
        let policies = Policies::new(&[("cards".to_string(), custom.to_string())]).expect("validates");
        let endpoint = Resource::Endpoint("credit".into());
        assert!(!policies.is_allowed(&principal(&[]), "sagemaker:InvokeEndpoint", &endpoint, &tags));
        assert!(policies.is_allowed(&principal(&["cards-app"]), "sagemaker:InvokeEndpoint", &endpoint, &tags));
        assert!(!policies.is_allowed(
            &principal(&["cards-app"]),
            "sagemaker:InvokeEndpoint",
            &endpoint,
            &BTreeMap::new()
        ));
        assert!(!policies.is_allowed(&principal(&["cards-app"]), "sagemaker:DeleteEndpoint", &endpoint, &tags));
        assert!(policies.is_allowed(&principal(&["invoker"]), "sagemaker:InvokeEndpointAsync", &endpoint, &tags));
        assert!(policies.is_allowed(&principal(&["admin"]), "anything:AtAll", &Resource::Account, &tags));
    }

    #[test]
    fn invalid_policies_are_refused_with_cedars_message() {
        let schema = schema();
        let unknown_action = "permit (principal, action == Action::\"sagemaker:Fly\", resource);";
        let message = check_policy_text(&schema, "p", unknown_action).expect_err("refused").0;
        assert!(message.contains("sagemaker:Fly"), "{message}");
        let syntax = check_policy_text(&schema, "p", "permit (principal, action, resource").expect_err("refused").0;
        assert!(syntax.contains("does not parse"), "{syntax}");
        let bad_attribute = "permit (principal, action == Action::\"sagemaker:InvokeEndpoint\", resource) when { resource.owner == \"x\" };";
        let message = check_policy_text(&schema, "p", bad_attribute).expect_err("refused").0;
        assert!(message.contains("owner"), "{message}");
    }
}
