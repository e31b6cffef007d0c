"""Batch embedding end to end: JSONL files on a real S3 API (moto's server, started by the test on
127.0.0.1), Bedrock's control plane through Stubber (exact CreateModelInvocationJob request,
realistic GetModelInvocationJob answers). A fake "Bedrock worker" runs where the code sleeps
between polls: it reads the input the code wrote and writes output records and the manifest in
AWS's documented format, so the code's reading is checked against its own writing."""
from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import numpy as np
import pytest
from botocore.stub import Stubber
from PIL import Image

moto_server = pytest.importorskip("moto.server", reason="needs moto[server] (requirements.lock)")

from helpers import bedrock  # noqa: E402
from helpers.bedrock import batch as bb  # noqa: E402
from helpers.cache import Cache  # noqa: E402
from helpers.cost import BudgetExceeded  # noqa: E402
from helpers.embedding import embed_images, vector_key  # noqa: E402
from helpers.settings import load_settings  # noqa: E402
from conftest import fake_aws_env

BUCKET = "workbook-test-batch"
ROLE = "arn:aws:iam::123456789012:role/BedrockBatchRole"
TITAN = "amazon.titan-embed-image-v1"
ARN = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcd1234efgh"
SUBMITTED = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def s3_endpoint():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch, tmp_path):
    fake_aws_env(monkeypatch, tmp_path)
    monkeypatch.setattr(bb, "MIN_RECORDS", 5)  # the quota minimum, small enough for a test


@pytest.fixture()
def env(tmp_path, s3_endpoint):
    settings = load_settings(toml_path=None, env={}, backend="bedrock", embed_model_id=TITAN,
                             embed_dim=256, max_retries=1, concurrency=1, cache_dir=tmp_path / "cache",
                             batch_threshold=4, batch_bucket=BUCKET, batch_role_arn=ROLE,
                             max_spend_usd=1.0)
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    runtime = bedrock.make_client(settings, "bedrock-runtime")
    Stubber(runtime).activate()  # no responses queued: any on-demand call fails the test
    embedder = bedrock.BedrockEmbedder(settings, client=runtime)
    images = {}
    for i in range(6):
        buf = io.BytesIO()
        Image.new("RGB", (12, 16), (40 * i, 90, 200 - 30 * i)).save(buf, format="PNG")
        images[f"img{i}"] = buf.getvalue()
    return settings, s3, embedder, images, Cache(settings.cache_dir)


def control(settings):
    client = bedrock.make_client(settings, "bedrock")
    stub = Stubber(client)
    stub.activate()
    return client, stub


def job(status: str, processed: int, message: str | None = None, run_key: str = "k") -> dict:
    out = {"jobArn": ARN, "jobName": f"workbook-full-{run_key[:16]}", "modelId": TITAN, "roleArn": ROLE,
           "status": status, "submitTime": SUBMITTED,
           "inputDataConfig": {"s3InputDataConfig": {"s3Uri": f"s3://{BUCKET}/x/input/", "s3InputFormat": "JSONL"}},
           "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/x/output/"}},
           "totalRecordCount": 6, "processedRecordCount": processed}
    if message:
        out["message"] = message
    return out


def vec_for(record_id: str) -> list[float]:
    return np.random.default_rng(int(record_id[1:]) + 7).normal(size=256).tolist()


class FakeBedrockWorker:
    """Reads the job's input JSONL from S3 and writes `<file>.out` + manifest.json.out under
    output/<job id>/, failing the records whose image is in `fail` (content filter)."""

    def __init__(self, s3, run_key: str, fail_image_index: set[int] = frozenset(), crash: bool = False):
        self.s3, self.run_key, self.fail, self.crash, self.calls = s3, run_key, fail_image_index, crash, 0

    def __call__(self, seconds: float) -> None:
        self.calls += 1
        if self.crash:
            raise KeyboardInterrupt("the notebook kernel died")
        base = f"workbook-batch/{self.run_key}"
        listing = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{base}/input/")["Contents"]
        ok = err = 0
        for obj in listing:
            name = obj["Key"].rsplit("/", 1)[1]
            out_lines = []
            for raw in self.s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read().splitlines():
                rec = json.loads(raw)
                assert set(rec) == {"recordId", "modelInput"}
                assert set(rec["modelInput"]) == {"inputImage", "embeddingConfig"}
                if int(rec["recordId"][1:]) in self.fail:
                    err += 1
                    out_lines.append({**rec, "error": {"errorCode": 400, "errorMessage":
                                      "This request has been blocked by our content filters."}})
                else:
                    ok += 1
                    out_lines.append({**rec, "modelOutput": {"embedding": vec_for(rec["recordId"]),
                                                             "inputTextTokenCount": 0}})
            body = "\n".join(json.dumps(l) for l in out_lines).encode()
            self.s3.put_object(Bucket=BUCKET, Key=f"{base}/output/abcd1234efgh/{name}.out", Body=body)
        manifest = {"totalRecordCount": ok + err, "processedRecordCount": ok + err,
                    "successRecordCount": ok, "errorRecordCount": err, "inputTokenCount": 0,
                    "outputTokenCount": 0}
        self.s3.put_object(Bucket=BUCKET, Key=f"{base}/output/abcd1234efgh/manifest.json.out",
                           Body=json.dumps(manifest).encode())


