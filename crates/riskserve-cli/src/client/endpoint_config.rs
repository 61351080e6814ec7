//! `riskserve endpoint-config create|list|describe|delete`: production variants (model, weight, instances).

use serde_json::{Value, json};

use super::http::segment;
use super::table::{self, cell, show};
use super::{Connection, Output, list_all, parse_tags, print_json, print_list};

#[derive(Debug, clap::Args)]
pub struct EndpointConfigArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: EndpointConfigCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum EndpointConfigCommand {
    /// Describe how an endpoint is served: one or more production variants.
    Create(CreateArgs),
    /// List the endpoint configs.
    List,
    /// Show one endpoint config and its variants.
    Describe {
        /// The endpoint config's name.
        name: String,
    },
    /// Delete an endpoint config that no endpoint uses.
    Delete {
        /// The endpoint config's name.
        name: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The endpoint config's name: letters, digits and hyphens, at most 63 characters.
    #[arg(long)]
    pub name: String,
    /// A production variant (repeatable): `name=V,model=M[,weight=W][,instances=N]`.
    #[arg(long, value_name = "name=V,model=M[,weight=W][,instances=N]", required = true, value_parser = parse_variant)]
    pub variant: Vec<Variant>,
    /// A tag (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub tag: Vec<String>,
}

/// One `--variant`: the members the server defaults (weight, instances) stay absent when not given.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub name: String,
    pub model: String,
    pub weight: Option<f64>,
    pub instances: Option<u32>,
}

impl Variant {
    fn to_json(&self) -> Value {
        let mut variant = json!({"name": self.name, "model": self.model});
        if let Some(weight) = self.weight {
            variant["weight"] = json!(weight);
        }
        if let Some(instances) = self.instances {
            variant["instances"] = json!(instances);
        }
        variant
    }
}

/// Parses `name=V,model=M[,weight=W][,instances=N]`; unknown or repeated keys are errors.
pub fn parse_variant(text: &str) -> Result<Variant, String> {
    let (mut name, mut model, mut weight, mut instances) = (None, None, None, None);
    for part in text.split(',') {
        let Some((key, value)) = part.split_once('=') else {
            return Err(format!("`{part}` must be KEY=VALUE (keys: name, model, weight, instances)"));
        };
        let repeated = match key.trim() {
            "name" => name.replace(value.to_string()).is_some(),
            "model" => model.replace(value.to_string()).is_some(),
            "weight" => {
                let parsed: f64 = value.parse().map_err(|_| format!("weight `{value}` is not a number"))?;
                if !(parsed.is_finite() && parsed >= 0.0) {
                    return Err(format!("weight `{value}` must be a finite number at least 0"));
                }
                weight.replace(parsed).is_some()
            }
            "instances" => {
                let parsed: u32 =
                    value.parse().map_err(|_| format!("instances `{value}` is not a whole number at least 0"))?;
                instances.replace(parsed).is_some()
            }
            other => return Err(format!("unknown key `{other}` (keys: name, model, weight, instances)")),
        };
        if repeated {
            return Err(format!("`{}` is given twice", key.trim()));
        }
    }
    let name = name.ok_or("the variant has no `name=`")?;
    let model = model.ok_or("the variant has no `model=`")?;
    Ok(Variant { name, model, weight, instances })
}

