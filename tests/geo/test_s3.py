"""s3:// scenes against a local S3-compatible server (moto's server mode, a dev dependency):
detections equal to the local file's; a missing key is one line that names it, never the keys."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_helpers import write_painted_cog
from scene_helpers import PaintedPredictor

from fsanet_geo.errors import RasterError
from fsanet_geo.geo.detect.pipeline import detect_scene

moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

SECRET = "s3cr3t-never-shown"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """GDAL's and boto3's S3 settings for the local server; credentials only in the environment."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1",
                       "AWS_S3_ENDPOINT": s3_endpoint, "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE",
                       "GDAL_HTTP_RETRY_DELAY": "0.05"}.items():
        monkeypatch.setenv(key, value)
    return s3_endpoint


def test_an_s3_scene_equals_the_local_file_and_errors_name_the_key_only(s3_env: str, tmp_path: Path) -> None:
    cog = write_painted_cog(tmp_path / "c.tif", height=256, width=256, n_objects=10)
    client = boto3.client("s3", endpoint_url=f"http://{s3_env}", region_name="us-east-1")
    client.create_bucket(Bucket="scenes")
    client.put_object(Bucket="scenes", Key="dir/c.tif", Body=cog.path.read_bytes())
    local = detect_scene(cog.path, PaintedPredictor(), tile_size=128, overlap=16)
    for location in ("s3://scenes/dir/c.tif", "/vsis3/scenes/dir/c.tif"):
        remote = detect_scene(location, PaintedPredictor(), tile_size=128, overlap=16)
        cols = ["class_id", "x_min", "y_min", "x_max", "y_max"]
        assert sorted(map(tuple, remote[cols].to_numpy())) == sorted(map(tuple, local[cols].to_numpy()))
        assert set(remote["scene"]) == {"c.tif"} and len(remote) == 10
    with pytest.raises(RasterError) as info:
        detect_scene("s3://scenes/dir/none.tif", PaintedPredictor())
    assert str(info.value) == "scene s3://scenes/dir/none.tif was not found"
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("key", "secret", "said"),
    [
        ("AKIAUNKNOWN000000000", SECRET, "The AWS Access Key Id you provided does not exist in our records"),
        (None, "a-wrong-secret", "The request signature we calculated does not match the signature you provided"),
    ],
)
def test_refused_s3_credentials_are_named_with_the_providers_words(
    s3_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str | None, secret: str, said: str
) -> None:
    """moto checks keys and signatures under ``enable_iam_authentication`` (its IAM simulation).
    An expired session token is not simulated by moto: that case is in test_remote's classifier test."""
    from moto.core.authorization import enable_iam_authentication

    cog = write_painted_cog(tmp_path / "c.tif", height=128, width=128, n_objects=2)
    endpoint = f"http://{s3_env}"
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
    user = f"reader-{tmp_path.name}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument='{"Version": "2012-10-17", "Statement": '
                        '[{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}')
    real = iam.create_access_key(UserName=user)["AccessKey"]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=f"locked-{len(secret)}")
    s3.put_object(Bucket=f"locked-{len(secret)}", Key="c.tif", Body=cog.path.read_bytes())
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key or real["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    with enable_iam_authentication(), pytest.raises(RasterError) as info:
        detect_scene(f"s3://locked-{len(secret)}/c.tif", PaintedPredictor())
    message = str(info.value)
    assert message.startswith(f"scene s3://locked-{len(secret)}/c.tif: the server refused the credentials ({said}")
    assert said in message and "not found" not in message and secret not in message
