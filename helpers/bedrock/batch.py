"""Embedding big catalogues through Bedrock batch inference jobs, into the same cache.

Why: above a few thousand images, one InvokeModel call per image is slow (account quotas) and
costs the on-demand price; a batch job (`CreateModelInvocationJob`) takes the same request
bodies as JSONL in S3 and is, per third-party pricing pages, about half the price (unconfirmed:
see helpers.bedrock.prices). Every vector a job returns goes into the cache under exactly the
key an on-demand call would have used (`helpers.embedstep.vector_key`), so the rest of the
pipeline does not know, or care, how a vector was made.

The flow is restartable at every step. The job's state (records, S3 locations, job ARN) is a
JSON file in the cache, written before and right after the job is submitted; the submit carries
a `clientRequestToken` derived from the images, so even a crash between the call and the write
cannot submit a job twice (Bedrock ignores a repeated token). A re-run finds the ARN and polls.

Formats (AWS user guide "View the results of a batch inference job", read 2026-11): input lines
{"recordId", "modelInput"}; output `<input file>.out` lines {"recordId", "modelInput",
"modelOutput"} or {"error": {"errorCode", "errorMessage"}} in place of modelOutput, plus
`manifest.json.out` {"totalRecordCount", "processedRecordCount", "successRecordCount",
"errorRecordCount", "inputTokenCount", "outputTokenCount"}. Job statuses: botocore's service
model (ModelInvocationJobStatus).
"""
from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from helpers import cost
from helpers.bedrock.client import BATCH_MODELS, _is_content_filter, make_client, make_session, scrub
from helpers.bedrock.prices import BATCH_PRICE_SHARE
from helpers.bedrock.usage import USAGE_FILE
from helpers.cache import Cache
from helpers.embedstep import EmbedRun, _load, embed_images, vector_key
from helpers.errors import FAILURE_COLUMNS, EmbedError
from helpers.progress import tqdm
from helpers.settings import load_settings

#: A per-account quota sets the fewest records a job may hold (commonly 100; bedrock.md).
MIN_RECORDS = 100
RECORDS_PER_FILE = 10_000
RUNNING = ("Submitted", "Validating", "Scheduled", "InProgress", "Stopping")
READABLE = ("Completed", "PartiallyCompleted")
STATE_KIND = "batch_jobs"


class BatchJobError(RuntimeError):
    """A batch job cannot be used (not configured, failed, stopped, expired): nothing was paid
    twice; the message says what happened and what to do."""


def supports_batch(model_id: str) -> bool:
    return model_id in BATCH_MODELS


def should_batch(n_todo: int, settings: Any, model_id: str, *, force: bool = False) -> bool:
    """Batch when the uncached images exceed settings.batch_threshold (and the job minimum)
    and the model is documented to support batch inference (or `force`)."""
    return ((supports_batch(model_id) or force) and n_todo > settings.batch_threshold
            and n_todo >= MIN_RECORDS)


def compare_costs(n_items: int, n_cached: int, price_per_call: float, what: str) -> tuple[Any, Any]:
    """On-demand and batch estimates of the same work, for printing side by side."""
    on_demand = cost.estimate(n_items, n_cached, price_per_call, f"{what}, on demand")
    batch = cost.estimate(n_items, n_cached, price_per_call * BATCH_PRICE_SHARE, f"{what}, batch job")
    return on_demand, batch