def expected_create(run_key: str) -> dict:
    return {"jobName": f"workbook-full-{run_key[:16]}", "roleArn": ROLE, "clientRequestToken": run_key,
            "modelId": TITAN,
            "inputDataConfig": {"s3InputDataConfig": {"s3Uri": f"s3://{BUCKET}/workbook-batch/{run_key}/input/",
                                                      "s3InputFormat": "JSONL"}},
            "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/workbook-batch/{run_key}/output/"}}}


def keys_and_run_key(env_):
    settings, s3, embedder, images, cache = env_
    keys = [vector_key(src, embedder, "full") for src in images.values()]
    job_ = bb.BatchEmbedJob(embedder, settings, view="full", cache=cache, bedrock=object(), s3=s3)
    return keys, job_.run_key(keys)


def submitted(settings, run_key: str, *polls: tuple):
    """A stubbed Bedrock control client that expects the job's exact create request, then answers
    each status poll in turn: (status, processed[, message])."""
    client, stub = control(settings)
    stub.add_response("create_model_invocation_job", {"jobArn": ARN}, expected_create(run_key))
    for status, processed, *message in polls:
        stub.add_response("get_model_invocation_job", job(status, processed, *message, run_key=run_key),
                          {"jobIdentifier": ARN})
    return client, stub


def test_batch_writes_submits_polls_and_caches_under_the_on_demand_keys(env, capsys):
    settings, s3, embedder, images, cache = env
    keys, run_key = keys_and_run_key(env)
    client, stub = submitted(settings, run_key, ("InProgress", 0), ("Completed", 6))
    worker = FakeBedrockWorker(s3, run_key)
    run = bb.embed_images_batched(images, embedder, view="full", cache=cache, settings=settings,
                                  bedrock=client, s3=s3, sleep=worker, progress=False)
    stub.assert_no_pending_responses()
    out = capsys.readouterr().out
    assert "full embeddings (amazon.titan-embed-image-v1), on demand: 6 images, 0 cached, 6 calls, about $0.00036" in out
    assert "batch job: 6 images, 0 cached, 6 calls, about $0.00018" in out
    assert run.ids == list(images) and run.failures.empty and (run.calls, run.cached) == (6, 0)
    for n, key in enumerate(keys):  # the record ids follow the input order
        want = np.asarray(vec_for(f"r{n:010d}"))
        assert np.allclose(cache.get_array("vectors", key), want / np.linalg.norm(want), atol=1e-6)
        assert np.allclose(run.vectors[n], cache.get_array("vectors", key))
    again = embed_images(images, embedder, view="full", cache=cache, settings=settings, progress=False)
    assert (again.calls, again.cached) == (0, 6)   # the on-demand path finds every batch vector
    lines = (settings.cache_dir / bedrock.USAGE_FILE).read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[0])["price_usd"] == pytest.approx(0.00003)


def test_partial_failure_becomes_failure_rows_and_the_rest_is_cached(env):
    settings, s3, embedder, images, cache = env
    keys, run_key = keys_and_run_key(env)
    client, stub = submitted(settings, run_key, ("InProgress", 2), ("PartiallyCompleted", 6))
    run = bb.embed_images_batched(images, embedder, view="full", cache=cache, settings=settings,
                                  bedrock=client, s3=s3, sleep=FakeBedrockWorker(s3, run_key, {1, 4}),
                                  progress=False)
    assert run.ids == ["img0", "img2", "img3", "img5"]
    assert list(run.failures["image_id"]) == ["img1", "img4"]
    assert set(run.failures["reason"]) == {"content_filter"}
    assert cache.get_array("vectors", keys[1]) is None and cache.get_array("vectors", keys[2]) is not None
    state = cache.get_json("batch_jobs", run_key)
    assert state["status"] == "done" and state["manifest"]["errorRecordCount"] == 2


