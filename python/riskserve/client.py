"""The client SDK over riskserve's native REST API (`/api/v1`, docs/server.md): deploy models and pipelines to
endpoints, invoke and explain them, update blue/green, change weights, read metrics, the audit trail and the cost."""

from __future__ import annotations

import hashlib
import json
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional

import numpy as np
import pandas as pd

from riskserve._html import status_badge, table_html
from riskserve.errors import InvalidState, NotFound, RiskserveError, ServerError, error_from_answer
from riskserve.local import Explanation, Model, load_model

_SETTLED = ("InService", "Failed")


@dataclass
class Variant:
    """A production variant: a model (a riskserve.Model, anything `load_model` takes, or the name of a model
    registered on the server) served by `instances` worker units with a share `weight` of the traffic."""

    model: Any
    name: str = "main"
    weight: float = 1.0
    instances: int = 1
    tags: Dict[str, str] = field(default_factory=dict)


class Session:
    """A connection to a riskserve server: `Session(url, token)`; the token is a bearer token (`riskserve iam token
    create`, or the administrator's `RISKSERVE_ADMIN_TOKEN`)."""

    def __init__(self, url: str, token: Optional[str] = None, *, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    # -- HTTP ------------------------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, body: Any = None, data: Optional[bytes] = None,
                 content_type: Optional[str] = None, query: Optional[Dict[str, Any]] = None,
                 headers: Optional[Dict[str, str]] = None):
        url = self.url + path
        if query:
            query = {k: v for k, v in query.items() if v is not None}
            if query:
                url += "?" + urllib.parse.urlencode(query)
        request_headers = {"accept": "application/json", **(headers or {})}
        if self.token:
            request_headers["authorization"] = f"Bearer {self.token}"
        if body is not None:
            data = json.dumps(body, allow_nan=False).encode()
            content_type = "application/json"
        if content_type:
            request_headers["content-type"] = content_type
        request = urllib.request.Request(url, data=data, method=method, headers=request_headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                payload = answer.read()
                kind = answer.headers.get("content-type", "")
                return json.loads(payload) if payload and "json" in kind else payload.decode()
        except urllib.error.HTTPError as error:
            raise _error_of(error) from None
        except urllib.error.URLError as error:
            raise ConnectionError(f"cannot reach riskserve at {self.url}: {error.reason}") from None

    def _pages(self, path: str, query: Optional[Dict[str, Any]] = None, limit: Optional[int] = None) -> List[dict]:
        items: List[dict] = []
        query = dict(query or {})
        while True:
            page = self._request("GET", path, query=query)
            items.extend(page.get("items", []))
            token = page.get("next_token")
            if not token or (limit is not None and len(items) >= limit):
                return items[:limit] if limit is not None else items
            query["next_token"] = token

    # -- resources -------------------------------------------------------------------------------------------------

    def upload(self, data: bytes) -> str:
        """Uploads an artifact (content-addressed, idempotent) and answers its digest `sha256:<hex>`."""
        return self._request("PUT", "/api/v1/artifacts", data=data, content_type="application/octet-stream")["digest"]

    def register(self, model, *, name: Optional[str] = None, tags: Optional[Dict[str, str]] = None,
                 description: Optional[str] = None) -> str:
        """Registers a model or pipeline (uploading its files) and answers the model's name on the server. The
        default name is the local model's name and a digest of its files, so registering the same files twice
        reuses the model."""
        model = model if isinstance(model, Model) else load_model(model)
        artifacts = [{"name": file_name, "digest": self.upload(data)} for file_name, data in model._files.items()]
        body: Dict[str, Any] = {"artifacts": artifacts, "tags": dict(tags or {})}
        digest = hashlib.sha256()
        for file_name, data in sorted(model._files.items()):
            digest.update(file_name.encode() + b"\0" + hashlib.sha256(data).digest())
        if model._spec is not None:
            body["pipeline"] = self.upload(model._spec)
            digest.update(model._spec)
        if description:
            body["description"] = description
        body["name"] = name or f"{_name_part(model.name)}-{digest.hexdigest()[:10]}"
        try:
            self._request("POST", "/api/v1/models", body=body)
        except RiskserveError as error:
            if error.code != "already_exists" or name is not None:
                raise
        return body["name"]

    def deploy(self, model_or_pipeline=None, *, name: str, instances: int = 1, tags: Optional[Dict[str, str]] = None,
               variants: Optional[Iterable[Variant]] = None, wait: bool = True, timeout: float = 300.0,
               progress: Optional[bool] = None) -> "Endpoint":
        """Deploys a model or pipeline (a riskserve.Model, anything `load_model` takes, or a registered model's name)
        to a new endpoint `name` with `instances` worker units, or several weighted `variants`; waits until it serves
        (with a progress line in notebooks) unless `wait=False`."""
        variants = _variants(model_or_pipeline, instances, variants)
        config = self._create_config(name, variants, tags)
        self._request("POST", "/api/v1/endpoints", body={"name": name, "config": config, "tags": dict(tags or {})})
        endpoint = Endpoint(self, name)
        if wait:
            endpoint.wait(timeout=timeout, progress=progress, action="deploying")
        return endpoint

    def _create_config(self, endpoint: str, variants: List[Variant], tags) -> str:
        body_variants = []
        for variant in variants:
            model = variant.model if isinstance(variant.model, str) else self.register(variant.model,
                                                                                        tags=variant.tags or tags)
            body_variants.append({"name": variant.name, "model": model, "weight": variant.weight,
                                  "instances": variant.instances})
        config = f"{_name_part(endpoint, 50)}-{secrets.token_hex(4)}"
        self._request("POST", "/api/v1/endpoint-configs",
                      body={"name": config, "variants": body_variants, "tags": dict(tags or {})})
        return config

    def endpoint(self, name: str) -> "Endpoint":
        """The endpoint `name` (NotFound when there is none)."""
        endpoint = Endpoint(self, name)
        endpoint.refresh()
        return endpoint

    def endpoints(self) -> pd.DataFrame:
        """Every endpoint: name, status, config, variants, created and updated times."""
        items = self._pages("/api/v1/endpoints", {"max_results": 100})
        return pd.DataFrame([{"name": e["name"], "status": e["status"], "config": e["config"],
                              "variants": ", ".join(f"{v['name']}={v['model']}×{v.get('instances', 1)}"
                                                    for v in e.get("variants", [])),
                              "created_at": e.get("created_at"), "updated_at": e.get("updated_at")} for e in items],
                            columns=["name", "status", "config", "variants", "created_at", "updated_at"])

    def models(self) -> pd.DataFrame:
        """Every registered model."""
        return pd.DataFrame(self._pages("/api/v1/models", {"max_results": 100}))

    def delete_model(self, name: str) -> None:
        self._request("DELETE", f"/api/v1/models/{_quote(name)}")

    def create_user(self, name: str, roles: Iterable[str] = ()) -> dict:
        """Creates a user with built-in or custom roles (admin, deployer, invoker, auditor, ...)."""
        return self._request("POST", "/api/v1/users", body={"name": name, "roles": list(roles)})

    def create_token(self, user: str) -> str:
        """Creates a bearer token for `user` and answers it (shown once; the server keeps only its hash)."""
        return self._request("POST", f"/api/v1/users/{_quote(user)}/tokens", body={})["token"]

    def audit(self, *, principal: Optional[str] = None, action: Optional[str] = None, resource: Optional[str] = None,
              outcome: Optional[str] = None, since: Optional[str] = None, until: Optional[str] = None,
              limit: int = 1000) -> pd.DataFrame:
        """Audit events (oldest first), filtered as `riskserve audit query` filters them; `resource` like
        `Endpoint/credit`, `action` like `sagemaker:InvokeEndpoint`, `outcome` allowed, denied, failed or
        unauthenticated."""
        query = {"principal": principal, "action": action, "resource": resource, "outcome": outcome,
                 "since": since, "until": until, "max_results": min(limit, 1000)}
        items = self._pages("/api/v1/audit-events", query, limit)
        frame = pd.DataFrame(items)
        if "time" in frame:
            frame["time"] = pd.to_datetime(frame["time"])
        return frame

    def verify_audit(self) -> dict:
        """Verifies the audit trail's hash chain and seals on the server."""
        return self._request("GET", "/api/v1/audit/verify")

    def cost(self, *, by: str = "endpoint", start: Optional[str] = None, end: Optional[str] = None) -> pd.DataFrame:
        """The usage and cost report (`riskserve cost report`): one line per endpoint, variant, tag or principal
        (`by`), with the total as the last line (key `TOTAL`); `start`/`end` RFC 3339 or durations (`-24h`). The
        prices and period are in the frame's `attrs`."""
        report = self._request("GET", "/api/v1/cost", query={"by": by, "from": start, "to": end})
        lines = list(report.get("lines", []))
        if report.get("total"):
            lines.append({**report["total"], "key": "TOTAL"})
        frame = pd.DataFrame(lines)
        frame.attrs.update({key: report.get(key) for key in ("by", "from", "to", "prices")})
        return frame

    def __repr__(self) -> str:
        return f"<riskserve.Session {self.url}>"


class Endpoint:
    """A managed endpoint on the server. Its description is fetched by `refresh()` (and by `status`)."""

    def __init__(self, session: Session, name: str):
        self.session = session
        self.name = name
        self.description: Dict[str, Any] = {}

    def refresh(self) -> Dict[str, Any]:
        self.description = self.session._request("GET", f"/api/v1/endpoints/{_quote(self.name)}")
        return self.description

    @property
    def status(self) -> str:
        return self.refresh()["status"]

    @property
    def variants(self) -> pd.DataFrame:
        """The serving variants: name, model, weight, instances."""
        return pd.DataFrame(self.refresh().get("variants", []))

    def wait(self, *, timeout: float = 300.0, progress: Optional[bool] = None, action: str = "updating") -> "Endpoint":
        """Waits until the endpoint is InService (raises InvalidState naming the failure when it is Failed)."""
        reporter = _Progress(self.name, action, progress)
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        delay = 0.05
        while True:
            description = self.refresh()
            status = description["status"]
            reporter.update(status, time.monotonic() - started)
            if status == "InService":
                reporter.done(status, time.monotonic() - started)
                return self
            if status == "Failed":
                reporter.done(status, time.monotonic() - started)
                raise InvalidState(f"endpoint {self.name!r} failed: {description.get('failure_reason')}",
                                   code="invalid_state")
            if time.monotonic() > deadline:
                raise TimeoutError(f"endpoint {self.name!r} is still {status} after {timeout} s")
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def predict(self, data, *, variant: Optional[str] = None) -> pd.DataFrame:
        """Invokes the endpoint with rows (a DataFrame, a dict of columns, a list of dicts, or a 2-D array in the
        inputs' order) and answers a DataFrame: probability, score, grade, decision as the pipeline produces them,
        or a bare model's values."""
        answer, index = self._invoke(data, variant=variant, explain=False)
        return _predictions(answer, index)

    def explain(self, data, *, variant: Optional[str] = None) -> Explanation:
        """Invokes with explanations: the predictions, contributions per field (plus bias) and the reasons."""
        answer, index = self._invoke(data, variant=variant, explain=True)
        predictions = _predictions(answer, index)
        rows = answer["predictions"]
        contributions = pd.DataFrame([row.get("contributions") or {} for row in rows], index=index)
        if "bias" in contributions:
            contributions = contributions[[c for c in contributions.columns if c != "bias"] + ["bias"]]
        records = [{"row": label, "rank": rank, **reason} for label, row in zip(index, rows)
                   for rank, reason in enumerate(row.get("reasons") or [], start=1)]
        reasons = pd.DataFrame(records, columns=["row", "rank", "code", "feature", "text", "contribution"])
        return Explanation(predictions, contributions, reasons)

    def _invoke(self, data, *, variant: Optional[str], explain: bool):
        instances, index = _instances(data)
        headers = {"X-Amzn-SageMaker-Target-Variant": variant} if variant else None
        answer = self.session._request("POST", f"/endpoints/{_quote(self.name)}/invocations",
                                       body={"instances": instances}, headers=headers,
                                       query={"explain": "true"} if explain else None)
        if not isinstance(answer, dict) or "predictions" not in answer:
            raise ServerError(f"unexpected answer from {self.name!r}: {str(answer)[:200]}")
        return answer, index

    def update(self, model_or_pipeline=None, *, instances: int = 1, variants: Optional[Iterable[Variant]] = None,
               variant_name: Optional[str] = None, wait: bool = True, timeout: float = 300.0,
               progress: Optional[bool] = None) -> "Endpoint":
        """Blue/green update: a new config with the given model (or `variants`) starts, traffic switches atomically
        once it is ready, the old variants drain; no request fails. A failure rolls back (InvalidState is raised
        after the rollback). The new single variant is named `variant_name` (by default `blue` or `green`, the one
        not serving now)."""
        if variants is None:
            serving = {v["name"] for v in self.refresh().get("variants", [])}
            default = "green" if "blue" in serving else "blue"
            variants = [Variant(model_or_pipeline, name=variant_name or default, instances=instances)]
        config = self.session._create_config(self.name, _variants(None, instances, variants), None)
        self.session._request("PUT", f"/api/v1/endpoints/{_quote(self.name)}", body={"config": config})
        if wait:
            self.wait(timeout=timeout, progress=progress, action="updating")
            if self.description.get("config") != config:
                raise InvalidState(f"the update of {self.name!r} rolled back: {self.description.get('failure_reason')}",
                                   code="invalid_state")
        return self

    def set_weights(self, weights: Dict[str, float]) -> "Endpoint":
        """Changes the traffic weights of serving variants in place, e.g. `{"blue": 0.9, "green": 0.1}`."""
        for variant, weight in weights.items():
            self.session._request("PATCH", f"/api/v1/endpoints/{_quote(self.name)}/variants/{_quote(variant)}",
                                  body={"weight": float(weight)})
        self.refresh()
        return self

    def scale(self, variant: str, instances: int) -> "Endpoint":
        """Changes a serving variant's instance count in place."""
        self.session._request("PATCH", f"/api/v1/endpoints/{_quote(self.name)}/variants/{_quote(variant)}",
                              body={"instances": int(instances)})
        self.refresh()
        return self

    def metrics(self, metric: str = "invocations", *, stat: Optional[str] = None, period: int = 60,
                start: Optional[str] = "-1h", end: Optional[str] = None,
                variant: Optional[str] = None) -> pd.DataFrame:
        """The per-minute history (kept 25 hours) as one statistic per period: invocations,
        invocations_per_instance, model_latency, overhead_latency, errors_4xx, errors_5xx, rejected or instances;
        `stat` sum, avg, p50 or p99. Answers a DataFrame (timestamp, value); unit, stat and period in `attrs`."""
        series = self.session._request("GET", f"/api/v1/endpoints/{_quote(self.name)}/metrics",
                                       query={"metric": metric, "stat": stat, "period": period, "start": start,
                                              "end": end, "variant": variant})
        frame = pd.DataFrame(series.get("datapoints", []), columns=["timestamp", "value"])
        frame["timestamp"] = pd.to_datetime(frame["timestamp"])
        frame.attrs.update({key: series.get(key) for key in ("endpoint", "variant", "metric", "stat", "unit",
                                                              "period")})
        return frame

    def delete(self, *, wait: bool = True, timeout: float = 120.0) -> None:
        """Deletes the endpoint (its configs and models stay registered)."""
        self.session._request("DELETE", f"/api/v1/endpoints/{_quote(self.name)}")
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.refresh()
            except NotFound:
                return
            time.sleep(0.05)
        raise TimeoutError(f"endpoint {self.name!r} is still there after {timeout} s")

    def __repr__(self) -> str:
        status = self.description.get("status", "?")
        return f"<riskserve.Endpoint {self.name!r} {status} at {self.session.url}>"

    def _repr_html_(self) -> str:
        description = self.description or {}
        rows = [[v.get("name"), v.get("model"), v.get("weight"), v.get("instances")]
                for v in description.get("variants", [])]
        title = (f"riskserve.Endpoint <b>{self.name}</b> {status_badge(description.get('status', '?'))} "
                 f"config <code>{description.get('config', '?')}</code> at {self.session.url}")
        if description.get("failure_reason"):
            title += f"<br>failure: {description['failure_reason']}"
        return table_html(title, ["variant", "model", "weight", "instances"], rows)


# -- helpers -------------------------------------------------------------------------------------------------------

def _error_of(error: urllib.error.HTTPError) -> RiskserveError:
    payload = error.read()
    code, message = None, payload.decode(errors="replace").strip() or error.reason
    try:
        detail = json.loads(payload)["error"]
        code, message = detail.get("code"), detail.get("message", message)
    except (ValueError, KeyError, TypeError):
        pass
    retry_after = error.headers.get("retry-after")
    return error_from_answer(error.code, code, str(message),
                             retry_after=float(retry_after) if retry_after else None,
                             request_id=error.headers.get("x-request-id"))


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def _name_part(name: str, length: int = 40) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in name).strip("-")
    while "--" in cleaned:
        cleaned = cleaned.replace("--", "-")
    return (cleaned[:length].strip("-") or "model")