def _s3_split(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


@dataclass
class BatchResult:
    """What one job gave: vectors by image id, failures (image_id, reason, message), the
    manifest's counts and the job's ARN and status."""

    vectors: dict[str, np.ndarray]
    failures: list[dict[str, str]]
    manifest: dict[str, Any]
    job_arn: str
    status: str


class BatchEmbedJob:
    """One batch job for a list of uncached images: write, submit, poll, read, cache."""

    def __init__(self, embedder: Any, settings: Any, *, view: str, cache: Cache,
                 bedrock: Any = None, s3: Any = None, poll_s: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep, progress: bool = True):
        if not settings.batch_bucket or not settings.batch_role_arn:
            raise BatchJobError(
                "Batch embedding needs an S3 bucket and an IAM service role Bedrock can assume: set "
                "batch_bucket (WORKBOOK_BATCH_BUCKET) and batch_role_arn (WORKBOOK_BATCH_ROLE_ARN) "
                "- see AWS's 'Create a service role for batch inference' - or raise batch_threshold "
                "(WORKBOOK_BATCH_THRESHOLD) above the number of images to embed them on demand.")
        self.embedder, self.settings, self.view, self.cache = embedder, settings, view, cache
        self.poll_s, self.sleep, self.progress = poll_s, sleep, progress
        if bedrock is None or s3 is None:
            session = make_session(settings)
            bedrock = bedrock or make_client(settings, "bedrock", session=session)
            s3 = s3 or make_client(settings, "s3", session=session)
        self.bedrock, self.s3 = bedrock, s3

    # --- naming ------------------------------------------------------------------------
    def run_key(self, keys: list[str]) -> str:
        """Names the job: the model, its settings and the exact set of vectors wanted."""
        h = hashlib.sha256()
        for part in (self.embedder.model_id, str(self.embedder.dim), self.view,
                     getattr(self.embedder, "purpose", ""), *sorted(keys)):
            h.update(part.encode() + b"\0")
        return h.hexdigest()[:32]

    def _state_path(self, run_key: str) -> Path:
        return self.cache.path(STATE_KIND, run_key, ".json")

    def _save(self, state: dict) -> None:
        self.cache.put_json(STATE_KIND, state["run_key"], state)

    # --- steps -------------------------------------------------------------------------
    def _write_input(self, todo: list[tuple[str, str, Any]], run_key: str,
                     failures: list[dict[str, str]]) -> dict:
        """Request bodies as JSONL files in S3; the state that names them (not yet submitted)."""
        base = f"{self.settings.batch_prefix.strip('/')}/{run_key}"
        bucket = self.settings.batch_bucket
        records: dict[str, list[str]] = {}
        lines: list[str] = []
        n_files = 0

        def flush() -> None:
            nonlocal n_files, lines
            if lines:
                body = ("\n".join(lines) + "\n").encode()
                self.s3.put_object(Bucket=bucket, Key=f"{base}/input/records-{n_files:05d}.jsonl",
                                   Body=body, ContentType="application/jsonl")
                n_files += 1
                lines = []

        for image_id, key, source in tqdm(todo, desc=f"batch input {self.view}", unit="img",
                                          disable=not self.progress):
            try:
                body = self.embedder.request_body(_load(source, self.settings))
            except Exception as exc:  # unreadable or undecodable image: a failure row, go on
                failures.append({"image_id": image_id, "reason": getattr(exc, "reason", "unreadable"),
                                 "message": str(exc)})
                continue
            record_id = f"r{len(records):010d}"  # 11 characters, as AWS's examples use
            records[record_id] = [image_id, key]
            lines.append(json.dumps({"recordId": record_id, "modelInput": body}))
            if len(lines) >= RECORDS_PER_FILE:
                flush()
        flush()
        return {"run_key": run_key, "model_id": self.embedder.model_id, "dim": int(self.embedder.dim),
                "view": self.view, "job_name": f"workbook-{self.view}-{run_key[:16]}",
                "input_uri": f"s3://{bucket}/{base}/input/", "output_uri": f"s3://{bucket}/{base}/output/",
                "records": records, "job_arn": None, "status": "written"}

    def create_request(self, state: dict) -> dict:
        """The exact CreateModelInvocationJob arguments; the token makes a retry idempotent."""
        return {"jobName": state["job_name"], "roleArn": self.settings.batch_role_arn,
                "clientRequestToken": state["run_key"], "modelId": state["model_id"],
                "inputDataConfig": {"s3InputDataConfig": {"s3Uri": state["input_uri"],
                                                          "s3InputFormat": "JSONL"}},
                "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": state["output_uri"]}}}

    def _submit(self, state: dict) -> None:
        try:
            arn = self.bedrock.create_model_invocation_job(**self.create_request(state))["jobArn"]
        except (ClientError, BotoCoreError) as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            hint = {"AccessDeniedException": "allow bedrock:CreateModelInvocationJob and iam:PassRole "
                                             "for batch_role_arn",
                    "ServiceQuotaExceededException": f"too many jobs or too few records (quota minimum "
                                                     f"is commonly {MIN_RECORDS}); wait or request a quota",
                    "ValidationException": "check batch_role_arn, the bucket's region and the model id"
                    }.get(code, "check the message")
            raise BatchJobError(scrub(f"Bedrock refused the batch job for {state['model_id']} "
                                      f"({code}: {exc}); {hint}. Nothing was submitted; re-run to "
                                      f"try again, or raise batch_threshold to embed on demand.")) from None
        state["job_arn"], state["status"] = arn, "Submitted"
        self._save(state)  # recorded at once: a restart polls this job, never submits another

    def _poll(self, state: dict) -> dict:
        total = len(state["records"])
        with tqdm(total=total, desc=f"batch job {self.view}", unit="rec", disable=not self.progress) as bar:
            while True:
                job = self.bedrock.get_model_invocation_job(jobIdentifier=state["job_arn"])
                status = job["status"]
                done = int(job.get("processedRecordCount") or 0)
                if done > bar.n:
                    bar.update(min(done, total) - bar.n)
                bar.set_postfix(status=status)
                if status != state.get("status"):
                    state["status"] = status
                    self._save(state)
                if status not in RUNNING:
                    if status in READABLE:
                        bar.update(total - bar.n)
                    return job
                self.sleep(self.poll_s)

    def _read_output(self, state: dict) -> tuple[dict[str, dict], dict]:
        """{recordId: output line} over every *.jsonl.out file, and the manifest."""
        bucket, prefix = _s3_split(state["output_uri"])
        lines: dict[str, dict] = {}
        manifest: dict = {}
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if not (key.endswith(".jsonl.out") or key.endswith("manifest.json.out")):
                    continue
                data = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                if key.endswith("manifest.json.out"):
                    manifest = json.loads(data)
                    continue
                for raw in io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"):
                    if raw.strip():
                        line = json.loads(raw)
                        lines[str(line.get("recordId"))] = line
        return lines, manifest

    def _collect(self, state: dict, lines: dict[str, dict]) -> tuple[dict[str, np.ndarray], list[dict]]:
        """Vectors into the cache under their on-demand keys; errors and gaps into failures."""
        vectors: dict[str, np.ndarray] = {}
        failures: list[dict[str, str]] = []
        for record_id, (image_id, key) in state["records"].items():
            line = lines.get(record_id)
            if line is None:
                failures.append({"image_id": image_id, "reason": "batch_missing",
                                 "message": f"batch job {state['job_arn']} returned nothing for record "
                                            f"{record_id}; re-run to embed it again"})
                continue
            if "modelOutput" not in line:
                err = line.get("error") or {}
                msg = str(err.get("errorMessage", err))
                reason = "content_filter" if _is_content_filter(msg.lower()) else "batch_error"
                failures.append({"image_id": image_id, "reason": reason,
                                 "message": scrub(f"batch record {record_id}: {err.get('errorCode', '')} "
                                                  f"{msg}; leave this image out or use backend='local'")})
                continue
            try:
                vec = self.embedder._vector(line["modelOutput"], image_id)
            except EmbedError as exc:
                failures.append({"image_id": image_id, "reason": exc.reason, "message": str(exc)})
                continue
            self.cache.put_array("vectors", key, vec)
            vectors[image_id] = vec
        return vectors, failures

    def _ledger(self, n_success: int) -> None:
        """One ledger line per answered record, at the batch price, in one write."""
        if not n_success:
            return
        price = self.embedder.price_per_call * BATCH_PRICE_SHARE
        line = json.dumps({"model_id": self.embedder.model_id, "price_usd": price, "time": time.time(),
                           "mode": "batch"}) + "\n"
        path = Path(self.settings.cache_dir) / USAGE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line * n_success)

    # --- all of it -----------------------------------------------------------------------
    def run(self, todo: list[tuple[str, str, Any]], *, resubmit: bool = False) -> BatchResult:
        """Embed `todo` ((image_id, cache key, source) triples) through one job, resuming a job
        already submitted for exactly these images."""
        run_key = self.run_key([k for _, k, _ in todo])
        state = self.cache.get_json(STATE_KIND, run_key)
        pre_failures: list[dict[str, str]] = []
        if state is not None and state.get("status") in ("Failed", "Stopped", "Expired") and resubmit:
            state = None
        if state is None:
            state = self._write_input(todo, run_key, pre_failures)
            state["pre_failures"] = pre_failures
            self._save(state)
        if not state.get("job_arn"):
            self._submit(state)
        job = self._poll(state)
        if job["status"] not in READABLE:
            raise BatchJobError(
                f"Batch job {state['job_arn']} ended {job['status']}: {job.get('message') or 'no message'}. "
                f"Its input stays at {state['input_uri']}. Fix the cause, then re-run with resubmit=True "
                f"(or delete {self._state_path(run_key)}) to submit a new job, or raise batch_threshold "
                f"(WORKBOOK_BATCH_THRESHOLD) above {len(todo)} to embed on demand.")
        lines, manifest = self._read_output(state)
        vectors, failures = self._collect(state, lines)
        if state.get("status") != "done":
            self._ledger(len(vectors))
        state["status"], state["manifest"] = "done", manifest
        self._save(state)
        return BatchResult(vectors, list(state.get("pre_failures", [])) + failures, manifest,
                           state["job_arn"], job["status"])


