//! AWS Signature Version 4 verification, computed exactly as botocore signs (the canonical request
//! of `botocore.auth.SigV4Auth`): any region, the service name `sagemaker`, 15 minutes of skew.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The only algorithm botocore uses for SigV4 header signing.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service name in the credential scope.
pub const SERVICE: &str = "sagemaker";
/// The literal payload hash of a request whose body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// How far a signature's date may be from the server's clock, in seconds.
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// Why a signed request is refused; each maps to a stable error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigV4Error {
    /// The Authorization header (or a header it names) is not what SigV4 writes.
    Malformed(String),
    /// The date is outside the allowed skew.
    Expired(String),
    /// The signature does not match (wrong secret, altered request).
    Mismatch(String),
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Whether an Authorization header claims SigV4.
pub fn is_sigv4(authorization: &str) -> bool {
    authorization.trim_start().starts_with(ALGORITHM)
}

/// Parses `AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/sagemaker/aws4_request,
/// SignedHeaders=host;x-amz-date, Signature=<64 hex>`.
pub fn parse_authorization(header: &str) -> Result<ParsedAuthorization, SigV4Error> {
    let malformed = |what: &str| SigV4Error::Malformed(format!("the Authorization header is malformed: {what}"));
    let rest =
        header.trim().strip_prefix(ALGORITHM).ok_or_else(|| malformed("it does not start with AWS4-HMAC-SHA256"))?;
    if !rest.starts_with(' ') {
        return Err(malformed("a space must follow AWS4-HMAC-SHA256"));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        let Some((name, value)) = part.split_once('=') else {
            return Err(malformed(&format!("{part:?} is not NAME=VALUE")));
        };
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => return Err(malformed(&format!("unknown component {other:?}"))),
        };
        if slot.replace(value.to_string()).is_some() {
            return Err(malformed(&format!("{name} appears twice")));
        }
    }
    let credential = credential.ok_or_else(|| malformed("Credential is missing"))?;
    let signed_headers = signed_headers.ok_or_else(|| malformed("SignedHeaders is missing"))?;
    let signature = signature.ok_or_else(|| malformed("Signature is missing"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = scope.as_slice() else {
        return Err(malformed("Credential must be KEY/DATE/REGION/SERVICE/aws4_request"));
    };
    if *terminator != "aws4_request" {
        return Err(malformed("the credential scope must end with aws4_request"));
    }
    if date.len() != 8 || !date.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(malformed(&format!("the credential date {date:?} is not YYYYMMDD")));
    }
    if *service != SERVICE {
        return Err(malformed(&format!(
            "the credential scope names service {service:?}; riskserve signs as {SERVICE:?}"
        )));
    }
    if access_key_id.is_empty() || region.is_empty() {
        return Err(malformed("the access key id and the region must not be empty"));
    }
    if signature.len() != 64 || !signature.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(malformed("Signature must be 64 hexadecimal digits"));
    }
    let signed_headers: Vec<String> = signed_headers.split(';').map(str::to_string).collect();
    if signed_headers.iter().any(|name| name.is_empty() || name.bytes().any(|byte| byte.is_ascii_uppercase())) {
        return Err(malformed("SignedHeaders must be lowercase names separated by ';'"));
    }
    if !signed_headers.iter().any(|name| name == "host") {
        return Err(malformed("SignedHeaders must include host"));
    }
    Ok(ParsedAuthorization {
        access_key_id: access_key_id.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
    })
}

/// Seconds since the Unix epoch of an ISO 8601 basic time `YYYYMMDDTHHMMSSZ` (X-Amz-Date).
pub fn parse_amz_date(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 16 || bytes.get(8) != Some(&b'T') || bytes.get(15) != Some(&b'Z') {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if part.bytes().all(|byte| byte.is_ascii_digit()) { part.parse().ok() } else { None }
    };
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Howard Hinnant's civil-to-days algorithm.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_shifted = (month + 9) % 12;
    let day_of_year = (153 * month_shifted + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Percent-encodes as Python's `urllib.parse.quote(text, safe=safe_extra)` does: unreserved characters and
/// `safe_extra` stay, every other byte becomes `%XX`.
fn quote(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        let keep =
            byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') || (keep_slash && byte == b'/');
        if keep {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// botocore's `normalize_url_path`: dot segments removed, a trailing slash kept.
fn normalize_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    let mut output: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                output.pop();
            }
            other => output.push(other),
        }
    }
    let mut normalized = format!("/{}", output.join("/"));
    if path.ends_with('/') && normalized != "/" {
        normalized.push('/');
    }
    normalized
}