def _variants(model, instances: int, variants: Optional[Iterable[Variant]]) -> List[Variant]:
    if variants is not None:
        variants = list(variants)
        if not variants:
            raise ValueError("variants is empty")
        return variants
    if model is None:
        raise ValueError("give a model or pipeline, or variants")
    return [Variant(model, instances=instances)]


def _cell(value):
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _instances(data):
    """Rows as JSON instances (objects by field name, or arrays in the inputs' order) and their index."""
    if isinstance(data, pd.Series):
        data = data.to_frame().T
    if isinstance(data, dict):
        data = pd.DataFrame(data if any(np.ndim(v) for v in data.values()) else [data])
    if isinstance(data, pd.DataFrame):
        columns = [str(c) for c in data.columns]
        rows = [{name: _cell(value) for name, value in zip(columns, row)}
                for row in data.astype(object).itertuples(index=False, name=None)]
        return rows, data.index
    if isinstance(data, np.ndarray):
        if data.ndim == 1:
            data = data.reshape(1, -1)
        return [[_cell(v) for v in row] for row in data.tolist()], pd.RangeIndex(len(data))
    if isinstance(data, list):
        return [{k: _cell(v) for k, v in row.items()} if isinstance(row, dict) else [_cell(v) for v in row]
                for row in data], pd.RangeIndex(len(data))
    raise TypeError(f"expected a DataFrame, a dict, a list of rows or an array, not {type(data).__name__}")


