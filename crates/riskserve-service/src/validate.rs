//! Checks on names, tags and variants that every façade shares.

use std::collections::{BTreeMap, HashSet};

use crate::error::ServiceError;
use crate::resources::Variant;

/// SageMaker's limit on resource names.
const MAX_NAME_LENGTH: usize = 63;
const MAX_TAGS: usize = 50;
const MAX_TAG_KEY_LENGTH: usize = 128;
const MAX_TAG_VALUE_LENGTH: usize = 256;
const MAX_DESCRIPTION_LENGTH: usize = 1024;
/// SageMaker's limit on production variants per config.
const MAX_VARIANTS: usize = 10;

/// A name must match `^[a-zA-Z0-9](-*[a-zA-Z0-9])*$` and hold at most 63 characters.
pub fn name(kind: &str, name: &str) -> Result<(), ServiceError> {
    if name.is_empty() {
        return Err(ServiceError::validation(format!("the {kind} name is empty")));
    }
    if name.chars().count() > MAX_NAME_LENGTH {
        return Err(ServiceError::validation(format!(
            "the {kind} name {:?}… has {} characters, more than {MAX_NAME_LENGTH}",
            name.chars().take(20).collect::<String>(),
            name.chars().count()
        )));
    }
    if let Some((position, character)) =
        name.char_indices().find(|(_, character)| !(character.is_ascii_alphanumeric() || *character == '-'))
    {
        return Err(ServiceError::validation(format!(
            "the {kind} name {name:?} holds {character:?} at byte {position}; names use letters, digits and hyphens"
        )));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(ServiceError::validation(format!(
            "the {kind} name {name:?} starts or ends with a hyphen; names match ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"
        )));
    }
    Ok(())
}

pub fn tags(tags: &BTreeMap<String, String>) -> Result<(), ServiceError> {
    if tags.len() > MAX_TAGS {
        return Err(ServiceError::validation(format!("{} tags given, at most {MAX_TAGS} allowed", tags.len())));
    }
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > MAX_TAG_KEY_LENGTH {
            return Err(ServiceError::validation(format!(
                "tag key {key:?} must hold 1 to {MAX_TAG_KEY_LENGTH} characters"
            )));
        }
        if value.chars().count() > MAX_TAG_VALUE_LENGTH {
            return Err(ServiceError::validation(format!(
                "the value of tag {key:?} holds more than {MAX_TAG_VALUE_LENGTH} characters"
            )));
        }
    }
    Ok(())
}

pub fn data_capture(capture: &crate::resources::DataCapture) -> Result<(), ServiceError> {
    if capture.sampling_percentage > 100 {
        return Err(ServiceError::validation(format!(
            "data_capture.sampling_percentage must be 0 to 100, got {}",
            capture.sampling_percentage
        )));
    }
    if !capture.capture_input && !capture.capture_output {
        return Err(ServiceError::validation("data_capture must capture the input, the output or both"));
    }
    if let Some(reason) = riskserve_store::invalid_object_key(&capture.destination) {
        return Err(ServiceError::validation(format!("data_capture.destination: {reason}")));
    }
    Ok(())
}

/// SageMaker's `InferenceId`: 1 to 64 printable characters, the first not a space.
pub fn inference_id(id: &str) -> Result<(), ServiceError> {
    let printable = id.chars().all(|character| !character.is_control());
    if id.is_empty() || id.chars().count() > 64 || !printable || id.starts_with(char::is_whitespace) {
        return Err(ServiceError::validation(
            "the inference id must hold 1 to 64 printable characters and not start with a space",
        ));
    }
    Ok(())
}

pub fn description(description: Option<&str>) -> Result<(), ServiceError> {
    match description {
        Some(text) if text.chars().count() > MAX_DESCRIPTION_LENGTH => Err(ServiceError::validation(format!(
            "the description holds more than {MAX_DESCRIPTION_LENGTH} characters"
        ))),
        _ => Ok(()),
    }
}

/// Variant names unique and valid, model names valid, weights finite and not negative with a
/// positive sum, instance counts between 1 and `max_instances`.
pub fn variants(variants: &[Variant], max_instances: u32) -> Result<(), ServiceError> {
    if variants.is_empty() {
        return Err(ServiceError::validation("an endpoint config needs at least one variant"));
    }
    if variants.len() > MAX_VARIANTS {
        return Err(ServiceError::validation(format!(
            "{} variants given, at most {MAX_VARIANTS} allowed",
            variants.len()
        )));
    }
    let mut seen = HashSet::new();
    for (index, variant) in variants.iter().enumerate() {
        name("variant", &variant.name)?;
        name("model", &variant.model)?;
        if !seen.insert(variant.name.as_str()) {
            return Err(ServiceError::validation(format!("variant name {:?} appears twice", variant.name)));
        }
        if !variant.weight.is_finite() || variant.weight < 0.0 {
            return Err(ServiceError::validation(format!(
                "variant {index} ({:?}): the weight must be a finite number not below 0, got {}",
                variant.name, variant.weight
            )));
        }
        if variant.instances == 0 || variant.instances > max_instances {
            return Err(ServiceError::validation(format!(
                "variant {index} ({:?}): instances must be between 1 and {max_instances}, got {}",
                variant.name, variant.instances
            )));
        }
    }
    if variants.iter().map(|variant| variant.weight).sum::<f64>() <= 0.0 {
        return Err(ServiceError::validation("the variants' weights sum to 0; at least one must be positive"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_follow_sagemaker() {
        for good in ["a", "A-1", "model--2", &"x".repeat(63)] {
            assert!(super::name("model", good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "a-", "a_b", "a.b", "ä", &"x".repeat(64), "a b"] {
            assert!(super::name("model", bad).is_err(), "{bad}");
        }
    }
}