def test_a_crash_after_submit_resumes_the_same_job_without_submitting_again(env):
    settings, s3, embedder, images, cache = env
    keys, run_key = keys_and_run_key(env)
    client, stub = submitted(settings, run_key, ("InProgress", 1))
    with pytest.raises(KeyboardInterrupt):
        bb.embed_images_batched(images, embedder, view="full", cache=cache, settings=settings,
                                bedrock=client, s3=s3, sleep=FakeBedrockWorker(s3, run_key, crash=True),
                                progress=False)
    stub.assert_no_pending_responses()
    state = cache.get_json("batch_jobs", run_key)
    assert state["job_arn"] == ARN and state["status"] == "InProgress"
    inputs_before = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"workbook-batch/{run_key}/input/")["Contents"]

    client2, stub2 = control(settings)   # a new kernel: only polling is allowed, no create call
    FakeBedrockWorker(s3, run_key)(0)    # meanwhile Bedrock finished the job
    stub2.add_response("get_model_invocation_job", job("Completed", 6, run_key=run_key), {"jobIdentifier": ARN})
    run = bb.embed_images_batched(images, embedder, view="full", cache=cache, settings=settings,
                                  bedrock=client2, s3=s3, sleep=FakeBedrockWorker(s3, run_key, crash=True),
                                  progress=False)
    stub2.assert_no_pending_responses()
    assert run.ids == list(images) and run.failures.empty
    inputs_after = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"workbook-batch/{run_key}/input/")["Contents"]
    assert [o["LastModified"] for o in inputs_after] == [o["LastModified"] for o in inputs_before]


def test_failed_job_says_what_happened_and_what_to_do(env):
    settings, s3, embedder, images, cache = env
    _, run_key = keys_and_run_key(env)
    client, stub = submitted(settings, run_key,
                             ("Failed", 0, "Amazon Bedrock could not access the S3 input location."))
    with pytest.raises(bb.BatchJobError) as info:
        bb.embed_images_batched(images, embedder, view="full", cache=cache, settings=settings,
                                bedrock=client, s3=s3, sleep=FakeBedrockWorker(s3, run_key), progress=False)
    msg = str(info.value)
    assert ARN in msg and "ended Failed" in msg and "could not access the S3 input" in msg
    assert "resubmit=True" in msg and "batch_threshold" in msg


def test_refused_submission_names_the_fix_and_submits_nothing(env):
    settings, s3, embedder, images, cache = env
    _, run_key = keys_and_run_key(env)
    client, stub = control(settings)
    stub.add_client_error("create_model_invocation_job", "AccessDeniedException",
                          "User is not authorized to perform: iam:PassRole", 403,
                          expected_params=expected_create(run_key))
    with pytest.raises(bb.BatchJobError, match="iam:PassRole for batch_role_arn"):
        bb.embed_images_batched(images, embedder, view="full", cache=cache, settings=settings,
                                bedrock=client, s3=s3, progress=False)
    assert cache.get_json("batch_jobs", run_key)["job_arn"] is None


def test_budget_is_checked_before_anything_is_written(env):
    settings, s3, embedder, images, cache = env
    settings = settings.replace(max_spend_usd=0.0001)
    with pytest.raises(BudgetExceeded):
        bb.embed_images_batched(images, embedder, view="full", cache=cache, settings=settings,
                                bedrock=object(), s3=s3, progress=False)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_embed_images_itself_sends_many_bedrock_misses_to_one_batch_job(env, monkeypatch):
    """The pipeline's own call (embed_images) takes the batch path above batch_threshold, and
    carries earlier failure rows (e.g. no_garment from masking) into its result."""
    import pandas as pd

    settings, s3, embedder, images, cache = env
    keys, run_key = keys_and_run_key(env)
    client, stub = submitted(settings, run_key, ("InProgress", 0), ("Completed", 6))
    worker = FakeBedrockWorker(s3, run_key)

    class Job(bb.BatchEmbedJob):  # the clients and the clock the test controls
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "bedrock": client, "s3": s3, "sleep": worker})

    monkeypatch.setattr(bb, "BatchEmbedJob", Job)
    assert embedder.supports_batch and settings.batch_threshold < len(images)
    earlier = pd.DataFrame([{"image_id": "gone", "reason": "no_garment", "message": "no dress"}])
    run = embed_images(images, embedder, view="full", cache=cache, settings=settings, progress=False,
                       failures=earlier)
    stub.assert_no_pending_responses()  # one job submitted and polled; the runtime stub saw no call
    assert worker.calls == 1 and run.ids == list(images) and (run.calls, run.cached) == (6, 0)
    assert run.failures.to_dict("records") == earlier.to_dict("records")
    for n, key in enumerate(keys):
        assert np.allclose(run.vectors[n], cache.get_array("vectors", key))


def test_missing_bucket_or_role_is_a_clear_error():
    settings = load_settings(toml_path=None, env={}, backend="bedrock")
    with pytest.raises(bb.BatchJobError, match="batch_bucket .*batch_role_arn"):
        bb.BatchEmbedJob(object(), settings, view="full", cache=Cache("/tmp/x"), bedrock=object(), s3=object())


def test_which_models_and_sizes_go_to_batch():
    s = load_settings(toml_path=None, env={}, batch_threshold=1000)
    assert bb.should_batch(1001, s, TITAN) and not bb.should_batch(1000, s, TITAN)
    nova = "amazon.nova-2-multimodal-embeddings-v1:0"
    assert not bb.should_batch(5000, s, nova) and bb.should_batch(5000, s, nova, force=True)