pub fn run(args: EndpointConfigArgs) -> anyhow::Result<()> {
    let client = args.connection.client()?;
    let output = args.connection.output;
    match args.command {
        EndpointConfigCommand::Create(create) => {
            let mut body = json!({
                "name": create.name,
                "variants": create.variant.iter().map(Variant::to_json).collect::<Vec<_>>(),
            });
            if !create.tag.is_empty() {
                body["tags"] = parse_tags(&create.tag)?;
            }
            let config = client.post_json("/api/v1/endpoint-configs", &body)?;
            print_config(output, &config);
        }
        EndpointConfigCommand::List => {
            let configs = list_all(&client, "/api/v1/endpoint-configs")?;
            print_list(
                output,
                &configs,
                &[
                    ("NAME", &|config| cell(config, "name")),
                    ("VARIANTS", &|config| variant_summary(config)),
                    ("CREATED", &|config| cell(config, "created_at")),
                ],
            );
        }
        EndpointConfigCommand::Describe { name } => {
            let config = client.get_json(&format!("/api/v1/endpoint-configs/{}", segment(&name)))?;
            print_config(output, &config);
        }
        EndpointConfigCommand::Delete { name } => {
            client.delete(&format!("/api/v1/endpoint-configs/{}", segment(&name)))?;
            if output == Output::Json {
                print_json(&json!({"name": name, "deleted": true}));
            } else {
                eprintln!("endpoint config `{name}` deleted");
            }
        }
    }
    Ok(())
}

/// `a → model-a (weight 1), b → model-b (weight 3)`: what an endpoint config routes where.
fn variant_summary(config: &Value) -> String {
    let variants = config.get("variants").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let parts: Vec<String> = variants
        .iter()
        .map(|variant| format!("{}→{} ×{}", cell(variant, "name"), cell(variant, "model"), cell(variant, "weight")))
        .collect();
    if parts.is_empty() { "-".to_string() } else { parts.join(", ") }
}

/// The variants of a config or endpoint as a table.
pub fn variants_table(value: &Value) -> String {
    let variants = value.get("variants").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let rows: Vec<Vec<String>> = variants
        .iter()
        .map(|variant| {
            vec![cell(variant, "name"), cell(variant, "model"), show(&variant["weight"]), show(&variant["instances"])]
        })
        .collect();
    table::render(&["VARIANT", "MODEL", "WEIGHT", "INSTANCES"], &rows)
}

fn print_config(output: Output, config: &Value) {
    if output == Output::Json {
        print_json(config);
        return;
    }
    print!(
        "{}",
        table::render_pairs(&[
            ("name", cell(config, "name")),
            ("tags", cell(config, "tags")),
            ("created", cell(config, "created_at")),
        ])
    );
    println!();
    print!("{}", variants_table(config));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_parse_with_and_without_defaults() {
        assert_eq!(
            parse_variant("name=a,model=m").unwrap(),
            Variant { name: "a".into(), model: "m".into(), weight: None, instances: None }
        );
        assert_eq!(
            parse_variant("model=m,name=a,weight=0.25,instances=3").unwrap(),
            Variant { name: "a".into(), model: "m".into(), weight: Some(0.25), instances: Some(3) }
        );
        assert_eq!(
            parse_variant("name=a,model=m,weight=2").unwrap().to_json(),
            json!({"name": "a", "model": "m", "weight": 2.0})
        );
    }

    #[test]
    fn bad_variants_are_named() {
        let cases = [
            ("model=m", "the variant has no `name=`"),
            ("name=a", "the variant has no `model=`"),
            ("name=a,model=m,colour=red", "unknown key `colour` (keys: name, model, weight, instances)"),
            ("name=a,model=m,weight=x", "weight `x` is not a number"),
            ("name=a,model=m,weight=-1", "weight `-1` must be a finite number at least 0"),
            ("name=a,model=m,weight=inf", "weight `inf` must be a finite number at least 0"),
            ("name=a,model=m,instances=1.5", "instances `1.5` is not a whole number at least 0"),
            ("name=a,name=b,model=m", "`name` is given twice"),
            ("name=a,model", "`model` must be KEY=VALUE (keys: name, model, weight, instances)"),
        ];
        for (text, message) in cases {
            assert_eq!(parse_variant(text).unwrap_err(), message, "{text}");
        }
    }

    #[test]
    fn variant_tables_show_every_member() {
        let config = json!({"variants": [{"name": "a", "model": "m", "weight": 1.0, "instances": 2}]});
        assert_eq!(variants_table(&config), "VARIANT  MODEL  WEIGHT  INSTANCES\na        m      1.0     2\n");
        assert_eq!(variant_summary(&config), "a→m ×1.0");
    }
}