def embed_images_batched(images: Mapping[str, Any], embedder: Any, *, view: str,
                         cache: Cache | None = None, settings: Any = None, bedrock: Any = None,
                         s3: Any = None, progress: bool = True, poll_s: float = 60.0,
                         sleep: Callable[[float], None] = time.sleep, force: bool = False,
                         resubmit: bool = False, failures: pd.DataFrame | None = None) -> EmbedRun:
    """`embed_images`, but a big enough set of uncached images goes through one batch job first.

    Prints on-demand against batch cost and checks the batch figure against max_spend_usd
    before anything is written or submitted. Below the threshold (or for a model without
    documented batch support) this is exactly `embed_images`. `embed_images` itself hands a
    Bedrock embedder's work here when more than settings.batch_threshold images are uncached;
    `failures` (earlier rows, e.g. "no_garment") are carried into the result as there.
    """
    if settings is None:
        settings = load_settings()
    cache = cache or Cache(settings.cache_dir)
    todo: list[tuple[str, str, Any]] = []
    for image_id, source in images.items():
        try:
            key = vector_key(source, embedder, view)
        except OSError:
            continue  # embed_images reports unreadable files
        hit = cache.get_array("vectors", key)
        if hit is None or hit.shape != (embedder.dim,):
            todo.append((image_id, key, source))
    if not should_batch(len(todo), settings, embedder.model_id, force=force):
        return embed_images(images, embedder, view=view, cache=cache, settings=settings, progress=progress,
                            failures=failures, batch=False)

    on_demand, batch = compare_costs(len(images), len(images) - len(todo), embedder.price_per_call,
                                     f"{view} embeddings ({embedder.model_id})")
    print(on_demand)
    print(f"{batch} (batch at {BATCH_PRICE_SHARE:.0%} of on-demand: unconfirmed, see helpers.bedrock.prices)")
    cost.check_budget(batch, settings.max_spend_usd)
    job = BatchEmbedJob(embedder, settings, view=view, cache=cache, bedrock=bedrock, s3=s3,
                        poll_s=poll_s, sleep=sleep, progress=progress)
    result = job.run(todo, resubmit=resubmit)
    failed = {f["image_id"] for f in result.failures}
    rest = {i: s for i, s in images.items() if i not in failed}
    prior = pd.DataFrame(result.failures, columns=FAILURE_COLUMNS)
    if failures is not None and len(failures):
        prior = pd.concat([failures[FAILURE_COLUMNS], prior], ignore_index=True)
    run = embed_images(rest, embedder, view=view, cache=cache, settings=settings, progress=progress,
                       failures=prior, batch=False)
    order = [i for i in images if i in set(run.ids)]
    index = {i: n for n, i in enumerate(run.ids)}
    run.ids, run.vectors = order, run.vectors[[index[i] for i in order]] if order else run.vectors
    run.calls += len(result.vectors)
    run.cached -= len(result.vectors)
    return run
