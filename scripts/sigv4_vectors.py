"""SigV4 test vectors from botocore: each case is a request as it goes on the wire (method, path, query, headers,
body) after `botocore.auth.SigV4Auth` signed it at a fixed time, the secret the server holds, the server's clock at
verification, and the outcome riskserve must give (ok, mismatch, expired, malformed)."""

import datetime
import json
import sys
from unittest import mock
from urllib.parse import urlsplit

import botocore
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
OTHER_SECRET = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
SIGNED_AT = datetime.datetime(2026, 3, 14, 15, 9, 26, tzinfo=datetime.timezone.utc)
EPOCH = int(SIGNED_AT.timestamp())


def sign(method, url, headers, body, region, secret=SECRET, unsigned_payload=False):
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    if unsigned_payload:
        request.context["payload_signing_enabled"] = False
    signer = botocore.auth.SigV4Auth(Credentials(ACCESS_KEY_ID, secret), "sagemaker", region)
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda *args, **kwargs: SIGNED_AT.replace(tzinfo=None)):
        signer.add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    wire = [[name.lower(), value if isinstance(value, str) else value.decode()] for name, value in prepared.headers.items()]
    if not any(name == "host" for name, _ in wire):
        wire.insert(0, ["host", botocore.auth._host_from_url(prepared.url)])
    payload = prepared.body or b""
    if isinstance(payload, str):
        payload = payload.encode()
    if not any(name == "content-length" for name, _ in wire):
        wire.append(["content-length", str(len(payload))])
    return {
        "method": prepared.method,
        "path": parts.path or "/",
        "query": parts.query or None,
        "headers": wire,
        "body_hex": payload.hex(),
    }


def case(name, signed, expect, now=EPOCH, secret=SECRET):
    return dict(name=name, access_key_id=ACCESS_KEY_ID, secret=secret, now=now, expect=expect, **signed)


def main(out_path):
    csv_invoke = (
        "POST",
        "http://127.0.0.1:8080/endpoints/credit/invocations",
        {"Content-Type": "text/csv", "X-Amzn-SageMaker-Target-Variant": "main", "Accept": "text/csv"},
        b"2,18,3,7,1113,0,2,4,,1\n",
        "us-east-1",
    )
    json_control = (
        "POST",
        "http://localhost:8080/",
        {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "SageMaker.CreateEndpoint"},
        json.dumps({"EndpointName": "credit", "EndpointConfigName": "credit-v1"}).encode(),
        "eu-west-1",
    )
    listing = ("GET", "http://127.0.0.1:8080/api/v1/endpoints?next_token=abc&max_results=10", {}, b"", "ap-southeast-2")
    dotted = ("GET", "http://127.0.0.1:8080/api/v1/models/./credit", {"X-Custom": "  spaced    out  value "}, b"", "us-west-2")
    encoded = ("DELETE", "http://127.0.0.1:9000/api/v1/models/a%20b", {}, b"", "us-east-1")
    cases = []
    for name, request in [("csv invocation", csv_invoke), ("JSON 1.1 control plane", json_control),
                          ("list with a query", listing), ("path with a dot segment and a spaced header", dotted),
                          ("percent-encoded path", encoded)]:
        cases.append(case(name, sign(*request), "ok"))
    cases.append(case("unsigned payload over https",
                      sign("POST", "https://riskserve.example:8443/endpoints/credit/invocations",
                           {"Content-Type": "text/csv"}, b"1,2,3\n", "us-east-1", unsigned_payload=True), "ok"))
    cases.append(case("wrong secret", sign(*csv_invoke, secret=OTHER_SECRET), "mismatch"))
    altered_body = sign(*csv_invoke)
    altered_body["body_hex"] = b"9,18,3,7,1113,0,2,4,,1\n".hex()
    cases.append(case("altered body", altered_body, "mismatch"))
    altered_header = sign(*csv_invoke)
    altered_header["headers"] = [[n, "other" if n == "x-amzn-sagemaker-target-variant" else v] for n, v in altered_header["headers"]]
    cases.append(case("altered signed header", altered_header, "mismatch"))
    altered_query = sign(*listing)
    altered_query["query"] = "next_token=abc&max_results=100"
    cases.append(case("altered query", altered_query, "mismatch"))
    altered_path = sign(*csv_invoke)
    altered_path["path"] = "/endpoints/other/invocations"
    cases.append(case("altered path", altered_path, "mismatch"))
    cases.append(case("expired: 16 minutes later", sign(*csv_invoke), "expired", now=EPOCH + 16 * 60))
    cases.append(case("future: 16 minutes earlier", sign(*csv_invoke), "expired", now=EPOCH - 16 * 60))
    cases.append(case("within the skew: 14 minutes later", sign(*csv_invoke), "ok", now=EPOCH + 14 * 60))
    missing_date = sign(*csv_invoke)
    missing_date["headers"] = [[n, v] for n, v in missing_date["headers"] if n != "x-amz-date"]
    cases.append(case("signed header missing", missing_date, "malformed"))
    document = {"generator": f"botocore {botocore.__version__} SigV4Auth, service sagemaker", "cases": cases}
    with open(out_path, "w") as out:
        json.dump(document, out, indent=1)
        out.write("\n")
    print(f"wrote {len(cases)} cases to {out_path}")


if __name__ == "__main__":
    main(sys.argv[1])