/// The canonical query of botocore for a URL's query: pairs split on `&` and `=`, sorted, joined as sent.
fn canonical_query(query: Option<&str>) -> String {
    let Some(query) = query.filter(|query| !query.is_empty()) else {
        return String::new();
    };
    let mut pairs: Vec<(&str, &str)> =
        query.split('&').map(|pair| pair.split_once('=').unwrap_or((pair, ""))).collect();
    pairs.sort_unstable();
    pairs.iter().map(|(key, value)| format!("{key}={value}")).collect::<Vec<_>>().join("&")
}

/// What a request brings to a verification.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path as it arrived (percent-encoded as sent).
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// Every header, names lowercase, in arrival order (a name may repeat).
    pub headers: &'a [(String, String)],
    /// Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD` when the client said so.
    pub payload_hash: &'a str,
}

/// The canonical request of botocore's `SigV4Auth.canonical_request`.
pub fn canonical_request(request: &SignedRequest<'_>, signed_headers: &[String]) -> Result<String, SigV4Error> {
    let mut canonical = String::with_capacity(256);
    canonical.push_str(&request.method.to_ascii_uppercase());
    canonical.push('\n');
    canonical.push_str(&quote(&normalize_path(request.path), true));
    canonical.push('\n');
    canonical.push_str(&canonical_query(request.query));
    canonical.push('\n');
    for name in signed_headers {
        let values: Vec<String> = request
            .headers
            .iter()
            .filter(|(header, _)| header == name)
            .map(|(_, value)| value.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if values.is_empty() {
            return Err(SigV4Error::Malformed(format!("the signed header {name:?} is not in the request")));
        }
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(&values.join(","));
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&signed_headers.join(";"));
    canonical.push('\n');
    canonical.push_str(request.payload_hash);
    Ok(canonical)
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of every length; an empty answer (never seen) would only fail the comparison.
    let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(key) else { return Vec::new() };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The signing key: HMAC chain over date, region, service and `aws4_request`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let date_key = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let region_key = hmac(&date_key, region.as_bytes());
    let service_key = hmac(&region_key, service.as_bytes());
    hmac(&service_key, b"aws4_request")
}

/// Verifies a parsed SigV4 request with the caller's secret; `now` is the server's clock in epoch seconds.
pub fn verify(
    request: &SignedRequest<'_>,
    authorization: &ParsedAuthorization,
    secret: &str,
    now: i64,
) -> Result<(), SigV4Error> {
    verify_with(request, authorization, now, |date, region, service| signing_key(secret, date, region, service))
}

/// `verify` with the signing key from `key_for(date, region, service)` (a cache of derived keys).
pub fn verify_with(
    request: &SignedRequest<'_>,
    authorization: &ParsedAuthorization,
    now: i64,
    key_for: impl FnOnce(&str, &str, &str) -> Vec<u8>,
) -> Result<(), SigV4Error> {
    let amz_date = request
        .headers
        .iter()
        .find(|(name, _)| name == "x-amz-date")
        .map(|(_, value)| value.trim().to_string())
        .ok_or_else(|| SigV4Error::Malformed("the X-Amz-Date header is missing".to_string()))?;
    let signed_at = parse_amz_date(&amz_date)
        .ok_or_else(|| SigV4Error::Malformed(format!("X-Amz-Date {amz_date:?} is not YYYYMMDDTHHMMSSZ")))?;
    if !amz_date.starts_with(&authorization.date) {
        return Err(SigV4Error::Malformed(format!(
            "the credential date {} is not the date of X-Amz-Date {amz_date}",
            authorization.date
        )));
    }
    if (now - signed_at).abs() > MAX_SKEW_SECONDS {
        let direction = if signed_at < now { "expired" } else { "in the future" };
        return Err(SigV4Error::Expired(format!(
            "the signature is {direction}: X-Amz-Date {amz_date} is more than 15 minutes from the server's clock"
        )));
    }
    let canonical = canonical_request(request, &authorization.signed_headers)?;
    let scope = format!("{}/{}/{}/aws4_request", authorization.date, authorization.region, authorization.service);
    let string_to_sign =
        format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
    let key = key_for(&authorization.date, &authorization.region, &authorization.service);
    let expected = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    if bool::from(expected.as_bytes().ct_eq(authorization.signature.as_bytes())) {
        Ok(())
    } else {
        Err(SigV4Error::Mismatch(
            "the request signature does not match: check the secret access key and that nothing changed the request"
                .to_string(),
        ))
    }
}

/// Headers botocore never signs.
const UNSIGNED_HEADERS: [&str; 14] = [
    "baggage",
    "connection",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "traceparent",
    "tracestate",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "x-amzn-trace-id",
];

/// `YYYYMMDDTHHMMSSZ` of an epoch second (X-Amz-Date).
pub fn amz_date(epoch_seconds: i64) -> String {
    let days = epoch_seconds.div_euclid(86_400);
    let second_of_day = epoch_seconds.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Signs a request as botocore does: every header but the ones botocore leaves out (the request's headers must
/// hold `host` and `x-amz-date`); the value of its `Authorization` header. For clients and tests.
pub fn sign(
    request: &SignedRequest<'_>,
    access_key_id: &str,
    secret: &str,
    region: &str,
) -> Result<String, SigV4Error> {
    let amz_date = request
        .headers
        .iter()
        .find(|(name, _)| name == "x-amz-date")
        .map(|(_, value)| value.clone())
        .ok_or_else(|| SigV4Error::Malformed("the X-Amz-Date header is missing".to_string()))?;
    let date =
        amz_date.get(..8).ok_or_else(|| SigV4Error::Malformed(format!("X-Amz-Date {amz_date:?} is too short")))?;
    let mut signed_headers: Vec<String> = request
        .headers
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .filter(|name| {
            !UNSIGNED_HEADERS.contains(&name.as_str()) && name != "authorization" && name != "content-length"
        })
        .collect();
    signed_headers.sort_unstable();
    signed_headers.dedup();
    let canonical = canonical_request(request, &signed_headers)?;
    let scope = format!("{date}/{region}/{SERVICE}/aws4_request");
    let string_to_sign =
        format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
    let signature = hex::encode(hmac(&signing_key(secret, date, region, SERVICE), string_to_sign.as_bytes()));
    Ok(format!(
        "{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={}, Signature={signature}",
        signed_headers.join(";")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests signed by botocore itself (`scripts/sigv4_vectors.sh`): each must get its recorded outcome.
    #[test]
    fn botocore_vectors_verify_as_recorded() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/sigv4/vectors.json");
        let document: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("the vectors exist")).expect("JSON");
        let cases = document["cases"].as_array().expect("cases");
        assert!(cases.len() >= 15);
        for case in cases {
            let name = case["name"].as_str().expect("a name");
            let headers: Vec<(String, String)> = case["headers"]
                .as_array()
                .expect("headers")
                .iter()
                .map(|pair| (pair[0].as_str().expect("name").to_string(), pair[1].as_str().expect("value").to_string()))
                .collect();
            let body = hex::decode(case["body_hex"].as_str().expect("a body")).expect("hex");
            let declared =
                headers.iter().find(|(name, _)| name == "x-amz-content-sha256").map(|(_, value)| value.clone());
            let payload_hash = declared.unwrap_or_else(|| hex::encode(Sha256::digest(&body)));
            let authorization = headers.iter().find(|(name, _)| name == "authorization").expect("signed").1.clone();
            let request = SignedRequest {
                method: case["method"].as_str().expect("method"),
                path: case["path"].as_str().expect("path"),
                query: case["query"].as_str(),
                headers: &headers,
                payload_hash: &payload_hash,
            };
            let outcome = parse_authorization(&authorization).and_then(|parsed| {
                assert_eq!(parsed.access_key_id, case["access_key_id"].as_str().expect("key"), "{name}");
                verify(&request, &parsed, case["secret"].as_str().expect("secret"), case["now"].as_i64().expect("now"))
            });
            let found = match &outcome {
                Ok(()) => "ok",
                Err(SigV4Error::Mismatch(_)) => "mismatch",
                Err(SigV4Error::Expired(_)) => "expired",
                Err(SigV4Error::Malformed(_)) => "malformed",
            };
            assert_eq!(found, case["expect"].as_str().expect("expect"), "{name}: {outcome:?}");
            // Where botocore signed with the server's secret at this moment, `sign` writes its very header.
            let unsigned =
                case["headers"].as_array().expect("headers").iter().all(|pair| pair[0] != "x-amz-content-sha256");
            if found == "ok" && case["now"] == document["cases"][0]["now"] && unsigned {
                let region = authorization.split('/').nth(2).expect("a region");
                let written = sign(
                    &request,
                    case["access_key_id"].as_str().expect("key"),
                    case["secret"].as_str().expect("secret"),
                    region,
                );
                assert_eq!(written.as_ref(), Ok(&authorization), "{name}");
            }
        }
    }

    #[test]
    fn signing_and_verifying_agree_and_dates_round_trip() {
        for seconds in [0, 1_440_938_160, 1_773_500_966, 4_102_444_799] {
            assert_eq!(parse_amz_date(&amz_date(seconds)), Some(seconds));
        }
        let headers = vec![
            ("host".to_string(), "localhost".to_string()),
            ("x-amz-date".to_string(), amz_date(1_773_500_966)),
            ("user-agent".to_string(), "test".to_string()),
        ];
        let hash = hex::encode(Sha256::digest(b""));
        let request =
            SignedRequest { method: "GET", path: "/ping", query: None, headers: &headers, payload_hash: &hash };
        let header = sign(&request, "AKIDEXAMPLE", "secret", "eu-west-1").expect("signed");
        assert!(header.contains("SignedHeaders=host;x-amz-date,"), "{header}");
        let parsed = parse_authorization(&header).expect("parses");
        assert_eq!(verify(&request, &parsed, "secret", 1_773_500_966), Ok(()));
    }

    #[test]
    fn dates_parse_to_epoch_seconds() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(parse_amz_date("2015-08-30T12:36:00Z"), None);
        assert_eq!(parse_amz_date("20151330T123600Z"), None);
        assert_eq!(parse_amz_date("2015083OT123600Z"), None);
    }

    #[test]
    fn paths_normalize_and_quote_as_botocore() {
        assert_eq!(quote(&normalize_path("/a/./b/../c//d/"), true), "/a/c/d/");
        assert_eq!(quote(&normalize_path("/endpoints/x%20y/invocations"), true), "/endpoints/x%2520y/invocations");
        assert_eq!(canonical_query(Some("b=2&a=1&a=0")), "a=0&a=1&b=2");
    }

    #[test]
    fn malformed_headers_name_the_problem() {
        for (header, needle) in [
            ("AWS4-HMAC-SHA256", "a space must follow"),
            ("AWS4-HMAC-SHA256 SignedHeaders=host", "Credential is missing"),
            ("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00", "aws4_request"),
            ("AWS4-HMAC-SHA256 Credential=K/20240101/r/s3/aws4_request, SignedHeaders=host, Signature=00", "service"),
            (
                "AWS4-HMAC-SHA256 Credential=K/20240101/r/sagemaker/aws4_request, SignedHeaders=host, Signature=zz",
                "hexadecimal",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=K/20240101/r/sagemaker/aws4_request, SignedHeaders=x-amz-date, Signature=",
                "hexadecimal",
            ),
            ("AWS4-HMAC-SHA256 Nonsense", "NAME=VALUE"),
        ] {
            match parse_authorization(header) {
                Err(SigV4Error::Malformed(message)) => assert!(message.contains(needle), "{header}: {message}"),
                other => panic!("{header}: {other:?}"),
            }
        }
    }
}
