"""The magic on every LTX family: options by meaning, a field the endpoint lacks, estimates
before anything is paid (--dry-run, max_cost, the caption, %ltx jobs), %ltx endpoints and
%ltx schema; through a real IPython shell against the local server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from ltx_jupyter._display import job_caption
from ltx_jupyter._endpoints import known_endpoints
from ltx_jupyter._parsing import OPTIONS
from ltx_jupyter._schema import lookup_schema

from .shells import magics_of
from .test_endpoints import OpenAPIServer, document_for
from .test_magics import submits
from .test_pricing import price_table

LTX2 = "fal-ai/ltx-2/text-to-video"
DISTILLED_13B = "fal-ai/ltx-video-13b-distilled"

#: A value each option accepts, as typed on the magic line.
OPTION_VALUES = {
    "--negative": "blurry",
    "--seed": "3",
    "--steps": "20",
    "--guidance": "4.5",
    "--resolution": "720p",
    "--aspect-ratio": "16:9",
    "--duration": "8",
    "--frames": "97",
    "--fps": "24",
    "--size": "704x480",
    "--audio": None,
    "--lora": "owner/lora:0.8",
    "--image": "https://example.com/a.png",
    "--end-image": "https://example.com/b.png",
    "--video": "https://example.com/c.mp4",
    "--audio-file": "https://example.com/d.wav",
}


def lacking(option: Any) -> str:
    """A shipped endpoint that has none of the option's fields (and, for --image, no
    image-to-video sibling to switch to)."""
    for info in known_endpoints():
        schema = lookup_schema(info.endpoint_id).schema
        assert schema is not None
        heads = {name.split(".")[0] for name in option.fields}
        if any(schema.field(h) is not None for h in heads):
            continue
        if option.flag == "--image" and "image-to-video" not in info.endpoint_id:
            continue  # a text-to-video endpoint would switch to its image-to-video sibling
        return info.endpoint_id
    raise AssertionError(f"every shipped endpoint has a field of {option.flag}")


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.flag != "--image"], ids=str)
def test_an_option_whose_field_the_endpoint_lacks_names_the_endpoint_and_its_fields(
    make_shell, local_server, option
):
    shell = make_shell(local_server)
    endpoint = lacking(option)
    value = OPTION_VALUES[option.flag]
    line = f"--endpoint {endpoint} {option.flag}" + (f" {value}" if value is not None else "")
    with pytest.raises(UsageError) as caught:
        shell.run_cell_magic("ltx", line, "a lighthouse at dusk")
    message = str(caught.value)
    assert f"{option.flag}: {endpoint} has no" in message
    assert "; its fields are " in message and "prompt" in message and "\n" not in message
    assert magics_of(shell).session.jobs == []


def test_image_on_a_text_endpoint_switches_to_its_image_sibling(make_shell, local_server):
    shell = make_shell(local_server)
    with capture_output() as captured:
        shell.run_cell_magic(
            "ltx", "--no-wait --endpoint ltx-2/text-to-video --image https://x.test/a.png", "p"
        )
    job = magics_of(shell).session.jobs[-1]
    assert job.endpoint == "fal-ai/ltx-2/image-to-video"
    assert job.input["image_url"] == "https://x.test/a.png"
    assert "using fal-ai/ltx-2/image-to-video" in captured.stderr


def test_options_set_fields_by_meaning_on_each_family(make_shell, local_server):
    shell = make_shell(local_server)
    cases = [
        (
            "--endpoint ltx-2/text-to-video --duration 8 --resolution 1440p --no-audio",
            LTX2,
            {"duration": 8, "resolution": "1440p", "generate_audio": False},
        ),
        (
            "--endpoint ltxv-13b-098-distilled --fps 30 --frames 97 --lora a/b:0.5",
            "fal-ai/ltxv-13b-098-distilled",
            {"frame_rate": 30, "num_frames": 97, "loras": [{"path": "a/b", "scale": 0.5}]},
        ),
        (
            "--endpoint ltx-2-19b/text-to-video --size 704x480 --fps 24 --audio",
            "fal-ai/ltx-2-19b/text-to-video",
            {"video_size": {"width": 704, "height": 480}, "fps": 24, "generate_audio": True},
        ),
        (
            "--endpoint ltxv-13b-098-distilled/extend --video https://x.test/v.mp4",
            "fal-ai/ltxv-13b-098-distilled/extend",
            {"video": {"video_url": "https://x.test/v.mp4"}},
        ),
    ]
    for line, endpoint, fields in cases:
        shell.run_cell_magic("ltx", "--dry-run -o plan " + line, "a red fox")
        request = shell.user_ns["plan"].validated
        assert request.endpoint_id == endpoint
        for name, value in fields.items():
            assert request.arguments[name] == value, (line, name)


def test_dry_run_shows_the_input_and_estimate_and_sends_nothing(make_shell, local_server):
    shell = make_shell(local_server)
    before = submits(local_server)
    with capture_output() as captured:
        shell.run_cell_magic("ltx", "--dry-run --endpoint ltx-2/text-to-video --duration 8", "x")
    text = captured.outputs[0].data["text/plain"]
    assert "nothing sent" in text and '"duration": 8' in text
    assert "estimated cost: $0.48 (8 s × $0.06/s" in text
    assert submits(local_server) == before
    assert magics_of(shell).session.jobs == []


def test_max_cost_refuses_a_cell_over_it_before_any_request(make_shell, local_server):
    shell = make_shell(local_server, max_cost=0.10)
    before = submits(local_server)
    with pytest.raises(UsageError, match=r"\$0\.36 .* over LtxMagics\.max_cost \(\$0\.10\)"):
        shell.run_cell_magic("ltx", "--endpoint ltx-2/text-to-video", "a red fox")
    with pytest.raises(UsageError, match=r"price unknown: .* LtxMagics\.max_cost is \$0\.10"):
        shell.run_cell_magic("ltx", "--steps 2", "a red fox")  # the seed's: no stated price
    assert submits(local_server) == before
    shell.run_cell_magic(
        "ltx",
        f"--wait --endpoint {DISTILLED_13B} --param first_pass_num_inference_steps=2 "
        "--param second_pass_num_inference_steps=2 --frames 9",
        "a red fox",
    )
    job = magics_of(shell).session.jobs[-1]
    assert job.estimate is not None and job.estimate.amount == pytest.approx(0.04)
    assert "est. $0.04" in job_caption(job)


def test_jobs_lists_each_jobs_estimate_and_the_session_total(make_shell, local_server):
    shell = make_shell(local_server)
    for _ in range(2):
        shell.run_cell_magic(
            "ltx",
            f"--wait --endpoint {DISTILLED_13B} --param first_pass_num_inference_steps=2 "
            "--param second_pass_num_inference_steps=2 --frames 9",
            "a red fox",
        )
    shell.run_cell_magic("ltx", "--wait --steps 2", "a red fox")
    with capture_output() as captured:
        shell.run_line_magic("ltx", "jobs")
    text = captured.outputs[0].data["text/plain"]
    assert text.count("$0.04") == 2 and "price unknown" in text
    assert "this session: 3 jobs, estimated $0.08 (1 with no known price)" in text


def test_endpoints_lists_the_family_with_prices(make_shell, local_server):
    shell = make_shell(local_server)
    with capture_output() as captured:
        shell.run_line_magic("ltx", "endpoints ltx-2/")
    text = captured.outputs[0].data["text/plain"]
    assert "fal-ai/ltx-2/text-to-video" in text and "fal-ai/ltx-2/image-to-video/fast" in text
    assert "fal-ai/ltx-video " not in text
    assert "$0.06 per second" in text and "LTX-2" in text and "text-to-video" in text
    with capture_output() as everything:
        shell.run_line_magic("ltx", "endpoints")
    assert f"{len(known_endpoints())} endpoints" in everything.outputs[0].data["text/plain"]


def test_endpoints_refresh_shows_a_changed_price_and_asks_an_api_that_failed_a_moment_ago(
    make_shell, server_factory
):
    def shown(shell: Any, words: str) -> str:
        with capture_output() as captured:
            shell.run_line_magic("ltx", f"endpoints ltx-2/text-to-video {words}".strip())
        return str(captured.outputs[0].data["text/plain"])

    first = server_factory(prices=price_table(0.05))
    port = first.port
    shell = make_shell(first)
    assert "$0.05 per second" in shown(shell, "")
    first.stop()
    assert "was unreachable" in shown(shell, "--refresh")  # asked, and it is down
    back = server_factory(port=port, prices=price_table(0.07))
    assert back.url == first.url
    # Without a refresh the answer of a moment ago stands in (the session keeps it).
    assert "was unreachable" in shown(shell, "")
    refreshed = shown(shell, "--refresh")
    assert "$0.07 per second" in refreshed and "unreachable" not in refreshed
    assert "$0.07 per second" in shown(shell, "")


def test_endpoints_refresh_fetches_a_document_that_failed_a_moment_ago_at_its_next_lookup(
    make_shell, local_server, monkeypatch
):
    endpoint_id = f"fal-ai/model-{uuid.uuid4().hex[:8]}/text-to-video"  # in no one's cache
    documents = OpenAPIServer()
    documents.documents[endpoint_id] = document_for(endpoint_id)
    monkeypatch.setenv("LTX_OPENAPI_URL", documents.url)
    try:
        shell = make_shell(local_server)
        documents.status, documents.body = 503, b"{}"
        with pytest.raises(UsageError, match=f"No schema for {endpoint_id}: could not fetch"):
            shell.run_line_magic("ltx", f"schema {endpoint_id}")
        documents.status, documents.body = 200, None  # the URL answers again
        with pytest.raises(UsageError, match=f"No schema for {endpoint_id}"):
            shell.run_line_magic("ltx", f"schema {endpoint_id}")  # not asked: the failure stands
        assert documents.asked(endpoint_id) == 1
        with capture_output():
            shell.run_line_magic("ltx", "endpoints --refresh")
        with capture_output() as captured:
            shell.run_line_magic("ltx", f"schema {endpoint_id}")
        assert "prompt *" in captured.outputs[0].data["text/plain"]
        assert documents.asked(endpoint_id) == 2
    finally:
        documents.stop()


def test_schema_shows_every_field(make_shell, local_server):
    shell = make_shell(local_server)
    with capture_output() as captured:
        shell.run_line_magic("ltx", "schema ltx-2/text-to-video")
    text = captured.outputs[0].data["text/plain"]
    for name in lookup_schema(LTX2).schema.field_names:
        assert name in text
    assert "one of 6, 8, 10" in text and "prompt *" in text
    with pytest.raises(UsageError, match="%ltx schema takes one endpoint ID"):
        shell.run_line_magic("ltx", "schema")


def test_an_endpoint_without_a_schema_is_sent_unvalidated_with_a_warning(make_shell, local_server):
    shell = make_shell(local_server)
    with capture_output() as captured:
        shell.run_cell_magic("ltx", "--wait --endpoint someone/new-model --param anything=1", "x")
    assert "No schema for someone/new-model" in captured.stderr
    assert "sent unvalidated" in captured.stderr
    job = magics_of(shell).session.jobs[-1]
    assert job.result is not None and job.input["anything"] == 1