def _predictions(answer: dict, index) -> pd.DataFrame:
    rows = answer["predictions"]
    frame = pd.DataFrame(index=index)
    present = [name for name in ("probability", "score", "grade", "decision") if any(name in row for row in rows)]
    if present:
        for name in present:
            frame[name] = [row.get(name) for row in rows]
        return frame
    width = max((len(row.get("values", [])) for row in rows), default=0)
    for column in range(width):
        frame["value" if width == 1 else f"value_{column}"] = [row["values"][column] for row in rows]
    return frame


class _Progress:
    """A status line while an endpoint moves: updated in place in Jupyter, a line on stderr elsewhere (when asked)."""

    def __init__(self, name: str, action: str, enabled: Optional[bool]):
        self.name, self.action = name, action
        self.handle = None
        self.last = None
        in_notebook = _in_notebook()
        self.enabled = in_notebook if enabled is None else enabled
        if self.enabled and in_notebook:
            from IPython.display import HTML, display

            self.handle = display(HTML(self._html("starting", 0.0)), display_id=True)

    def _html(self, status: str, seconds: float) -> str:
        return (f"<div>endpoint <b>{self.name}</b>: {self.action} {status_badge(status)} "
                f"{seconds:.1f} s</div>")

    def update(self, status: str, seconds: float) -> None:
        if not self.enabled:
            return
        if self.handle is not None:
            from IPython.display import HTML

            self.handle.update(HTML(self._html(status, seconds)))
        elif status != self.last:
            print(f"endpoint {self.name}: {status} ({seconds:.1f} s)", file=sys.stderr)
        self.last = status

    def done(self, status: str, seconds: float) -> None:
        self.update(status, seconds)


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


